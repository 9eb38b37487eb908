"""The copy-memory task's known answers, without torch (validation and the report import this).

A sequence is ``delay + 20`` steps: 10 symbols drawn uniformly from 8, ``delay - 1`` blanks, a delimiter, 10
blanks; the target is blank for ``delay + 10`` steps, then the 10 symbols in order (Arjovsky et al. 2016). A
predictor that remembers no symbol can at best say blank for sure, then each symbol with probability 1/8: its
cross-entropy is :func:`memoryless_cross_entropy`. One that remembers them all scores 0.
"""

from __future__ import annotations

import math

SYMBOLS, ALPHABET = 10, 8  # symbols to copy, drawn from this many categories


def memoryless_cross_entropy(delay: int) -> float:
    """Cross-entropy per step (nats) of the best predictor that remembers no symbol: 10·log 8 / (delay + 20).

    >>> round(memoryless_cross_entropy(100), 4)
    0.1733
    """
    return SYMBOLS * math.log(ALPHABET) / (delay + 2 * SYMBOLS)
