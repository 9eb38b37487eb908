"""Shapes and weight layouts of every built-in cell, depth and direction: the batch-first ``nn.RNN`` contract
every cell, built-in or plug-in, follows."""

from __future__ import annotations

import itertools

import pytest
import torch

from lightning_modules import cell_registry, cells
from lightning_modules.backbone import RecurrentBackbone

CELLS = tuple(cell_registry.BUILTIN)


def make_recurrent(cell: str, *args):
    return cell_registry.load(cell)(*args)

BATCH, SEQ, INPUT, HIDDEN = 5, 7, 3, 6
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


@pytest.mark.parametrize("cell, layers, bidirectional", list(itertools.product(CELLS, (1, 2, 3), (False, True))))
def test_output_and_state_shapes(cell, layers, bidirectional):
    torch.manual_seed(0)
    directions = 2 if bidirectional else 1
    net = RecurrentBackbone(cell, INPUT, HIDDEN, layers, bidirectional, dropout=0.0)
    x = torch.randn(BATCH, SEQ, INPUT)
    output, state = net(x)
    assert net.output_size == HIDDEN * directions
    assert output.shape == (BATCH, SEQ, HIDDEN * directions)
    assert len(state) == (2 if cell == "lstm" else 1)  # LSTM carries (h, c)
    for tensor in state:
        assert tensor.shape == (layers * directions, BATCH, HIDDEN)

    h_n = state[0]
    last = h_n.view(layers, directions, BATCH, HIDDEN)[-1]
    # The last layer's forward final state is the forward output at the last step ...
    assert torch.allclose(output[:, -1, :HIDDEN], last[0], atol=1e-6)
    if bidirectional:
        # ... and its backward final state is the backward output at the first step (it reads right to left).
        assert torch.allclose(output[:, 0, HIDDEN:], last[1], atol=1e-6)

    # The returned state feeds back in with the same shapes.
    output2, state2 = net(x, state)
    assert output2.shape == output.shape
    assert [t.shape for t in state2] == [t.shape for t in state]
    assert not torch.allclose(output2, output)  # a non-zero initial state changes the result

    # Weight rows: LSTM 4x, GRU 3x a plain RNN's; deeper layers read hidden * directions inputs.
    rnn = net.rnn
    gates = GATES[cell]
    assert rnn.weight_ih_l0.shape == (gates * HIDDEN, INPUT)
    assert rnn.weight_hh_l0.shape == (gates * HIDDEN, HIDDEN)
    for layer in range(1, layers):
        assert getattr(rnn, f"weight_ih_l{layer}").shape == (gates * HIDDEN, HIDDEN * directions)
    if bidirectional:
        assert rnn.weight_ih_l0_reverse.shape == (gates * HIDDEN, INPUT)


@pytest.mark.parametrize("cell, factor", [("lstm", 4), ("gru", 3)])
def test_gate_weights_are_multiples_of_the_plain_rnn(cell, factor):
    plain = make_recurrent("rnn_tanh", 20, 50, 2, False, 0.0)
    gated = make_recurrent(cell, 20, 50, 2, False, 0.0)
    assert plain.weight_ih_l0.shape == (50, 20)
    assert gated.weight_ih_l0.shape[0] == factor * plain.weight_ih_l0.shape[0]
    assert sum(p.numel() for p in gated.parameters()) == factor * sum(p.numel() for p in plain.parameters())


def test_nn_rnn_documentation_example_shapes():
    """``nn.RNN(20, 50, 2)`` on (batch 32, 100 steps, 20): output (32, 100, 50), h_n (2, 32, 50) — batch-first here."""
    net = RecurrentBackbone("rnn_tanh", 20, 50, 2)
    out, (h,) = net(torch.zeros(32, 100, 20))
    assert out.shape == (32, 100, 50) and h.shape == (2, 32, 50)


def test_nonlinearity_follows_the_cell_name():
    assert make_recurrent("rnn_tanh", 1, 4, 1, False, 0.0).nonlinearity == "tanh"
    assert make_recurrent("rnn_relu", 1, 4, 1, False, 0.0).nonlinearity == "relu"
    torch.manual_seed(0)
    relu = RecurrentBackbone("rnn_relu", 1, 4)
    out, _ = relu(torch.randn(3, 5, 1))
    assert (out >= 0).all()


def test_dropout_only_between_stacked_layers():
    for factory in (cells.rnn_tanh, cells.rnn_relu, cells.lstm, cells.gru):
        assert factory(1, 4, 1, False, 0.5).dropout == 0.0  # nothing to sit between
        assert factory(1, 4, 2, False, 0.5).dropout == 0.5
