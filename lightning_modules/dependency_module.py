"""Per-step binary classification on the dependency task, trained with stateful truncated BPTT."""

from __future__ import annotations

import torch
from torchmetrics.classification import BinaryAccuracy

from lightning_modules.backbone import State
from lightning_modules.metrics import CrossEntropy, FloorGap, binary_cross_entropy_nats
from lightning_modules.recurrent_task import RecurrentTaskModule


class DependencyModule(RecurrentTaskModule):
    """Predicts P(Y_t = 1) at every step from the inputs so far.

    Truncated BPTT, TF-style as in R2RT's set-up: each Lightning batch is a time segment of the parallel streams;
    it is cut into windows of ``truncation`` steps, one optimizer step per window, and the final state of
    one window (detached, see :meth:`RecurrentBackbone.carry`) starts the next, across batches too. The
    carried state resets at the start of every training epoch and of every validation/test pass, which
    carry their own state so that a mid-epoch validation leaves training's state alone.

    Truncation styles (``stride`` h′ < ``truncation`` h): Williams & Peng's (1990) BPTT(h; h′), compared in
    R2RT's "Styles of Truncated Backpropagation". Training windows of h steps advance by h′ steps; each
    window's loss counts only its last h′ outputs, so every counted output's error travels at least h − h′
    steps back (h − 1 with h′ = 1: "true" truncation), where TF-style (h′ = h) gives the first output of a
    window none. Each window starts from the state after the first h′ steps of the previous one, detached.
    Evaluation is the same for every style.

    Evaluation skips each stream's first ``eval_skip`` steps (the longest lag): every evaluation stream starts
    from a zero state, and its first outputs depend on inputs from before the stream that no model could see, so
    counting them would put the Bayes floor out of reach (an oracle limited to in-stream history scores about
    0.4566 against the 0.4545 floor; with the skip, the floor: tests/test_stream_starts.py).

    Hooks: ``on_train_epoch_start``, ``training_step``, ``on_validation_epoch_start``, ``validation_step``,
    ``on_test_epoch_start``, ``test_step``, ``configure_optimizers`` (base class).
    Logged: ``train/loss``; ``{val,test}/ce`` (the loss), ``/acc``, ``/floor_gap`` (gap to the Bayes floor).
    """

    def __init__(self, cell: str = "lstm", hidden_size: int = 16, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, truncation: int = 10, optimizer: str = "adagrad", lr: float = 0.1,
                 grad_clip: float = 0.0, lr_schedule: str = "constant", log_every: int = 50,
                 floor: float = 0.0, stride: int | None = None, eval_skip: int = 0):
        super().__init__(cell, 1, hidden_size, num_layers, bidirectional, dropout, 1, optimizer, lr, grad_clip,
                         lr_schedule, log_every)
        self.save_hyperparameters()
        self.truncation = truncation
        self.stride = stride or truncation
        if not 1 <= self.stride <= truncation:
            raise ValueError(f"tbptt_stride: {stride}; allowed: an integer in [1, truncation ({truncation})]")
        self.eval_skip = eval_skip
        self.train_state: State | None = None
        self.eval_state: State | None = None
        self.eval_position = 0  # steps of the evaluation streams read so far
        self.metrics = torch.nn.ModuleDict({
            split: torch.nn.ModuleDict({"ce": CrossEntropy(), "acc": BinaryAccuracy(), "floor_gap": FloorGap(floor)})
            for split in ("val", "test")
        })

    def model_step(self, x: torch.Tensor, y: torch.Tensor, state: State | None):
        """One window: (loss, logits, final state). x (batch, steps, 1), y (batch, steps)."""
        output, final = self.backbone(x, state)
        logits = self.head(output).squeeze(-1)
        return binary_cross_entropy_nats(logits, y), logits, final

    def windows(self, batch, stride: int | None = None):
        """The ``truncation``-step windows of a segment, starting every ``stride`` steps (default: tiling it)."""
        x, y = batch
        stride = stride or self.truncation
        starts = range(0, x.shape[1] - self.truncation + 1, stride)
        return ((x[:, i : i + self.truncation], y[:, i : i + self.truncation]) for i in starts)

    def train_window(self, x: torch.Tensor, y: torch.Tensor, state: State | None):
        """One training window: (loss over its last ``stride`` outputs, the state the next window starts from).

        TF-style (stride = truncation): the whole window counts and the next starts from its final state.
        Otherwise the next window starts ``stride`` steps later, from the state at that point. One direction:
        the pass is split there, which is the same computation as one pass and gives that state for free.
        Bidirectional: a layer above the first sees the backward direction, which reads the whole window, so
        the state is that of a separate pass over the first ``stride`` steps (no gradient: it is carried
        detached anyway), then :meth:`RecurrentBackbone.carry` zeroes its backward rows as for any window.
        """
        s = self.stride
        if s == self.truncation:
            loss, _, final = self.model_step(x, y, state)
            return loss, self.backbone.carry(final)
        if self.backbone.num_directions == 1:
            head, after_stride = self.backbone(x[:, :s], state)
            tail, _ = self.backbone(x[:, s:], after_stride)
            output = torch.cat((head, tail), dim=1)[:, -s:]
        else:
            output = self.backbone(x, state)[0][:, -s:]
            with torch.no_grad():
                _, after_stride = self.backbone(x[:, :s], state)
        logits = self.head(output).squeeze(-1)
        return binary_cross_entropy_nats(logits, y[:, -s:]), self.backbone.carry(after_stride)

    def eval_windows(self, batch):
        """What evaluation runs the model over: a unidirectional model's outputs do not depend on where the
        windows are cut (its state is carried, and nothing is detached for a gradient), so a whole segment
        goes through in one call; a bidirectional model's backward direction reads each window, so it is
        evaluated window by window, exactly as it trains."""
        return [batch] if self.backbone.num_directions == 1 else self.windows(batch)

    def on_train_epoch_start(self) -> None:
        self.train_state = None

    def step_inputs(self, batch):
        """One optimizer step's input per training window (base class contract)."""
        return self.windows(batch, self.stride)

    def step_loss(self, window) -> torch.Tensor:
        """The window's loss; the state the next window starts from is kept (base class contract)."""
        loss, self.train_state = self.train_window(*window, self.train_state)
        return loss

    def _evaluate(self, batch, split: str) -> None:
        metrics = self.metrics[split]
        kept_logits, kept_targets = [], []
        for x, y in self.eval_windows(batch):
            output, final = self.backbone(x, self.eval_state)
            self.eval_state = self.backbone.carry(final)
            keep = counted(self.eval_position, x.shape[1], self.eval_skip)
            self.eval_position += x.shape[1]
            kept_logits.append(self.head(output[:, keep]).squeeze(-1))
            kept_targets.append(y[:, keep])
        # The metrics are sums over outputs: one update per segment, not one per window (three torchmetrics
        # updates cost more than a bidirectional model's T=1 window).
        logits, y = torch.cat(kept_logits, dim=1), torch.cat(kept_targets, dim=1)
        if y.shape[1] > 0:
            metrics["ce"].update(logits, y)
            metrics["floor_gap"].update(logits, y)
            # Probabilities, not logits: BinaryAccuracy guesses logits only when a value leaves [0, 1].
            metrics["acc"].update(logits.sigmoid(), y)
        for name, metric in metrics.items():
            self.log(f"{split}/{name}", metric)

    def on_validation_epoch_start(self) -> None:
        self.eval_state, self.eval_position = None, 0

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        self.eval_state, self.eval_position = None, 0

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")


def counted(position: int, length: int, skip: int) -> slice:
    """The steps of a window starting ``position`` steps into its streams that evaluation counts: those at or
    after ``skip``.

    >>> counted(0, 5, 8), counted(5, 5, 8), counted(10, 5, 8)
    (slice(5, 5, None), slice(3, 5, None), slice(0, 5, None))
    """
    first = min(length, max(0, skip - position))
    return slice(first, length)
