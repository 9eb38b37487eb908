"""The sine-prediction task of the TensorFlow sine example (docs/references.md): a window of ``truncation`` samples predicts the next one.

Samples are ``amplitude * sin(frequency * gap * k) + noise``. Two splits:

- **time split** (the TensorFlow example's, the default): one frequency; train, validation and test are disjoint
  segments in time (train, then validation, then test), so no window of one split shares a sample with another.
  A pure sine is periodic, so every test window has near-copies in the training range: a lookup of training
  windows (:func:`nearest_neighbour_rmse`) scores well, and this split cannot tell memorizing from modelling.
- **frequency split** (``test_frequencies`` given): training windows come from the ``frequencies`` only;
  validation and test windows from the held-out ``test_frequencies`` (validation first in time, then test).
  No test window comes from a frequency seen in training, so lookup fails and a model must have learned how a
  sine continues.
"""

from __future__ import annotations

import math

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.sine_floor import kalman_predictor


def sine_series(start: int, length: int, frequency: float, amplitude: float, gap: float) -> np.ndarray:
    """Noise-free samples ``start … start+length-1``.

    >>> sine_series(0, 3, 1.0, 1.0, 0.5).round(4).tolist()
    [0.0, 0.4794, 0.8415]
    """
    k = np.arange(start, start + length, dtype=np.float64)
    return amplitude * np.sin(frequency * gap * k)


def make_windows(series: np.ndarray, truncation: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows of ``truncation`` consecutive values (batch, truncation, 1) and the value after each (batch,).

    >>> x, y = make_windows(np.arange(5.0), 3)
    >>> x.squeeze(-1).tolist(), y.tolist()
    ([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]], [3.0, 4.0])
    """
    values = torch.as_tensor(series, dtype=torch.float32)
    x = values.unfold(0, truncation, 1)[:-1]
    return x.unsqueeze(-1).contiguous(), values[truncation:].clone()


def last_value_rmse(x: torch.Tensor, y: torch.Tensor) -> float:
    """RMSE of predicting each target by the window's last value: the trivial baseline."""
    return float(torch.sqrt(torch.mean((x[:, -1, 0] - y) ** 2)))


def linear_ar_rmse(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Test RMSE of a least-squares linear autoregressive model (with intercept) fitted on the train windows.

    A pure sine is an exact AR(2), so this is the floor a learned model is measured against.
    """

    def design(x: torch.Tensor) -> torch.Tensor:
        flat = x[:, :, 0].double()
        return torch.cat([flat, torch.ones(len(flat), 1, dtype=torch.float64)], dim=1)

    coef = torch.linalg.lstsq(design(train[0]), train[1].double().unsqueeze(1)).solution
    pred = (design(test[0]) @ coef).squeeze(1)
    return float(torch.sqrt(torch.mean((pred - test[1].double()) ** 2)))


def nearest_neighbour_rmse(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                           chunk: int = 512) -> float:
    """Test RMSE of a lookup: each test window predicts the value that followed its nearest training window
    (Euclidean distance over the window; the first of equals).

    It models nothing, so where it scores well the test measures interpolation, not modelling. Distances are
    taken in float64 (neighbouring windows of a slow sine differ by ~1e-4 a sample, so float32's rounding of
    the distance matrix product could rank them wrongly) and ``chunk`` test windows at a time, so 10,000 ×
    10,000 windows need ~40 MB at once, not 800.

    >>> train = make_windows(np.array([0.0, 1.0, 2.0, 10.0, 11.0, 30.0]), 2)
    >>> nearest_neighbour_rmse(train, (torch.tensor([[[10.2], [11.1]]]), torch.tensor([29.0])))
    1.0
    """
    reference, followers = train[0][:, :, 0].double(), train[1].double()
    squared = []
    for start in range(0, len(test[1]), chunk):
        windows = test[0][start : start + chunk, :, 0].double()
        nearest = torch.cdist(windows, reference).argmin(dim=1)
        squared.append((followers[nearest] - test[1][start : start + chunk].double()) ** 2)
    return float(torch.sqrt(torch.cat(squared).mean()))


def window_ar2_rmse(test: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Test RMSE of an AR(2) fitted to each window on its own: ``s[k+1] + s[k-1] = 2c·s[k]`` by least squares
    for c, then the next value is ``2c·s[T] − s[T-1]``. NaN for windows shorter than 3 samples.

    Every pure sine obeys that recursion with ``c = cos(frequency · gap)``, so this predictor needs no training
    data and no knowledge of the frequency: exact on a noise-free sine of any frequency, it shows that the
    frequency split is solvable by modelling from the window alone.

    >>> x, y = make_windows(sine_series(0, 14, 3.0, 2.0, 0.1), 4)
    >>> window_ar2_rmse((x, y)) < 1e-6
    True
    """
    if test[0].shape[1] < 3:
        return math.nan
    x, y = test[0][:, :, 0].double(), test[1].double()
    middle = x[:, 1:-1]
    c = (middle * (x[:, 2:] + x[:, :-2])).sum(1) / (2 * (middle * middle).sum(1))
    prediction = 2 * c * x[:, -1] - x[:, -2]
    return float(torch.sqrt(torch.mean((prediction - y) ** 2)))


class ShuffledBatches(Dataset):
    """Item i is ``steps_per_item`` shuffled minibatches, stacked: (steps, batch, truncation, 1) and (steps, batch).

    A fresh permutation per epoch, drawn from a generator seeded by the run, so shuffling is reproducible.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, steps_per_item: int, seed: int):
        self.x, self.y, self.batch_size, self.steps_per_item = x, y, batch_size, steps_per_item
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_per_epoch = len(x) // batch_size
        self.order = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return math.ceil(self.batches_per_epoch / self.steps_per_item)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i == 0:
            self.order = torch.randperm(len(self.x), generator=self.generator)
        first = i * self.steps_per_item
        steps = min(self.steps_per_item, self.batches_per_epoch - first)
        idx = self.order[first * self.batch_size : (first + steps) * self.batch_size]
        shape = (steps, self.batch_size)
        return self.x[idx].reshape(*shape, *self.x.shape[1:]), self.y[idx].reshape(shape)


Segment = tuple[float, int, int]  # (frequency, index of its first sample, number of samples)


def spread(total: int, parts: int) -> list[int]:
    """``total`` windows shared out over ``parts`` frequencies as evenly as whole numbers allow.

    >>> spread(10, 3)
    [4, 3, 3]
    """
    return [total // parts + (i < total % parts) for i in range(parts)]


def time_split(frequency: float, truncation: int, train_examples: int, val_examples: int,
               test_examples: int) -> dict[str, list[Segment]]:
    """The TensorFlow example's layout: the training range yields ``train_examples`` windows and the test
    segment starts right after it. Validation is carved from the end of the training range: its windows start
    after the last training target, so the two share no sample."""
    t = truncation
    n_train = train_examples - val_examples - t
    return {"train": [(frequency, 0, n_train + t)], "val": [(frequency, n_train + t, val_examples + t)],
            "test": [(frequency, train_examples + t, test_examples + t)]}


def frequency_split(frequencies: tuple[float, ...], test_frequencies: tuple[float, ...], truncation: int,
                    train_examples: int, val_examples: int, test_examples: int) -> dict[str, list[Segment]]:
    """Training windows from ``frequencies``, validation and test windows from ``test_frequencies``: per
    held-out frequency a validation segment, then right after it a test segment (no shared sample).

    >>> frequency_split((1.0, 2.0), (3.0,), 2, 10, 4, 5)
    {'train': [(1.0, 0, 7), (2.0, 0, 7)], 'val': [(3.0, 0, 6)], 'test': [(3.0, 6, 7)]}
    """
    t = truncation
    val, test = spread(val_examples, len(test_frequencies)), spread(test_examples, len(test_frequencies))
    return {"train": [(f, 0, n + t) for f, n in zip(frequencies, spread(train_examples, len(frequencies)))],
            "val": [(f, 0, n + t) for f, n in zip(test_frequencies, val)],
            "test": [(f, v + t, n + t) for f, v, n in zip(test_frequencies, val, test)]}


class SineDataModule(pl.LightningDataModule):
    """Train/val/test windows of a (noisy) sine: the time split, or the frequency split when
    ``test_frequencies`` is given (then ``frequencies`` are the training frequencies and ``frequency`` is unused).

    Hooks: ``setup`` (builds the disjoint segments), ``train_dataloader`` (shuffled, groups of
    minibatches), ``val_dataloader`` and ``test_dataloader`` (in time order, one frequency after another).
    """

    def __init__(
        self,
        truncation: int = 10,
        batch_size: int = 32,
        train_examples: int = 10_000,
        val_examples: int = 1_000,
        test_examples: int = 1_000,
        gap: float = 0.01,
        frequency: float = 1.0,
        amplitude: float = 1.0,
        noise: float = 0.0,
        seed: int = 0,
        steps_per_item: int = 20,
        frequencies: tuple[float, ...] = (),
        test_frequencies: tuple[float, ...] = (),
    ):
        super().__init__()
        self.save_hyperparameters()

    def segments(self) -> dict[str, list[Segment]]:
        h = self.hparams
        if h.test_frequencies:
            if h.train_examples < max(h.batch_size, len(h.frequencies)):
                raise ValueError(f"train_examples: {h.train_examples}; allowed: at least batch_size ({h.batch_size}) "
                                 f"and one window per training frequency ({len(h.frequencies)})")
            return frequency_split(tuple(h.frequencies), tuple(h.test_frequencies), h.truncation, h.train_examples,
                                   h.val_examples, h.test_examples)
        n_train = h.train_examples - h.val_examples - h.truncation
        if n_train < h.batch_size:
            raise ValueError(f"train_examples: {h.train_examples} leaves {n_train} training windows; "
                             f"allowed: at least batch_size ({h.batch_size}) after val_examples + truncation")
        return time_split(h.frequency, h.truncation, h.train_examples, h.val_examples, h.test_examples)

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        h = self.hparams
        rng = np.random.default_rng([h.seed, 3])
        self.splits, self.window_frequencies = {}, {}
        for split, segments in self.segments().items():
            windows, frequencies = [], []
            for frequency, start, length in segments:  # noise drawn segment by segment, in split order
                clean = sine_series(start, length, frequency, h.amplitude, h.gap)
                noisy = clean + h.noise * rng.standard_normal(len(clean)) if h.noise > 0 else clean
                windows.append(make_windows(noisy, h.truncation))
                frequencies.append(torch.full((length - h.truncation,), frequency, dtype=torch.float64))
            self.splits[split] = tuple(torch.cat(parts) for parts in zip(*windows))
            self.window_frequencies[split] = torch.cat(frequencies)  # the frequency each window comes from
        self.train_set = ShuffledBatches(*self.splits["train"], h.batch_size, h.steps_per_item, seed=h.seed)

    def baselines(self) -> dict[str, float]:
        """Test RMSE of the baselines on the same windows: last value, least-squares linear AR and nearest
        training window (fitted on, or looked up in, the training windows), and the AR(2) refitted per window."""
        self.setup()
        train, test = self.splits["train"], self.splits["test"]
        return {"last_value_rmse": last_value_rmse(*test), "linear_ar_rmse": linear_ar_rmse(train, test),
                "nearest_neighbour_rmse": nearest_neighbour_rmse(train, test), "window_ar2_rmse": window_ar2_rmse(test)}

    def kalman_floor(self) -> float:
        """The RMS over test windows of the best linear one-step predictor's error, knowing each window's
        frequency (:func:`datamodules.sine_floor.kalman_predictor`); depends on the settings, not the data."""
        self.setup()
        h = self.hparams
        frequencies, counts = torch.unique(self.window_frequencies["test"], return_counts=True)
        variances = [kalman_predictor(h.truncation, h.noise, float(f) * h.gap, h.amplitude)[1] for f in frequencies]
        return math.sqrt(sum(v * int(n) for v, n in zip(variances, counts)) / int(counts.sum()))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=None, shuffle=False)

    def _eval_loader(self, split: str) -> DataLoader:
        x, y = self.splits[split]
        # One item = the whole split: at most a few thousand tiny windows, one forward pass.
        return DataLoader([(x, y)], batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
