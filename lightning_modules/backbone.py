"""One recurrent backbone over any registered cell: ``nn.RNN`` (tanh, relu), ``nn.LSTM``, ``nn.GRU`` or a plug-in."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules import cell_registry

# An LSTM state is the pair (h, c); the others are h alone. Keeping both as a tuple lets one code path
# detach, reset and carry any cell's state.
State = tuple[torch.Tensor, ...]


class RecurrentBackbone(nn.Module):
    """Batch-first recurrent stack returning every step's output and the final state.

    The cell is built by its registered factory (:mod:`lightning_modules.cell_registry`) and must follow
    ``nn.RNN``'s batch-first contract: ``module(x, state)`` with x (batch, seq, input) returns the output
    (batch, seq, hidden·directions) and the final state, a tensor or a tuple of tensors, each (layers·directions,
    batch, hidden), rows ordered layer by layer with the forward direction first. ``state`` may be None.

    >>> net = RecurrentBackbone("lstm", input_size=1, hidden_size=8, num_layers=2, bidirectional=True)
    >>> out, (h, c) = net(torch.zeros(5, 7, 1))
    >>> tuple(out.shape), tuple(h.shape), tuple(c.shape)
    ((5, 7, 16), (4, 5, 8), (4, 5, 8))
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.cell = cell
        self.num_directions = 2 if bidirectional else 1
        self.rnn = cell_registry.load(cell)(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.output_size = hidden_size * self.num_directions
        self.tuple_state = False  # whether the cell's state is a tuple (LSTM) or one tensor; set by forward

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is not None and not self.tuple_state:
            (state,) = state
        output, final = self.rnn(x, state)
        self.tuple_state = isinstance(final, tuple)
        return output, (tuple(final) if self.tuple_state else (final,))

    def carry(self, state: State) -> State:
        """The state the next truncation window starts from: detached, backward direction zeroed.

        Detaching cuts the graph at the window boundary (truncated BPTT: no gradient reaches earlier
        windows). Only the forward direction carries: its final state summarizes the past, which is exactly
        what the next window continues. The backward direction's final state summarizes the *current*
        window read right-to-left and ends at its first step; handing it to the next window's last step
        would feed it inputs from the wrong end of time, so it starts from zeros in every window.
        """
        carried = []
        for tensor in state:
            tensor = tensor.detach()
            if self.num_directions == 2:
                # Rows are ordered (layer0 fwd, layer0 bwd, layer1 fwd, ...): zero every odd row.
                tensor = tensor.clone()
                tensor[1::2] = 0.0
            carried.append(tensor)
        return tuple(carried)
