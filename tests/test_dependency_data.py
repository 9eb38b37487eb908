"""The dependency generator, its analytic floors and its stateful TBPTT batching (R2RT, "Recurrent Neural Networks in
Tensorflow I")."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from datamodules.dependency import DependencyDataModule, generate_dependency_series, split_into_streams
from datamodules.dependency_spec import check_dependency_spec, cross_entropy_floors, expected_cross_entropy
from lightning_modules.dependency_module import DependencyModule

N = 1_000_000


@pytest.fixture(scope="module")
def default_series():
    return generate_dependency_series(N, seed=123)


# --- the generator --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("x3, x8, expected", [(0, 0, 0.5), (1, 0, 1.0), (0, 1, 0.25), (1, 1, 0.75)])
def test_conditional_probabilities_match_seed_004(default_series, x3, x8, expected):
    x, y = default_series
    t = np.arange(8, N)
    mask = (x[t - 3] == x3) & (x[t - 8] == x8)
    cases = int(mask.sum())
    assert cases > 0.24 * N  # each case is a quarter of the steps: the inputs are fair and independent
    p = y[t][mask].mean()
    # About 250,000 steps per case: the standard error is at most 0.001.
    assert p == pytest.approx(expected, abs=0.005)
    if expected == 1.0:
        assert p == 1.0  # a certain outcome is never missed


def test_inputs_are_fair_coins_and_outputs_are_binary(default_series):
    x, y = default_series
    assert x.shape == y.shape == (N,)
    assert set(np.unique(x)) == {0, 1} and set(np.unique(y)) == {0, 1}
    assert x.mean() == pytest.approx(0.5, abs=0.003)
    # Y does not depend on lags other than 3 and 8: e.g. X_{t-1}, X_{t-5}.
    t = np.arange(8, N)
    for lag in (1, 5):
        diff = y[t][x[t - lag] == 1].mean() - y[t][x[t - lag] == 0].mean()
        assert abs(diff) < 0.005


def test_first_steps_use_warmup_inputs():
    """Y_0 already has its lagged inputs (drawn and dropped): P(Y_0=1) is never outside the generator's range."""
    ys = np.array([generate_dependency_series(1, seed=s, lags=(1,), weights=(1.0,), base=0.0)[1][0]
                   for s in range(400)])
    # If the warm-up inputs were zeros, Y_0 would always be 0; with fair warm-up inputs it is 1 half the time.
    assert 0.35 < ys.mean() < 0.65


def test_generation_is_deterministic_per_seed_and_differs_across_seeds():
    a = generate_dependency_series(10_000, seed=7)
    b = generate_dependency_series(10_000, seed=7)
    c = generate_dependency_series(10_000, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])
    # The split seeds a data module uses ([seed, split]) differ too.
    d = generate_dependency_series(10_000, seed=[7, 0])
    e = generate_dependency_series(10_000, seed=[7, 1])
    assert not np.array_equal(d[0], e[0])


# --- analytic floors ------------------------------------------------------------------------------------------


def test_default_floors_match_reference():
    floors = cross_entropy_floors()
    assert list(floors) == ["none", "first1", "all"]
    assert round(floors["none"], 4) == 0.6616
    assert round(floors["first1"], 4) == 0.5192
    assert round(floors["all"], 4) == 0.4545
    assert floors["none"] > floors["first1"] > floors["all"]


def brute_force_floors(weights, base) -> list[float]:
    """Enumerate all 2^K input combinations, group by the first k (known) inputs, average each group's entropy."""
    k_total = len(weights)
    prob = {bits: base + sum(w * b for w, b in zip(weights, bits)) for bits in itertools.product((0, 1), repeat=k_total)}
    floors = []
    for known in range(k_total + 1):
        groups: dict[tuple, list[float]] = {}
        for bits, p in prob.items():
            groups.setdefault(bits[:known], []).append(p)
        entropy = 0.0
        for members in groups.values():
            q = sum(members) / len(members)  # P(Y=1 | known inputs): the unknown ones are uniform
            h = -sum(v * math.log(v) for v in (q, 1 - q) if v > 0)
            entropy += h * len(members) / len(prob)
        floors.append(entropy)
    return floors


SPECS = [
    ((3, 8), (0.5, -0.25), 0.5),
    ((2, 5, 7), (0.3, -0.2, 0.1), 0.4),
    ((1, 4), (-0.5, 0.4), 0.6),
    ((6,), (0.5,), 0.25),
]


@pytest.mark.parametrize("lags, weights, base", SPECS)
def test_floors_match_brute_force(lags, weights, base):
    floors = cross_entropy_floors(weights, base)
    expected = brute_force_floors(weights, base)
    assert len(floors) == len(weights) + 1
    assert list(floors.values()) == pytest.approx(expected, abs=1e-12)
    for known, value in enumerate(expected):
        assert expected_cross_entropy(known, weights, base) == pytest.approx(value, abs=1e-12)
    # Knowing more never hurts.
    values = list(floors.values())
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("lags, weights, base", SPECS[1:3])
def test_floors_match_monte_carlo(lags, weights, base):
    """The cross-entropy of predicting P(Y=1 | first k inputs) on generated data approaches each floor."""
    x, y = generate_dependency_series(400_000, seed=5, lags=lags, weights=weights, base=base)
    t = np.arange(max(lags), len(x))
    lagged = [x[t - lag].astype(np.float64) for lag in lags]
    yt = y[t]
    floors = list(cross_entropy_floors(weights, base).values())
    for known in range(len(lags) + 1):
        q = base + 0.5 * sum(weights[known:]) + sum(w * xl for w, xl in zip(weights[:known], lagged[:known]))
        q = np.clip(q, 1e-12, 1 - 1e-12)
        ce = -np.mean(yt * np.log(q) + (1 - yt) * np.log(1 - q))
        assert ce == pytest.approx(floors[known], abs=0.004)


# --- invalid specs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lags, weights, base, field", [
    ((3, 8), (0.5, 0.25), 0.5, "weights"),  # P(Y=1) up to 1.25
    ((3, 8), (-0.5, -0.25), 0.5, "weights"),  # down to -0.25
    ((3,), (0.1,), 1.2, "base"),  # base itself outside [0, 1]
    ((3, 8), (0.5,), 0.5, "lags/weights"),  # mismatched lengths
    ((), (), 0.5, "lags/weights"),
    ((3, 3), (0.1, 0.1), 0.5, "lags"),
    ((0, 8), (0.1, 0.1), 0.5, "lags"),
])
def test_invalid_spec_raises_value_error_naming_the_field(lags, weights, base, field):
    for call in (lambda: check_dependency_spec(lags, weights, base),
                 lambda: generate_dependency_series(100, 0, lags, weights, base),
                 lambda: DependencyDataModule(lags=lags, weights=weights, base=base)):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert field in message
        assert "allowed" in message


def test_spec_reaching_exactly_0_and_1_is_valid_and_honoured():
    check_dependency_spec((1, 2), (0.5, -0.5), 0.5)  # P(Y=1) spans [0, 1] exactly
    x, y = generate_dependency_series(2_000, 0, (1, 2), (0.5, -0.5), 0.5)
    t = np.arange(2, 2_000)
    assert y[t][(x[t - 1] == 1) & (x[t - 2] == 0)].all()  # P = 1
    assert not y[t][(x[t - 1] == 0) & (x[t - 2] == 1)].any()  # P = 0


# --- streams and TBPTT segments -------------------------------------------------------------------------------


def test_split_into_streams_cuts_rows_and_drops_remainder():
    series = np.arange(23, dtype=np.uint8)
    streams = split_into_streams(series, 4)
    assert streams.shape == (4, 5)
    assert streams[1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="series_length"):
        split_into_streams(series[:3], 4)


@pytest.mark.parametrize("truncation, segment_steps", [(10, 200), (7, 50), (1, 3)])
def test_segments_concatenated_in_time_reproduce_each_stream(truncation, segment_steps):
    length, batch, seed = 12_345, 8, 4
    dm = DependencyDataModule(truncation=truncation, batch_size=batch, series_length=length, eval_length=3_001,
                              seed=seed, segment_steps=segment_steps)
    dm.setup("fit")
    for split, loader, split_seed, n in ((0, dm.train_dataloader(), [seed, 0], length),
                                         (1, dm.val_dataloader(), [seed, 1], 3_001),
                                         (2, dm.test_dataloader(), [seed, 2], 3_001)):
        x, y = generate_dependency_series(n, split_seed)
        steps = n // batch
        usable = steps // truncation * truncation
        segments = list(loader)
        assert all(sx.shape[0] == batch and sx.shape[2] == 1 and sy.shape[0] == batch for sx, sy in segments)
        # Every segment holds whole truncation windows, so no window straddles two Lightning batches.
        assert all(sx.shape[1] % truncation == 0 for sx, _ in segments)
        assert all(sx.shape[1] == dm.windows_per_segment * truncation for sx, _ in segments[:-1])
        cat_x = torch.cat([sx[..., 0] for sx, _ in segments], dim=1)
        cat_y = torch.cat([sy for _, sy in segments], dim=1)
        assert cat_x.shape == (batch, usable)
        for row in range(batch):
            stream = slice(row * steps, row * steps + usable)
            assert np.array_equal(cat_x[row].numpy().astype(np.uint8), x[stream])
            assert np.array_equal(cat_y[row].numpy().astype(np.uint8), y[stream])
        # Never shuffled: a second pass gives the same order (state flows from one segment to the next).
        again = list(loader)
        assert all(torch.equal(a[0], b[0]) for a, b in zip(segments, again))


def test_module_windows_split_a_segment_in_order():
    dm = DependencyDataModule(truncation=7, batch_size=4, series_length=4_000, eval_length=400, segment_steps=50)
    dm.setup("fit")
    module = DependencyModule(truncation=7)
    segment = next(iter(dm.train_dataloader()))
    windows = list(module.windows(segment))
    assert [w[0].shape[1] for w in windows] == [7] * dm.windows_per_segment
    assert torch.equal(torch.cat([w[0] for w in windows], dim=1), segment[0])
    assert torch.equal(torch.cat([w[1] for w in windows], dim=1), segment[1])


def test_splits_are_distinct_series_and_floors_follow_spec():
    dm = DependencyDataModule(truncation=5, batch_size=10, series_length=5_000, eval_length=5_000,
                              lags=(2, 5, 7), weights=(0.3, -0.2, 0.1), base=0.4)
    dm.setup()
    assert not torch.equal(dm.train_set.x, dm.val_set.x)
    assert not torch.equal(dm.val_set.x, dm.test_set.x)
    assert dm.floors == cross_entropy_floors((0.3, -0.2, 0.1), 0.4)
    assert list(dm.floors) == ["none", "first1", "first2", "all"]


def test_a_fresh_series_every_epoch_when_asked_and_seeded(tiny_cfg):
    """R2RT drew a new series each epoch; ``fresh_series`` does, seeded from the run's seed and the epoch."""
    def series(fresh: bool, epoch: int, seed: int = 3) -> torch.Tensor:
        dm = DependencyDataModule(truncation=5, batch_size=20, series_length=2_000, eval_length=2_000, seed=seed,
                                  fresh_series=fresh)
        dm.setup()
        return dm.train_series(epoch).x

    assert torch.equal(series(False, 1), series(False, 0))
    assert not torch.equal(series(True, 1), series(True, 0)) and torch.equal(series(True, 0), series(False, 0))
    assert torch.equal(series(True, 2), series(True, 2)) and not torch.equal(series(True, 2, seed=4),
                                                                            series(True, 2))
    from bench.running.train import fit_and_test

    _, data, _ = fit_and_test(tiny_cfg(epochs=2, max_steps=-1, fresh_series=True))
    assert data.train_epoch == 1  # the trainer asked for the second epoch's loader, and got a new series
