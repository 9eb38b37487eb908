"""The built-in recurrent cells, written as the factories every cell is: ``(input_size, hidden_size, num_layers,
bidirectional, dropout) -> nn.Module`` following ``nn.RNN``'s batch-first contract.

They are registered by name in :mod:`lightning_modules.cell_registry` exactly as a user's cell is found by its
dotted path or entry point. ``dropout`` acts between stacked layers only, never on the recurrent state (torch
warns about dropout with a single layer, so it is dropped there).
"""

from __future__ import annotations

from torch import nn


def _kwargs(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> dict:
    return dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_first=True,
                bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)


def rnn_tanh(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> nn.Module:
    """Elman RNN, h_t = tanh(W x_t + U h_{t-1} + b)."""
    return nn.RNN(nonlinearity="tanh", **_kwargs(input_size, hidden_size, num_layers, bidirectional, dropout))


def rnn_relu(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> nn.Module:
    """Elman RNN with a ReLU, the variant most prone to exploding activations."""
    return nn.RNN(nonlinearity="relu", **_kwargs(input_size, hidden_size, num_layers, bidirectional, dropout))


def lstm(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> nn.Module:
    """LSTM; its state is the pair (h, c)."""
    return nn.LSTM(**_kwargs(input_size, hidden_size, num_layers, bidirectional, dropout))


def gru(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> nn.Module:
    """GRU."""
    return nn.GRU(**_kwargs(input_size, hidden_size, num_layers, bidirectional, dropout))
