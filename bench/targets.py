"""Judging a result against analytic floors: which floor a cross-entropy sits at, the marks tables show, the
target a run should reach, and when a validation history first reached it.

Floors are keyed ``none``, ``first1`` …, ``all``: the best cross-entropy of a predictor that knows none, the
first k, or all of the lagged inputs (see :func:`datamodules.dependency_spec.cross_entropy_floors`).
"""

from __future__ import annotations

import math

FLOOR_MARGIN = 0.01  # nats: how close to a floor counts as having reached it

FLOOR_LABELS = {"none": "knows no lag", "all": "knows every lag (Bayes floor)"}


def floor_label(key: str) -> str:
    """What a predictor at floor ``key`` knows.

    >>> floor_label("first1"), floor_label("all")
    ('knows the first 1 lag(s)', 'knows every lag (Bayes floor)')
    """
    return FLOOR_LABELS.get(key, f"knows the first {key.removeprefix('first')} lag(s)")


def floor_level(key: str, n_floors: int) -> int:
    """How many lagged inputs a predictor at floor ``key`` knows (``none`` 0, ``firstK`` K, ``all`` the most).

    >>> [floor_level(k, 3) for k in ("none", "first1", "all")]
    [0, 1, 2]
    """
    if key == "none":
        return 0
    if key == "all":
        return n_floors - 1
    return int(key.removeprefix("first"))


def level_mark(level: int) -> str:
    """``–`` for no lag learned, else the number of lags learned.

    >>> level_mark(0), level_mark(2)
    ('–', '2')
    """
    return "–" if level == 0 else str(level)


def floor_mark(ce: float, floors: dict[str, float], margin: float = FLOOR_MARGIN) -> str:
    """Which dependencies a cross-entropy shows learned, read against the floors.

    ``–``: none (within ``margin`` of the none floor, or above it); ``K``: the first K lags (within ``margin``
    of that floor; the highest K means all of them, at or below the Bayes floor + ``margin``); ``K+``: between
    the floors for K and K+1 lags, so part of lag K+1 is learned. NaN (no finished run) gives ``''``.

    >>> floors = {"none": 0.6616, "first1": 0.5192, "all": 0.4545}
    >>> [floor_mark(ce, floors) for ce in (0.69, 0.655, 0.60, 0.525, 0.49, 0.46, 0.44, float("nan"))]
    ['–', '–', '0+', '1', '1+', '2', '2', '']
    """
    if math.isnan(ce):
        return ""
    levels = sorted((floor_level(k, len(floors)), v) for k, v in floors.items())
    top = levels[-1][0]
    for level, value in reversed(levels):
        near = abs(ce - value) <= margin
        if near or (level == top and ce < value) or (level == 0 and ce > value):
            return level_mark(level)
    below = max(level for level, value in levels if ce < value)
    return f"{below}+"


def mark_legend(floors: dict[str, float], margin: float = FLOOR_MARGIN) -> list[str]:
    """One line per mark, saying what it means for these floors.

    >>> mark_legend({"none": 0.6616, "first1": 0.5192, "all": 0.4545})[:2]
    ['`–` learned no dependency: mean ≥ 0.6516 (knows no lag: 0.6616, − 0.01)', '`0+` between `–` and `1`']
    """
    levels = sorted((floor_level(k, len(floors)), k, v) for k, v in floors.items())
    top = levels[-1][0]
    lines = []
    for level, key, value in levels:
        mark = level_mark(level)
        if level == 0:
            lines.append(f"`{mark}` learned no dependency: mean ≥ {value - margin:.4f} "
                         f"({floor_label(key)}: {value:.4f}, − {margin:g})")
        elif level == top:
            lines.append(f"`{mark}` learned every dependency: mean ≤ {value + margin:.4f} "
                         f"({floor_label(key)}: {value:.4f}, + {margin:g})")
        else:
            lines.append(f"`{mark}` learned the first {level} lag(s): mean within {margin:g} of {value:.4f} "
                         f"({floor_label(key)})")
        if level < top:
            lines.append(f"`{level}+` between `{mark}` and `{level_mark(level + 1)}`")
    return lines


def target(floors: dict[str, float]) -> float:
    """The validation cross-entropy a run should reach: the Bayes floor + :data:`FLOOR_MARGIN`.

    >>> round(target({"none": 0.66, "all": 0.4545}), 4)
    0.4645
    """
    return floors["all"] + FLOOR_MARGIN


def first_reaching(metric: list[tuple[int, float]], elapsed: list[tuple[int, float]],
                   goal: float) -> tuple[float, float]:
    """(step, wall seconds) of the first validation at or below ``goal``; NaNs when it never gets there.

    ``metric`` and ``elapsed`` are (step, value) histories logged at the same validations.

    >>> first_reaching([(200, 0.6), (400, 0.46), (600, 0.455)], [(200, 1.5), (400, 3.1), (600, 4.4)], 0.4645)
    (400, 3.1)
    >>> first_reaching([(200, 0.6)], [(200, 1.5)], 0.4645)
    (nan, nan)
    """
    seconds = dict(elapsed)
    for step, value in sorted(metric):
        if value <= goal:
            return step, seconds.get(step, math.nan)
    return math.nan, math.nan
