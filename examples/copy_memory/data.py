"""The copy-memory task's sequences (Hochreiter & Schmidhuber 1997; the set-up of Arjovsky et al. 2016), seeded,
and its data module. The layout of a sequence and its baseline: :mod:`floor`.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from .floor import ALPHABET, SYMBOLS

BLANK, DELIMITER = ALPHABET, ALPHABET + 1  # inputs 0..7 symbols, 8 blank, 9 delimiter; targets 0..8
INPUTS, CLASSES = ALPHABET + 2, ALPHABET + 1


def copy_sequences(count: int, delay: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` (input, target) sequences, int64 (count, delay + 20), seeded.

    >>> x, y = copy_sequences(1, 3, seed=0)
    >>> x[0, 10:].tolist(), (y[0, :13] == BLANK).all().item(), (y[0, 13:] == x[0, :10]).all().item()
    ([8, 8, 9, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], True, True)
    """
    symbols = np.random.default_rng(seed).integers(0, ALPHABET, size=(count, SYMBOLS))
    x = np.full((count, delay + 2 * SYMBOLS), BLANK)
    y = np.full_like(x, BLANK)
    x[:, :SYMBOLS], x[:, SYMBOLS + delay - 1] = symbols, DELIMITER
    y[:, -SYMBOLS:] = symbols
    return torch.from_numpy(x), torch.from_numpy(y)


class CopyMemoryDataModule(pl.LightningDataModule):
    """Training, validation and test sequences, each split from its own seed derived from the run's; a Lightning
    batch is one minibatch of sequences (its truncation windows are the optimizer steps)."""

    def __init__(self, delay: int, train_sequences: int, eval_sequences: int, batch_size: int, seed: int):
        super().__init__()
        self.delay, self.batch_size = delay, batch_size
        self.counts = {"train": train_sequences, "val": eval_sequences, "test": eval_sequences}
        self.seeds = {split: seed * 3 + i for i, split in enumerate(self.counts)}
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def setup(self, stage: str | None = None) -> None:
        for split, count in self.counts.items():
            self.splits.setdefault(split, copy_sequences(count, self.delay, self.seeds[split]))

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(TensorDataset(*self.splits[split]), batch_size=self.batch_size, shuffle=shuffle,
                          drop_last=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)  # shuffled by torch's generator, which the run's seed sets

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
