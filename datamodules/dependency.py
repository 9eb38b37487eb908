"""The binary dependency ("echo") task of R2RT's "Recurrent Neural Networks in Tensorflow I": its seeded
generator and its stateful TBPTT batching. The generator's definition and analytic floors are in
:mod:`datamodules.dependency_spec`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.dependency_spec import check_dependency_spec, cross_entropy_floors


def generate_dependency_series(
    length: int,
    seed: int,
    lags: Sequence[int] = (3, 8),
    weights: Sequence[float] = (0.5, -0.25),
    base: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(x, y)``, two uint8 arrays of ``length`` steps, vectorized and seeded.

    ``max(lags)`` extra leading inputs are drawn and dropped so every Y_t has all its lagged inputs.

    >>> x, y = generate_dependency_series(10, seed=0)
    >>> x.shape, y.shape, x.dtype
    ((10,), (10,), dtype('uint8'))
    """
    check_dependency_spec(lags, weights, base)
    rng = np.random.default_rng(seed)
    warmup = max(lags)
    x_full = rng.integers(0, 2, size=length + warmup, dtype=np.uint8)
    p = np.full(length, base, dtype=np.float64)
    for lag, weight in zip(lags, weights):
        p += weight * x_full[warmup - lag : warmup - lag + length]
    y = (rng.random(length) < p).astype(np.uint8)
    return x_full[warmup:], y


def split_into_streams(series: np.ndarray, batch_size: int) -> torch.Tensor:
    """Cut one series into ``batch_size`` parallel streams (rows), dropping the remainder, as in R2RT's set-up."""
    steps = len(series) // batch_size
    if steps < 1:
        raise ValueError(f"series_length: {len(series)} is shorter than batch_size {batch_size}")
    return torch.from_numpy(series[: steps * batch_size].reshape(batch_size, steps).astype(np.float32))


class StreamSegments(Dataset):
    """Consecutive time segments of the parallel streams, in order: item i is ``(x, y)`` of shape (batch, steps).

    A segment holds several truncation windows; the LightningModule splits it and carries state between
    windows and between segments. Bundling windows amortizes the Trainer's per-batch cost.

    Window k covers steps ``[k·stride, k·stride + truncation)``. With the stride equal to the truncation
    (the default) windows tile the streams; with a shorter stride (BPTT(h; h′)) they overlap by
    ``truncation − stride`` steps, and so do consecutive segments, so that every window lies whole in one
    segment and the windows of all segments are exactly those of the uncut streams.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, truncation: int, windows_per_segment: int,
                 stride: int | None = None):
        if x.shape[1] < truncation:
            raise ValueError(f"truncation: {truncation} is longer than each stream ({x.shape[1]} steps)")
        self.truncation, self.stride = truncation, stride or truncation
        self.windows = (x.shape[1] - truncation) // self.stride + 1
        usable = (self.windows - 1) * self.stride + truncation
        self.x, self.y = x[:, :usable], y[:, :usable]
        self.windows_per_segment = windows_per_segment

    def __len__(self) -> int:
        return math.ceil(self.windows / self.windows_per_segment)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        first = i * self.windows_per_segment
        last = min(first + self.windows_per_segment, self.windows) - 1
        sl = slice(first * self.stride, last * self.stride + self.truncation)
        return self.x[:, sl], self.y[:, sl]


class DependencyDataModule(pl.LightningDataModule):
    """Train/val/test series of the dependency task, each cut into parallel streams for stateful TBPTT.

    Training windows advance by ``stride`` steps (default: ``truncation``); validation and test windows always
    tile their streams, so every style of truncation is evaluated alike. With ``fresh_series`` each epoch trains
    on a new series (:meth:`train_series`).

    Hooks: ``setup`` (generates the three series from their own seeds), ``train_dataloader``,
    ``val_dataloader``, ``test_dataloader`` (ordered segments, never shuffled: state flows between them).
    """

    def __init__(
        self,
        truncation: int = 10,
        batch_size: int = 200,
        series_length: int = 1_000_000,
        eval_length: int = 100_000,
        lags: Sequence[int] = (3, 8),
        weights: Sequence[float] = (0.5, -0.25),
        base: float = 0.5,
        seed: int = 0,
        segment_steps: int = 200,
        stride: int | None = None,
        fresh_series: bool = False,
    ):
        super().__init__()
        check_dependency_spec(lags, weights, base)
        self.save_hyperparameters()
        self.floors = cross_entropy_floors(weights, base)
        self.windows_per_segment = max(1, math.ceil(segment_steps / truncation))

    def _streams(self, length: int, seed: int, stride: int | None = None) -> StreamSegments:
        h = self.hparams
        x, y = generate_dependency_series(length, seed, h.lags, h.weights, h.base)
        return StreamSegments(
            split_into_streams(x, h.batch_size).unsqueeze(-1),
            split_into_streams(y, h.batch_size),
            h.truncation,
            self.windows_per_segment,
            stride,
        )

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "train_set"):
            return
        h = self.hparams
        # Three independent series: the split seeds are derived from the run seed, never shared.
        self.train_set, self.train_epoch = self.train_series(0), 0
        self.val_set = self._streams(h.eval_length, seed=[h.seed, 1])
        self.test_set = self._streams(h.eval_length, seed=[h.seed, 2])

    def _loader(self, dataset: Dataset) -> DataLoader:
        # Each item is already a whole batch: no per-sample indexing or collation.
        return DataLoader(dataset, batch_size=None, shuffle=False)

    def train_series(self, epoch: int) -> StreamSegments:
        """The training streams of ``epoch``: one series for every epoch, or with ``fresh_series`` a new one each
        epoch (R2RT drew a fresh series per epoch), seeded from the run's seed and the epoch."""
        h = self.hparams
        seed = [h.seed, 0, epoch] if h.fresh_series and epoch > 0 else [h.seed, 0]
        return self._streams(h.series_length, seed=seed, stride=h.stride)

    def train_dataloader(self) -> DataLoader:
        # Lightning asks again every epoch when the trainer reloads dataloaders (see bench.running.train).
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        if self.hparams.fresh_series and epoch != self.train_epoch:
            self.train_set, self.train_epoch = self.train_series(epoch), epoch
        return self._loader(self.train_set)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
