"""What both task modules share: the backbone, the optimizer, manual optimization and divergence detection."""

from __future__ import annotations

import itertools
import time

import pytorch_lightning as pl
import torch

from lightning_modules.backbone import RecurrentBackbone
from lightning_modules.choices import OPTIMIZER_NAMES

OPTIMIZERS = dict(zip(OPTIMIZER_NAMES, (torch.optim.Adagrad, torch.optim.Adam, torch.optim.SGD)))


class DivergedError(RuntimeError):
    """Training loss became NaN or infinite; ``step`` is the optimizer step at which it happened."""

    def __init__(self, step: int, value: float):
        super().__init__(f"loss became {value} at step {step}")
        self.step = step


class RecurrentTaskModule(pl.LightningModule):
    """Base for the task modules: a :class:`RecurrentBackbone`, a linear head and manual optimization.

    Lightning 2.x has no built-in truncated BPTT, so every module here optimizes manually: one Lightning
    batch holds several optimizer steps (truncation windows or minibatches), each run by :meth:`optimize`.
    That is also what keeps the Trainer's per-batch work small against a small RNN's step.

    Hooks: ``configure_optimizers``, ``training_step`` (over the subclass's ``step_inputs`` and ``step_loss``);
    subclasses add ``validation_step`` and ``test_step``.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                 dropout: float, output_size: int, optimizer: str, lr: float, grad_clip: float,
                 lr_schedule: str = "constant", log_every: int = 50):
        super().__init__()
        self.automatic_optimization = False
        self.backbone = RecurrentBackbone(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
        self.head = torch.nn.Linear(self.backbone.output_size, output_size)
        self.optimizer_name, self.lr, self.grad_clip, self.lr_schedule = optimizer, lr, grad_clip, lr_schedule
        self.log_every = log_every

    def configure_optimizers(self):
        if self.optimizer_name not in OPTIMIZERS:
            raise ValueError(f"optimizer: {self.optimizer_name!r}; allowed: {', '.join(OPTIMIZERS)}")
        optimizer = OPTIMIZERS[self.optimizer_name](self.parameters(), lr=self.lr)
        if self.lr_schedule == "constant":
            return optimizer
        if self.trainer.max_steps < 1:
            raise ValueError(f"lr_schedule: {self.lr_schedule!r} needs max_steps; allowed without it: constant")
        # Stepped once per optimizer step (manual optimization), down to zero at max_steps.
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.trainer.max_steps)
        return {"optimizer": optimizer, "lr_scheduler": cosine}

    def on_train_start(self) -> None:
        self.fit_started = time.perf_counter()
        # Looked up once per fit, not at every step: each lookup walks the Trainer (a few µs a step).
        self.step_optimizer = self.optimizers()
        self.step_schedule = self.lr_schedulers() if self.lr_schedule != "constant" else None
        self.step_parameters = [p for p in self.parameters() if p.requires_grad]

    def on_train_end(self) -> None:
        # Time inside the training loop only (steps and validations), without Trainer set-up and teardown.
        self.train_loop_s = time.perf_counter() - self.fit_started

    def log_step(self) -> None:
        # Lightning would put its batch count on the x-axis; a batch holds many optimizer steps, so every
        # logged value carries the optimizer step instead ("step" is Lightning's key for that).
        self.log("step", float(self.global_step))

    def on_validation_epoch_end(self) -> None:
        self.log_step()
        # Wall time since training began, beside each validation result: gives time-to-target.
        if self.trainer.state.fn == "fit" and hasattr(self, "fit_started"):
            self.log("val/elapsed_s", time.perf_counter() - self.fit_started)

    def on_test_epoch_end(self) -> None:
        self.log_step()

    def step_inputs(self, batch):
        """What each optimizer step of a Lightning batch trains on, in order (subclasses)."""
        raise NotImplementedError

    def step_loss(self, inputs) -> torch.Tensor:
        """The loss of one optimizer step, keeping whatever state carries to the next (subclasses)."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx: int) -> None:
        """Every optimizer step the batch holds, within the step budget: :meth:`step_loss`, :meth:`optimize`.
        A plain PyTorch loop over the same two methods (bench.cli.perf) is the reference for Lightning's overhead."""
        losses = []
        for inputs in self.within_budget(self.step_inputs(batch)):
            loss = self.step_loss(inputs)
            self.optimize(loss)
            losses.append(loss.detach())
        self.log_train_losses(losses)

    def within_budget(self, steps):
        """The first of ``steps`` that fit in the Trainer's ``max_steps``: a batch holds several steps, and
        stopping mid-batch keeps the step budget exact."""
        max_steps = self.trainer.max_steps if self._trainer is not None else -1
        if max_steps < 0:
            return steps
        return itertools.islice(steps, max(0, max_steps - self.global_step))

    def optimize(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss``: backward, optional gradient-norm clipping, step.

        The torch optimizer is stepped directly, between the two hooks by which Lightning's manual-optimization
        loop counts a step (``global_step``, and so ``max_steps``). Runs here are full precision on one device,
        where Lightning's wrappers (``manual_backward``, ``clip_gradients``, ``LightningOptimizer.step`` with its
        precision plugin, closure and ``on_before_optimizer_step`` hooks) compute nothing more, yet cost ~60 µs a
        step: 5-10 % of a small RNN's whole step (``make perf`` measures what is left against a plain loop).
        """
        lightning_optimizer = self.step_optimizer
        optimizer = lightning_optimizer.optimizer
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.step_parameters, self.grad_clip)
        lightning_optimizer._on_before_step()  # noqa: SLF001 - the loop's step counter, set for each batch
        optimizer.step()
        lightning_optimizer._on_after_step()  # noqa: SLF001
        if self.step_schedule is not None:
            self.step_schedule.step()

    def log_train_losses(self, losses: list[torch.Tensor]) -> None:
        """Check a batch's per-step losses for divergence (one host sync per batch) and log their mean."""
        stacked = torch.stack(losses)
        finite = torch.isfinite(stacked)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0])
            # global_step already counts this batch's steps; report the 1-based step that diverged.
            raise DivergedError(self.global_step - len(losses) + bad + 1, float(stacked[bad]))
        # Log when this batch crossed a multiple of log_every optimizer steps, straight to the logger:
        # self.log's bookkeeping costs ~1 ms a call, a whole training step of a small RNN.
        crossed = self.global_step // self.log_every > (self.global_step - len(losses)) // self.log_every
        if crossed and self.logger is not None:
            self.logger.log_metrics({"train/loss": float(stacked.mean())}, step=self.global_step)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
