"""Evaluation streams start without their lagged history: an oracle that knows the generator but only what its
stream has shown scores above the Bayes floor unless each stream's first max-lag steps are left out, which the
dependency module does (:func:`lightning_modules.dependency_module.counted`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.config.settings import resolve
from bench.running.train import build
from datamodules.dependency import generate_dependency_series
from datamodules.dependency_spec import cross_entropy_floors
from lightning_modules.dependency_module import counted

LAGS, WEIGHTS, BASE = (3, 8), (0.5, -0.25), 0.5


def oracle_cross_entropy(streams_x: np.ndarray, streams_y: np.ndarray, skip: int) -> float:
    """Mean cross-entropy of the best predictor that sees only its own stream: a lag reaching before the
    stream's start is an unknown fair coin, worth half its weight. Steps the module would skip are left out."""
    steps = streams_x.shape[1]
    p = np.full(streams_x.shape, BASE)
    for lag, weight in zip(LAGS, WEIGHTS):
        known = np.zeros_like(p)
        known[:, lag:] = weight * streams_x[:, :-lag]
        known[:, :lag] = 0.5 * weight
        p += known
    keep = counted(0, steps, skip)
    p, y = p[:, keep], streams_y[:, keep]
    likelihood = np.where(y == 1, p, 1 - p)  # p may be exactly 0 or 1, where the other outcome never occurs
    return float(-np.mean(np.log(likelihood)))


def test_oracle_reaches_the_floor_only_when_stream_starts_are_skipped():
    x, y = generate_dependency_series(1_000_000, seed=5, lags=LAGS, weights=WEIGHTS, base=BASE)
    streams_x, streams_y = x.reshape(2000, 500).astype(float), y.reshape(2000, 500).astype(float)
    floor = cross_entropy_floors(WEIGHTS, BASE)["all"]
    with_starts = oracle_cross_entropy(streams_x, streams_y, skip=0)
    skipped = oracle_cross_entropy(streams_x, streams_y, skip=max(LAGS))
    # Sampling error of a mean over ~1M steps of per-step cross-entropies (sd ~0.3 nats): ~0.0003.
    assert abs(skipped - floor) < 0.001, (skipped, floor)
    assert with_starts - floor > 0.0015, (with_starts, floor)


def test_the_module_counts_every_step_but_each_streams_first_max_lag():
    cfg = resolve({"task": "dependency", "hidden": 4, "truncation": 5, "batch_size": 10, "series_length": 2000,
                   "eval_length": 1000, "max_steps": 2, "epochs": -1, "steps_per_batch": 2})
    data, model = build(cfg)
    data.setup("test")
    assert model.eval_skip == 8
    model.on_test_epoch_start()
    for batch in data.test_dataloader():
        model._evaluate(batch, "test")
    # 10 streams of 100 steps, the first 8 of each left out: CrossEntropy is weighted by steps counted.
    assert float(model.metrics["test"]["ce"].weight) == pytest.approx(10 * (100 - 8))
    assert math.isfinite(float(model.metrics["test"]["ce"].compute()))


def test_an_evaluation_series_too_short_for_the_skip_is_refused():
    from bench.config.settings import ConfigError

    with pytest.raises(ConfigError, match="eval_length: 80; allowed: more than batch_size x the longest lag"):
        resolve({"task": "dependency", "batch_size": 10, "truncation": 2, "eval_length": 80})
