"""Crashes and concurrent runners, with real processes, real SIGKILL and real SQLite stores (all slow).

- The whole suite killed (runner and workers): the rerun marks what the kill left RUNNING, does only what is
  missing, and leaves every configuration FINISHED exactly once and nothing RUNNING.
- Only the runner killed (as the OOM killer would): its workers stop within seconds and mark their runs KILLED,
  never FINISHED; a rerun started at once trains nothing twice.
- Three runners on one fresh store at once: none crashes, each configuration is trained exactly once.
- SIGTERM or SIGINT (once, or twice as an impatient Ctrl-C) to ``train`` or ``run``: exit 128 + the signal, one
  line, no traceback, the runs under way and the suite's parent KILLED with "interrupted by SIG…".
- A tracking server killed mid-suite, a store folder that cannot take artifacts, a stdout closed by its reader:
  one line with the cause (or none), the parent ended with it, and a rerun that resumes.

Each test prints its figures (``pytest -s`` shows them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.config.suite import load_suite
from mlflow_server import server_process, wait_healthy
from suite_procs import (REPO, TINY_FIXED, TINY_SUITE, bench_args, bench_run, child_env, children, describe,
                         finished_by_hash, kill_group, parents, pid_gone, poll, sqlite_uri, summary_count,
                         worker_pids, write_suite)

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
    pids = set(worker_pids(uri).values())
    poll(lambda: all(pid_gone(p) for p in pids), 30, "the killed workers to be gone")

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

    def both_running() -> tuple[list, dict] | None:  # and their leases name them
        runs, owners = [r for r in children(uri) if r.info.status == "RUNNING"], worker_pids(uri)
        return (runs, owners) if len(runs) == 2 and all(r.info.run_id in owners for r in runs) else None

    first = start(suite, uri, "--workers", "2")
    try:
        running, owners = poll(both_running, 240, "both workers on a run", first)
        pids = {owners[r.info.run_id] for r in running}
        assert first.pid not in pids and len(pids) == 2
        first.send_signal(signal.SIGKILL)  # the runner only, not its process group
        killed_at = time.monotonic()
        rerun = start(suite, uri, "--workers", "1")  # at once, while the orphans may still run
        exit_s = {}
        deadline = killed_at + 30
        while len(exit_s) < 2 and time.monotonic() < deadline:
            for pid in pids - set(exit_s):
                if pid_gone(pid):
                    exit_s[pid] = time.monotonic() - killed_at
            time.sleep(0.05)
    finally:
        kill_group(first)  # whatever is left of the first suite
    assert first.returncode == -signal.SIGKILL
    assert len(exit_s) == 2, f"workers still alive 30 s after their runner died: {pids - set(exit_s)}"
    assert max(exit_s.values()) < 5, exit_s

    second = finish(rerun)
    assert second.returncode == 0, describe(second)
    owners = worker_pids(uri)
    orphans = {r.info.run_id: r for r in children(uri) if owners[r.info.run_id] in pids}
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


# ------------------------------------------------------------------------------- signals: SIGINT and SIGTERM

# Long enough (400,000 steps of series) that a signal always lands mid-run.
LONG_TRAIN = ["--task", "dependency", "--hidden", "4", "--series-length", "400000", "--eval-length", "4000",
              "--batch-size", "20", "--steps-per-batch", "10", "--log-every", "10", "--max-steps", "100000", "--epochs", "1000",
              "--stop", "budget", "--no-progress"]


def stopped(proc: subprocess.Popen, uri: str, signum: int, runs: int, times: int = 1) -> subprocess.CompletedProcess:
    """Once ``runs`` runs are RUNNING, send ``signum`` ``times`` (SIGINT to the whole process group, as a terminal's
    Ctrl-C); the process must then exit 128 + ``signum`` within a minute with no traceback."""
    try:
        poll(lambda: len([r for r in children(uri) if r.info.status == "RUNNING"]) >= runs, 240, "runs to start",
             proc)
        time.sleep(1.0)  # inside Lightning's fit
        for _ in range(times):
            os.killpg(proc.pid, signum) if signum == signal.SIGINT else proc.send_signal(signum)
            time.sleep(0.3)
        done = finish(proc, timeout=90)
    finally:
        kill_group(proc)
    assert done.returncode == 128 + signum, describe(done)
    assert "Traceback" not in done.stderr, describe(done)
    return done


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_train_and_its_run_killed_with_the_reason(tmp_path, signum):
    """``train`` stopped by SIGTERM or SIGINT mid-fit exits 128 + the signal with one line on stderr, no
    traceback; its run ends KILLED with the reason "interrupted by SIG…", never left RUNNING, never FINISHED."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "train", "--tracking-uri", uri, *LONG_TRAIN], cwd=REPO,
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    done = stopped(proc, uri, signum, runs=1)
    name = signal.Signals(signum).name
    (run,) = children(uri)
    assert done.stderr.strip().splitlines() == [f"interrupted by {name}: run {run.info.run_id} ended KILLED"]
    assert run.info.status == "KILLED" and run.data.tags["bench.reason"] == f"interrupted by {name}"


@pytest.mark.parametrize("signum, times", [(signal.SIGTERM, 1), (signal.SIGINT, 2)])
def test_a_signal_ends_a_suite_and_its_runs_killed_with_the_reason(tmp_path, signum, times):
    """``run`` stopped by SIGTERM, or by Ctrl-C twice (SIGINT to the whole process group, as a terminal sends it):
    exit 128 + the signal, one summary line, no traceback; the runs under way and the parent end KILLED with the
    signal as the reason, nothing stays RUNNING."""
    suite = write_suite(tmp_path / "long.yaml", {**TINY_SUITE, "fixed": {**TINY_FIXED, "series_length": 400_000}})
    uri = sqlite_uri(tmp_path / "mlflow.db")
    done = stopped(start(suite, uri, "--workers", "2", "--no-compile"), uri, signum, runs=2, times=times)
    name = signal.Signals(signum).name
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"suite long interrupted by {name}") and "resume" in lines[0]
    killed = [r for r in children(uri) if r.info.status == "KILLED"]
    assert len(killed) == 2 and all(r.data.tags["bench.reason"] == f"interrupted by {name}" for r in killed)
    assert not [r for r in children(uri) + parents(uri) if r.info.status == "RUNNING"]
    (parent,) = parents(uri)
    assert parent.info.status == "KILLED" and parent.data.tags["bench.reason"] == f"interrupted by {name}"


# ------------------------------------------------------------------------------- a store that fails

def test_a_tracking_server_that_goes_down_is_reported_within_30_s_and_the_rerun_resumes(tmp_path, capsys):
    """A real ``mlflow server`` killed mid-suite: the runner ends within 30 s (plus the run in flight's own
    giving up) with one line naming the server's address, unreachable, and what to check; the server back on the
    same database and port, the rerun skips what finished and completes the suite, nothing failed."""
    suite = write_suite(tmp_path / "long.yaml", {**TINY_SUITE, "fixed": {**TINY_FIXED, "series_length": 100_000}})
    backend, log = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "server.log"
    with server_process(backend, tmp_path / "artifacts", log) as (server, uri):
        wait_healthy(server, uri, log)
        runner = subprocess.Popen(bench_args(suite, uri, "--workers", "1", "--no-compile"), cwd=REPO,
                                  env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        try:
            poll(lambda: "1 finished" in server_summary(uri), 240, "a run to finish", runner)
            os.killpg(server.pid, signal.SIGKILL)  # the server and its children, at once
            down = time.monotonic()
            done = finish(runner, timeout=120)
            reported_s = time.monotonic() - down
        finally:
            kill_group(runner)
    assert done.returncode == 1, describe(done)
    assert "Traceback" not in done.stderr, describe(done)
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert uri in line and "unreachable" in line and "check that the server runs" in line, line
    assert reported_s < 60, reported_s  # each call gives up within ~30 s: the run in flight's, then the runner's

    port = int(uri.rpartition(":")[2])
    with server_process(backend, tmp_path / "artifacts", log, port) as (server, uri):
        wait_healthy(server, uri, log)
        rerun = bench_run(suite, uri, "--workers", "1", "--no-compile")
    assert rerun.returncode == 0, describe(rerun)
    assert summary_count(rerun.stdout, "skipped") >= 1 and summary_count(rerun.stdout, "failed") == 0
    with capsys.disabled():
        print(f"\n[server down] reported {reported_s:.1f} s after the kill: {line}")


def server_summary(uri: str) -> str:
    """'<n> finished' for the suite's children FINISHED on the server so far ('' while it has none)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("rnn-bench")
    if experiment is None:
        return ""
    done = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    return f"{len([r for r in done if 'bench.config_hash' in r.data.tags])} finished"


def test_a_folder_that_cannot_take_artifacts_fails_the_parent_with_the_cause(tmp_path):
    """``mlartifacts`` not a folder (as a read-only one, for a user who may not write there): ``run`` exits 2 with
    one line giving the cause, trains nothing, and its parent ends FAILED with that cause, not RUNNING."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    suite = write_suite(tmp_path / "tiny.yaml", TINY_SUITE)
    (tmp_path / "mlartifacts").write_text("a file where the artifacts' folder should be\n")
    done = bench_run(suite, uri, "--workers", "1")
    assert done.returncode == 2, describe(done)
    assert done.stderr.strip().splitlines() == [
        f"error: store {uri}: its folder cannot take the artifacts (Not a directory: "
        f"{tmp_path / 'mlartifacts'}/rnn-bench/{parents(uri)[0].info.run_id}/artifacts)"]
    (parent,) = parents(uri)
    assert parent.info.status == "FAILED" and "cannot take the artifacts" in parent.data.tags["bench.reason"]
    assert children(uri) == []


def test_a_closed_stdout_ends_the_runner_quietly_after_its_compile(tiny_suite, tmp_path):
    """``rnn-bench run … | head -1``: the runner finishes the suite and its compile, exits 0, no traceback."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    proc = subprocess.Popen(bench_args(tiny_suite, uri, "--workers", "1", "--out", str(tmp_path / "out")), cwd=REPO,
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    first = proc.stdout.readline()
    proc.stdout.close()  # as head -1 does
    try:
        err = proc.stderr.read()
        proc.wait(timeout=300)
    finally:
        kill_group(proc)
    assert first.startswith("suite tiny:") and proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert (tmp_path / "out" / "README.md").is_file()


def test_a_database_deleted_while_in_use_is_named_as_such(tmp_path):
    """The store's database file deleted under a running ``train``: one line saying it was deleted or moved while
    in use (SQLite calls it read-only), exit 1, no traceback."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    proc = subprocess.Popen([sys.executable, "-m", "bench", "train", "--tracking-uri", uri, *LONG_TRAIN], cwd=REPO,
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        poll(lambda: [r for r in children(uri) if r.info.status == "RUNNING"], 240, "the run to start", proc)
        (tmp_path / "mlflow.db").unlink()
        done = finish(proc, timeout=120)
    finally:
        kill_group(proc)
    assert done.returncode == 1 and "Traceback" not in done.stderr, describe(done)
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: store {uri}: its database file {tmp_path / 'mlflow.db'} was deleted or moved while in use")
