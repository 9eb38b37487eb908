"""Shared fixtures: real configs shrunk to run in a fraction of a second, and a throw-away MLflow store."""

from __future__ import annotations

import warnings

import pytest
import torch

from bench.config import resolve

# The models under test are tiny: intra-op threads only add synchronization, and on a shared 2-core machine
# they turn a 0.3 s fit into several seconds. One thread also keeps timings stable between runs.
torch.set_num_threads(1)

# Every real field still goes through bench.config.resolve: only sizes shrink.
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
