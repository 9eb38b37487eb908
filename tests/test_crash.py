"""Crashes and concurrent runners, with real processes, real SIGKILL and real SQLite stores (all slow).

- The whole suite killed (runner and workers): the rerun marks what the kill left RUNNING, does only what is
  missing, and leaves every configuration FINISHED exactly once and nothing RUNNING.
- Only the runner killed (as the OOM killer would): its workers stop within seconds and mark their runs KILLED,
  never FINISHED; a rerun started at once trains nothing twice.
- Three runners on one fresh store at once: none crashes, each configuration is trained exactly once.

Each test prints its figures (``pytest -s`` shows them).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.config.suite import load_suite
from suite_procs import (REPO, TINY_FIXED, TINY_SUITE, bench_args, bench_run, child_env, children, describe,
                         finished_by_hash, kill_group, parents, pid_gone, poll, sqlite_uri, summary_count, write_suite)

pytestmark = pytest.mark.slow


def start(suite: Path, uri: str, *extra: str) -> subprocess.Popen:
    """A ``bench run`` in its own process group (so that the group can be killed), output captured."""
    return subprocess.Popen(bench_args(suite, uri, *extra), cwd=REPO, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 400) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        pytest.fail(f"bench run did not finish within {timeout} s")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def store_figures(uri: str, expected: set[str]) -> dict[str, int]:
    """configurations, finished once, duplicates (FINISHED runs beyond one per configuration), left RUNNING."""
    done = finished_by_hash(uri)
    return {"configurations": len(expected), "finished once": sum(len(done.get(h, [])) == 1 for h in expected),
            "duplicates": sum(max(0, len(runs) - 1) for runs in done.values()),
            "left RUNNING": sum(r.info.status == "RUNNING" for r in children(uri) + parents(uri))}


def assert_complete(uri: str, expected: set[str]) -> dict[str, int]:
    figures = store_figures(uri, expected)
    assert figures == {"configurations": len(expected), "finished once": len(expected), "duplicates": 0,
                       "left RUNNING": 0}, figures
    assert set(finished_by_hash(uri)) == expected
    return figures


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite") / "tiny.yaml", TINY_SUITE)


def test_resume_after_killing_runner_and_workers(tiny_suite, tmp_path, capsys):
    """SIGKILL the runner and its workers mid-suite; the rerun marks the runs the kill left RUNNING FAILED and the
    killed parent KILLED, each with the reason, and does only what is missing: exactly one FINISHED run per matrix
    cell, none lost, none duplicated, nothing RUNNING; a third run adds no child run at all."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    expected = set(load_suite(str(tiny_suite)).hashes())

    first = start(tiny_suite, uri, "--workers", "2")
    try:
        poll(lambda: len(finished_by_hash(uri)) >= 2, 240, "two finished runs", first)
    finally:
        kill_group(first)
    assert first.returncode == -signal.SIGKILL
    worker_pids = {int(r.data.tags["bench.worker_pid"]) for r in children(uri)}
    poll(lambda: all(pid_gone(p) for p in worker_pids), 30, "the killed workers to be gone")

    done_before = finished_by_hash(uri)
    assert 2 <= len(done_before) < len(expected), "the suite finished before the kill: nothing to resume"
    assert all(len(runs) == 1 for runs in done_before.values())
    left_running = {r.info.run_id for r in children(uri) if r.info.status == "RUNNING"}  # killed mid-run
    (killed_parent,) = parents(uri)
    assert killed_parent.info.status == "RUNNING"
    after_kill = store_figures(uri, expected)

    second = bench_run(tiny_suite, uri, "--workers", "1")
    assert second.returncode == 0, describe(second)
    assert summary_count(second.stdout, "skipped") == len(done_before)
    assert summary_count(second.stdout, "finished") == len(expected) - len(done_before)
    for run in children(uri):
        if run.info.run_id in left_running:  # marked by the rerun, with the reason, and never counted as done
            assert run.info.status == "FAILED", run.info
            assert run.data.tags["bench.reason"].startswith("process died: its process") and "is gone" in \
                run.data.tags["bench.reason"]
            assert run.data.tags["mlflow.parentRunId"] == killed_parent.info.run_id
    parent = next(p for p in parents(uri) if p.info.run_id == killed_parent.info.run_id)
    assert parent.info.status == "KILLED" and parent.data.tags["bench.reason"].startswith("suite runner died")
    assert f"marked run {killed_parent.info.run_id} as ended" in second.stdout

    second_parent = parents(uri)[-1]
    assert second_parent.data.metrics["runs_skipped"] == len(done_before)
    rerun = [r for r in children(uri) if r.data.tags["mlflow.parentRunId"] == second_parent.info.run_id]
    assert sorted(r.data.tags["bench.config_hash"] for r in rerun) == sorted(expected - set(done_before))
    final = finished_by_hash(uri)
    for h, (run,) in final.items():
        if h in done_before:
            assert run.info.run_id == done_before[h][0].info.run_id  # kept, not redone
    figures = assert_complete(uri, expected)

    before = {r.info.run_id for r in children(uri)}
    third = bench_run(tiny_suite, uri, "--workers", "1")
    assert third.returncode == 0, describe(third)
    assert {r.info.run_id for r in children(uri)} == before
    assert summary_count(third.stdout, "skipped") == len(expected)
    assert summary_count(third.stdout, "finished") == 0
    assert parents(uri)[-1].info.status == "FINISHED"
    with capsys.disabled():
        print(f"\n[crash: whole suite SIGKILLed] after the kill: {after_kill}; after the rerun: {figures}")


# Two long runs (4,000 optimizer steps) first, so both workers are on one when the runner is killed, then two short.
LONG_SUITE = {
    "axes": {"seed": [8, 9, 0, 1], "series_length": [400_000, 20_000]},
    "fixed": {k: v for k, v in TINY_FIXED.items() if k != "series_length"} | {"cell": "gru", "truncation": 5},
    "exclude": [{"seed": [8, 9], "series_length": 20_000}, {"seed": [0, 1], "series_length": 400_000}],
}


def test_killing_only_the_runner_stops_its_workers(tmp_path, capsys):
    """SIGKILL the runner alone, mid-run: its two workers exit within seconds, each marking its run KILLED (never
    FINISHED); a rerun started at once trains every configuration exactly once and leaves nothing RUNNING."""
    suite = write_suite(tmp_path / "long.yaml", LONG_SUITE)
    expected = set(load_suite(str(suite)).hashes())
    assert len(expected) == 4
    uri = sqlite_uri(tmp_path / "mlflow.db")

    def both_running() -> list | None:
        runs = [r for r in children(uri) if r.info.status == "RUNNING"]
        return runs if len(runs) == 2 else None

    first = start(suite, uri, "--workers", "2")
    try:
        running = poll(both_running, 240, "both workers on a run", first)
        worker_pids = {int(r.data.tags["bench.worker_pid"]) for r in running}
        assert first.pid not in worker_pids and len(worker_pids) == 2
        first.send_signal(signal.SIGKILL)  # the runner only, not its process group
        killed_at = time.monotonic()
        rerun = start(suite, uri, "--workers", "1")  # at once, while the orphans may still run
        exit_s = {}
        deadline = killed_at + 30
        while len(exit_s) < 2 and time.monotonic() < deadline:
            for pid in worker_pids - set(exit_s):
                if pid_gone(pid):
                    exit_s[pid] = time.monotonic() - killed_at
            time.sleep(0.05)
    finally:
        kill_group(first)  # whatever is left of the first suite
    assert first.returncode == -signal.SIGKILL
    assert len(exit_s) == 2, f"workers still alive 30 s after their runner died: {worker_pids - set(exit_s)}"
    assert max(exit_s.values()) < 5, exit_s

    second = finish(rerun)
    assert second.returncode == 0, describe(second)
    orphans = {r.info.run_id: r for r in children(uri) if int(r.data.tags["bench.worker_pid"]) in worker_pids}
    assert set(orphans) == {r.info.run_id for r in running}  # no run started after the runner died
    for run in orphans.values():
        assert run.info.status == "KILLED", run.info
        assert run.data.tags["bench.outcome"] == "killed" and "runner" in run.data.tags["bench.reason"]
    (killed_parent, rerun_parent) = parents(uri)
    assert killed_parent.info.status == "KILLED" and "suite runner died" in killed_parent.data.tags["bench.reason"]
    assert rerun_parent.info.status == "FINISHED"
    figures = assert_complete(uri, expected)
    with capsys.disabled():
        print(f"\n[crash: runner alone SIGKILLed] workers exited {sorted(round(s, 2) for s in exit_s.values())} s "
              f"after it; their runs: {sorted(r.info.status for r in orphans.values())}; after the rerun: {figures}")


def test_three_runners_on_one_fresh_store_train_each_configuration_once(tiny_suite, tmp_path, capsys):
    """Three ``bench run`` of one suite at once on a store that does not exist yet: none crashes (creating the
    tables is serialized), and the claims make every configuration train exactly once: the three together do one
    suite's work, the runs one runner lost finish under another."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    expected = set(load_suite(str(tiny_suite)).hashes())
    began = time.monotonic()
    procs = [start(tiny_suite, uri, "--workers", "1") for _ in range(3)]
    done = [finish(p) for p in procs]
    wall = time.monotonic() - began
    for proc in done:
        assert proc.returncode == 0, describe(proc)
        assert "Traceback" not in proc.stderr, describe(proc)
    figures = assert_complete(uri, expected)
    trained = [summary_count(p.stdout, "finished") for p in done]
    elsewhere = [summary_count(p.stdout, "done by another runner") for p in done]
    skipped = [summary_count(p.stdout, "skipped") for p in done]
    assert sum(trained) == len(expected)  # one suite's work, split among the three
    assert all(t + e + s == len(expected) for t, e, s in zip(trained, elsewhere, skipped))
    lost = [r for r in children(uri) if r.info.status == "KILLED"]
    assert all(r.data.tags["bench.reason"].startswith(("claimed by run ", "finished by run ")) for r in lost)
    assert len(children(uri)) == len(expected) + len(lost)  # nothing else: no failed, no duplicate attempt
    assert [p.info.status for p in parents(uri)] == ["FINISHED"] * 3
    with capsys.disabled():
        print(f"\n[three runners, fresh store] {figures}; trained per runner {trained}, done by another runner "
              f"{elsewhere}, skipped {skipped}; claims lost in a race {len(lost)}; wall {wall:.0f} s")
