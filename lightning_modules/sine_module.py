"""Next-value regression on the sine task: a window in, the next sample out (the TensorFlow sine-prediction example;
docs/references.md)."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from lightning_modules.recurrent_task import RecurrentTaskModule


class SineModule(RecurrentTaskModule):
    """Reads a window of ``truncation`` samples and predicts the next one from each direction's final state
    (:meth:`readout`).

    Each Lightning batch stacks several shuffled minibatches, one optimizer step each; windows are
    independent, so no state is carried.

    Hooks: ``training_step``, ``validation_step``, ``test_step``, ``configure_optimizers`` (base class).
    Logged: ``train/loss`` (MSE); ``{val,test}/rmse``, ``/mae``. The last test predictions stay in
    ``test_predictions`` for the prediction-vs-truth plot.
    """

    def __init__(self, cell: str = "lstm", hidden_size: int = 30, num_layers: int = 2, bidirectional: bool = False,
                 dropout: float = 0.0, optimizer: str = "adagrad", lr: float = 0.1, grad_clip: float = 0.0,
                 lr_schedule: str = "constant", log_every: int = 50):
        super().__init__(cell, 1, hidden_size, num_layers, bidirectional, dropout, 1, optimizer, lr, grad_clip,
                         lr_schedule, log_every)
        self.save_hyperparameters()
        self.metrics = torch.nn.ModuleDict({
            split: torch.nn.ModuleDict({"rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError()})
            for split in ("val", "test")
        })
        self.test_predictions: torch.Tensor | None = None

    def readout(self, output: torch.Tensor) -> torch.Tensor:
        """What the head reads from the top layer's outputs (batch, truncation, hidden·directions): each
        direction's final state, the one that has read the whole window.

        Forward, that is the last step's output. Backward, the direction reads right to left and ends at the
        first step: its output at the last step has seen one sample only, so the final one is taken at step 0.
        """
        if self.backbone.num_directions == 1:
            return output[:, -1]
        hidden = output.shape[-1] // 2
        return torch.cat([output[:, -1, :hidden], output[:, 0, hidden:]], dim=-1)

    def model_step(self, x: torch.Tensor, y: torch.Tensor):
        """One minibatch: (MSE loss, predictions). x (batch, truncation, 1), y (batch,)."""
        output, _ = self.backbone(x)
        prediction = self.head(self.readout(output)).squeeze(-1)
        return F.mse_loss(prediction, y), prediction

    def step_inputs(self, batch):
        """The minibatches a Lightning batch stacks, one optimizer step each (base class contract)."""
        return zip(*batch)

    def step_loss(self, minibatch) -> torch.Tensor:
        return self.model_step(*minibatch)[0]

    def _evaluate(self, batch, split: str) -> torch.Tensor:
        x, y = batch
        _, prediction = self.model_step(x, y)
        for name, metric in self.metrics[split].items():
            metric.update(prediction, y)
            self.log(f"{split}/{name}", metric)
        return prediction

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self.test_predictions = self._evaluate(batch, "test").detach().cpu()
