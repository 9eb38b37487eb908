"""Judging a result against analytic floors: which floor a cross-entropy sits at, the marks tables show, the
target a run should reach, and when a validation history first reached it.

Floors are keyed ``none``, ``first1`` …, ``all``: the best cross-entropy of a predictor that knows none, the
k shortest, or all of the lagged inputs (see :func:`datamodules.dependency_spec.cross_entropy_floors`).
"""

from __future__ import annotations

import math

FLOOR_MARGIN = 0.01  # nats: how close to a floor counts as having reached it

FLOOR_LABELS = {"none": "knows no lag", "all": "knows every lag (Bayes floor)"}


def floors_of(row: dict) -> dict[str, float]:
    """The ``floor/*`` entries of a row, keyed ``none``, ``first1``, …, ``all``; NaNs left out.

    >>> floors_of({"floor/none": 0.66, "floor/all": 0.45, "baseline/x": 1.0, "floor/first1": float("nan")})
    {'none': 0.66, 'all': 0.45}
    """
    return {k.removeprefix("floor/"): v for k, v in row.items()
            if k.startswith("floor/") and isinstance(v, float) and not math.isnan(v)}


def shared_floors(part) -> dict[str, float]:
    """The floors every row of ``part`` shares, or {} when its configurations differ in lags or weights: a
    suite-level floor line or legend then means nothing, and each row is read against its own floors."""
    columns = [c for c in part.columns if c.startswith("floor/")]
    found = {c: part[c].dropna().unique() for c in columns}
    if any(len(v) > 1 and (v.max() - v.min()) > 1e-9 for v in found.values()):
        return {}
    return floors_of({c: float(v[0]) for c, v in found.items() if len(v)})


def floor_label(key: str) -> str:
    """What a predictor at floor ``key`` knows.

    >>> floor_label("first1"), floor_label("all")
    ('knows the 1 shortest lag(s)', 'knows every lag (Bayes floor)')
    """
    return FLOOR_LABELS.get(key, f"knows the {key.removeprefix('first')} shortest lag(s)")


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


BAND_FRACTION = 0.25  # a floor's band: this fraction of the gap to its nearest neighbouring floor ...
BAND_CAP = FLOOR_MARGIN  # ... but never wider than this (nats)


def bands(floors: dict[str, float]) -> dict[str, float]:
    """Half-width of each floor's band: :data:`BAND_FRACTION` of the gap to its nearest neighbouring floor,
    capped at :data:`BAND_CAP`, so close floors never swallow each other.

    >>> {k: round(v, 4) for k, v in bands({"none": 0.6616, "first1": 0.5192, "all": 0.4545}).items()}
    {'none': 0.01, 'first1': 0.01, 'all': 0.01}
    >>> {k: round(v, 4) for k, v in bands({"none": 0.5882, "first1": 0.4044, "all": 0.3950}).items()}
    {'none': 0.01, 'first1': 0.0023, 'all': 0.0023}
    """
    values = sorted(floors.values())
    out = {}
    for key, value in floors.items():
        gaps = [abs(value - other) for other in values if other != value]
        out[key] = min(BAND_CAP, BAND_FRACTION * min(gaps)) if gaps else BAND_CAP
    return out


def level_of(ce: float, floors: dict[str, float]) -> str:
    """Where one cross-entropy sits: ``–`` in the no-lag band or above it, ``K`` in the band of the first K
    lags' floor (the highest K: in or below the Bayes floor's band), ``K+`` between the bands of K and K+1."""
    half = bands(floors)
    levels = sorted((floor_level(k, len(floors)), floors[k], half[k]) for k in floors)
    top = levels[-1][0]
    for level, value, width in reversed(levels):
        if abs(ce - value) <= width or (level == top and ce < value) or (level == 0 and ce > value):
            return level_mark(level)
    return f"{max(level for level, value, width in levels if ce < value - width)}+"


def floor_mark(mean: float, low: float, high: float, floors: dict[str, float]) -> str:
    """Which dependencies a configuration shows learned, read from its interval over seeds against the floors.

    The mark is where the whole interval sits (:func:`level_of` of both ends); when the ends disagree the table
    claims only what the worse end supports, followed by ``?``. With one seed (no interval) the mean is read,
    also with ``?``. NaN (no finished run) gives ``''``.

    >>> floors = {"none": 0.6616, "first1": 0.5192, "all": 0.4545}
    >>> [floor_mark(m, m - 0.002, m + 0.002, floors) for m in (0.69, 0.655, 0.60, 0.525, 0.49, 0.46, 0.44)]
    ['–', '–', '0+', '1', '1+', '2', '2']
    >>> floor_mark(0.52, 0.50, 0.54, floors), floor_mark(0.46, float("nan"), float("nan"), floors)
    ('0+?', '2?')
    >>> close = {"none": 0.5882, "first1": 0.4044, "all": 0.3950}  # a model that knows only the first lag
    >>> floor_mark(0.4046, 0.4040, 0.4052, close)
    '1'
    """
    if math.isnan(mean):
        return ""
    if math.isnan(low) or math.isnan(high):
        return level_of(mean, floors) + "?"
    worse, better = level_of(high, floors), level_of(low, floors)
    return worse if worse == better else worse + "?"


def mark_legend(floors: dict[str, float]) -> list[str]:
    """One line per mark, saying what it means for these floors.

    >>> mark_legend({"none": 0.6616, "first1": 0.5192, "all": 0.4545})[:2]
    ['`–` learned no dependency: interval ≥ 0.6516 (knows no lag: 0.6616, band ± 0.01)', '`0+` between `–` and `1`']
    """
    half = bands(floors)
    levels = sorted((floor_level(k, len(floors)), k, v) for k, v in floors.items())
    top = levels[-1][0]
    lines = []
    for level, key, value in levels:
        mark, band = level_mark(level), f"band ± {half[key]:.2g}"
        if level == 0:
            lines.append(f"`{mark}` learned no dependency: interval ≥ {value - half[key]:.4f} "
                         f"({floor_label(key)}: {value:.4f}, {band})")
        elif level == top:
            lines.append(f"`{mark}` learned every dependency: interval ≤ {value + half[key]:.4f} "
                         f"({floor_label(key)}: {value:.4f}, {band})")
        else:
            lines.append(f"`{mark}` learned the {level} shortest lag(s): interval within {value:.4f} ± "
                         f"{half[key]:.2g} ({floor_label(key)})")
        if level < top:
            lines.append(f"`{level}+` between `{mark}` and `{level_mark(level + 1)}`")
    lines.append("`?` after a mark: the interval reaches past it but is too wide to say more (or one seed only)")
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
