"""minGRU, the minimal GRU of Feng et al. (2024), "Were RNNs All We Needed?", as an rnn-bench plug-in cell:
``cell: examples.min_gru:min_gru``.

minGRU drops the GRU's reset gate and lets neither its gate nor its candidate see the previous state:

    z_t = σ(W_z x_t + b_z),   h̃_t = W_h x_t + b_h,   h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t

The recurrence is linear in h — which is what allows the paper's parallel scan; this is its sequential mode,
exact and fast enough for windows of tens of steps. On the dependency task that linearity shows: the state is a
gated running sum of the inputs, and picking out one lag from it needs the nonlinearity of deeper layers.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.stacked import StackedRecurrent


class MinGRULayer(nn.Module):
    """One direction of one layer: gate and candidate of every step at once (they see only the input)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.gate = nn.Linear(input_size, hidden_size)
        self.candidate = nn.Linear(input_size, hidden_size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.sigmoid(self.gate(x))
        keep, write = 1 - z, z * self.candidate(x)
        outputs = []
        for t in range(x.shape[1]):
            h = keep[:, t] * h + write[:, t]
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


def min_gru(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> nn.Module:
    """The factory rnn-bench calls."""
    return StackedRecurrent(MinGRULayer, input_size, hidden_size, num_layers, bidirectional, dropout)
