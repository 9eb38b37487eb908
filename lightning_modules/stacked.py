"""Turn one direction of one recurrent layer into a cell rnn-bench can use: layers stacked, directions paired,
``nn.RNN``'s batch-first contract kept.

A layer is an ``nn.Module`` built as ``layer(input_size, hidden_size)`` whose ``forward(x, h)`` takes x
(batch, seq, input) and h (batch, hidden) and returns every step's state (batch, seq, hidden) and the last one.
:class:`StackedRecurrent` does the rest: it feeds each layer the previous layer's outputs (both directions
concatenated), runs the backward direction on the time-reversed input, applies dropout between layers only
(never on the recurrent state), and lays the final states out as torch does — rows (layer 0 forward, layer 0
backward, layer 1 forward, …) — so truncated-BPTT carry and bidirectional handling work unchanged.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class StackedRecurrent(nn.Module):
    """``layer`` stacked ``num_layers`` deep, optionally bidirectional.

    >>> class Decay(nn.Module):  # h_t = 0.5 h_{t-1} + W x_t
    ...     def __init__(self, input_size, hidden_size):
    ...         super().__init__()
    ...         self.w = nn.Linear(input_size, hidden_size)
    ...     def forward(self, x, h):
    ...         outputs = []
    ...         for t in range(x.shape[1]):
    ...             h = 0.5 * h + self.w(x[:, t])
    ...             outputs.append(h)
    ...         return torch.stack(outputs, 1), h
    >>> net = StackedRecurrent(Decay, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    >>> out, h = net(torch.zeros(5, 7, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((5, 7, 8), (4, 5, 4))
    """

    def __init__(self, layer: Callable[[int, int], nn.Module], input_size: int, hidden_size: int,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.num_directions = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            layer(input_size if depth == 0 else hidden_size * self.num_directions, hidden_size)
            for depth in range(num_layers) for _ in range(self.num_directions))
        self.dropout = nn.Dropout(dropout if num_layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if h0 is None:
            h0 = x.new_zeros(self.num_layers * self.num_directions, x.shape[0], self.hidden_size)
        finals = []
        for depth in range(self.num_layers):
            if depth:
                x = self.dropout(x)
            outputs = []
            for direction in range(self.num_directions):
                row = depth * self.num_directions + direction
                backward = direction == 1  # reads right to left; its outputs are put back in time order
                output, final = self.layers[row](x.flip(1) if backward else x, h0[row])
                outputs.append(output.flip(1) if backward else output)
                finals.append(final)
            x = torch.cat(outputs, dim=-1)
        return x, torch.stack(finals)
