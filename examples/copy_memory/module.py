"""The copy-memory LightningModule: per-step classification of the target symbol, trained with stateful truncated
BPTT inside each sequence."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric

from lightning_modules.recurrent_task import RecurrentTaskModule

from .data import CLASSES, INPUTS
from .floor import SYMBOLS


class CopyMemoryModule(RecurrentTaskModule):
    """Reads one-hot symbols and predicts the target class at every step.

    A minibatch of sequences is cut into windows of ``truncation`` steps, one optimizer step each; the state is
    carried (detached) from window to window and starts from zeros in every new minibatch. With ``truncation``
    at least the sequence length this is full BPTT; shorter, no gradient reaches from the recall back to the
    symbols, which the state must still carry forward.

    Logged: ``train/loss``; ``{val,test}/ce`` (nats per step, every step counted) and ``/recall`` (the share of
    the 10 copied symbols whose most likely class is right).
    """

    def __init__(self, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, truncation: int = 25, optimizer: str = "adam", lr: float = 0.005,
                 grad_clip: float = 1.0, lr_schedule: str = "constant", log_every: int = 50):
        super().__init__(cell, INPUTS, hidden_size, num_layers, bidirectional, dropout, CLASSES, optimizer, lr,
                         grad_clip, lr_schedule, log_every)
        self.save_hyperparameters()
        self.truncation = truncation
        self.state = None
        self.metrics = torch.nn.ModuleDict({split: torch.nn.ModuleDict({"ce": MeanMetric(), "recall": MeanMetric()})
                                            for split in ("val", "test")})

    def windows(self, batch):
        """The ``truncation``-step windows of a minibatch (the last one may be shorter), state reset first."""
        x, y = batch
        self.state = None
        return ((x[:, i : i + self.truncation], y[:, i : i + self.truncation])
                for i in range(0, x.shape[1], self.truncation))

    def model_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One window from the carried state: (mean cross-entropy per step, logits)."""
        output, final = self.backbone(F.one_hot(x, INPUTS).float(), self.state)
        self.state = self.backbone.carry(final)
        logits = self.head(output)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten()), logits

    def step_inputs(self, batch):
        return self.windows(batch)

    def step_loss(self, window) -> torch.Tensor:
        return self.model_step(*window)[0]

    def _evaluate(self, batch, split: str) -> None:
        logits = torch.cat([self.model_step(x, y)[1] for x, y in self.windows(batch)], dim=1)
        y = batch[1]
        self.metrics[split]["ce"].update(F.cross_entropy(logits.flatten(0, 1), y.flatten()), weight=y.numel())
        recalled = (logits[:, -SYMBOLS:].argmax(-1) == y[:, -SYMBOLS:]).float()
        self.metrics[split]["recall"].update(recalled.mean(), weight=recalled.numel())
        for name, metric in self.metrics[split].items():
            self.log(f"{split}/{name}", metric)

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
