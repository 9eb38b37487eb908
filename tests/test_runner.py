"""The suite runner end to end: real ``python -m bench run`` processes, real workers, a real SQLite store.

Each suite here is a handful of dependency-task runs of a few hundred optimizer steps (about a second each),
so the whole file takes about a minute and a half on the 2-core CI machine. Waiting on the store is always
a poll with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from bench.config import config_hash, run_name
from bench.suite import load_suite

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "rnn-bench"

# 2 cells x 2 truncations x 2 seeds = 8 runs of 200 (T5) or 100 (T10) optimizer steps each.
TINY_FIXED = dict(task="dependency", hidden=4, series_length=20_000, eval_length=4_000, batch_size=20,
                  steps_per_batch=10, log_every=10)
TINY_SUITE = {
    "description": "test: tiny dependency matrix",
    "axes": {"cell": ["lstm", "gru"], "truncation": [5, 10], "seed": [0, 1]},
    "fixed": TINY_FIXED,
}
# Metrics that measure the machine, not the run (fit_time_s, train/steps_per_s, peak_memory_mb, ...):
# everything else must be bit-identical between processes.
TIMING = re.compile(r".*(_s|_per_s|_mb)$")


# ----------------------------------------------------------------------------------------------- helpers

def write_suite(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sqlite_uri(db: Path) -> str:
    return f"sqlite:///{db.resolve()}"  # absolute path: four slashes


def bench_args(suite: Path, uri: str, *extra: str) -> list[str]:
    """``python -m bench run ...``; with ``--workers 1`` pinned to one core.

    The runner gives each worker ``cores // workers`` torch threads. A lone worker's two threads on a 2-core
    machine that other processes share spin against them and turn a 0.5 s run into 15 s; on one core it
    gets one thread, like each of two workers does, and stays fast.
    """
    args = ["-m", "bench", "run", "--suite", str(suite), "--tracking-uri", uri, "--no-progress", *extra]
    if "1" in [b for a, b in zip(extra, extra[1:]) if a == "--workers"] and hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        launcher = f"import os, sys; os.sched_setaffinity(0, {{{cpu}}}); os.execv(sys.executable, sys.argv[1:])"
        return [sys.executable, "-c", launcher, sys.executable, *args]
    return [sys.executable, *args]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def bench_run(suite: Path, uri: str, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a suite to completion; on a timeout kill the runner and its workers (one process group)."""
    proc = subprocess.Popen(bench_args(suite, uri, *extra), cwd=REPO, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"bench run did not finish within {timeout} s\nstdout:\n{out}\nstderr:\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr (tail):\n{proc.stderr[-3000:]}"


def experiment_exists(uri: str) -> bool:
    """Whether the runner has created the store's tables and the experiment, asked read-only.

    An MlflowClient on a missing or empty SQLite file creates the tables itself: while the runner is doing
    the same, one of the two crashes (REFERENCE.md, MLflow). So the tests open a client only after this.
    """
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
            return con.execute("SELECT 1 FROM experiments WHERE name = ?", (EXPERIMENT,)).fetchone() is not None
    except sqlite3.OperationalError:  # no such table yet, or locked
        return False


def all_runs(uri: str) -> list:
    """Every run of the experiment (empty while the store or experiment does not exist yet)."""
    from mlflow import MlflowClient

    if not experiment_exists(uri):
        return []
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def children(uri: str) -> list:
    return [r for r in all_runs(uri) if "bench.config_hash" in r.data.tags]


def parents(uri: str) -> list:
    """The suite (parent) runs, oldest first."""
    found = [r for r in all_runs(uri) if r.data.tags.get("bench.role") == "suite"]
    return sorted(found, key=lambda r: r.info.start_time)


def poll(probe, timeout: float, what: str, proc: subprocess.Popen | None = None, interval: float = 0.2):
    """Call ``probe()`` until it returns something truthy; fail after ``timeout`` s or if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as e:  # noqa: BLE001 - a read racing a writer's transaction: try again
            if "locked" not in str(e):
                raise
            value = None
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"bench run exited ({proc.returncode}) while waiting for {what}\n{out}\n{err[-3000:]}")
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the runner and every worker it started (they share its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=30)


def pid_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie no longer runs: it only waits to be reaped


def outcome_metrics(run) -> dict[str, float]:
    return {k: v for k, v in run.data.metrics.items() if not TIMING.fullmatch(k)}


def finished_by_hash(uri: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for run in children(uri):
        if run.info.status == "FINISHED":
            out.setdefault(run.data.tags["bench.config_hash"], []).append(run)
    return out


def summary_count(stdout: str, word: str) -> int:
    match = re.search(rf"(\d+) {word}", stdout)
    assert match, f"no '<n> {word}' in the summary:\n{stdout}"
    return int(match.group(1))


# ----------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite") / "tiny.yaml", TINY_SUITE)


@pytest.fixture(scope="module")
def reference(tiny_suite, tmp_path_factory):
    """The tiny suite run once, uninterrupted, by one worker: (uri, completed process)."""
    uri = sqlite_uri(tmp_path_factory.mktemp("reference") / "mlflow.db")
    proc = bench_run(tiny_suite, uri, "--workers", "1")
    assert proc.returncode == 0, describe(proc)
    return uri, proc


# ----------------------------------------------------------------------------------------------- tests

def test_suite_runs_every_configuration_under_one_parent(tiny_suite, reference):
    """One FINISHED child per matrix cell, named task/cell-Ln-dir-Tn-sn, each pointing at the suite's parent
    run (bench.role=suite), with its config hash, its worker's pid and the resolved config as params."""
    uri, proc = reference
    suite = load_suite(str(tiny_suite))
    assert len(suite.configs) == 8
    (parent,) = parents(uri)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["bench.suite"] == "tiny"
    assert parent.info.run_name == "suite/tiny"
    assert parent.data.params["runs"] == "8" and parent.data.params["workers"] == "1"
    assert parent.data.metrics["runs_finished"] == 8 and parent.data.metrics["runs_skipped"] == 0

    runs = children(uri)
    assert len(runs) == 8
    assert sorted(r.data.tags["bench.config_hash"] for r in runs) == sorted(suite.hashes())
    by_hash = {config_hash(c): c for c in suite.configs}
    names = set()
    for run in runs:
        cfg = by_hash[run.data.tags["bench.config_hash"]]
        assert run.info.status == "FINISHED"
        assert run.data.tags["bench.outcome"] == "finished"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["bench.worker_pid"].isdigit()
        assert int(run.data.tags["bench.worker_pid"]) != 0
        assert run.info.run_name == run_name(cfg)
        assert re.fullmatch(r"dependency/(lstm|gru)-L1-uni-T(5|10)-s[01]", run.info.run_name)
        assert run.data.params["truncation"] == str(cfg["truncation"]) and run.data.params["hidden"] == "4"
        assert math.isfinite(run.data.metrics["test/ce"])
        names.add(run.info.run_name)
    assert "dependency/lstm-L1-uni-T5-s0" in names and len(names) == 8
    # One worker trained them all: it is long-lived, not one process per run.
    assert len({r.data.tags["bench.worker_pid"] for r in runs}) == 1
    assert summary_count(proc.stdout, "finished") == 8


def test_two_workers_reproduce_one_worker_exactly(tiny_suite, reference, tmp_path):
    """Determinism across processes: the same runs spread over 2 workers give bit-identical results."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    proc = bench_run(tiny_suite, uri, "--workers", "2")
    assert proc.returncode == 0, describe(proc)
    assert parents(uri)[0].data.params["workers"] == "2"
    one, two = finished_by_hash(reference[0]), finished_by_hash(uri)
    assert set(one) == set(two) == set(load_suite(str(tiny_suite)).hashes())
    assert len({r.data.tags["bench.worker_pid"] for runs in two.values() for r in runs}) == 2

    from mlflow import MlflowClient

    c1, c2 = MlflowClient(reference[0]), MlflowClient(uri)
    for h in one:
        (a,), (b,) = one[h], two[h]
        assert outcome_metrics(a) == outcome_metrics(b), a.info.run_name
        assert "test/ce" in outcome_metrics(a)
        losses = [[(m.step, m.value) for m in c.get_metric_history(r.info.run_id, "train/loss")]
                  for c, r in ((c1, a), (c2, b))]
        assert losses[0] and losses[0] == losses[1], a.info.run_name


def test_resume_after_killing_runner_and_workers(tiny_suite, reference, tmp_path):
    """SIGKILL the runner and its workers mid-suite; the rerun does only what is missing: exactly one
    FINISHED run per matrix cell, none lost, none duplicated, results as if never interrupted; a third run
    adds no child run at all."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    suite = load_suite(str(tiny_suite))
    expected = set(suite.hashes())

    first = subprocess.Popen(bench_args(tiny_suite, uri, "--workers", "2"), cwd=REPO, env=child_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        poll(lambda: len(finished_by_hash(uri)) >= 2, 180, "two finished runs", first)
    finally:
        kill_group(first)
    assert first.returncode == -signal.SIGKILL
    worker_pids = {int(r.data.tags["bench.worker_pid"]) for r in children(uri)}
    poll(lambda: all(pid_gone(p) for p in worker_pids), 30, "the killed workers to be gone")

    done_before = finished_by_hash(uri)
    assert 2 <= len(done_before) < len(expected), "the suite finished before the kill: nothing to resume"
    assert all(len(runs) == 1 for runs in done_before.values())
    left_running = [r for r in children(uri) if r.info.status == "RUNNING"]  # killed mid-run: orphans

    second = bench_run(tiny_suite, uri, "--workers", "1")
    assert second.returncode == 0, describe(second)
    assert summary_count(second.stdout, "skipped") == len(done_before)
    assert summary_count(second.stdout, "finished") == len(expected) - len(done_before)
    second_parent = parents(uri)[-1]
    assert second_parent.data.metrics["runs_skipped"] == len(done_before)
    rerun = [r for r in children(uri) if r.data.tags["mlflow.parentRunId"] == second_parent.info.run_id]
    assert sorted(r.data.tags["bench.config_hash"] for r in rerun) == sorted(expected - set(done_before))

    final = finished_by_hash(uri)
    assert set(final) == expected  # none lost
    assert all(len(runs) == 1 for runs in final.values())  # none duplicated
    for h, (run,) in final.items():
        if h in done_before:
            assert run.info.run_id == done_before[h][0].info.run_id  # kept, not redone
    # Interrupted or not, every result is the one an uninterrupted suite gives.
    reference_runs = finished_by_hash(reference[0])
    for h, (run,) in final.items():
        assert outcome_metrics(run) == outcome_metrics(reference_runs[h][0]), run.info.run_name
    # What the kill left RUNNING stays an orphan of the first parent; it never counts as done.
    assert all(r.data.tags["mlflow.parentRunId"] == parents(uri)[0].info.run_id for r in left_running)

    before = {r.info.run_id for r in children(uri)}
    third = bench_run(tiny_suite, uri, "--workers", "1")
    assert third.returncode == 0, describe(third)
    assert {r.info.run_id for r in children(uri)} == before
    assert summary_count(third.stdout, "skipped") == len(expected)
    assert summary_count(third.stdout, "finished") == 0
    third_parent = parents(uri)[-1]
    assert third_parent.info.status == "FINISHED"
    assert third_parent.data.metrics["runs_skipped"] == len(expected)
    assert third_parent.data.metrics["runs_finished"] == 0


# A killed worker and a diverging run among healthy ones. seed 9 is the one long run (2,000,000 steps of
# series: 20,000 optimizer steps, half a minute if nobody killed it); rnn_relu at lr 1e6 goes NaN/inf within
# its first few steps (step 3 for seed 0 here), every time. Matrix order puts the long run first.
FAILURE_SUITE = {
    "axes": {"seed": [9, 0, 1], "cell": ["lstm", "rnn_relu"], "lr": [0.1, 1.0e6],
             "series_length": [2_000_000, 20_000]},
    "fixed": {k: v for k, v in TINY_FIXED.items() if k != "series_length"} | {"truncation": 5},
    "exclude": [
        {"cell": "lstm", "lr": 1.0e6},
        {"cell": "rnn_relu", "lr": 0.1},
        {"cell": "rnn_relu", "seed": [1, 9]},
        {"seed": 9, "series_length": 20_000},
        {"seed": [0, 1], "series_length": 2_000_000},
    ],
}


def test_failures_are_isolated(tmp_path):
    """Kill the worker of a run mid-run and plant a diverging run: a new worker takes over and the other runs
    finish, the killed one is FAILED (reason: the worker died), the diverged one is FINISHED as diverged with
    its step, the runner exits 1 and its summary lists both."""
    suite_file = write_suite(tmp_path / "failures.yaml", FAILURE_SUITE)
    suite = load_suite(str(suite_file))
    names = [run_name(c) for c in suite.configs]
    assert names == ["dependency/lstm-L1-uni-T5-s9", "dependency/lstm-L1-uni-T5-s0",
                     "dependency/rnn_relu-L1-uni-T5-s0", "dependency/lstm-L1-uni-T5-s1"]
    long_hash, diverging_hash = config_hash(suite.configs[0]), config_hash(suite.configs[2])
    uri = sqlite_uri(tmp_path / "mlflow.db")

    # One worker: it gets the long run first, so the three others can only finish on its replacement.
    proc = subprocess.Popen(bench_args(suite_file, uri, "--workers", "1"), cwd=REPO, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        def long_run_started():
            # RUNNING with its config logged: the worker has told the runner (or is about to) which run it is
            # on; from here to the end of the fit, a dead worker must leave this very run FAILED.
            return next((r for r in children(uri) if r.data.tags["bench.config_hash"] == long_hash
                         and r.info.status == "RUNNING" and r.data.params.get("seed") == "9"), None)

        victim = poll(long_run_started, 180, "the long run to start", proc)
        victim_pid = int(victim.data.tags["bench.worker_pid"])
        assert victim_pid not in (proc.pid, os.getpid())
        os.kill(victim_pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert proc.returncode == 1, describe(result)

    by_hash: dict[str, list] = {}
    for run in children(uri):
        by_hash.setdefault(run.data.tags["bench.config_hash"], []).append(run)
    assert set(by_hash) == set(suite.hashes())
    assert all(len(v) == 1 for v in by_hash.values()), "a run was recorded twice"

    (killed,) = by_hash[long_hash]
    assert killed.info.run_id == victim.info.run_id  # its own run is marked, no stand-in created
    assert killed.info.status == "FAILED"
    assert killed.data.tags["bench.outcome"] == "failed"
    assert "worker died" in killed.data.tags["bench.reason"]

    (diverged,) = by_hash[diverging_hash]
    assert diverged.info.status == "FINISHED"
    assert diverged.data.tags["bench.outcome"] == "diverged"
    assert re.search(r"\b(nan|inf)\b", diverged.data.tags["bench.reason"])
    step = diverged.data.metrics["diverged_step"]
    assert step == int(step) and 1 <= step <= 10, step

    replacement_pids = set()
    for h in set(suite.hashes()) - {long_hash, diverging_hash}:
        (run,) = by_hash[h]
        assert run.info.status == "FINISHED" and run.data.tags["bench.outcome"] == "finished"
        assert math.isfinite(run.data.metrics["test/ce"])
        replacement_pids.add(int(run.data.tags["bench.worker_pid"]))
    replacement_pids.add(int(diverged.data.tags["bench.worker_pid"]))
    assert len(replacement_pids) == 1 and victim_pid not in replacement_pids  # one new worker did the rest

    (parent,) = parents(uri)
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for rs in by_hash.values() for r in rs)
    assert parent.info.status == "FAILED"
    assert parent.data.metrics["runs_failed"] == 1 and parent.data.metrics["runs_diverged"] == 1
    assert parent.data.metrics["runs_finished"] == 2

    assert summary_count(out, "failed") == 1 and summary_count(out, "diverged") == 1
    lines = out.splitlines()
    assert any("failed" in l and names[0] in l and "worker died" in l for l in lines), out
    assert any("diverged" in l and names[2] in l and re.search(r"\b(nan|inf)\b", l) for l in lines), out


def test_axis_and_set_overrides_change_the_matrix(tiny_suite, reference, tmp_path):
    """``--set`` fixes a setting the file varies and ``--axis`` replaces an axis, on the command line: the runner
    expands exactly that matrix. Run against a copy of the reference store, whose runs it finds done: the
    command-line strings ("gru", "1") give the same config hashes as the file's values."""
    db = tmp_path / "mlflow.db"
    source = Path(reference[0].removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm", "-journal"):  # the database and whatever SQLite keeps beside it
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{db}{suffix}")
    uri = sqlite_uri(db)
    before = {r.info.run_id for r in children(uri)}
    proc = bench_run(tiny_suite, uri, "--workers", "1", "--set", "cell=gru", "--axis", "seed=1")
    assert proc.returncode == 0, describe(proc)
    expected = load_suite(str(tiny_suite), {"seed": ["1"]}, {"cell": "gru"})
    assert [run_name(c) for c in expected.configs] == ["dependency/gru-L1-uni-T5-s1", "dependency/gru-L1-uni-T10-s1"]
    assert set(expected.hashes()) <= set(finished_by_hash(uri))
    parent = parents(uri)[-1]
    assert parent.data.params["runs"] == "2"
    assert parent.data.metrics["runs_skipped"] == 2 and parent.data.metrics["runs_finished"] == 0
    assert summary_count(proc.stdout, "skipped") == 2
    assert {r.info.run_id for r in children(uri)} == before
