"""The sine task's windows, its disjoint splits and its baselines (the TensorFlow sine example)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.running.train import build
from datamodules.sine import SineDataModule, last_value_rmse, linear_ar_rmse, make_windows, sine_series


def sample_indices(values: torch.Tensor, frequency: float, gap: float) -> torch.Tensor:
    """Invert a noise-free sine whose phase stays below pi/2: the index k of every sample."""
    return torch.round(torch.asin(values.double()) / (frequency * gap)).long()


@pytest.mark.parametrize("truncation", [10, 3])
def test_splits_are_disjoint_consecutive_segments_in_time(truncation):
    # Phase below pi/2 over the whole range, so each value names its sample index.
    frequency, gap = 1.0, 1e-4
    dm = SineDataModule(truncation=truncation, train_examples=2_000, val_examples=300, test_examples=400,
                        gap=gap, frequency=frequency)
    dm.setup()
    assert frequency * gap * (2_000 + 400 + 2 * truncation) < math.pi / 2
    spans = {}
    for split, (x, y) in dm.splits.items():
        kx = sample_indices(x[..., 0], frequency, gap)
        ky = sample_indices(y, frequency, gap)
        # Each window is `truncation` consecutive samples and its target is the very next one.
        first = kx[:, 0]
        assert torch.equal(kx, first[:, None] + torch.arange(truncation))
        assert torch.equal(ky, first + truncation)
        # Consecutive windows start one sample apart.
        assert torch.equal(first, first[0] + torch.arange(len(first)))
        spans[split] = (int(kx.min()), int(ky.max()))
    n_train = 2_000 - 300 - truncation
    assert spans["train"] == (0, n_train + truncation - 1)
    # No sample (input or target) is shared: each split starts after the previous one's last target.
    assert spans["train"][1] < spans["val"][0]
    assert spans["val"][1] < spans["test"][0]
    # The test segment starts right after the training range, as in the TensorFlow example.
    assert spans["test"][0] == 2_000 + truncation
    assert spans["val"][1] == 2_000 + truncation - 1


def test_default_sizes_follow_the_tensorflow_example():
    dm = SineDataModule()
    dm.setup()
    h = dm.hparams
    assert (h.train_examples, h.val_examples, h.test_examples, h.truncation, h.gap) == (10_000, 1_000, 1_000, 10, 0.01)
    x, y = dm.splits["train"]
    assert x.shape == (10_000 - 1_000 - 10, 10, 1) and y.shape == (8_990,)
    assert dm.splits["val"][0].shape == (1_000, 10, 1)
    assert dm.splits["test"][0].shape == (1_000, 10, 1)
    assert dm.train_set.batches_per_epoch == 8_990 // 32
    # The first test window starts at sample 10,010: the values are those of the sine there.
    expected = sine_series(10_010, 10, 1.0, 1.0, 0.01)
    assert np.allclose(dm.splits["test"][0][0, :, 0].numpy(), expected, atol=1e-6)


def test_training_batches_cover_each_window_at_most_once_per_epoch_and_reshuffle():
    dm = SineDataModule(train_examples=700, val_examples=100, test_examples=100, batch_size=16, steps_per_item=5)
    dm.setup()
    x_all = dm.splits["train"][0]

    def epoch():
        return torch.cat([bx.reshape(-1, 10, 1) for bx, _ in dm.train_dataloader()])

    first, second = epoch(), epoch()
    assert len(first) == (590 // 16) * 16
    rows = {tuple(r.flatten().tolist()) for r in first}
    assert len(rows) == len(first)  # no window twice in one epoch
    assert rows <= {tuple(r.flatten().tolist()) for r in x_all}
    assert not torch.equal(first, second)  # a fresh permutation each epoch
    # Reproducible: the same seed shuffles the same way.
    dm2 = SineDataModule(train_examples=700, val_examples=100, test_examples=100, batch_size=16, steps_per_item=5)
    dm2.setup()
    assert torch.equal(torch.cat([bx.reshape(-1, 10, 1) for bx, _ in dm2.train_dataloader()]), first)


def test_targets_of_training_batches_match_their_windows():
    dm = SineDataModule(train_examples=700, val_examples=100, test_examples=100, batch_size=16, steps_per_item=5)
    dm.setup()
    lookup = {tuple(w.flatten().tolist()): float(t) for w, t in zip(*dm.splits["train"])}
    bx, by = next(iter(dm.train_dataloader()))
    assert bx.shape == (5, 16, 10, 1) and by.shape == (5, 16)
    for w, t in zip(bx.reshape(-1, 10, 1), by.reshape(-1)):
        assert lookup[tuple(w.flatten().tolist())] == float(t)


def test_noise_frequency_and_amplitude_are_configurable_through_the_config(tiny_cfg):
    data, _ = build(tiny_cfg("sine", frequency=3.0, amplitude=2.5, noise=0.2, seed=1))
    data.setup()
    assert (data.hparams.frequency, data.hparams.amplitude, data.hparams.noise) == (3.0, 2.5, 0.2)
    x, y = data.splits["test"]
    start = 700 + 10
    clean = sine_series(start, len(y) + 10, 3.0, 2.5, 0.01)
    residual = y.numpy() - clean[10:]
    assert residual.std() == pytest.approx(0.2, rel=0.2)
    assert abs(residual.mean()) < 0.06

    data0, _ = build(tiny_cfg("sine", frequency=3.0, amplitude=2.5))
    data0.setup()
    assert np.allclose(data0.splits["test"][1].numpy(), clean[10:], atol=1e-5)  # noise 0: the exact sine
    assert float(data0.splits["train"][1].abs().max()) == pytest.approx(2.5, abs=1e-3)

    # Noise depends on the seed and only on it.
    a, _ = build(tiny_cfg("sine", noise=0.2, seed=1))
    b, _ = build(tiny_cfg("sine", noise=0.2, seed=1))
    c, _ = build(tiny_cfg("sine", noise=0.2, seed=2))
    for d in (a, b, c):
        d.setup()
    assert torch.equal(a.splits["train"][1], b.splits["train"][1])
    assert not torch.equal(a.splits["train"][1], c.splits["train"][1])


def test_frequency_sets_the_period():
    dm = SineDataModule(train_examples=3_000, val_examples=100, test_examples=100, frequency=2.0)
    dm.setup()
    y = dm.splits["train"][1].numpy()
    # Zero crossings of sin(2 * 0.01 * k) are pi / 0.02 ≈ 157 samples apart.
    crossings = np.nonzero(np.diff(np.sign(y)))[0]
    assert np.diff(crossings).mean() == pytest.approx(math.pi / 0.02, abs=1.5)


def test_linear_ar_baseline_is_exact_on_a_pure_sine_and_last_value_is_not():
    dm = SineDataModule()
    base = dm.baselines()
    assert base["linear_ar_rmse"] < 1e-4
    assert base["last_value_rmse"] > 1e-3
    # Last value misses by about |derivative| * gap: RMS of cos * 0.01 = 0.01 / sqrt(2).
    assert base["last_value_rmse"] == pytest.approx(0.01 / math.sqrt(2), rel=0.1)


def test_linear_ar_baseline_is_not_exact_with_noise():
    dm = SineDataModule(noise=0.1)
    base = dm.baselines()
    assert base["linear_ar_rmse"] > 0.05  # the target's own noise cannot be predicted
    assert base["linear_ar_rmse"] < base["last_value_rmse"]


def test_baseline_functions_on_hand_computed_windows():
    x, y = make_windows(np.array([0.0, 1.0, 2.0, 3.0, 5.0]), 2)
    # Last value predicts 1, 2, 3 for targets 2, 3, 5: errors 1, 1, 2.
    assert last_value_rmse(x, y) == pytest.approx(math.sqrt((1 + 1 + 4) / 3))
    line = np.arange(30, dtype=np.float64) * 0.5 + 1.0
    assert linear_ar_rmse(make_windows(line[:20], 3), make_windows(line[15:], 3)) < 1e-6
