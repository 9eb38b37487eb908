"""Who runs a run, so that no run stays RUNNING once its process is gone.

Every run the harness creates carries its owner: ``bench.host``, ``bench.pid`` (with the process's start time,
so a reused pid is not mistaken for the owner) and ``bench.heartbeat``, the time of the owner's last sign of
life, which a thread of the owning process renews every :data:`HEARTBEAT_S` seconds. The run's lease
(``bench.lease_s``, :data:`LEASE_S`) runs out when the heartbeat is that old. A RUNNING run is dead when its lease
ran out, or when it runs on this host and its process is gone; :func:`reap` marks such runs FAILED (suite parents
KILLED) with the reason, and resume (``bench run``) and ``bench compile`` call it.

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


def why_dead(run, now: float | None = None) -> str | None:
    """Why RUNNING ``run`` (an MLflow Run) has no live owner, or None while it may have one."""
    if run.info.status != RUNNING:
        return None
    tags = run.data.tags
    now = time.time() if now is None else now
    pid = tags.get(PID) or tags.get("bench.worker_pid")
    if tags.get(HOST) == socket.gethostname() and pid and pid.isdigit() and not process_alive(int(pid),
                                                                                            tags.get(PID_START)):
        return f"its process ({tags[HOST]} pid {pid}) is gone"
    try:
        beat = float(tags[HEARTBEAT]) if HEARTBEAT in tags else run.info.start_time / 1000
        lease = float(tags.get(LEASE, LEASE_S))
    except ValueError:
        return None
    if now - beat > lease:
        owner = f"{tags.get(HOST, 'unknown host')} pid {pid or '?'}"
        return f"no heartbeat from its process ({owner}) for {now - beat:.0f} s (lease {lease:g} s)"
    return None


def reap(store: Store, experiment_id: str) -> list[tuple[str, str]]:
    """Mark every dead RUNNING run of the harness in the experiment: a suite parent KILLED, any other run FAILED,
    each with ``bench.reason``. Returns (run id, reason) of each. Runs without the harness's tags are left alone."""
    reaped = []
    now = time.time()
    for run in store.search(experiment_id, "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        role = tags.get("bench.role")
        if not (role or "bench.config_hash" in tags):
            continue
        reason = why_dead(run, now)
        if reason is None:
            continue
        if role == "suite":
            store.end(run.info.run_id, KILLED, {"bench.reason": f"suite runner died: {reason}"})
        else:
            store.end(run.info.run_id, FAILED, {"bench.outcome": "failed", "bench.reason": f"process died: {reason}"})
        reaped.append((run.info.run_id, reason))
    return reaped


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
    """A run this process owns: its heartbeat thread and the one way to end the run, :meth:`end`."""

    def __init__(self, store: Store, experiment_id: str, run_id: str, watchdog: Watchdog | None = None):
        self.store, self.experiment_id, self.run_id, self.watchdog = store, experiment_id, run_id, watchdog
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.ended = False
        self.store_error: StoreError | None = None  # why end() could not record the run, if the store failed
        if watchdog is not None:
            watchdog.guard(self)
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    @classmethod
    def start(cls, store: Store, experiment_id: str, name: str | None, tags: dict[str, str],
              params: dict | None = None, watchdog: Watchdog | None = None) -> RunLease:
        """Create a RUNNING run owned by this process and start its heartbeat."""
        return cls(store, experiment_id, store.create_run(experiment_id, name, {**tags, **owner_tags()}, params),
                   watchdog)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.store.log(self.run_id, tags={HEARTBEAT: f"{time.time():.3f}"})
            except Exception:  # noqa: BLE001 - a missed beat; the lease allows several
                pass

    def abandon(self) -> None:
        """Stop the heartbeat without ending the run (its store does not answer): once the lease runs out, the
        next ``bench run`` or ``compile`` on the store marks it."""
        with self._lock:
            self.ended = True
            self._stop.set()

    def end(self, status: str, tags: dict[str, str] | None = None, metrics: list[tuple] = ()) -> str | None:
        """End the run once with ``status``, ``tags`` and its last ``metrics`` (written in one batch with the tags).
        Never raises: returns why the run did not end as asked (the store failed; the run was reaped meanwhile,
        when nothing is written: its verdict stands; the runner died, so FINISHED became KILLED), else None.
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
                ended = self.store.ended_status(self.experiment_id, self.run_id)
                if ended is not None:  # reaped as dead meanwhile (the lease ran out): its verdict stands
                    return f"run was marked {ended} while it ran (its lease ran out)"
                self.store.end(self.run_id, status, tags, metrics)
            except Exception as e:  # noqa: BLE001 - the failure path must not raise
                self.store_error = e if isinstance(e, StoreError) else None
                return str(e)
            return problem
