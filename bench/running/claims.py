"""Many runners, one store: a configuration is claimed in the store before it is trained, so two ``bench run``
processes on one store never train it twice.

A runner's worker takes a lease for the configuration (the claim: a RUNNING run in the ledger experiment with its
owner's heartbeat, see :mod:`bench.running.leases`), then reads the configuration's runs and leases: a FINISHED
run means the work is done; dead leases (ran out, process gone) do not count. The live claims, its own among them,
are then each asked, in one order every runner agrees on (start time, then run id), for a write-once param
``bench.claim`` of the lease naming the claimant (:meth:`bench.running.store.Store.set_once`, atomic in SQLite and
on an MLflow server alike). A claimant wins when it gets every one of them, and only then creates the run users
see; at the first that names another lease it loses, ends its lease KILLED with the reason ("claimed by <lease>")
and skips the configuration. A lost claim leaves nothing in the results' experiment, and the register is never a
param of a result run: parameters there are settings only.

Why not simply "the earliest live claim by start time wins": a run's start time is taken by the client before the
store commits the run, so a claimant can read the claims before an earlier-stamped one is visible and believe
itself first while the other, reading later, believes the same. With the registers that cannot happen: the
claims any two claimants read are nested (leases are only added, and both claims stay live while their owners
decide), so both ask at least one common register, and only one of them gets it. Asking in one agreed order
means someone always gets all of its registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.running.leases import EXPERIMENT, RunLease, Watchdog, ledger, why_dead
from bench.running.store import KILLED, RUNNING, Store, has_result

CLAIM_PARAM = "bench.claim"


@dataclass
class Claim:
    """Ask for a claim before training; FINISHED runs started before ``finished_after_ms`` do not count (``--force``
    reruns configurations that are already done)."""

    finished_after_ms: int = 0


@dataclass
class Lost:
    """A claim not got: ``status`` is ``elsewhere`` (a run of the configuration FINISHED: ``holder`` is that run)
    or ``claimed`` (a live lease holds it: ``holder`` is that lease; ``lapsed``: no, the claimant's own lease was
    marked dead while it decided, the store having stalled past the lease: it tries again later)."""

    status: str
    holder: str
    lapsed: bool = False

    @property
    def reason(self) -> str:
        if self.status == "elsewhere":
            return f"finished by run {self.holder} (another runner)"
        if self.lapsed:
            return f"its lease {self.holder} ran out while it claimed (the store stalled); tried again later"
        return f"claimed by lease {self.holder} (another runner trains it)"


def taken(store: Store, experiment_id: str, cfg_hash: str, claim: Claim, mine: str | None = None) -> tuple[Lost | None,
                                                                                                          list]:
    """(why the configuration is not free, or None; its live claims, leases, in the agreed order). ``mine``: the
    asker's own lease, live whatever its heartbeat says."""
    leases = ledger(store)
    runs = store.search([experiment_id, leases], f"tags.`bench.config_hash` = '{cfg_hash}'")  # runs and leases
    finished = [r for r in runs if r.info.experiment_id == experiment_id
                and has_result(r.info.status, r.data.tags.get("bench.outcome"))
                and r.info.start_time >= claim.finished_after_ms]
    if finished:
        return Lost("elsewhere", finished[0].info.run_id), []
    live = sorted((lease for lease in runs if lease.info.experiment_id == leases and lease.info.status == RUNNING
                   and lease.data.tags.get(EXPERIMENT) == experiment_id
                   and (lease.info.run_id == mine or why_dead(lease) is None)),
                  key=lambda lease: (lease.info.start_time, lease.info.run_id))
    if mine is None and live:
        return Lost("claimed", live[0].info.run_id), live
    return None, live


def open_run(store: Store, experiment_id: str, name: str, tags: dict[str, str], params: dict, claim: Claim | None,
             watchdog: Watchdog | None = None) -> RunLease | Lost:
    """Create the run (see :meth:`RunLease.start`); with ``claim``, only if the configuration is free and this
    process's claim wins. A configuration already taken costs one query and creates nothing."""
    if claim is None:
        return RunLease.start(store, experiment_id, name, tags, params, watchdog)
    cfg_hash = tags["bench.config_hash"]
    lost, _ = taken(store, experiment_id, cfg_hash, claim)
    if lost is not None:
        return lost
    lease = RunLease.take(store, experiment_id, name, cfg_hash, watchdog)
    try:
        lost, live = taken(store, experiment_id, cfg_hash, claim, mine=lease.lease_id)
        if lost is None and lease.lease_id not in {other.info.run_id for other in live}:  # reaped meanwhile:
            lost = Lost("claimed", lease.lease_id, lapsed=True)  # later claimants no longer ask its register
        for other in live:
            if lost is not None:
                break
            holder = store.set_once(other.info.run_id, CLAIM_PARAM, lease.lease_id)
            if holder not in (lease.lease_id, None):  # None: that lease was deleted, it claims nothing
                lost = Lost("claimed", holder)
        if lost is None:
            lease.open(name, tags, params)
            return lease
    except BaseException as e:  # a live lease would hold the configuration for as long as this process lives
        lease.end(KILLED, {"bench.outcome": "failed", "bench.reason": f"claim undecided: {e}"})
        raise
    if lost.lapsed:
        lease.abandon()  # its reaper's verdict stands
    else:
        lease.end(KILLED, {"bench.outcome": "claimed", "bench.reason": lost.reason})
    return lost
