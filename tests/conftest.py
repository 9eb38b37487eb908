"""Shared fixtures: real configs shrunk to run in a fraction of a second, and a throw-away MLflow store."""

from __future__ import annotations

import os
import tempfile
import warnings

import pytest
import torch

from bench.config.settings import resolve

# Every test, and every process a test starts, writes results and its default store into a throw-away folder,
# never into the repository's results/.
os.environ["RNN_BENCH_RESULTS"] = tempfile.mkdtemp(prefix="rnn-bench-test-results-")

# The models under test are tiny: intra-op threads only add synchronization, and on a shared 2-core machine
# they turn a 0.3 s fit into several seconds. One thread also keeps timings stable between runs.
torch.set_num_threads(1)

# Every real field still goes through bench.config.settings.resolve: only sizes shrink.
TINY = {
    # 20,000 steps in 20 streams of 1,000 -> 200 windows of 5 -> 20 Lightning batches of 10 windows.
    "dependency": dict(hidden=8, truncation=5, batch_size=20, series_length=20_000, eval_length=2_000,
                       steps_per_batch=10, log_every=10, val_every=50),
    # 700 training-range windows -> 590 training windows of 10; 40 optimizer steps.
    "sine": dict(hidden=8, layers=1, batch_size=16, train_examples=700, val_examples=100, test_examples=100,
                 epochs=-1, max_steps=40, steps_per_batch=10, log_every=10, val_every=20, optimizer="adam",
                 lr=0.01),
}


@pytest.fixture
def tiny_cfg():
    """``tiny_cfg(task, **overrides)``: a resolved, validated config of ``task`` small enough for a unit test."""

    def make(task: str = "dependency", **overrides) -> dict:
        return resolve({"task": task, **TINY[task], **overrides})

    return make


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    """A fresh SQLite MLflow store inside the test's own folder (absolute path: four slashes)."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _quiet_lightning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*GPU available but not used.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        yield


# A real suite, small enough for the results tests: both tasks, truncations 2 and 10, two seeds, and a planted
# diverging configuration (rnn_relu at lr 1e6, dependency task only).
TINY_SUITE = """
description: results tests (tests/test_compile.py, tests/test_regress.py)
axes:
  task: [dependency, sine]
  cell: [lstm, rnn_relu]
  truncation: [2, 10]
  seed: [0, 1]
  lr: [0.02, 1000000.0]
fixed: {hidden: 8, optimizer: adam, steps_per_batch: 10, log_every: 10, val_every: 20}
tasks:
  dependency: {batch_size: 20, series_length: 20000, eval_length: 2000, epochs: -1, max_steps: 60}
  sine: {max_steps: 40, train_examples: 700, val_examples: 100, test_examples: 100, batch_size: 16}
exclude:
  - {cell: lstm, lr: 1000000.0}
  - {cell: rnn_relu, lr: 0.02}
  - {task: sine, cell: rnn_relu}
"""


@pytest.fixture(scope="session")
def tiny_suite_store(tmp_path_factory):
    """:data:`TINY_SUITE` run once per session by ``bench run`` with two workers into a SQLite store, which
    compiles it at the end. Returns (suite file, tracking URI, results folder: RNN_BENCH_RESULTS for it)."""
    from bench.cli.main import main

    root = tmp_path_factory.mktemp("tiny_suite")
    suite_file = root / "tiny.yaml"
    suite_file.write_text(TINY_SUITE)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RNN_BENCH_RESULTS", str(root / "results"))
        code = main(["run", "--suite", str(suite_file), "--workers", "2", "--tracking-uri", uri, "--no-progress"])
    assert code == 0
    return suite_file, uri, root / "results"
