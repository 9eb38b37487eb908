"""Helpers of the tests that start real ``python -m bench run`` processes on real SQLite stores: launching and
killing suites, polling the store with a deadline (never a fixed sleep), reading runs back."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from bench.running.leases import LEDGER, PID, RUN
from bench.running.store import code_key

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
    """``python -m bench run ...`` in this interpreter."""
    return [sys.executable, "-m", "bench", "run", "--suite", str(suite), "--tracking-uri", uri, "--no-progress",
            *extra]


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

    An MlflowClient on a missing or empty SQLite file creates the tables itself, racing the runner doing the
    same (bench.running.store serializes only its own callers). So the tests open a client only after this.
    """
    db = Path(uri.removeprefix("sqlite:///"))
    if not db.is_file():
        return False
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
            return con.execute("SELECT 1 FROM experiments WHERE name = ?", (EXPERIMENT,)).fetchone() is not None
    except sqlite3.OperationalError:  # no such table yet, or locked
        return False


def all_runs(uri: str, experiment_name: str = EXPERIMENT) -> list:
    """Every run of the experiment (empty while the store or experiment does not exist yet)."""
    from mlflow import MlflowClient

    if not experiment_exists(uri):
        return []
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def worker_pids(uri: str) -> dict[str, int]:
    """The pid of the process that ran each run (run id -> pid), from the runs' leases in the ledger."""
    return {r.data.tags[RUN]: int(r.data.tags[PID]) for r in all_runs(uri, LEDGER) if RUN in r.data.tags}


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
    """A run's metrics that do not measure the machine, under the harness's names (``test/ce``; also
    for runs an earlier commit stored as ``test.ce``)."""
    return {code_key(k): v for k, v in run.data.metrics.items() if not TIMING.fullmatch(k)}


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
