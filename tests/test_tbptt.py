"""Stateful truncated BPTT: the state's value carries across windows, its gradient does not (R2RT's set-up)."""

from __future__ import annotations

import copy

import pytest
import pytorch_lightning as pl
import torch

from bench.running.train import build, make_trainer
from lightning_modules.dependency_module import DependencyModule

T = 5  # truncation


def two_windows(batch: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (batch, 2 * T, 1), generator=g).float()
    y = torch.randint(0, 2, (batch, 2 * T), generator=g).float()
    return (x[:, :T], y[:, :T]), (x[:, T:], y[:, T:]), (x, y)


def module(cell: str, layers: int = 1, bidirectional: bool = False) -> DependencyModule:
    torch.manual_seed(0)
    return DependencyModule(cell=cell, hidden_size=8, num_layers=layers, bidirectional=bidirectional, truncation=T)


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_carried_state_value_is_the_previous_final_state(cell):
    m = module(cell)
    (x1, y1), (x2, y2), (x, y) = two_windows()
    _, _, final = m.model_step(x1, y1, None)
    carried = m.backbone.carry(final)
    assert len(carried) == len(final)
    for c, f in zip(carried, final):
        assert torch.equal(c, f)
        assert not c.requires_grad
    assert any(c.abs().sum() > 0 for c in carried)  # not a zero state
    # Window 2 from the carried state continues exactly where one uninterrupted pass would be.
    _, logits2, _ = m.model_step(x2, y2, carried)
    _, logits_all, _ = m.model_step(x, y, None)
    assert torch.allclose(logits2, logits_all[:, T:], atol=1e-6)
    # Control: from zeros it would not.
    _, logits_zero, _ = m.model_step(x2, y2, None)
    assert not torch.allclose(logits_zero, logits_all[:, T:], atol=1e-4)


@pytest.mark.parametrize("cell, layers, bidirectional", [("rnn_tanh", 1, False), ("lstm", 2, False), ("gru", 1, True),
                                                         ("lstm", 2, True)])
def test_no_gradient_crosses_the_window_boundary(cell, layers, bidirectional):
    m = module(cell, layers, bidirectional)
    (x1, y1), (x2, y2), _ = two_windows()

    def second_loss_grad(carry: bool):
        m.zero_grad()
        first = x1.clone().requires_grad_(True)
        _, _, final = m.model_step(first, y1, None)
        state = m.backbone.carry(final) if carry else final
        loss2, _, _ = m.model_step(x2, y2, state)
        loss2.backward()
        return first.grad, m.backbone.rnn.weight_hh_l0.grad

    grad_x1, grad_w = second_loss_grad(carry=True)
    assert grad_x1 is None or torch.count_nonzero(grad_x1) == 0
    assert grad_w is not None and grad_w.abs().sum() > 0  # the window's own loss still trains the weights

    control_x1, _ = second_loss_grad(carry=False)  # without detaching, the error would reach window 1
    assert control_x1 is not None and control_x1.abs().sum() > 0


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_bidirectional_carry_keeps_forward_rows_and_zeroes_backward_rows(cell):
    m = module(cell, layers=2, bidirectional=True)
    (x1, y1), _, _ = two_windows()
    _, _, final = m.model_step(x1, y1, None)
    carried = m.backbone.carry(final)
    for c, f in zip(carried, final):
        assert c.shape == (4, 4, 8)
        assert torch.equal(c[0::2], f[0::2].detach())  # layer 0 fwd, layer 1 fwd
        assert torch.count_nonzero(c[1::2]) == 0  # layer 0 bwd, layer 1 bwd
        assert torch.count_nonzero(f[1::2]) > 0  # the model's own final state is left untouched


def test_bidirectional_window_reads_forward_from_the_past_and_backward_from_zeros():
    m = module("lstm", layers=1, bidirectional=True)
    (x1, y1), (x2, y2), (x, y) = two_windows()
    _, _, final = m.model_step(x1, y1, None)
    out2, _ = m.backbone(x2, m.backbone.carry(final))
    out_all, _ = m.backbone(x, None)
    out2_alone, _ = m.backbone(x2, None)
    hidden = 8
    # Forward half: continues the uninterrupted pass. Backward half: the window read alone, from zeros.
    assert torch.allclose(out2[..., :hidden], out_all[:, T:, :hidden], atol=1e-6)
    assert torch.allclose(out2[..., hidden:], out2_alone[..., hidden:], atol=1e-6)
    assert not torch.allclose(out2[..., :hidden], out2_alone[..., :hidden], atol=1e-4)


class Recorder(pl.Callback):
    """Copies of the module's carried states at the points where Lightning hands control back."""

    def __init__(self):
        self.train_starts: list[tuple[int, int, tuple | None]] = []
        self.train_ends: list[tuple[int, int, tuple]] = []
        self.val_passes: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        state = pl_module.train_state
        self.train_starts.append((trainer.current_epoch, batch_idx,
                                  None if state is None else tuple(t.clone() for t in state)))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.train_ends.append((trainer.current_epoch, batch_idx, tuple(t.clone() for t in pl_module.train_state)))

    def on_validation_start(self, trainer, pl_module):
        state = pl_module.train_state
        self.val_passes.append({"train_before": None if state is None else tuple(t.clone() for t in state)})

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0:
            self.val_passes[-1]["eval_at_start"] = pl_module.eval_state

    def on_validation_end(self, trainer, pl_module):
        state = pl_module.train_state
        self.val_passes[-1]["train_after"] = None if state is None else tuple(t.clone() for t in state)
        self.val_passes[-1]["eval_after"] = tuple(t.clone() for t in pl_module.eval_state)


def replay(model: DependencyModule, loader) -> list[tuple]:
    """The state after each segment, carried window by window from zeros, with the model's current weights."""
    states, state = [], None
    with torch.no_grad():
        for batch in loader:
            for x, y in model.windows(batch):
                _, _, final = model.model_step(x, y, state)
                state = model.backbone.carry(final)
            states.append(state)
    return states


@pytest.mark.parametrize("bidirectional", [False, True])
def test_training_carries_state_across_batches_resets_each_epoch_and_keeps_eval_state_apart(tiny_cfg, bidirectional):
    # SGD with a vanishing learning rate leaves the weights bit-for-bit unchanged, so the states the real
    # training loop carried can be replayed afterwards with the same weights.
    cfg = tiny_cfg("dependency", optimizer="sgd", lr=1e-30, epochs=2, bidirectional=bidirectional,
                   layers=2 if bidirectional else 1)
    data, model = build(cfg)
    before = copy.deepcopy(model.state_dict())
    recorder = Recorder()
    trainer = make_trainer(cfg, None, "cpu", progress_bar=False)
    trainer.callbacks.append(recorder)
    trainer.fit(model, datamodule=data)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

    # Training: the state runs on across Lightning batches and restarts from zeros at every epoch.
    expected = replay(model, data.train_dataloader())
    batches = len(expected)
    assert batches == 20 and len(recorder.train_ends) == 2 * batches
    for epoch, batch_idx, state in recorder.train_ends:
        for got, want in zip(state, expected[batch_idx]):
            assert torch.allclose(got, want, atol=1e-6), (epoch, batch_idx)
            if bidirectional:
                assert torch.count_nonzero(got[1::2]) == 0
    # Each batch starts from the state the previous batch ended with, except the first of an epoch: zeros.
    for (epoch, batch_idx, start), (_, _, previous_end) in zip(recorder.train_starts, [(0, -1, None)] +
                                                               recorder.train_ends):
        if batch_idx == 0:
            assert start is None, epoch
        else:
            assert start is not None and all(torch.equal(a, b) for a, b in zip(start, previous_end))

    # Validation: 4 mid-epoch passes per epoch (val_every 50 steps / 10 per batch); each starts from zeros,
    # ends where a fresh pass ends, and leaves training's state exactly as it was.
    assert len(recorder.val_passes) == 8
    fresh_eval = replay(model, data.val_dataloader())[-1]
    for i, rec in enumerate(recorder.val_passes):
        assert rec["eval_at_start"] is None, i
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(rec["eval_after"], fresh_eval)), i
        assert rec["train_before"] is not None  # validation ran mid-epoch, with a carried training state
        assert all(torch.equal(a, b) for a, b in zip(rec["train_before"], rec["train_after"])), i


def test_test_pass_starts_from_zero_state_every_time(tiny_cfg):
    cfg = tiny_cfg("dependency", max_steps=50)
    data, model = build(cfg)
    trainer = make_trainer(cfg, None, "cpu", progress_bar=False)
    trainer.fit(model, datamodule=data)
    train_state = tuple(t.clone() for t in model.train_state)
    first = trainer.test(model, datamodule=data, verbose=False)[0]
    second = trainer.test(model, datamodule=data, verbose=False)[0]
    assert first == second  # a carried-over eval state would change the second pass
    assert all(torch.equal(a, b) for a, b in zip(train_state, model.train_state))
    # And the test pass's CE is that of a fresh pass over the test streams from zeros, leaving out each stream's
    # first max-lag steps (their lagged inputs precede the stream).
    ce, n, state, position = 0.0, 0, None, 0
    with torch.no_grad():
        for batch in data.test_dataloader():
            for x, y in model.windows(batch):
                _, logits, final = model.model_step(x, y, state)
                state = model.backbone.carry(final)
                keep = slice(max(0, 8 - position), None)
                position += x.shape[1]
                if y[:, keep].numel():
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, keep], y[:, keep])
                    ce, n = ce + float(loss) * y[:, keep].numel(), n + y[:, keep].numel()
    assert first["test/ce"] == pytest.approx(ce / n, abs=1e-6)


@pytest.mark.parametrize("cell, bidirectional", [("lstm", False), ("gru", False), ("lstm", True)])
def test_evaluation_in_one_pass_gives_the_per_window_metrics(tiny_cfg, cell, bidirectional):
    """A unidirectional model is evaluated a segment per forward call; the metrics are those of window by window."""
    cfg = tiny_cfg("dependency", cell=cell, bidirectional=bidirectional, max_steps=20)
    data, model = build(cfg)
    data.setup("test")

    def evaluate(windows) -> float:
        model.metrics["test"]["ce"].reset()
        model.eval_windows = windows
        model.on_test_epoch_start()
        with torch.no_grad():
            for batch in data.test_dataloader():
                model._evaluate(batch, "test")
        return float(model.metrics["test"]["ce"].compute())

    one_pass = evaluate(type(model).eval_windows.__get__(model))
    per_window = evaluate(model.windows)
    assert one_pass == pytest.approx(per_window, abs=1e-6)
