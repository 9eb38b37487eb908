"""The store's API on real SQLite stores: claims, leases and reaping, and failing stores reported in one line.

Fast tests drive :mod:`bench.running.store`, :mod:`bench.running.claims` and :mod:`bench.running.leases` in this process (several threads
stand in for concurrent runners: SQLite serializes their writes just the same). The slow ones start real processes:
concurrent first use of a fresh store, and ``python -m bench`` against a full, read-only, corrupt or locked store.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.running import leases
from bench.running.claims import CLAIM_PARAM, Claim, Lost, open_run
from bench.running.leases import RunLease, Watchdog, reap, why_dead
from bench.running.store import Store, StoreError
from bench.config.suite import load_suite
from suite_procs import (REPO, TINY_SUITE, bench_args, child_env, children, describe, finished_by_hash, parents,
                         sqlite_uri, write_suite)

HASH = "c0ffee"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """One store for the fast tests, each in its own experiment: a fresh store costs seconds of migrations."""
    return Store(sqlite_uri(tmp_path_factory.mktemp("store") / "mlflow.db"))


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def claim_tags(h: str = HASH) -> dict[str, str]:
    return {"bench.config_hash": h}


OWNER = {leases.HOST, leases.PID, leases.PID_START, leases.HEARTBEAT, leases.LEASE}


def planted_run(store: Store, experiment_id: str, tags: dict[str, str], status: str = "RUNNING",
                age_s: float = 0) -> str:
    """A run as another process would have left it, started ``age_s`` ago."""
    run_id = store.client.create_run(experiment_id, start_time=int((time.time() - age_s) * 1000), tags=tags,
                                     run_name="planted").info.run_id
    if status != "RUNNING":
        store.set_terminated(run_id, status)
    return run_id


def planted_lease(store: Store, experiment_id: str, owner: dict[str, str], run_id: str | None = None,
                  h: str = HASH) -> str:
    """A lease as another process would have left it: its owner tags are whatever ``owner`` says."""
    tags = {leases.EXPERIMENT: experiment_id, **claim_tags(h), **owner, **({leases.RUN: run_id} if run_id else {})}
    return planted_run(store, leases.ledger(store), tags)


def other_host(heartbeat_age_s: float) -> dict[str, str]:
    return {leases.HOST: "elsewhere.example", leases.PID: "4242", leases.HEARTBEAT: f"{time.time() - heartbeat_age_s}",
            leases.LEASE: "30"}


def leases_of(store: Store, experiment_id: str) -> dict[str, object]:
    return {r.info.run_id: r for r in store.search(leases.ledger(store), f"tags.`{leases.EXPERIMENT}` = '{experiment_id}'")}


# ----------------------------------------------------------------------------------------------- claims

def test_concurrent_claims_on_one_configuration_have_exactly_one_winner(store):
    """Eight claimants at once (a barrier releases them together): one trains, the others lose and leave only
    KILLED leases that say who claimed it, no run in the results' experiment; a ninth, later, creates nothing.
    The winner's run has its settings as params and no claim, lease or owner among its params and tags."""
    experiment_id = store.experiment_id("concurrent-claims")
    barrier = threading.Barrier(8)
    results: list = []

    def claimant() -> None:
        barrier.wait()
        results.append(open_run(store, experiment_id, "run", claim_tags(), {"seed": 0, "lr": 0.1}, Claim()))

    threads = [threading.Thread(target=claimant) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    winners = [r for r in results if isinstance(r, RunLease)]
    losers = [r for r in results if isinstance(r, Lost)]
    assert len(results) == 8 and len(winners) == 1, results
    (winner,) = winners
    (run,) = store.search(experiment_id)
    assert run.info.run_id == winner.run_id and run.info.status == "RUNNING"
    assert run.data.params == {"seed": "0", "lr": "0.1"}
    assert not (OWNER | {leases.RUN, CLAIM_PARAM}) & set(run.data.tags)
    ledger = leases_of(store, experiment_id)
    assert ledger[winner.lease_id].data.params[CLAIM_PARAM] == winner.lease_id
    assert ledger[winner.lease_id].data.tags[leases.PID] == str(os.getpid())
    for lost in losers:
        assert lost.status == "claimed" and lost.holder in ledger and lost.holder != winner.run_id
    lost_leases = [r for r in ledger.values() if r.info.run_id != winner.lease_id]
    assert len(lost_leases) <= len(losers)  # those that lost in the race itself, after taking a lease
    for lease in lost_leases:
        assert lease.info.status == "KILLED" and leases.RUN not in lease.data.tags
        assert lease.data.tags["bench.reason"].startswith("claimed by lease ")

    later = open_run(store, experiment_id, "run", claim_tags(), {"seed": 0}, Claim())
    assert isinstance(later, Lost) and later.holder == winner.lease_id
    assert len(store.search(experiment_id)) == 1 and len(leases_of(store, experiment_id)) == len(ledger)
    assert winner.end("FINISHED", {"bench.outcome": "finished"}) is None
    lease = store.get_run(winner.lease_id)
    assert lease.info.status == "FINISHED" and lease.data.tags[leases.RUN] == winner.run_id
    done = open_run(store, experiment_id, "run", claim_tags(), {"seed": 0}, Claim())
    assert isinstance(done, Lost) and done.status == "elsewhere" and done.holder == winner.run_id
    # --force: a run finished before this suite started does not count as done.
    forced = open_run(store, experiment_id, "run", claim_tags(), {"seed": 0}, Claim(int(time.time() * 1000) + 1000))
    assert isinstance(forced, RunLease)
    forced.end("FINISHED")


def test_a_register_is_write_once(store):
    experiment_id = store.experiment_id("registers")
    register = store.create_run(experiment_id, "register", {})
    assert store.set_once(register, CLAIM_PARAM, "me") == "me"
    assert store.set_once(register, CLAIM_PARAM, "other") == "me"
    assert store.set_once(register, CLAIM_PARAM, "me") == "me"
    assert store.get_run(register).data.params == {CLAIM_PARAM: "me"}


def test_dead_claims_do_not_count_and_live_ones_do(store):
    experiment_id = store.experiment_id("dead-claims")
    here = socket.gethostname()
    planted_lease(store, experiment_id, {leases.HOST: here, leases.PID: str(dead_pid()),
                                         leases.HEARTBEAT: f"{time.time()}"})  # process gone
    planted_lease(store, experiment_id, other_host(heartbeat_age_s=120))  # lease ran out
    planted_run(store, experiment_id, claim_tags(), status="FAILED")
    planted_run(store, experiment_id, claim_tags(), status="KILLED")
    won = open_run(store, experiment_id, "run", claim_tags(), {}, Claim())
    assert isinstance(won, RunLease)
    won.end("FAILED")

    live = planted_lease(store, experiment_id, other_host(heartbeat_age_s=2), h="beef")
    lost = open_run(store, experiment_id, "run", claim_tags("beef"), {}, Claim())
    assert isinstance(lost, Lost) and lost.status == "claimed" and lost.holder == live
    other_experiment = store.experiment_id("dead-claims-elsewhere")  # a lease counts in its own experiment only
    elsewhere = open_run(store, other_experiment, "run", claim_tags("beef"), {}, Claim())
    assert isinstance(elsewhere, RunLease)
    elsewhere.end("FINISHED")


# ----------------------------------------------------------------------------------------------- leases

def test_reap_marks_dead_runs_and_parents_and_leaves_the_living(store):
    experiment_id = store.experiment_id("reap")
    here = socket.gethostname()
    me = {leases.HOST: here, leases.PID: str(os.getpid()), leases.HEARTBEAT: f"{time.time()}",
          leases.PID_START: leases.process_start(os.getpid()) or ""}

    def leased(tags: dict[str, str], owner: dict[str, str], status: str = "RUNNING") -> str:
        run_id = planted_run(store, experiment_id, tags, status)
        planted_lease(store, experiment_id, owner, run_id)
        return run_id

    gone = leased(claim_tags(), {**me, leases.PID: str(dead_pid())})
    reused = leased(claim_tags(), {**me, leases.PID_START: "1"})  # pid reused since
    silent_parent = leased({"bench.role": "suite"}, other_host(heartbeat_age_s=100))
    alive = leased(claim_tags(), me)
    far_alive = leased({"bench.role": "suite"}, other_host(heartbeat_age_s=3))
    finished = leased(claim_tags(), {**me, leases.PID: str(dead_pid())}, "FINISHED")
    unnamed = planted_lease(store, experiment_id, {**me, leases.PID: str(dead_pid())}, h="claiming")  # no run yet
    orphan = planted_run(store, experiment_id, claim_tags(), age_s=60)  # its lease is gone, ended or never made
    young = planted_run(store, experiment_id, claim_tags())  # its lease names it in a moment
    # Killed between creating its run and naming it on its lease: judged by that lease, young as the run is.
    half_open = planted_run(store, experiment_id, claim_tags("half-open"), age_s=1)
    half_open_lease = planted_lease(store, experiment_id, {**me, leases.PID: str(dead_pid())}, h="half-open")
    opening = planted_run(store, experiment_id, claim_tags("opening"), age_s=60)  # named on its lease right now
    planted_lease(store, experiment_id, me, h="opening")
    written_before = planted_run(store, experiment_id, {**claim_tags(), **me, leases.PID: str(dead_pid())})
    foreign = planted_run(store, experiment_id, {leases.HOST: here, leases.PID: str(dead_pid())}, age_s=60)

    reaped = dict(reap(store, experiment_id))
    assert set(reaped) == {gone, reused, silent_parent, unnamed, orphan, written_before, half_open}, reaped
    runs = {r.info.run_id: r for r in store.search(experiment_id)}
    for run_id in (gone, reused, written_before):
        assert runs[run_id].info.status == "FAILED" and runs[run_id].data.tags["bench.outcome"] == "failed"
        assert "is gone" in runs[run_id].data.tags["bench.reason"]
    assert "no live lease names it" in runs[orphan].data.tags["bench.reason"]
    assert runs[half_open].info.status == "FAILED" and "is gone" in runs[half_open].data.tags["bench.reason"]
    assert runs[silent_parent].info.status == "KILLED"
    assert runs[silent_parent].data.tags["bench.reason"].startswith("suite runner died: no heartbeat")
    for run_id in (alive, far_alive, foreign, young, opening):
        assert runs[run_id].info.status == "RUNNING"
    assert runs[finished].info.status == "FINISHED"
    ledger = {r.data.tags.get(leases.RUN) or r.info.run_id: r for r in leases_of(store, experiment_id).values()}
    for run_id in (gone, reused, silent_parent, finished, unnamed, half_open_lease):
        assert ledger[run_id].info.status == "FAILED" and "process died" in ledger[run_id].data.tags["bench.reason"]
    assert ledger[alive].info.status == ledger[far_alive].info.status == "RUNNING"


def test_lease_beats_and_ends_once_never_raising(store, monkeypatch):
    monkeypatch.setattr(leases, "HEARTBEAT_S", 0.2)
    experiment_id = store.experiment_id("heartbeat")
    lease = RunLease.start(store, experiment_id, "run", claim_tags(), {"seed": 1})
    first = float(store.get_run(lease.lease_id).data.tags[leases.HEARTBEAT])
    deadline = time.monotonic() + 30
    while float(store.get_run(lease.lease_id).data.tags[leases.HEARTBEAT]) == first:
        assert time.monotonic() < deadline, "no heartbeat"
        time.sleep(0.1)
    assert lease.end("FINISHED", {"bench.outcome": "finished"}) is None
    assert lease.end("FAILED") is None  # once only
    run, owner = store.get_run(lease.run_id), store.get_run(lease.lease_id)
    assert run.info.status == owner.info.status == "FINISHED"
    assert run.data.params == {"seed": "1"} and not OWNER & set(run.data.tags)
    assert owner.data.tags[leases.PID] == str(os.getpid()) and owner.data.tags[leases.HOST] == socket.gethostname()
    assert owner.data.tags[leases.RUN] == lease.run_id and owner.info.experiment_id == leases.ledger(store)

    reaped = RunLease.start(store, experiment_id, "run", claim_tags(), {})
    store.end(reaped.run_id, "FAILED", {"bench.reason": "reaped"})  # another process judged it dead meanwhile
    assert "marked FAILED" in reaped.end("FINISHED")
    assert store.get_run(reaped.run_id).info.status == "FAILED"  # its verdict stands, and its lease ends with it
    assert store.get_run(reaped.lease_id).info.status == "FAILED"


def test_a_claimant_whose_lease_was_reaped_while_it_decided_does_not_win(store, monkeypatch):
    """The store stalls past the lease while a claimant decides, and another runner's reap ends its lease: later
    claimants no longer ask that lease's register, so the claimant must not win on it."""
    experiment_id = store.experiment_id("lapsed")
    take = RunLease.take

    def taken_then_reaped(*args, **kwargs) -> RunLease:
        lease = take(*args, **kwargs)
        store.end(lease.lease_id, "FAILED", {"bench.reason": "process died: no heartbeat"})  # the other's reap
        return lease

    monkeypatch.setattr(RunLease, "take", staticmethod(taken_then_reaped))
    lost = open_run(store, experiment_id, "run", claim_tags(), {"seed": 0}, Claim())
    assert isinstance(lost, Lost) and lost.status == "claimed" and lost.lapsed
    assert "ran out while it claimed" in lost.reason
    assert store.search(experiment_id) == [] and store.get_run(lost.holder).info.status == "FAILED"


def test_a_run_of_a_dead_runner_ends_killed_never_finished(store):
    experiment_id = store.experiment_id("orphan")
    lifeline, runner_end = multiprocessing.Pipe(duplex=False)
    runner_end.close()  # the runner is gone: its end of the pipe closed
    orphan = Watchdog(dead_pid(), lifeline)  # never started: only asked whether the runner lives
    lease = RunLease.start(store, experiment_id, "run", claim_tags(), {}, watchdog=orphan)
    assert orphan.lease is lease
    problem = lease.end("FINISHED", {"bench.outcome": "finished"})
    assert problem and "runner" in problem and "died" in problem
    run, owner = store.get_run(lease.run_id), store.get_run(lease.lease_id)
    assert run.info.status == owner.info.status == "KILLED" and run.data.tags["bench.outcome"] == "killed"
    assert owner.data.tags["bench.reason"] == problem
    assert orphan.lease is None


# ----------------------------------------------------------------------------------------------- store errors

def test_corrupt_store_is_one_store_error(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"not a database" + bytes(range(256)) * 20)
    with pytest.raises(StoreError) as failed:
        Store(sqlite_uri(db)).experiment_id("x")
    assert str(failed.value) == f"store {sqlite_uri(db)}: corrupt or not an MLflow database (file is not a database)"
    assert not failed.value.partial


def test_store_error_survives_a_process_boundary():
    import pickle

    error = pickle.loads(pickle.dumps(StoreError("sqlite:////x.db", "disk full", partial=True)))
    assert (str(error), error.partial) == ("store sqlite:////x.db: disk full", True)


@pytest.mark.slow
def test_concurrent_first_use_of_a_fresh_store(tmp_path):
    """Four processes open one fresh SQLite store at once and each creates a run: none crashes (without the
    lock, MLflow's table creation races: ``table alembic_version already exists``)."""
    uri = sqlite_uri(tmp_path / "fresh.db")
    code = ("import sys; from bench.running.store import Store; s = Store(sys.argv[1]); "
            "s.create_run(s.experiment_id('x'), 'r', {})")
    procs = [subprocess.Popen([sys.executable, "-c", code, uri], cwd=REPO, env=child_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-2000:] for _, err in outs]
    store = Store(uri)
    assert len(store.search(store.experiment_id("x"))) == 4


# --- the command line against failing stores ----------------------------------------------------------------

TWO_RUNS = {**TINY_SUITE, "axes": {"cell": ["gru"], "truncation": [5], "seed": [0, 1]}}


def drop_file_permission_override() -> None:
    """preexec_fn: as root, drop the capabilities that ignore file modes, so a read-only store is one for this child
    as for anyone else (the bounding set limits what root gets at exec)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def bench(args: list[str], results: Path, preexec_fn=None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**child_env(), "RNN_BENCH_RESULTS": str(results)}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec_fn)


def assert_one_store_error(proc: subprocess.CompletedProcess, uri: str, *causes: str) -> str:
    """Exactly one ``error: store <uri>: <cause>`` line, no traceback; returns the line."""
    assert "Traceback" not in proc.stderr, describe(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, describe(proc)
    assert errors[0].startswith(f"error: store {uri}: ") or errors[0].startswith(f"error: tracking_uri: {uri!r}"), \
        errors[0]
    assert any(cause in errors[0] for cause in causes), errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def done_store(tmp_path_factory):
    """A store holding a two-run suite, run to the end; copied by the tests that break it."""
    root = tmp_path_factory.mktemp("done")
    suite = write_suite(root / "two.yaml", TWO_RUNS)
    uri = sqlite_uri(root / "store" / "mlflow.db")
    (root / "store").mkdir()
    proc = bench(["run", "--suite", str(suite), "--tracking-uri", uri, "--no-progress", "--workers", "1"],
                 root / "results")
    assert proc.returncode == 0, describe(proc)
    return suite, root / "store"


def copy_store(source: Path, target: Path) -> str:
    import shutil

    shutil.copytree(source, target)
    return sqlite_uri(target / "mlflow.db")


@pytest.mark.slow
def test_corrupt_store_run_and_compile_say_so_in_one_line(done_store, tmp_path):
    suite, source = done_store
    uri = copy_store(source, tmp_path / "store")
    (tmp_path / "store" / "mlflow.db").write_bytes(b"\x00garbage" * 4096)
    for command in (["run", "--workers", "1", "--no-progress"], ["compile"]):
        proc = bench([*command, "--suite", str(suite), "--tracking-uri", uri], tmp_path / "results")
        assert proc.returncode == 2, describe(proc)
        assert_one_store_error(proc, uri, "corrupt")


@pytest.mark.slow
@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_store_run_and_compile_say_so_in_one_line(done_store, tmp_path, what):
    """A read-only database file (its folder writable) or a read-only store folder: one line, exit 2, and the
    store unchanged. As root, the children run without the capabilities that ignore file modes."""
    suite, source = done_store
    uri = copy_store(source, tmp_path / "store")
    db = tmp_path / "store" / "mlflow.db"
    before = db.read_bytes()
    paths = [db] if what == "file" else [p for p in (tmp_path / "store").rglob("*")] + [tmp_path / "store"]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(modes[p] & 0o555)
    try:
        results = tmp_path / "results"
        run = bench(["run", "--suite", str(suite), "--tracking-uri", uri, "--no-progress", "--workers", "1",
                     "--force"], results, drop_file_permission_override)
        compiled = bench(["compile", "--suite", str(suite), "--tracking-uri", uri], results,
                         drop_file_permission_override)
    finally:
        for p in paths:
            p.chmod(modes[p])
    assert run.returncode == 2, describe(run)
    assert_one_store_error(run, uri, "read-only", "not writable")
    if what == "folder":
        assert compiled.returncode == 2, describe(compiled)
        assert_one_store_error(compiled, uri, "not writable")
    else:  # compiling reads the database and writes only artifact files beside it
        assert compiled.returncode == 0, describe(compiled)
    assert db.read_bytes() == before


@pytest.mark.slow
def test_locked_store_says_so_in_one_line(done_store, tmp_path):
    """Another process holds the database's write lock for longer than SQLite waits: one line, exit 2."""
    suite, source = done_store
    uri = copy_store(source, tmp_path / "store")
    with sqlite3.connect(tmp_path / "store" / "mlflow.db") as con:
        stored = con.execute("select count(*) from runs").fetchone()[0]
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
                               "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(120)",
                               str(tmp_path / "store" / "mlflow.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = bench(["run", "--suite", str(suite), "--tracking-uri", uri, "--no-progress", "--workers", "1",
                      "--force"], tmp_path / "results")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, describe(proc)
    assert_one_store_error(proc, uri, "locked")
    with sqlite3.connect(tmp_path / "store" / "mlflow.db") as con:  # untouched by the failed attempt
        assert con.execute("select count(*) from runs").fetchone()[0] == stored == 6  # 2 runs, a parent, 3 leases


def file_size_limit(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.fixture(params=["file-size-limit", "tmpfs"])
def full_disk(request, tmp_path):
    """(store folder, preexec_fn, kind, make_room): a fresh store whose disk fills up under a suite.

    ``file-size-limit`` (any user): the children may not grow a file past the fresh database's size (RLIMIT_FSIZE);
    ``tmpfs`` (root only): the store on a 2 MiB tmpfs, filled but for 64 KiB with a ballast file. ``make_room()``
    removes the ballast."""
    folder = tmp_path / "store"
    folder.mkdir()
    if request.param == "tmpfs":
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                                               capture_output=True).returncode != 0:
            pytest.skip("a tmpfs needs root and mount")
        request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(folder)], check=False))
    uri = sqlite_uri(folder / "mlflow.db")
    Store(uri).experiment_id("rnn-bench")  # the tables: a fresh store's own size
    ballast = folder / "ballast"
    if request.param == "tmpfs":
        ballast.write_bytes(bytes(os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize - 65536))
        return folder, None, request.param, ballast.unlink
    return folder, file_size_limit((folder / "mlflow.db").stat().st_size), request.param, lambda: None


@pytest.mark.slow
def test_full_disk_stops_the_suite_with_one_line_and_a_rerun_completes_it(full_disk, tmp_path):
    """The disk fills up under a suite: one line naming the store and the cause, exit 1 (2 if nothing ran yet),
    no worker dies of it and nothing is left RUNNING once the rerun has reaped; compile reports it the same way;
    with space again, a rerun finishes every configuration exactly once."""
    folder, preexec, kind, make_room = full_disk
    uri = sqlite_uri(folder / "mlflow.db")
    suite = write_suite(tmp_path / "four.yaml", {**TINY_SUITE, "axes": {"cell": ["gru", "lstm"], "truncation": [5],
                                                                        "seed": [0, 1]}})
    results = tmp_path / "results"
    full = bench(["run", "--suite", str(suite), "--tracking-uri", uri, "--no-progress", "--workers", "1"], results,
                 preexec)
    assert full.returncode in (1, 2), describe(full)
    line = assert_one_store_error(full, uri, "disk full", "disk I/O error")
    assert "worker died" not in full.stdout + full.stderr
    running_after_full = sum(r.info.status == "RUNNING" for r in children(uri) + parents(uri))
    # --partial: the suite is incomplete, which compile otherwise refuses before it writes anything.
    compiled = bench(["compile", "--suite", str(suite), "--tracking-uri", uri, "--partial"], results, preexec)
    if compiled.returncode:  # compile may find room for what it writes; if not, it says so the same way
        assert_one_store_error(compiled, uri, "disk full", "disk I/O error", "File too large")
    make_room()
    # The pages away from the small disk: plotly.min.js alone (~4.8 MB, beside explore.html) outgrows the 2 MiB tmpfs.
    rerun = bench(["run", "--suite", str(suite), "--tracking-uri", uri, "--no-progress", "--workers", "1",
                   "--out", str(tmp_path / "pages")], results)
    assert rerun.returncode == 0, describe(rerun)
    done = finished_by_hash(uri)
    assert sorted(done) == sorted(load_suite(str(suite)).hashes())
    assert all(len(runs) == 1 for runs in done.values())
    left = [r for r in children(uri) + parents(uri) if r.info.status == "RUNNING"]
    assert not left
    print(f"\n[full disk, {kind}] full: exit {full.returncode}, {line!r}, {running_after_full} runs RUNNING; "
          f"compile: exit {compiled.returncode}; rerun with room: 4 configurations, {len(done)} finished once, "
          f"{sum(len(r) - 1 for r in done.values())} duplicates, {len(left)} left RUNNING")


def test_runs_on_one_data_set_log_it_at_once_without_colliding(store):
    """Eight runs on the same data (a barrier releases them together) each record it as their dataset input: the
    data set's row is created once, and no run's logging fails on its unique key."""
    experiment_id = store.experiment_id("one-data-set")
    barrier = threading.Barrier(8)
    problems: list = []

    def run_on_it() -> None:
        run_id = store.create_run(experiment_id, None, {})
        barrier.wait()
        try:
            store.log_input(run_id, "dependency·seed=0", "f8d16ebc", {"task": "dependency"}, {"seed": 0}, "training")
        except StoreError as e:
            problems.append(e)

    threads = [threading.Thread(target=run_on_it) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not problems, problems
    runs = store.search(experiment_id)
    assert len(runs) == 8
    assert all([i.dataset.digest for i in r.inputs.dataset_inputs] == ["f8d16ebc"] for r in runs)
