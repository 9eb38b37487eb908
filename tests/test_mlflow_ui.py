"""What a user of the MLflow UI relies on, on real runs in real SQLite stores: a store folder that can be moved or
copied and still gives its artifacts back, stores written before that still read the same, and system metrics
logged only when asked for, in the worker processes too."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from bench.cli import main as cli
from bench.running.store import EXPERIMENT_TAGS, Store
from bench.running.train import train_run

SYSTEM_METRIC = "system/cpu_utilization_percentage"


def uri_of(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def read_back_artifacts(store: Store, run_id: str, cfg: dict, folder: Path) -> None:
    """The run's config.yaml reruns ``cfg`` and its model.pt loads: what compile and a rerun need."""
    config = store.download_artifact(run_id, "config.yaml", folder)
    assert yaml.safe_load(config.read_text())["config"]["seed"] == cfg["seed"]
    weights = torch.load(store.download_artifact(run_id, "model.pt", folder), weights_only=True)
    assert weights and all(isinstance(t, torch.Tensor) for t in weights.values())
    assert store.download_artifact(run_id, "no-such-file", folder) is None


def test_a_moved_store_folder_gives_its_artifacts_back(tiny_cfg, tmp_path):
    cfg = tiny_cfg("dependency", max_steps=20)
    outcome = train_run(cfg, uri_of(tmp_path / "here"))
    assert outcome.status == "finished", outcome.reason
    shutil.move(tmp_path / "here", tmp_path / "there")  # nothing is left at the old place

    store = Store(uri_of(tmp_path / "there"))
    assert store.get_run(outcome.run_id).info.artifact_uri == f"mlflow-artifacts:/rnn-bench/{outcome.run_id}/artifacts"
    read_back_artifacts(store, outcome.run_id, cfg, tmp_path / "download")


def test_a_store_written_before_reads_the_same_once_moved(tiny_cfg, tmp_path):
    """Older stores recorded each experiment's artifacts under an absolute file: path, and some commits stored the
    figures logged once with "." for "/" (test.ce); moved, their artifacts are found beside the database all the
    same, and their figures read under the one name (test/ce) beside runs stored under it."""
    older = Store(uri_of(tmp_path / "old"))
    location = (tmp_path / "old" / "mlartifacts" / "rnn-bench").resolve().as_uri()
    older.client.create_experiment("rnn-bench", artifact_location=location, tags=EXPERIMENT_TAGS)
    cfg = tiny_cfg("dependency", max_steps=20)
    outcome = train_run(cfg, older.uri)
    assert outcome.status == "finished", outcome.reason
    old_run = older.client.create_run(older.find_experiment("rnn-bench")).info.run_id
    older.client.log_metric(old_run, "test.ce", 0.25)  # as an earlier commit stored a figure
    shutil.move(tmp_path / "old", tmp_path / "moved")

    store = Store(uri_of(tmp_path / "moved"))
    assert store.get_run(outcome.run_id).info.artifact_uri.startswith(location)  # the recorded path is gone
    read_back_artifacts(store, outcome.run_id, cfg, tmp_path / "download")
    test_ce = store.runs_frame("rnn-bench").set_index("run_id")["metrics.test/ce"]  # old name and new, one column
    assert test_ce[old_run] == 0.25 and test_ce[outcome.run_id] == pytest.approx(outcome.metrics["test/ce"])
    assert store.metric_history(old_run, "test/ce") == [(0, 0.25)]
    assert store.metrics(old_run) == {"test/ce": 0.25}
    assert store.metrics(outcome.run_id)["test/ce"] == pytest.approx(outcome.metrics["test/ce"])
    # A run of this commit holds its figures under the one name, which MLflow's search (and the UI's) takes.
    assert {"test/ce", "floor_all", "train/loss", "train/steps"} <= set(store.get_run(outcome.run_id).data.metrics)
    found = store.search(store.find_experiment("rnn-bench"), "metrics.`test/ce` < 100")
    assert outcome.run_id in {r.info.run_id for r in found} and old_run not in {r.info.run_id for r in found}


def settings(cfg: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def test_system_metrics_are_logged_when_asked_for(tiny_cfg, tmp_path, capsys, monkeypatch):
    # Off, as by default; the flag turns it on, and the variable goes back to how it was after the test.
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(settings(tiny_cfg("dependency", max_steps=20))))
    argv = ["train", "--config", str(tmp_path / "config.yaml"), "--no-progress", "--tracking-uri", uri_of(tmp_path)]
    assert cli.main(argv + ["--system-metrics"]) == 0
    out = capsys.readouterr().out
    run_id = re.search(r"run id ([0-9a-f]{32})", out).group(1)
    # The run's end says its name, store, where to see it and how it did, under the UI's metric names.
    assert re.search(r"^run dep·lstm·L1·T5·s0·[0-9a-f]{4}: finished$", out, re.M)
    assert re.search(r"^  browse   mlflow ui --backend-store-uri sqlite:///.*, then "
                     rf"http://127\.0\.0\.1:5000/#/experiments/\d+/runs/{run_id}\?workflowType=machine_learning$",
                     out, re.M)
    assert re.search(r"^  verdict  test/ce [\d.]+: (reaches|misses) the target [\d.]+; [\d.e-]+ above the lowest "
                     r"floor \(floor_all [\d.]+\)$", out, re.M)
    metrics = Store(uri_of(tmp_path)).metrics(run_id)
    assert 0 <= metrics[SYSTEM_METRIC] <= 100 and metrics["system/system_memory_usage_megabytes"] > 0


@pytest.mark.slow
def test_system_metrics_reach_the_suites_worker_processes(tiny_cfg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    suite = tmp_path / "one.yaml"
    fixed = {k: v for k, v in settings(tiny_cfg("dependency", max_steps=20)).items() if k != "seed"}
    suite.write_text(yaml.safe_dump({"axes": {"seed": [0]}, "fixed": fixed}))
    argv = ["run", "--suite", str(suite), "--workers", "1", "--no-progress", "--no-compile",
            "--tracking-uri", uri_of(tmp_path)]
    assert cli.main(argv + ["--system-metrics"]) == 0
    store = Store(uri_of(tmp_path))
    (child,) = [r for r in store.search(store.find_experiment("rnn-bench")) if "mlflow.parentRunId" in r.data.tags]
    assert SYSTEM_METRIC in store.metrics(child.info.run_id)


def test_the_experiments_list_shows_the_results_above_the_ledger(tiny_cfg, tiny_suite_store, tmp_path):
    """The MLflow UI lists experiments by ``last_update_time DESC`` (its experiments page's default sort), which
    only creating an experiment sets: on a fresh store, whether a suite or one ``train`` made it, the results
    come first, the harness's ledger after them."""
    outcome = train_run(tiny_cfg("sine", max_steps=2), uri_of(tmp_path))
    assert outcome.status == "finished", outcome.reason
    for uri in (uri_of(tmp_path), tiny_suite_store[1]):
        listed = Store(uri).client.search_experiments(order_by=["last_update_time DESC"])
        assert [e.name for e in listed] == ["rnn-bench", "rnn-bench.leases", "Default"], uri
