"""Per-step binary classification on the dependency task, trained with stateful truncated BPTT."""

from __future__ import annotations

import torch
from torchmetrics.classification import BinaryAccuracy

from lightning_modules.backbone import State
from lightning_modules.metrics import CrossEntropy, FloorGap, binary_cross_entropy_nats
from lightning_modules.recurrent_task import RecurrentTaskModule


class DependencyModule(RecurrentTaskModule):
    """Predicts P(Y_t = 1) at every step from the inputs so far.

    Truncated BPTT, TF-style as in seed 004: each Lightning batch is a time segment of the parallel streams;
    it is cut into windows of ``truncation`` steps, one optimizer step per window, and the final state of
    one window (detached, see :meth:`RecurrentBackbone.carry`) starts the next, across batches too. The
    carried state resets at the start of every training epoch and of every validation/test pass, which
    carry their own state so that a mid-epoch validation leaves training's state alone.

    Hooks: ``on_train_epoch_start``, ``training_step``, ``on_validation_epoch_start``, ``validation_step``,
    ``on_test_epoch_start``, ``test_step``, ``configure_optimizers`` (base class).
    Logged: ``train/loss``; ``{val,test}/ce`` (the loss), ``/acc``, ``/floor_gap`` (gap to the Bayes floor).
    """

    def __init__(self, cell: str = "lstm", hidden_size: int = 16, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, truncation: int = 10, optimizer: str = "adagrad", lr: float = 0.1,
                 grad_clip: float = 0.0, lr_schedule: str = "constant", log_every: int = 50,
                 floor: float = 0.0):
        super().__init__(cell, 1, hidden_size, num_layers, bidirectional, dropout, 1, optimizer, lr, grad_clip,
                         lr_schedule, log_every)
        self.save_hyperparameters()
        self.truncation = truncation
        self.train_state: State | None = None
        self.eval_state: State | None = None
        self.metrics = torch.nn.ModuleDict({
            split: torch.nn.ModuleDict({"ce": CrossEntropy(), "acc": BinaryAccuracy(), "floor_gap": FloorGap(floor)})
            for split in ("val", "test")
        })

    def model_step(self, x: torch.Tensor, y: torch.Tensor, state: State | None):
        """One window: (loss, logits, final state). x (batch, steps, 1), y (batch, steps)."""
        output, final = self.backbone(x, state)
        logits = self.head(output).squeeze(-1)
        return binary_cross_entropy_nats(logits, y), logits, final

    def windows(self, batch):
        x, y = batch
        return zip(x.split(self.truncation, dim=1), y.split(self.truncation, dim=1))

    def on_train_epoch_start(self) -> None:
        self.train_state = None

    def training_step(self, batch, batch_idx: int) -> None:
        losses = []
        for x, y in self.within_budget(self.windows(batch)):
            loss, _, final = self.model_step(x, y, self.train_state)
            self.optimize(loss)
            self.train_state = self.backbone.carry(final)
            losses.append(loss.detach())
        self.log_train_losses(losses)

    def _evaluate(self, batch, split: str) -> None:
        metrics = self.metrics[split]
        for x, y in self.windows(batch):
            _, logits, final = self.model_step(x, y, self.eval_state)
            self.eval_state = self.backbone.carry(final)
            metrics["ce"].update(logits, y)
            metrics["floor_gap"].update(logits, y)
            # Probabilities, not logits: BinaryAccuracy guesses logits only when a value leaves [0, 1].
            metrics["acc"].update(logits.sigmoid(), y)
        for name, metric in metrics.items():
            self.log(f"{split}/{name}", metric)

    def on_validation_epoch_start(self) -> None:
        self.eval_state = None

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        self.eval_state = None

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
