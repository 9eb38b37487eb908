"""Many runners, one store: a configuration is claimed in the store before it is trained, so two ``bench run``
processes on one store never train it twice.

A runner's worker creates its run of the configuration (the claim, RUNNING with its owner's lease, see
:mod:`bench.running.leases`), then reads every run of the configuration: a FINISHED one means the work is done; dead ones
(lease run out, process gone) do not count. The live claims, its own among them, are then each asked, in one
order every runner agrees on (start time, then run id), for a write-once param ``bench.claim`` naming the
claimant (:meth:`bench.running.store.Store.set_once`, atomic in SQLite and on an MLflow server alike). A claimant wins
when it gets every one of them; at the first that names another run it loses, ends its run KILLED with the
reason ("claimed by <run>") and skips the configuration.

Why not simply "the earliest live claim by start time wins": a run's start time is taken by the client before the
store commits the run, so a claimant can read the claims before an earlier-stamped one is visible and believe
itself first while the other, reading later, believes the same. With the registers that cannot happen: the
claims any two claimants read are nested (runs are only added, and both claims stay live while their owners
decide), so both ask at least one common register, and only one of them gets it. Asking in one agreed order
means someone always gets all of its registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.running.leases import RunLease, Watchdog, why_dead
from bench.running.store import KILLED, RUNNING, Store, has_result

CLAIM_PARAM = "bench.claim"


@dataclass
class Claim:
    """Ask for a claim before training; FINISHED runs started before ``finished_after_ms`` do not count (``--force``
    reruns configurations that are already done)."""

    finished_after_ms: int = 0


@dataclass
class Lost:
    """A claim not got: ``status`` is ``elsewhere`` (a run of the configuration FINISHED) or ``claimed`` (a live run
    holds it); ``holder`` that run; ``run_id`` the losing run, None when none was created."""

    status: str
    holder: str
    run_id: str | None = None

    @property
    def reason(self) -> str:
        if self.status == "elsewhere":
            return f"finished by run {self.holder} (another runner)"
        return f"claimed by run {self.holder}"


def _runs_of(store: Store, experiment_id: str, cfg_hash: str) -> list:
    return store.search(experiment_id, f"tags.`bench.config_hash` = '{cfg_hash}'")


def taken(store: Store, experiment_id: str, cfg_hash: str, claim: Claim, mine: str | None = None) -> tuple[Lost | None,
                                                                                                          list]:
    """(why the configuration is not free, or None; its live claims in the agreed order)."""
    runs = _runs_of(store, experiment_id, cfg_hash)
    finished = [r for r in runs if has_result(r.info.status, r.data.tags.get("bench.outcome"))
                and r.info.start_time >= claim.finished_after_ms]
    if finished:
        return Lost("elsewhere", finished[0].info.run_id, mine), []
    live = sorted((r for r in runs if r.info.status == RUNNING and (r.info.run_id == mine or why_dead(r) is None)),
                  key=lambda r: (r.info.start_time, r.info.run_id))
    if mine is None and live:
        return Lost("claimed", live[0].info.run_id), live
    return None, live


def open_run(store: Store, experiment_id: str, name: str, tags: dict[str, str], params: dict, claim: Claim | None,
             watchdog: Watchdog | None = None) -> RunLease | Lost:
    """Create the run (see :meth:`RunLease.start`); with ``claim``, only if the configuration is free, and keep it
    only if its claim wins. A configuration already taken costs one query and leaves no run behind."""
    if claim is None:
        return RunLease.start(store, experiment_id, name, tags, params, watchdog)
    cfg_hash = tags["bench.config_hash"]
    lost, _ = taken(store, experiment_id, cfg_hash, claim)
    if lost is not None:
        return lost
    lease = RunLease.start(store, experiment_id, name, tags, None, watchdog)
    unwritten = params  # written with the run's own register: one write a run fewer than on their own
    lost, live = taken(store, experiment_id, cfg_hash, claim, mine=lease.run_id)
    for run in live:
        if lost is not None:
            break
        mine = run.info.run_id == lease.run_id
        holder = store.set_once(run.info.run_id, CLAIM_PARAM, lease.run_id, unwritten if mine else None)
        unwritten = None if mine else unwritten
        if holder not in (lease.run_id, None):  # None: that run was deleted, it claims nothing
            lost = Lost("claimed", holder, lease.run_id)
    if unwritten:  # lost before reaching its own register: the losing run still shows what it was
        store.log(lease.run_id, params=unwritten)
    if lost is None:
        return lease
    lease.end(KILLED, {"bench.outcome": "claimed", "bench.reason": lost.reason})
    return lost
