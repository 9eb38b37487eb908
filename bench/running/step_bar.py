"""The progress bar of ``rnn-bench train``: optimizer steps, not Lightning batches (a batch holds
``steps_per_batch`` of them), with the latest training loss and validation metric beside the count."""

from __future__ import annotations

import pytorch_lightning as pl
from tqdm import tqdm


class StepBar(pl.Callback):
    """Counts ``trainer.global_step`` (optimizer steps under manual optimization) against the run's budget and
    shows the newest values of ``keys`` the run's logger holds (:attr:`bench.running.train.RunLogger.latest`)."""

    def __init__(self, steps_per_batch: int, keys: tuple[str, ...]):
        self.steps_per_batch, self.keys = steps_per_batch, keys
        self.bar: tqdm | None = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        budget = trainer.estimated_stepping_batches * self.steps_per_batch  # bounded by epochs or by max_steps
        total = min(budget, trainer.max_steps) if trainer.max_steps > 0 else budget
        self.bar = tqdm(total=None if total == float("inf") else int(total), unit="step", desc="training",
                        dynamic_ncols=True, leave=True)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        self.bar.update(trainer.global_step - self.bar.n)
        latest = getattr(trainer.logger, "latest", {})
        shown = {key: f"{latest[key]:.4g}" for key in self.keys if key in latest}
        if shown:
            self.bar.set_postfix(shown, refresh=False)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
