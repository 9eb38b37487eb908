"""The suite runner: slot planning as a pure function (no GPU needed), and end to end with real ``python -m bench
run`` processes, real workers and a real SQLite store (slow).

Each suite here is a handful of dependency-task runs of a few hundred optimizer steps (about a second each).
Crashes, concurrent runners and failing stores are in tests/test_crash.py and tests/test_store.py.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.config.settings import ConfigError, config_hash, run_name
from bench.running.executors.slots import gpu_ids, parse_devices, plan_slots
from bench.config.suite import load_suite
from suite_procs import (REPO, TINY_SUITE, TINY_FIXED, bench_args, bench_run, child_env, children, describe,
                         finished_by_hash, kill_group, outcome_metrics, parents, poll, sqlite_uri, summary_count,
                         worker_pids, write_suite)

# ----------------------------------------------------------------------------------------------- slot planning

@pytest.mark.parametrize("inherited, count, requested, expected", [
    (None, 0, None, []),  # no GPU: CPU workers
    (None, 2, None, ["0", "1"]),
    ("2,3", 2, None, ["2", "3"]),  # an inherited CUDA_VISIBLE_DEVICES names the GPUs to pin, not 0 and 1
    ("GPU-5b2c,GPU-77af", 2, None, ["GPU-5b2c", "GPU-77af"]),  # UUIDs pass through
    ("1,7,3", 2, None, ["1", "7"]),  # CUDA sees 2 of them (e.g. one is missing): the first two
    ("", 0, None, []),
    (None, 4, ["0", "2"], ["0", "2"]),  # --devices 0,2
    ("2,3,5", 3, ["5", "2"], ["5", "2"]),  # --devices names GPUs as CUDA_VISIBLE_DEVICES does
])
def test_gpu_ids_honour_inherited_visible_devices_and_devices_flag(inherited, count, requested, expected):
    assert gpu_ids(inherited, count, requested) == expected


@pytest.mark.parametrize("inherited, count, requested, named", [
    (None, 2, ["2"], "2"),  # only GPUs 0 and 1 exist
    ("2,3", 2, ["0"], "0"),  # inherited 2,3: GPU 0 is not ours to use
    (None, 0, ["0"], "0"),  # no GPU at all
])
def test_devices_outside_the_visible_ones_are_refused(inherited, count, requested, named):
    with pytest.raises(ConfigError) as refused:
        gpu_ids(inherited, count, requested)
    (message,) = refused.value.problems
    assert message.startswith("devices: ") and f" {named} not visible" in message and "allowed" in message


def test_slots_pin_one_worker_per_gpu_id_and_share_cores_cpu_workers_take_one_thread():
    slots = plan_slots(["2", "3"], workers=5, per_device=2, cores=8)  # workers counts CPU workers only
    assert [(s.device, s.env["CUDA_VISIBLE_DEVICES"], s.threads) for s in slots] == [
        ("cuda", "2", 2), ("cuda", "2", 2), ("cuda", "3", 2), ("cuda", "3", 2)]
    cpu = plan_slots([], workers=3, cores=8)
    assert [(s.device, s.env["CUDA_VISIBLE_DEVICES"], s.threads) for s in cpu] == [("cpu", "", 1)] * 3
    assert len(plan_slots([], workers=0, cores=4)) == 4  # default: one per core
    assert plan_slots([], workers=1, cores=8)[0].threads == 1  # small models: another thread only spins


@pytest.mark.parametrize("text", ["a", "", "0,,1", "-1", "0,0", "1.5", "0;1"])
def test_devices_flag_format(text):
    with pytest.raises(ConfigError):
        parse_devices(text)


@pytest.mark.parametrize("devices, allowed", [("x", "distinct GPU indices"), ("7", "not visible")])
def test_bad_devices_flag_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, devices, allowed):
    store = tmp_path / "store"
    store.mkdir()
    suite = write_suite(tmp_path / "tiny.yaml", TINY_SUITE)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a machine without visible GPUs, whatever this one has
    code = main(["run", "--suite", str(suite), "--devices", devices, "--tracking-uri", sqlite_uri(store / "mlflow.db"),
                 "--no-progress", "--no-compile"])
    err = capsys.readouterr().err
    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: devices: ") and repr(devices) in line and allowed in line, line
    assert list(store.iterdir()) == []


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

@pytest.mark.slow
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
    names, owners = set(), worker_pids(uri)
    for run in runs:
        cfg = by_hash[run.data.tags["bench.config_hash"]]
        index = suite.configs.index(cfg)
        assert run.info.status == "FINISHED"
        assert run.data.tags["bench.outcome"] == "finished"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert owners[run.info.run_id] > 0
        assert run.info.run_name == suite.name_of(index)  # the task first, the config hash's start last
        assert re.fullmatch(r"dep·(lstm|gru)·L1·T(5|10)·s[01]·[0-9a-f]{4}", run.info.run_name)
        assert run.data.params["truncation"] == str(cfg["truncation"]) and run.data.params["hidden"] == "4"
        assert math.isfinite(run.data.metrics["test/ce"])  # the name the pages and the UI search use
        names.add(run.info.run_name)
    assert any(n.startswith("dep·lstm·L1·T5·s0·") for n in names) and len(names) == 8
    # One worker trained them all: it is long-lived, not one process per run.
    assert len({owners[r.info.run_id] for r in runs}) == 1
    assert summary_count(proc.stdout, "finished") == 8


@pytest.mark.slow
def test_two_workers_reproduce_one_worker_exactly(tiny_suite, reference, tmp_path):
    """Determinism across processes: the same runs spread over 2 workers give bit-identical results."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    proc = bench_run(tiny_suite, uri, "--workers", "2")
    assert proc.returncode == 0, describe(proc)
    assert parents(uri)[0].data.params["workers"] == "2"
    one, two = finished_by_hash(reference[0]), finished_by_hash(uri)
    assert set(one) == set(two) == set(load_suite(str(tiny_suite)).hashes())
    owners = worker_pids(uri)
    assert len({owners[r.info.run_id] for runs in two.values() for r in runs}) == 2

    from mlflow import MlflowClient

    c1, c2 = MlflowClient(reference[0]), MlflowClient(uri)
    for h in one:
        (a,), (b,) = one[h], two[h]
        assert outcome_metrics(a) == outcome_metrics(b), a.info.run_name
        assert "test/ce" in outcome_metrics(a)
        losses = [[(m.step, m.value) for m in c.get_metric_history(r.info.run_id, "train/loss")]
                  for c, r in ((c1, a), (c2, b))]
        assert losses[0] and losses[0] == losses[1], a.info.run_name


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


@pytest.mark.slow
def test_failures_are_isolated(tmp_path):
    """Kill the worker of a run mid-run and plant a diverging run: a new worker takes over and the other runs
    finish, the killed one is FAILED (reason: the worker died of a SIGKILL, most likely out of memory), the
    diverged one is FAILED as diverged with its step, the runner exits 1 and its summary lists both."""
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
            owners = worker_pids(uri)  # its lease names it
            return next(((r, owners[r.info.run_id]) for r in children(uri) if r.data.tags["bench.config_hash"] ==
                         long_hash and r.info.status == "RUNNING" and r.data.params.get("seed") == "9"
                         and r.info.run_id in owners), None)

        victim, victim_pid = poll(long_run_started, 180, "the long run to start", proc)
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
    assert "worker died" in killed.data.tags["bench.reason"] and "out of memory" in killed.data.tags["bench.reason"]

    (diverged,) = by_hash[diverging_hash]
    assert diverged.info.status == "FAILED"  # red in the UI; its outcome tag says diverged: a result
    assert diverged.data.tags["bench.outcome"] == "diverged"
    assert diverged.info.run_name.startswith("diverged·dep·")  # visible as such in the runs table
    assert re.search(r"\b(nan|inf)\b", diverged.data.tags["bench.reason"])
    step = diverged.data.metrics["diverged_step"]
    assert step == int(step) and 1 <= step <= 10, step

    replacement_pids, owners = set(), worker_pids(uri)
    for h in set(suite.hashes()) - {long_hash, diverging_hash}:
        (run,) = by_hash[h]
        assert run.info.status == "FINISHED" and run.data.tags["bench.outcome"] == "finished"
        assert math.isfinite(run.data.metrics["test/ce"])  # the name the pages and the UI search use
        replacement_pids.add(owners[run.info.run_id])
    replacement_pids.add(owners[diverged.info.run_id])
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_cpu_suites_runner_never_imports_torch(tiny_suite, tmp_path):
    """The runner of a CPU suite stays light: its workers fork from a server that imported torch and Lightning
    once, and what they hand back (:class:`bench.running.outcome.RunOutcome`) unpickles without them."""
    uri = sqlite_uri(tmp_path / "mlflow.db")
    argv = ["run", "--suite", str(tiny_suite), "--tracking-uri", uri, "--device", "cpu", "--workers", "2",
            "--no-compile", "--no-progress"]
    code = (f"import sys; from bench.cli.main import main; rc = main({argv!r}); "
            "print(rc, 'torch' in sys.modules, 'pytorch_lightning' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=child_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.split()[-3:] == ["0", "False", "False"], describe(proc)
    assert len(finished_by_hash(uri)) == len(load_suite(str(tiny_suite)).configs)
