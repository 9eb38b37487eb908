"""Who runs a run, so that no run stays RUNNING once its process is gone, kept off the run users compare.

Every run the harness creates has a **lease**: a run of its own in the store's ledger experiment
(:data:`LEDGER`), created first, that carries the owner, ``bench.host``, ``bench.pid`` (with the process's start
time, so a reused pid is not mistaken for the owner) and ``bench.heartbeat``, the time of the owner's last sign of
life, which a thread of the owning process renews every :data:`HEARTBEAT_S` seconds, and the claim register of
:mod:`bench.running.claims`. The lease names its run (``bench.run``) and ends with it. The lease runs out
(``bench.lease_s``, :data:`LEASE_S`) when the heartbeat is that old. The run itself carries only its settings
(params), results and what describes it: the parallel-coordinates and comparison views of the MLflow UI offer
no pid, heartbeat or claim to compare.

A RUNNING lease is dead when it ran out, or when its process runs on this host and is gone; :func:`reap` marks
such leases and their runs FAILED (suite parents KILLED) with the reason, and resume (``bench run``) and ``bench
compile`` call it. A RUNNING run no lease names has an owner that died between creating it and naming it, or
one that is naming it now: it is dead when a dead lease that names no run has its name and configuration, spared
while a live one does, and otherwise dead once a lease would have run out since it started. Runs written before
leases moved to the ledger carry the owner tags themselves and are judged by them.

A worker process belongs to its runner: :class:`Watchdog` ends the worker within a second of the runner's death,
and the run it was on is marked KILLED, never FINISHED.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from bench.running.store import FAILED, KILLED, RUNNING, Store, StoreError, has_result

HEARTBEAT_S = 5.0
LEASE_S = 30.0  # six heartbeats: a loaded machine or a slow store may delay a few
HOST, PID, PID_START, HEARTBEAT, LEASE = "bench.host", "bench.pid", "bench.pid_start", "bench.heartbeat", "bench.lease_s"
RUN, EXPERIMENT = "bench.run", "bench.experiment_id"  # on a lease: the run it is for, and that run's experiment
LEDGER = "rnn-bench.leases"
LEDGER_TAGS = {"mlflow.note.content": (
    "rnn-bench's bookkeeping, not results: a lease per run the harness started (which process runs it, its "
    "heartbeat, named like the run, tag bench.run its id) and per claim it lost, with the claim registers that keep "
    "two runners on one store from training one configuration twice. The results are in the other experiments; "
    "nothing here is meant for comparing.")}


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first, start time at 19); None without."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot) on Linux, else None."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this host runs (a zombie does not), and is the one that started at ``started``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc: trust kill(0)
    return fields[0] not in ("Z", "X") and (not started or fields[19] == started)


def owner_tags() -> dict[str, str]:
    """The tags that say this process runs a run, as of now."""
    pid = os.getpid()
    tags = {HOST: socket.gethostname(), PID: str(pid), HEARTBEAT: f"{time.time():.3f}", LEASE: f"{LEASE_S:g}"}
    started = process_start(pid)
    if started:
        tags[PID_START] = started
    return tags


def why_dead(lease, now: float | None = None) -> str | None:
    """Why the RUNNING ``lease`` (an MLflow Run: a lease, or a run written before leases, with its owner tags)
    has no live owner, or None while it may have one. Without a heartbeat, the lease counts from its start."""
    if lease.info.status != RUNNING:
        return None
    tags = lease.data.tags
    now = time.time() if now is None else now
    pid = tags.get(PID) or tags.get("bench.worker_pid")
    if tags.get(HOST) == socket.gethostname() and pid and pid.isdigit() and not process_alive(int(pid),
                                                                                            tags.get(PID_START)):
        return f"its process ({tags[HOST]} pid {pid}) is gone"
    try:
        beat = float(tags[HEARTBEAT]) if HEARTBEAT in tags else lease.info.start_time / 1000
        lease_s = float(tags.get(LEASE, LEASE_S))
    except ValueError:
        return None
    if now - beat > lease_s:
        if HOST not in tags and not pid:
            return f"no live lease names it {now - beat:.0f} s after it started (its process died as it began)"
        owner = f"{tags.get(HOST, 'unknown host')} pid {pid or '?'}"
        return f"no heartbeat from its process ({owner}) for {now - beat:.0f} s (lease {lease_s:g} s)"
    return None


def ledger(store: Store) -> str:
    """The id of the store's ledger experiment (created on first use)."""
    return store.experiment_id(LEDGER, LEDGER_TAGS)


def results_experiment(store: Store, name: str) -> str:
    """The id of experiment ``name``, for the runs users compare, created if missing after the ledger: the MLflow
    UI lists experiments newest first (by creation: runs do not update an experiment), so the results come first
    and the ledger below them. An existing experiment is checked before the ledger is touched."""
    if store.find_experiment(name) is None:
        ledger(store)
    return store.experiment_id(name)


def reap(store: Store, experiment_id: str) -> list[tuple[str, str]]:
    """Mark every dead RUNNING run of the harness in the experiment, and its lease: a suite parent KILLED, any
    other run FAILED, each with ``bench.reason``. Returns (run id, reason) of each (a lease's id where it died
    before creating its run). Runs without the harness's tags are left alone."""
    reaped, now = [], time.time()
    live, dead = set(), {}
    # Leases that name no run yet, by what their run would be: their owner may have created it and died (or be
    # about to name it) in between.
    opening, died_opening = set(), {}
    ledger_id = store.find_experiment(LEDGER)  # None: nothing ever ran in this store
    running = f"attributes.status = '{RUNNING}' and tags.`{EXPERIMENT}` = '{experiment_id}'"
    for lease in store.search(ledger_id, running) if ledger_id else []:
        run_id, reason = lease.data.tags.get(RUN), why_dead(lease, now)
        if reason is None:
            live.add(run_id)
            if run_id is None:
                opening.add(_run_key(lease))
            continue
        store.end(lease.info.run_id, FAILED, {"bench.reason": f"process died: {reason}"})
        if run_id is None:
            died_opening.setdefault(_run_key(lease), []).append((lease.info.run_id, reason))
        else:
            dead[run_id] = reason
    # Runs are read after their leases: a run whose lease was made meanwhile is young, and why_dead spares it.
    for run in store.search(experiment_id, f"attributes.status = '{RUNNING}'"):
        tags, run_id = run.data.tags, run.info.run_id
        role = tags.get("bench.role")
        if not (role or "bench.config_hash" in tags) or run_id in live:
            continue
        key = _run_key(run)
        if run_id in dead:
            reason = dead[run_id]
        elif key in opening:  # its owner may be naming it on its lease right now
            continue
        elif died_opening.get(key) and run.info.start_time < now * 1000:  # (not a run whose lease came later)
            reason = died_opening[key].pop()[1]  # its owner died between creating it and naming it
        else:
            reason = why_dead(run, now)
        if reason is None:
            continue
        if role == "suite":
            store.end(run_id, KILLED, {"bench.reason": f"suite runner died: {reason}"})
        else:
            store.end(run_id, FAILED, {"bench.outcome": "failed", "bench.reason": f"process died: {reason}"})
        reaped.append((run_id, reason))
    return reaped + [lease for unmatched in died_opening.values() for lease in unmatched]  # died before their run


def _run_key(run) -> tuple[str, str | None]:
    """What a run and its lease share before the lease names it: the name, and the configuration's hash."""
    return run.info.run_name, run.data.tags.get("bench.config_hash")


class Watchdog:
    """Ties a worker process to its runner (``parent_pid``): once the runner is gone, the run the worker is on
    (:meth:`guard`) is marked KILLED and the worker exits, within ``interval`` seconds, mid-run or not.

    Orphaned workers would otherwise train on and mark runs FINISHED that nobody collects, while a rerun started
    meanwhile trains the same configurations again.

    The runner is alive while ``lifeline`` (the read end of a pipe whose only write end the runner holds and never
    writes to) shows no end of file: the kernel closes that end however the runner dies. (Not the parent's pid: a
    worker forked from a fork server has that server as its parent.)
    """

    def __init__(self, parent_pid: int, lifeline, interval: float = 0.5):
        self.parent_pid, self.lifeline, self.interval = parent_pid, lifeline, interval
        self.lease: RunLease | None = None

    def alive(self) -> bool:
        return not self.lifeline.poll()  # readable only once the runner's end is closed

    def guard(self, lease: RunLease | None) -> None:
        self.lease = lease

    def start(self) -> None:
        threading.Thread(target=self._watch, name="runner-watchdog", daemon=True).start()

    def _watch(self) -> None:
        while self.alive():
            time.sleep(self.interval)
        lease = self.lease
        if lease is not None:
            lease.end(KILLED, {"bench.outcome": "killed",
                               "bench.reason": f"its runner (pid {self.parent_pid}) died during the run"})
        os._exit(3)


class RunLease:
    """A run this process owns, through its lease (see the module's docstring): the lease's heartbeat thread, and
    the one way to end both, :meth:`end`. :meth:`take` makes the lease, :meth:`open` the run; :meth:`start` both."""

    def __init__(self, store: Store, experiment_id: str, lease_id: str, watchdog: Watchdog | None = None):
        self.store, self.experiment_id, self.lease_id, self.watchdog = store, experiment_id, lease_id, watchdog
        self.run_id: str | None = None  # the run, once opened
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.ended = False
        self.store_error: StoreError | None = None  # why end() could not record the run, if the store failed
        if watchdog is not None:
            watchdog.guard(self)
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    @classmethod
    def take(cls, store: Store, experiment_id: str, name: str | None, config_hash: str | None,
             watchdog: Watchdog | None = None) -> RunLease:
        """A RUNNING lease owned by this process, named ``name``, for a run of the experiment yet to be opened (of
        configuration ``config_hash``, which claims search by; None for a suite parent)."""
        tags = {EXPERIMENT: experiment_id, **owner_tags()}
        if config_hash is not None:
            tags["bench.config_hash"] = config_hash
        lease_id = store.create_run(ledger(store), name, tags)
        return cls(store, experiment_id, lease_id, watchdog)

    def open(self, name: str | None, tags: dict[str, str], params: dict | None = None) -> str:
        """Create the leased run, RUNNING, and name it on the lease (in between, :func:`reap` finds the run's lease
        by the name and configuration they share). If the store fails, the lease ends FAILED."""
        try:
            self.run_id = self.store.create_run(self.experiment_id, name, tags, params)
            self.store.log(self.lease_id, tags={RUN: self.run_id})
        except BaseException as e:
            self.end(FAILED, {"bench.outcome": "failed", "bench.reason": f"its run was not created: {e}"})
            raise
        return self.run_id

    @classmethod
    def start(cls, store: Store, experiment_id: str, name: str | None, tags: dict[str, str],
              params: dict | None = None, watchdog: Watchdog | None = None) -> RunLease:
        """Create a RUNNING run owned by this process (its lease first) and start the lease's heartbeat."""
        lease = cls.take(store, experiment_id, name, tags.get("bench.config_hash"), watchdog)
        lease.open(name, tags, params)
        return lease

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.store.log(self.lease_id, tags={HEARTBEAT: f"{time.time():.3f}"})
            except Exception:  # noqa: BLE001 - a missed beat; the lease allows several
                pass

    def abandon(self) -> None:
        """Stop the heartbeat without ending the run (its store does not answer): once the lease runs out, the
        next ``bench run`` or ``compile`` on the store marks it."""
        with self._lock:
            self.ended = True
            self._stop.set()

    def end(self, status: str, tags: dict[str, str] | None = None, metrics: list[tuple] = ()) -> str | None:
        """End the run once with ``status``, ``tags`` and its last ``metrics`` (written in one batch with the tags),
        then its lease, with the same status and the reason, if any. Never raises: returns why the run did not end
        as asked (the store failed; the run was ended meanwhile, by a reap or its runner: its verdict stands, and
        the lease ends with it; the runner died, so FINISHED became KILLED), else None.
        """
        with self._lock:
            if self.ended:
                return None
            self.ended = True
            self._stop.set()
            if self.watchdog is not None:
                self.watchdog.guard(None)
            tags = dict(tags or {})
            problem = None
            runner_gone = self.watchdog is not None and not self.watchdog.alive()
            if has_result(status, tags.get("bench.outcome")) and runner_gone:
                problem = f"its runner (pid {self.watchdog.parent_pid}) died before the run was recorded"
                status, tags = KILLED, {**tags, "bench.outcome": "killed", "bench.reason": problem}
            try:
                if self.run_id is not None:
                    ended = self.store.ended_status(self.experiment_id, self.run_id)
                    if ended is not None:  # reaped as dead (its lease ran out), or stopped by its runner
                        self.store.set_terminated(self.lease_id, ended)
                        return f"run was marked {ended} while it ran (reaped or stopped)"
                    self.store.end(self.run_id, status, tags, metrics)
                reason = {"bench.reason": tags["bench.reason"]} if "bench.reason" in tags else {}
                self.store.end(self.lease_id, status, reason)
            except Exception as e:  # noqa: BLE001 - the failure path must not raise
                self.store_error = e if isinstance(e, StoreError) else None
                return str(e)
            return problem
