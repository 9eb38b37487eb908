"""Real, short training runs: what a model learns depends on the truncation length; runs are reproducible.

Settings were chosen on the 2-core CI machine (one torch thread, see conftest.py) over 5 seeds:

- truncation 10, LSTM 16, Adam 0.03, 100 streams, 500,000 steps x 2 epochs (1,000 optimizer steps):
  test CE 0.4586-0.4620 (floor 0.4545; threshold 0.47).
- truncation 1, same model and optimizer, the same 1,000 optimizer steps: test CE 0.6622-0.6629, at the
  "knows nothing" floor 0.6616 (threshold 0.60).
- sine at frequency 10 (period 63 samples), 2x30 LSTM, Adam 0.01, 500 steps: test RMSE 0.0013-0.0018 against
  0.0706 for the last-value baseline.
"""

from __future__ import annotations

import pytest
import torch

from bench.config.settings import resolve
from bench.running.train import fit_and_test

DEPENDENCY = dict(task="dependency", cell="lstm", hidden=16, batch_size=100, eval_length=100_000,
                  optimizer="adam", lr=0.03)

# Metrics that measure the machine, not the model.
TIMING = ("fit_time_s", "train_loop_s", "eval_time_s", "test_time_s", "wall_time_s", "train/steps_per_s",
          "train/samples_per_s", "peak_memory_mb", "val/elapsed_s")


def model_metrics(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING}


def test_truncation_10_learns_both_dependencies():
    cfg = resolve({**DEPENDENCY, "truncation": 10, "series_length": 500_000, "epochs": 2})
    model, data, metrics = fit_and_test(cfg)
    assert metrics["train/steps"] == 1_000
    floors = data.floors
    # Below what knowing X_{t-3} alone allows (0.5192): the model has learned X_{t-8} too.
    assert metrics["test/ce"] < 0.47
    assert metrics["test/ce"] > floors["all"] - 0.005  # nothing beats the Bayes floor (beyond sampling noise)
    assert metrics["test/floor_gap"] == pytest.approx(metrics["test/ce"] - floors["all"], abs=1e-6)


def test_truncation_1_learns_neither_dependency():
    # The same number of optimizer steps; a window of one step never carries an error back to X_{t-3}.
    cfg = resolve({**DEPENDENCY, "truncation": 1, "series_length": 100_000, "epochs": 1})
    _, _, metrics = fit_and_test(cfg)
    assert metrics["train/steps"] == 1_000
    assert metrics["test/ce"] > 0.60  # neither 0.5192 (X_{t-3} learned) nor 0.4545 (both) is approached


def test_short_sine_run_beats_the_last_value_baseline():
    cfg = resolve(dict(task="sine", frequency=10.0, max_steps=500, optimizer="adam", lr=0.01))
    model, data, metrics = fit_and_test(cfg)
    assert metrics["train/steps"] == 500
    last_value = metrics["baseline_last_value_rmse"]
    assert last_value > 0.05
    assert metrics["test/rmse"] < last_value / 5
    assert metrics["baseline_linear_ar_rmse"] < 1e-4  # still the floor: a pure sine is an exact AR(2)
    # The predictions kept for the plot are the test targets' shape and the same quality.
    y = data.splits["test"][1]
    assert model.test_predictions.shape == y.shape
    assert float(torch.sqrt(torch.mean((model.test_predictions - y) ** 2))) == pytest.approx(metrics["test/rmse"],
                                                                                             rel=1e-4)


@pytest.mark.parametrize("task", ["dependency", "sine"])
def test_same_config_and_seed_give_identical_results(tiny_cfg, task):
    cfg = tiny_cfg(task, seed=3)
    model_a, _, a = fit_and_test(cfg)
    model_b, _, b = fit_and_test(cfg)
    assert model_metrics(a) == model_metrics(b)  # exact equality, not approximate
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)

    _, _, c = fit_and_test(tiny_cfg(task, seed=4))
    key = "test/ce" if task == "dependency" else "test/rmse"
    assert c[key] != a[key]
