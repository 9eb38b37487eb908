"""Whether the sine task measures modelling: the lookup baseline, the frequency split where lookup fails, the
Kalman floor of a noisy sine (against a brute-force simulation), the bidirectional readout, and the
best/worst panels of the compiled figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench import tasks
from bench.cli.main import main
from bench.config.settings import ConfigError, config_hash, resolve
from bench.reporting.task_reports.sine import best_and_worst_runs
from bench.tasks.sine import SOURCE_RMSE
from bench.running.train import build, fit_and_test
from datamodules.sine import (SineDataModule, last_value_rmse, make_windows, nearest_neighbour_rmse, sine_series,
                              window_ar2_rmse)
from datamodules.sine_floor import kalman_floor, kalman_predictor
from lightning_modules.sine_module import SineModule

EXTRAPOLATION = dict(frequencies=(0.5, 1.0, 1.5, 2.0), test_frequencies=(2.5, 3.0))


# --- the lookup baseline -----------------------------------------------------------------------------------

def test_lookup_scores_well_on_the_time_split_and_fails_on_unseen_frequencies():
    interpolation = SineDataModule().baselines()
    extrapolation = SineDataModule(**EXTRAPOLATION).baselines()
    # A periodic sine: every test window has a near-copy in training, so lookup beats the source's 0.0019.
    assert interpolation["nearest_neighbour_rmse"] < 0.001 < SOURCE_RMSE
    # Unseen frequencies: lookup is worse than repeating the last value ...
    assert extrapolation["nearest_neighbour_rmse"] > extrapolation["last_value_rmse"]
    assert extrapolation["nearest_neighbour_rmse"] > 20 * interpolation["nearest_neighbour_rmse"]
    # ... while modelling from the window stays near exact on both splits.
    for found in (interpolation, extrapolation):
        assert found["window_ar2_rmse"] < 1e-6
        assert found["linear_ar_rmse"] < 1e-5


def test_lookup_in_chunks_is_the_same_lookup():
    dm = SineDataModule(noise=0.1, train_examples=3_000, test_examples=700)
    dm.setup()
    train, test = dm.splits["train"], dm.splits["test"]
    whole = nearest_neighbour_rmse(train, test, chunk=len(test[1]))
    assert nearest_neighbour_rmse(train, test, chunk=64) == whole
    # Brute force for the first windows: the nearest training window by explicit distances.
    x, y = train[0][:, :, 0].double(), train[1].double()
    errors = [float(y[((x - w[:, 0].double()) ** 2).sum(1).argmin()] - t) for w, t in zip(test[0][:50], test[1][:50])]
    assert nearest_neighbour_rmse(train, (test[0][:50], test[1][:50])) == pytest.approx(
        math.sqrt(np.mean(np.square(errors))), rel=1e-12)


def test_window_ar2_needs_three_samples_and_knows_no_frequency():
    assert math.isnan(window_ar2_rmse(make_windows(np.arange(6.0), 2)))
    for frequency in (0.3, 7.0, 40.0):
        assert window_ar2_rmse(make_windows(sine_series(0, 300, frequency, 1.5, 0.01), 4)) < 1e-5


# --- the frequency split -----------------------------------------------------------------------------------

def test_frequency_split_shares_no_frequency_and_no_window():
    dm = SineDataModule(**EXTRAPOLATION, train_examples=2_000, val_examples=301, test_examples=401)
    dm.setup()
    seen = set(dm.window_frequencies["train"].tolist())
    held_out = set(dm.window_frequencies["test"].tolist())
    assert seen == {0.5, 1.0, 1.5, 2.0} and held_out == {2.5, 3.0}
    assert set(dm.window_frequencies["val"].tolist()) == held_out
    sizes = {split: len(dm.splits[split][1]) for split in dm.splits}
    assert sizes == {"train": 2_000, "val": 301, "test": 401}
    assert all(len(dm.window_frequencies[s]) == n for s, n in sizes.items())
    # No evaluation window is a training window (or anywhere near one).
    train = dm.splits["train"][0][:, :, 0].double()
    for split in ("val", "test"):
        assert float(torch.cdist(dm.splits[split][0][:, :, 0].double(), train).min()) > 1e-3
    # Per held-out frequency, validation comes first and the test segment starts right after its last target:
    # the windows are those of the sine at those sample indices.
    for frequency in (2.5, 3.0):
        val_y = dm.splits["val"][1][dm.window_frequencies["val"] == frequency]
        test_x = dm.splits["test"][0][dm.window_frequencies["test"] == frequency]
        n_val = len(val_y)
        assert np.allclose(val_y.numpy(), sine_series(10, n_val, frequency, 1.0, 0.01), atol=1e-6)
        assert np.allclose(test_x[0, :, 0].numpy(), sine_series(n_val + 10, 10, frequency, 1.0, 0.01), atol=1e-6)


def test_extrapolation_task_trains_and_tests_on_the_frequency_split(tiny_cfg):
    sizes = {k: v for k, v in tiny_cfg("sine").items() if k not in ("task", "frequency")}
    cfg = resolve({**sizes, "task": "sine_extrapolation", "frequencies": "1,2", "test_frequencies": "3"})
    assert (cfg["frequencies"], cfg["test_frequencies"]) == ((1.0, 2.0), (3.0,))
    model, data, metrics = fit_and_test(cfg)
    assert set(data.window_frequencies["test"].tolist()) == {3.0}
    assert len(data.splits["train"][1]) == cfg["train_examples"]  # nothing carved for validation
    assert len(model.test_predictions) == cfg["test_examples"]
    assert metrics["baseline_nearest_neighbour_rmse"] > metrics["baseline_last_value_rmse"]
    assert math.isfinite(metrics["test/rmse"])  # 40 steps learn nothing yet; what is measured is the split


LIST_ALLOWED = "a comma-separated list of 1 to 64 distinct numbers in (0, 314.159]"


@pytest.mark.parametrize("settings, expected", [
    ({"test_frequencies": "1.0,2.5"}, "test_frequencies: 1.0 also in frequencies; allowed: frequencies not used in "
                                      "training (training: 0.5, 1.0, 1.5, 2.0)"),
    ({"test_frequencies": "2.5,2.5"}, f"test_frequencies: '2.5,2.5'; allowed: {LIST_ALLOWED}"),
    ({"frequencies": "0.5,-1"}, f"frequencies: '0.5,-1'; allowed: {LIST_ALLOWED}"),
    ({"frequencies": []}, f"frequencies: []; allowed: {LIST_ALLOWED}"),
    ({"val_examples": 1}, "val_examples: 1; allowed: at least one window per held-out frequency (2)"),
    ({"train_examples": 20}, "train_examples: 20; allowed: at least batch_size and one window per training "
                             "frequency (32)"),
])
def test_bad_frequency_splits_are_one_line_errors(settings, expected):
    with pytest.raises(ConfigError) as caught:
        resolve({"task": "sine_extrapolation", **settings})
    assert caught.value.problems == [expected]


def test_frequency_split_settings_belong_to_the_extrapolation_task_only(capsys):
    with pytest.raises(ConfigError) as caught:
        resolve({"task": "sine", "test_frequencies": "2.5"})
    assert "test_frequencies: '2.5' does not apply to task 'sine'" in caught.value.problems[0]
    assert main(["train", "--task", "sine_extrapolation", "--test-frequencies", "2,3"]) == 2
    assert capsys.readouterr().err.startswith("error: test_frequencies: 2.0 also in frequencies")


def test_sine_configs_keep_their_hash():
    # The frequency split is a task of its own, so a `sine` config resolves to exactly the settings it had:
    # the hashes every stored run and the committed baseline are keyed by stay the same.
    assert config_hash(resolve({"task": "sine"})) == "366e24807ff07f30"
    assert config_hash(resolve({"task": "sine", "noise": 0.1, "truncation": 5})) == "f9cdb84946c1cac4"


# --- the Kalman floor of a noisy sine ---------------------------------------------------------------------

def simulated_windows(n: int, truncation: int, noise: float, theta: float, amplitude: float, seed: int):
    """``n`` noisy windows (and the noisy sample after each) of a sine at a uniformly random phase."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    clean = amplitude * np.sin(phase + theta * np.arange(truncation + 1))
    noisy = clean + noise * rng.standard_normal(clean.shape)
    return noisy[:, :truncation], noisy[:, truncation]


@pytest.mark.parametrize("truncation, noise, theta, amplitude", [
    (10, 0.1, 0.01, 1.0), (10, 0.01, 0.01, 1.0), (3, 0.05, 0.3, 2.0), (1, 0.1, 0.01, 1.0), (20, 0.3, 0.5, 0.7)])
def test_kalman_floor_matches_a_brute_force_simulation(truncation, noise, theta, amplitude):
    weights, variance = kalman_predictor(truncation, noise, theta, amplitude)
    windows, following = simulated_windows(40_000, truncation, noise, theta, amplitude, seed=truncation)
    empirical = math.sqrt(np.mean((windows @ weights - following) ** 2))
    # The squared error's relative standard error over 40,000 windows is about sqrt(2 / 40,000) = 0.7%.
    assert empirical == pytest.approx(math.sqrt(variance), rel=0.015)
    # The filter is the best linear predictor: least squares fitted on the simulation itself does no better.
    design = np.hstack([windows, np.ones((len(windows), 1))])
    fitted = np.linalg.lstsq(design, following, rcond=None)[0]
    assert math.sqrt(np.mean((design @ fitted - following) ** 2)) > 0.995 * empirical


@pytest.mark.parametrize("truncation, noise, theta", [(10, 0.1, 0.01), (2, 0.02, 0.2), (7, 0.5, 1.0)])
def test_kalman_filter_equals_gaussian_conditioning(truncation, noise, theta):
    # Independent derivation: samples of a random-phase sine are jointly distributed with covariance
    # A²/2·cos(θ(i−j)); the best linear predictor conditions the next sample on the window.
    amplitude = 1.3
    k = np.arange(truncation + 1)
    covariance = amplitude**2 / 2 * np.cos(theta * (k[:, None] - k[None, :])) + noise**2 * np.eye(truncation + 1)
    window, after = covariance[:truncation, :truncation], covariance[truncation, :truncation]
    weights = np.linalg.solve(window, after)
    variance = covariance[truncation, truncation] - after @ weights
    found_weights, found_variance = kalman_predictor(truncation, noise, theta, amplitude)
    assert np.allclose(found_weights, weights, atol=1e-9)
    assert found_variance == pytest.approx(variance, rel=1e-9)


def test_kalman_floor_without_noise():
    for truncation in (2, 3, 10, 20):
        assert kalman_floor(truncation, 0.0, 0.01, 1.0) < 1e-8
    # One sample cannot tell rising from falling: the linear predictor misses by the sine's step.
    assert kalman_floor(1, 0.0, 0.01, 1.0) == pytest.approx(math.sin(0.01) / math.sqrt(2), rel=1e-6)


def test_kalman_floor_values_and_dependence():
    assert kalman_floor(10, 0.1, 0.01, 1.0) == pytest.approx(0.10984, abs=1e-5)
    assert kalman_floor(10, 0.01, 0.01, 1.0) == pytest.approx(0.012073, abs=1e-6)
    assert kalman_floor(20, 0.1, 0.01, 1.0) < kalman_floor(10, 0.1, 0.01, 1.0) < kalman_floor(5, 0.1, 0.01, 1.0)
    assert kalman_floor(10, 0.1, 0.01, 1.0) > 0.1  # never below the unpredictable noise of the target itself


def test_floor_is_logged_on_noisy_runs_and_sets_the_target(tiny_cfg):
    task = tasks.get("sine")
    noisy_cfg = tiny_cfg("sine", noise=0.1)
    noisy, _ = build(noisy_cfg)
    found = task.references(noisy_cfg, noisy)
    assert found["floor_kalman_rmse"] == pytest.approx(kalman_floor(10, 0.1, 0.01, 1.0), rel=1e-12)
    # A linear AR fitted on this run's data lands near the floor (an expectation: 100 test windows scatter
    # around it by about 7%).
    assert found["baseline_linear_ar_rmse"] == pytest.approx(found["floor_kalman_rmse"], rel=0.2)
    assert task.target(found) == pytest.approx(found["floor_kalman_rmse"] + SOURCE_RMSE)

    clean_cfg = tiny_cfg("sine")
    clean, _ = build(clean_cfg)
    found = task.references(clean_cfg, clean)
    assert "floor_kalman_rmse" not in found
    assert set(found) == {"baseline_last_value_rmse", "baseline_linear_ar_rmse", "baseline_nearest_neighbour_rmse",
                          "baseline_window_ar2_rmse"}
    assert task.target(found) == SOURCE_RMSE  # unchanged without noise
    assert task.target({"floor_kalman_rmse": float("nan")}) == SOURCE_RMSE  # a noise-free row in a mixed table


def test_frequency_split_floor_averages_the_held_out_frequencies():
    dm = SineDataModule(**EXTRAPOLATION, noise=0.05, test_examples=300)
    expected = math.sqrt(np.mean([kalman_floor(10, 0.05, f * 0.01, 1.0) ** 2 for f in (2.5, 3.0)]))
    assert dm.kalman_floor() == pytest.approx(expected, rel=1e-12)


# --- the bidirectional readout ------------------------------------------------------------------------------

def head_input(module: SineModule, x: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = module.head.register_forward_hook(lambda _, inputs, __: seen.append(inputs[0]))
    module.model_step(x, torch.zeros(len(x)))
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_head_reads_each_directions_final_state(cell):
    torch.manual_seed(0)
    module = SineModule(cell=cell, hidden_size=5, num_layers=2, bidirectional=True)
    x = torch.randn(4, 7, 1)
    read = head_input(module, x)
    output, state = module.backbone(x)
    h = state[0]  # (layers·directions, batch, hidden): the top layer's forward row, then its backward row
    assert read.shape == (4, 10)
    assert torch.equal(read[:, 5:], output[:, 0, 5:])  # backward half: the backward output at step 0 ...
    assert torch.allclose(read[:, 5:], h[-1])  # ... which is the backward direction's final state
    assert not torch.allclose(read[:, 5:], output[:, -1, 5:])  # not the step that has seen one sample
    assert torch.equal(read[:, :5], output[:, -1, :5])
    assert torch.allclose(read[:, :5], h[-2])


def test_unidirectional_head_reads_the_last_step_unchanged():
    torch.manual_seed(0)
    module = SineModule(cell="lstm", hidden_size=5, num_layers=2)
    x = torch.randn(4, 7, 1)
    output, state = module.backbone(x)
    assert torch.equal(head_input(module, x), output[:, -1])


# --- the best and worst panels -------------------------------------------------------------------------------

def test_worst_panel_shows_the_seed_that_made_the_configuration_worst():
    # The compiled default suite's case: the worst configuration's lowest seed was a good one.
    summary = pd.DataFrame({"configuration": ["sine/gru-L2-uni-T10", "sine/rnn_tanh-L3-uni-T20"], "n": [3, 3],
                            "mean": [0.0013, 0.233]})
    runs = pd.DataFrame({
        "configuration": ["sine/gru-L2-uni-T10"] * 3 + ["sine/rnn_tanh-L3-uni-T20"] * 4,
        "seed": [0, 1, 2, 0, 1, 2, 3], "config_hash": list("abcdefg"),
        "outcome": ["finished"] * 6 + ["failed"], "metric": [0.0016, 0.0009, 0.0014, 0.0046, 0.683, 0.011, np.nan]})
    (best_label, best, best_run), (worst_label, worst, worst_run) = best_and_worst_runs(summary, runs)
    assert (best_label, best["configuration"], best_run["seed"], best_run["config_hash"]) == (
        "best", "sine/gru-L2-uni-T10", 1, "b")
    assert (worst_label, worst["configuration"], worst_run["seed"], worst_run["metric"]) == (
        "worst", "sine/rnn_tanh-L3-uni-T20", 1, 0.683)
    assert best_and_worst_runs(summary.assign(n=0), runs) == []
