"""The copy-memory plug-in: its baseline against simulation, validation without torch, a real run, and its example
suite run as an installed plug-in (entry points read from this folder's pyproject.toml) into compiled tables with
the baseline row beside the results."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from .data import BLANK, copy_sequences
from .floor import ALPHABET, memoryless_cross_entropy

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DOTTED = "examples.copy_memory.task:CopyMemoryTask"
torch.set_num_threads(1)  # as tests/conftest.py: a tiny model only waits on more threads
TINY = dict(hidden=8, delay=3, train_sequences=64, eval_sequences=32, batch_size=16, log_every=5)


@pytest.mark.parametrize("delay", [1, 5, 37])
def test_memoryless_baseline_is_the_best_a_predictor_without_memory_scores(delay):
    """The best predictor that knows only the position, fitted by counting on one sample and scored on another,
    scores 10·log 8/(delay + 20); predicting blank, then 1/8 each, scores it exactly on any sample."""
    _, fit = copy_sequences(20_000, delay, seed=1)
    _, held_out = copy_sequences(20_000, delay, seed=2)
    counts = np.stack([np.bincount(column, minlength=ALPHABET + 1) for column in fit.numpy().T]) + 0.5
    p = counts / counts.sum(1, keepdims=True)
    positions = np.arange(held_out.shape[1])
    fitted = -np.log(p[positions, held_out.numpy()]).mean()
    assert fitted == pytest.approx(memoryless_cross_entropy(delay), abs=2e-3)
    guess = np.where(held_out.numpy() == BLANK, 1.0, 1 / ALPHABET)
    assert -np.log(guess).mean() == pytest.approx(memoryless_cross_entropy(delay), rel=1e-12)


def installed_env(tmp_path: Path) -> dict:
    """What ``pip install -e examples/copy_memory`` leaves behind, on PYTHONPATH: the package ``copy_memory`` (a
    link to this folder) and its distribution's entry points, read from this folder's pyproject.toml."""
    site = tmp_path / "site"
    dist = site / "rnn_bench_copy_memory-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "copy_memory").symlink_to(HERE)
    project = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (dist / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["entry-points"].items()))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
            "RNN_BENCH_RESULTS": str(tmp_path / "results")}


def run_python(code_or_args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_validating_a_config_stays_free_of_torch(tmp_path):
    check = ("import sys; from bench.config.settings import resolve; cfg = resolve({'task': 'copy_memory'}); "
             "print(cfg['delay'], 'torch' in sys.modules)")
    done = run_python(["-c", check], installed_env(tmp_path))
    assert done.stdout.split() == ["5", "False"], done.stderr


def test_a_run_logs_its_metrics_and_references():
    from bench.config.settings import resolve
    from bench.running.train import fit_and_test

    cfg = resolve({"task": DOTTED, **TINY, "max_steps": 20, "val_every": 10})
    _, _, metrics = fit_and_test(cfg)
    assert metrics["train/steps"] == 20 and 0 <= metrics["test/recall"] <= 1
    assert metrics["baseline_memoryless"] == pytest.approx(10 * math.log(8) / 23) and metrics["floor_perfect_memory"] == 0
    assert math.isfinite(metrics["test/ce"])


@pytest.mark.slow  # a real suite in a fresh process: start-up, two workers, compiling with figures
def test_example_suite_compiles_with_the_baseline_row_beside_the_results(tmp_path):
    env = installed_env(tmp_path)
    suite = HERE / "copy_memory.yaml"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = run_python(["-m", "bench", "run", "--suite", str(suite), "--axis", "cell=lstm", "--axis", "seed=0,1",
                       "--axis", "truncation=5,23", *(f"--set={k}={v}" for k, v in TINY.items()),
                       "--set=max_samples=3680", "--set=val_count=2",
                       "--tracking-uri", uri, "--workers", "2", "--no-progress"], env)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "results" / "copy_memory" / "comparison_copy_memory.csv").set_index("configuration")
    assert list(table.columns) == ["T=5", "T=23"]  # 46 and 10 optimizer steps: equal training data
    assert all("(n=2)" in entry for entry in table.loc["lstm L1 uni delay=3"]), table
    baseline = f"{10 * math.log(8) / 23:.4f}"
    assert table.loc["baseline: memoryless, 10·log 8/(T_delay+20) (delay=3)"].tolist() == [baseline] * 2
    assert table.loc["floor: remembers every symbol"].tolist() == ["0.0000"] * 2
    page = (tmp_path / "results" / "copy_memory" / "README.md").read_text()
    assert "Copy memory task (plug-in example)" in page and baseline in page
