"""One tracked run read back from a real MLflow SQLite store; the CLI refuses bad input before touching it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from bench.cli.main import load_config_file
from bench.config.settings import config_hash, display_name, resolve
from bench.running.store import Store
from bench.running.train import train_run

REPO = Path(__file__).resolve().parents[1]
# What each task's generated data are defined by (Task.data_fields / dataset_spec), and the dataset names of the
# tiny configs (tests/conftest.py): the settings that differ from the task's defaults, then the seed.
DATA_FIELDS = {"dependency": ("series_length", "eval_length", "lags", "weights", "base", "seed"),
               "sine": ("train_examples", "val_examples", "test_examples", "frequency", "amplitude", "noise", "seed",
                        "truncation")}
DATASET_NAMES = {"dependency": "dependency·series_length=20000·eval_length=2000·seed=0",
                 "sine": "sine·train_examples=700·val_examples=100·test_examples=100·seed=0"}


def documented_config_hash(cfg: dict) -> str:
    """A run's identity as its documentation states it, computed here independently: the first 16 hex digits of
    the SHA-256 of the resolved config as JSON with sorted keys, leaving out settings at their neutral value
    (max_samples -1, val_count 0, fresh_series false, stop budget, patience 0, plateau_tolerance -1) and tbptt_stride
    where it equals the truncation it follows."""
    neutral = (("max_samples", -1), ("val_count", 0), ("fresh_series", False), ("stop", "budget"), ("patience", 0),
               ("plateau_tolerance", -1.0))
    kept = {k: v for k, v in cfg.items() if (k, v) not in neutral
            and not (k == "tbptt_stride" and v == cfg["truncation"])}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=list).encode()).hexdigest()[:16]


def documented_digest(task: str, cfg: dict) -> str:
    """A data set's digest as documented: the first 8 hex digits of the SHA-256 of the JSON (sorted keys) of the
    task's name and the settings that define its data."""
    spec = {k: list(cfg[k]) if isinstance(cfg[k], tuple) else cfg[k] for k in DATA_FIELDS[task]}
    return hashlib.sha256(json.dumps({"task": task, **spec}, sort_keys=True).encode()).hexdigest()[:8]


def is_ancestor_of_head(commit: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=REPO).returncode == 0


@pytest.fixture(scope="module")
def mlflow_client():
    from mlflow import MlflowClient

    return MlflowClient


@pytest.mark.parametrize("task", ["dependency", "sine"])
def test_run_is_read_back_complete_from_the_store(tiny_cfg, tracking_uri, tmp_path, mlflow_client, task):
    cfg = tiny_cfg(task)
    outcome = train_run(cfg, tracking_uri)
    assert outcome.status == "finished", outcome.reason

    client = mlflow_client(tracking_uri)
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == display_name(cfg)
    assert run.data.tags["bench.task"] == cfg["task"] and run.data.tags["mlflow.user"]
    assert run.data.tags["mlflow.source.name"] == "rnn-bench" and "Settings: task=" in run.data.tags["mlflow.note.content"]

    # Params: exactly the resolved config.
    assert run.data.params == {k: str(v) for k, v in cfg.items()}

    # Tags: where and from what it ran, and its identity.
    tags = run.data.tags
    commit = tags["mlflow.source.git.commit"]
    if (REPO / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit), commit
        assert is_ancestor_of_head(commit.removesuffix("-dirty"))  # a real commit of this repository
    else:  # an exported tree: said so, never left empty
        assert commit == "unknown"
    assert tags["bench.config_hash"] == documented_config_hash(cfg)
    assert tags["bench.version.torch"] == torch.__version__
    assert tags["bench.device_name"].strip()
    assert tags["bench.outcome"] == "finished"

    # Histories, in optimizer steps: the training loss every log_every steps, validation every val_every.
    steps = int(outcome.metrics["train/steps"])
    assert steps == (200 if task == "dependency" else 40)
    loss = client.get_metric_history(outcome.run_id, "train/loss")
    loss_steps = [m.step for m in loss]
    assert len(loss) >= 4
    assert loss_steps == sorted(set(loss_steps))
    assert loss_steps[-1] == steps
    # At most log_every apart (an epoch's last bundle of steps may be shorter).
    assert all(0 < b - a <= cfg["log_every"] for a, b in zip([0] + loss_steps, loss_steps))
    assert all(0 < m.value < 10 for m in loss)
    val_key = "val/ce" if task == "dependency" else "val/rmse"
    val_steps = [m.step for m in client.get_metric_history(outcome.run_id, val_key)]
    if task == "dependency":  # bundles of 10 steps that fill each epoch exactly: validation lands on the dot
        assert loss_steps == list(range(10, 201, 10))
        assert val_steps == [50, 100, 150, 200]
    else:
        assert len(val_steps) >= 2 and val_steps == sorted(set(val_steps)) and val_steps[-1] <= steps

    # Test metrics and references, as returned by train_run, stored under the harness's names (one name each).
    metrics = Store(tracking_uri).metrics(outcome.run_id)
    assert metrics == run.data.metrics and {"train/loss", "train/steps", val_key} <= set(metrics)
    assert not any(k.startswith("system/") for k in metrics)  # system metrics only when asked for
    expected = ("test/ce", "test/acc", "test/floor_gap", "floor_all") if task == "dependency" else \
        ("test/rmse", "test/mae", "baseline_last_value_rmse", "baseline_linear_ar_rmse")
    for key in expected + ("train/steps", "num_params", "fit_time_s", "peak_memory_mb"):
        assert metrics[key] == pytest.approx(outcome.metrics[key], rel=1e-6), key
    if task == "dependency":
        assert 0.4 < metrics["test/ce"] < 0.7
        assert metrics["floor_all"] == pytest.approx(0.4545, abs=1e-4)
    # MLflow's UI files a run's charts in sections named by the part before the last "/", sorted alphabetically:
    # the splits only, so that the page opens on the test figures and the learning curves, not on constants.
    assert sorted({k.rsplit("/", 1)[0] for k in run.data.metrics if "/" in k}) == ["test", "train", "val"]
    # Params are the settings (above) and the tags say nothing of who ran it: that is on its lease.
    assert not {"bench.host", "bench.pid", "bench.pid_start", "bench.heartbeat", "bench.lease_s",
                "bench.worker_pid"} & set(tags)

    # The data set, as an MLflow dataset input named and digested by the settings that generate it.
    (used,) = run.inputs.dataset_inputs
    assert (used.dataset.name, used.dataset.digest) == (DATASET_NAMES[task], documented_digest(task, cfg))
    assert json.loads(used.dataset.profile)["seed"] == cfg["seed"]
    assert {t.key: t.value for t in used.tags} == {"mlflow.data.context": "training"}

    # Artifacts: the config that reproduces the run, its plot and its weights.
    local = tmp_path / "download"
    for name in ("config.yaml", "plot.svg", "model.pt"):
        assert Store(tracking_uri).download_artifact(outcome.run_id, name, local) == local / name
    record = yaml.safe_load((local / "config.yaml").read_text())
    assert record["config"] == {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    assert record["rerun"].startswith("rnn-bench train ") and "\n" not in record["rerun"]
    # Both ways of rerunning give this very config: the file itself, and the stored command line.
    assert resolve(load_config_file(str(local / "config.yaml"))) == cfg
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in shlex.split(record["rerun"])[2:])
    assert resolve({k.replace("-", "_"): v for k, v in flags.items()}) == cfg
    assert record["tags"]["bench.config_hash"] == documented_config_hash(cfg)
    # The trained weights: the predictions come back without training again.
    if task == "sine":
        from bench.reporting.task_reports.sine import replay_sine_run
        from bench.running.train import restore

        _, _, rmse, _ = replay_sine_run(cfg, local / "model.pt", restore)
        assert rmse == pytest.approx(outcome.metrics["test/rmse"], rel=1e-5)
    assert (local / "model.pt").stat().st_size > 1_000
    svg = (local / "plot.svg").read_text()
    # An SVG whose text is text, titled with the run's name (drawn from the series kept in memory, not re-read).
    assert svg.startswith("<?xml") and "<svg" in svg and len(svg) > 5_000
    assert f">{display_name(cfg)}</text>" in svg
    # The store and its artifacts stay inside the folder given.
    assert (tmp_path / "mlflow.db").is_file()
    assert (tmp_path / "mlartifacts").is_dir()


def test_diverging_run_is_a_result_shown_as_not_successful(tiny_cfg, tracking_uri, mlflow_client, tmp_path):
    cfg = tiny_cfg("dependency", cell="rnn_relu", lr=1e6, grad_clip=0.0)
    outcome = train_run(cfg, tracking_uri)
    assert outcome.status == "diverged"
    step = outcome.metrics["diverged_step"]
    assert 1 <= step <= 200 and step == int(step)
    assert "loss became" in outcome.reason

    client = mlflow_client(tracking_uri)
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FAILED"  # red in the UI's runs table
    assert run.data.tags["bench.outcome"] == "diverged"  # a result all the same: never rerun
    assert Store(tracking_uri).finished_hashes(run.info.experiment_id) == {config_hash(cfg): outcome.run_id}
    assert "loss became" in run.data.tags["bench.reason"]
    metrics = Store(tracking_uri).metrics(outcome.run_id)
    assert metrics["diverged_step"] == step
    assert "test/ce" not in metrics
    # Its config and its plot, titled with where it diverged.
    local = tmp_path / "download"
    for name in ("config.yaml", "plot.svg"):
        assert Store(tracking_uri).download_artifact(outcome.run_id, name, local) == local / name
    assert "diverged: loss became" in (local / "plot.svg").read_text()


def test_same_store_holds_several_runs_with_distinct_hashes(tiny_cfg, tracking_uri, mlflow_client):
    a = train_run(tiny_cfg("dependency", max_steps=20), tracking_uri)
    b = train_run(tiny_cfg("dependency", max_steps=20, seed=1), tracking_uri)
    assert a.status == b.status == "finished"
    client = mlflow_client(tracking_uri)
    experiment = client.get_experiment_by_name("rnn-bench")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in runs} == {a.run_id, b.run_id}
    assert len({r.data.tags["bench.config_hash"] for r in runs}) == 2
    assert {r.data.params["seed"] for r in runs} == {"0", "1"}


# --- the command line refuses bad input before anything is written ------------------------------------------

BAD_INPUTS = {
    "unknown task": (["--task", "nope"], ["task", "'nope'", "allowed", "dependency, sine"]),
    "unknown cell": (["--cell", "transformer"], ["cell", "'transformer'", "allowed", "rnn_tanh, rnn_relu, lstm, gru"]),
    "layers 0": (["--layers", "0"], ["layers", "'0'", "allowed", "integer >= 1"]),
    "hidden 1.5": (["--hidden", "1.5"], ["hidden", "'1.5'", "allowed", "integer >= 1"]),
    "truncation 0": (["--truncation", "0"], ["truncation", "'0'", "allowed", "integer >= 1"]),
    "dropout 1.0": (["--dropout", "1.0"], ["dropout", "'1.0'", "allowed", "[0, 1)"]),
    "unreachable server": (["--tracking-uri", "http://127.0.0.1:9"],
                           ["tracking_uri", "'http://127.0.0.1:9'", "unreachable", "allowed", "mlflow server"]),
}


SEVERAL = ["--layers", "0", "--dropout", "1.0", "--hidden", "1.5"]


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Every bad command line, run at once (each is a fresh interpreter that imports torch)."""
    procs = {}
    for name, args in [*((n, a) for n, (a, _) in BAD_INPUTS.items()), ("several", SEVERAL)]:
        folder = tmp_path_factory.mktemp(name.replace(" ", "_"))
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env["RNN_BENCH_RESULTS"] = str(folder / "results")  # the default store, should a bug fall back to it
        uri = ["--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"] if "--tracking-uri" not in args else []
        command = [sys.executable, "-m", "bench", "train", "--no-progress", *uri, *args]
        procs[name] = (folder, subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (folder, proc) in procs.items():
        out, err = proc.communicate(timeout=180)
        results[name] = (folder, proc.returncode, out, err)
    return results


@pytest.mark.slow  # a fresh interpreter per case; tests/test_bad_input.py covers them in-process
@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_cli_bad_input_exits_2_naming_field_value_and_allowed(cli_results, name):
    folder, rc, out, err = cli_results[name]
    assert rc == 2, (out, err)
    assert "Traceback" not in err
    message = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(message) == 1, err
    for part in BAD_INPUTS[name][1]:
        assert part in message[0], (part, message[0])
    # Nothing written: no database, no artifact folder, no default store.
    assert list(folder.iterdir()) == []


@pytest.mark.slow
def test_cli_reports_every_problem_at_once(cli_results):
    folder, rc, out, err = cli_results["several"]
    assert rc == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert sorted(e.removeprefix("error: ").split(":")[0] for e in errors) == ["dropout", "hidden", "layers"]
    assert list(folder.iterdir()) == []


def test_compiled_results_go_to_results_only_for_the_embedded_store(tmp_path, monkeypatch):
    from bench.running.locations import output_dir
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(tmp_path / "results"))
    assert output_dir(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}", "smoke") == tmp_path / "results" / "smoke"
    assert output_dir(f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}", "smoke") == \
        tmp_path / "elsewhere" / "results" / "smoke"
    assert output_dir("http://127.0.0.1:5000", "smoke", out=tmp_path / "x") == tmp_path / "x"


def test_the_default_configs_keep_their_identity():
    """Literal hashes of each task's default config, computed at commit d803262 (and equal to the recipe above):
    a change of the recipe or of a default, or a field added without a neutral value, would orphan every stored
    run, and fails here."""
    expected = {"dependency": "f7433c21cca929ff", "sine": "366e24807ff07f30", "sine_extrapolation": "1549f3f0300e52c2"}
    for task, digest in expected.items():
        cfg = resolve({"task": task})
        assert (config_hash(cfg), documented_config_hash(cfg)) == (digest, digest), task
