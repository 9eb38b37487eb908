"""One recurrent backbone over ``nn.RNN`` (tanh, relu), ``nn.LSTM`` and ``nn.GRU``."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.choices import CELLS

# An LSTM state is the pair (h, c); the others are h alone. Keeping both as a tuple lets one code path
# detach, reset and carry any cell's state.
State = tuple[torch.Tensor, ...]


def make_recurrent(cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool,
                   dropout: float) -> nn.RNNBase:
    """The torch module for ``cell``; ``dropout`` acts between stacked layers only, never on the recurrent state."""
    if cell not in CELLS:
        raise ValueError(f"cell: {cell!r}; allowed: {', '.join(CELLS)}")
    kwargs = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_first=True,
                  bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
    if cell == "lstm":
        return nn.LSTM(**kwargs)
    if cell == "gru":
        return nn.GRU(**kwargs)
    return nn.RNN(nonlinearity=cell.removeprefix("rnn_"), **kwargs)


class RecurrentBackbone(nn.Module):
    """Batch-first recurrent stack returning every step's output and the final state.

    Shapes (seed 002): output (batch, seq, hidden·directions); each state tensor (layers·directions, batch,
    hidden).

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
        self.rnn = make_recurrent(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
        self.output_size = hidden_size * self.num_directions

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is not None and self.cell != "lstm":
            (state,) = state
        output, final = self.rnn(x, state)
        return output, (final if isinstance(final, tuple) else (final,))

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
