"""The sine-prediction task of the TensorFlow sine example (docs/references.md): a window of ``truncation`` samples predicts the next one.

Samples are ``amplitude * sin(frequency * gap * k) + noise``. Train, validation and test are disjoint
segments in time (train, then validation, then test), so no window of one split shares a sample with
another split.
"""

from __future__ import annotations

import math

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset


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


class SineDataModule(pl.LightningDataModule):
    """Train/val/test windows of a (noisy) sine.

    Hooks: ``setup`` (builds the three disjoint segments), ``train_dataloader`` (shuffled, groups of
    minibatches), ``val_dataloader`` and ``test_dataloader`` (in time order).
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
    ):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        h = self.hparams
        t = h.truncation
        # The TensorFlow example's layout: the training range yields train_examples windows, the test segment starts right
        # after it. Validation is carved from the end of the training range: its windows start after the last
        # training target, so the two share no sample.
        n_train = h.train_examples - h.val_examples - t
        if n_train < h.batch_size:
            raise ValueError(f"train_examples: {h.train_examples} leaves {n_train} training windows; "
                             f"allowed: at least batch_size ({h.batch_size}) after val_examples + truncation")
        lengths = {"train": n_train + t, "val": h.val_examples + t, "test": h.test_examples + t}
        starts = {"train": 0, "val": n_train + t, "test": h.train_examples + t}
        rng = np.random.default_rng([h.seed, 3])
        self.splits = {}
        for split in ("train", "val", "test"):
            clean = sine_series(starts[split], lengths[split], h.frequency, h.amplitude, h.gap)
            noisy = clean + h.noise * rng.standard_normal(len(clean)) if h.noise > 0 else clean
            self.splits[split] = make_windows(noisy, t)
        self.train_set = ShuffledBatches(*self.splits["train"], h.batch_size, h.steps_per_item, seed=h.seed)

    def baselines(self) -> dict[str, float]:
        """Test RMSE of the last-value and the least-squares linear AR baselines on the same windows."""
        self.setup()
        test = self.splits["test"]
        return {"last_value_rmse": last_value_rmse(*test), "linear_ar_rmse": linear_ar_rmse(self.splits["train"], test)}

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
