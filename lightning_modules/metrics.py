"""Task metrics: the maths as plain functions, thin torchmetrics classes around them."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric


def binary_cross_entropy_nats(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats of Bernoulli predictions given as logits.

    >>> round(float(binary_cross_entropy_nats(torch.zeros(4), torch.tensor([0., 1., 0., 1.]))), 4)
    0.6931
    """
    return F.binary_cross_entropy_with_logits(logits, target)


class CrossEntropy(MeanMetric):
    """Running mean cross-entropy (nats) over all steps seen, weighted by the number of steps."""

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:  # type: ignore[override]
        super().update(binary_cross_entropy_nats(logits, target), weight=target.numel())


class FloorGap(CrossEntropy):
    """Cross-entropy minus the analytic floor of the task: 0 means Bayes-optimal.

    >>> gap = FloorGap(floor=0.5)
    >>> gap.update(torch.zeros(4), torch.tensor([0., 1., 0., 1.]))
    >>> round(float(gap.compute()), 4)
    0.1931
    """

    def __init__(self, floor: float, **kwargs):
        super().__init__(**kwargs)
        self.floor = floor

    def compute(self) -> torch.Tensor:
        return super().compute() - self.floor
