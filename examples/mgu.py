"""The minimal gated unit (MGU) of Zhou, Wu, Zhang and Zhou (2016), "Minimal Gated Unit for Recurrent Neural
Networks", as an rnn-bench plug-in cell: ``cell: examples.mgu:mgu``. Torch does not ship it.

MGU keeps one gate of the GRU, the forget gate, and uses it both to read the old state and to mix:

    f_t = σ(W_f x_t + U_f h_{t−1} + b_f)
    h̃_t = tanh(W_h x_t + U_h (f_t ⊙ h_{t−1}) + b_h)
    h_t = (1 − f_t) ⊙ h_{t−1} + f_t ⊙ h̃_t

This file is all a new cell needs: a layer (one direction of one layer, stepping through time) and a factory
with rnn-bench's signature. :class:`lightning_modules.stacked.StackedRecurrent` stacks layers and directions
into ``nn.RNN``'s batch-first contract.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.stacked import StackedRecurrent


class MGULayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input = nn.Linear(input_size, 2 * hidden_size)  # the gate's and the candidate's input terms at once
        self.gate = nn.Linear(hidden_size, hidden_size, bias=False)
        self.candidate = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate_in, candidate_in = self.input(x).chunk(2, dim=-1)
        outputs = []
        for t in range(x.shape[1]):
            f = torch.sigmoid(gate_in[:, t] + self.gate(h))
            h = (1 - f) * h + f * torch.tanh(candidate_in[:, t] + self.candidate(f * h))
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


def mgu(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> nn.Module:
    """The factory rnn-bench calls."""
    return StackedRecurrent(MGULayer, input_size, hidden_size, num_layers, bidirectional, dropout)
