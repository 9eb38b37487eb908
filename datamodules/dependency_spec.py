"""The dependency ("echo") task's definition, checked, and its analytic cross-entropy floors: pure Python, so
that validating a config needs neither torch nor numpy.

X_t is a fair coin; P(Y_t = 1) = base + sum_k weight_k * X_{t - lag_k} (R2RT, "Recurrent Neural Networks in
Tensorflow I": lags 3 and 8, weights 0.5 and -0.25, base 0.5). A model that knows none, the first k, or all of
the lagged inputs can at best reach the cross-entropies returned by :func:`cross_entropy_floors`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence


def check_dependency_spec(lags: Sequence[int], weights: Sequence[float], base: float) -> None:
    """Raise ``ValueError`` naming the field when the generator is ill-defined.

    >>> check_dependency_spec((3, 8), (0.5, -0.25), 0.5)
    >>> check_dependency_spec((3,), (0.8,), 0.5)
    Traceback (most recent call last):
    ...
    ValueError: weights: (0.8,) with base 0.5 gives P(Y=1) up to 1.3; allowed: every combination within [0, 1]
    """
    if len(lags) == 0 or len(lags) != len(weights):
        raise ValueError(
            f"lags/weights: {tuple(lags)} / {tuple(weights)}; allowed: one weight per lag, at least one lag"
        )
    if any(int(lag) != lag or lag < 1 for lag in lags) or len(set(lags)) != len(lags):
        raise ValueError(f"lags: {tuple(lags)}; allowed: distinct integers >= 1")
    lowest = base + sum(min(0.0, w) for w in weights)
    highest = base + sum(max(0.0, w) for w in weights)
    if lowest < 0.0 or highest > 1.0:
        bad = lowest if lowest < 0.0 else highest
        direction = "down to" if lowest < 0.0 else "up to"
        raise ValueError(
            f"weights: {tuple(weights)} with base {base} gives P(Y=1) {direction} {round(bad, 6)}; "
            "allowed: every combination within [0, 1]"
        )


def _binary_entropy(p: float) -> float:
    return -sum(q * math.log(q) for q in (p, 1.0 - p) if q > 0.0)


def expected_cross_entropy(known: int, weights: Sequence[float], base: float) -> float:
    """Best achievable cross-entropy (nats) for a predictor that sees the first ``known`` lagged inputs.

    Unknown inputs are fair coins, so the best prediction given the known ones adds half their weights.
    """
    hidden = base + 0.5 * sum(weights[known:])
    total = 0.0
    for bits in itertools.product((0, 1), repeat=known):
        p = hidden + sum(w * b for w, b in zip(weights[:known], bits))
        total += _binary_entropy(p) / 2**known
    return total


def cross_entropy_floors(weights: Sequence[float] = (0.5, -0.25), base: float = 0.5,
                         lags: Sequence[int] | None = None) -> dict[str, float]:
    """Analytic floors for knowing none, the k shortest, and all lagged inputs, keyed ``none``, ``first1`` …,
    ``all``. "First" means shortest lag, whatever order the lags were given in (a recurrent model sees the
    nearer input first); without ``lags`` the weights are taken as already in that order.

    >>> {k: round(v, 4) for k, v in cross_entropy_floors().items()}
    {'none': 0.6616, 'first1': 0.5192, 'all': 0.4545}
    >>> round(cross_entropy_floors((-0.25, 0.5), 0.5, lags=(8, 3))["first1"], 4)  # lag 3 is still first
    0.5192
    """
    if lags is not None:
        weights = [w for _, w in sorted(zip(lags, weights))]
    floors = {"none": expected_cross_entropy(0, weights, base)}
    for k in range(1, len(weights)):
        floors[f"first{k}"] = expected_cross_entropy(k, weights, base)
    floors["all"] = expected_cross_entropy(len(weights), weights, base)
    return floors


