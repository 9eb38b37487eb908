"""Judging a result against analytic floors: which floor a cross-entropy sits at, the marks tables show, the
target a run should reach, and when a validation history first reached it.

Floors are keyed ``none``, ``first1`` …, ``all``: the best cross-entropy of a predictor that knows none, the
k shortest, or all of the lagged inputs (see :func:`datamodules.dependency_spec.cross_entropy_floors`).
"""

from __future__ import annotations

import itertools
import math

from bench.core.metric_names import FLOOR

FLOOR_MARGIN = 0.01  # nats: how close to a floor counts as having reached it

FLOOR_LABELS = {"none": "knows no lag", "all": "knows every lag (Bayes floor)"}


def floors_of(row: dict) -> dict[str, float]:
    """The ``floor_*`` entries of a row, keyed ``none``, ``first1``, …, ``all``; NaNs left out.

    >>> floors_of({"floor_none": 0.66, "floor_all": 0.45, "baseline_x": 1.0, "floor_first1": float("nan")})
    {'none': 0.66, 'all': 0.45}
    """
    return {k.removeprefix(FLOOR): v for k, v in row.items()
            if k.startswith(FLOOR) and isinstance(v, float) and not math.isnan(v)}


def shared_floors(part) -> dict[str, float]:
    """The floors every row of ``part`` shares, or {} when its configurations differ in lags or weights: a
    suite-level floor line or legend then means nothing, and each row is read against its own floors."""
    columns = [c for c in part.columns if c.startswith(FLOOR)]
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


BAND_FRACTION = 0.25  # a floor's band above it: this fraction of the gap to the next-worse floor ...
BAND_CAP = FLOOR_MARGIN  # ... but never wider than this (nats)
NOISE_Z = 1.96  # a value this many test standard errors below a floor has learned more than that floor knows


def bands(floors: dict[str, float], noise: float = 0.0) -> dict[str, tuple[float, float]]:
    """(below, above): how far below and above each floor a cross-entropy still counts as sitting at it.

    Below: :data:`NOISE_Z` times the run's test standard error ``noise`` (a value further below is significantly
    better than a predictor that knows only these lags: it learned part of the next one), never more than
    :data:`BAND_FRACTION` of the gap to the next-better floor. Above: that fraction of the gap to the next-worse
    floor, capped at :data:`BAND_CAP` (a model rarely reaches a floor exactly), but at least the noise band.
    The Bayes floor has no floor below it and the no-lag floor none above: nothing lies past them but noise.

    >>> {k: tuple(round(x, 4) for x in v) for k, v in bands({"none": 0.6616, "first1": 0.5192, "all": 0.4545},
    ...                                                     noise=0.0016).items()}
    {'none': (0.0031, 0.01), 'first1': (0.0031, 0.01), 'all': (0.0031, 0.01)}
    >>> {k: tuple(round(x, 4) for x in v) for k, v in bands({"none": 0.5882, "first1": 0.4044, "all": 0.3950},
    ...                                                     noise=0.0016).items()}
    {'none': (0.0031, 0.01), 'first1': (0.0023, 0.01), 'all': (0.0031, 0.0031)}
    """
    ordered = sorted(floors.items(), key=lambda kv: -kv[1])  # worst (none) first
    z = NOISE_Z * (0.0 if noise is None or math.isnan(noise) else noise)
    out = {}
    for i, (key, value) in enumerate(ordered):
        gap_above = ordered[i - 1][1] - value if i > 0 else math.inf
        gap_below = value - ordered[i + 1][1] if i + 1 < len(ordered) else math.inf
        below = min(z, BAND_FRACTION * gap_below) if z else min(BAND_CAP, BAND_FRACTION * gap_below)
        above = max(z, min(BAND_CAP, BAND_FRACTION * gap_above))
        out[key] = (below if math.isfinite(below) else z, above)
    return out


def seed_class(ce: float, floors: dict[str, float], noise: float = 0.0) -> tuple[int, str]:
    """(rank, mark) of one run's cross-entropy against its floors: ``–`` (rank 0) at or above the no-lag floor's
    band, ``K`` (rank 2K) within the band of the first K lags' floor, ``K+`` (rank 2K + 1) between the bands of
    K and K + 1 lags: it learned part of lag K + 1. The last level is reached within the Bayes floor's band or
    below it. ``noise`` (the run's test standard error, :func:`run_noise`) widens the bands below the floors.

    >>> floors = {"none": 0.6616, "first1": 0.5192, "all": 0.4545}
    >>> [seed_class(c, floors, 0.0016)[1] for c in (0.6616, 0.539, 0.5141, 0.5179, 0.4599, 0.40)]
    ['–', '0+', '1+', '1', '2', '2']
    """
    half = bands(floors, noise)
    levels = sorted((floor_level(k, len(floors)), floors[k], *half[k]) for k in floors)
    top = levels[-1][0]
    for level, value, below, above in reversed(levels):
        if value - below <= ce <= value + above or (level == top and ce < value) or (level == 0 and ce > value):
            return 2 * level, level_mark(level)
    level = max(level for level, value, below, above in levels if ce < value - below)
    return 2 * level + 1, f"{level}+"


def level_of(ce: float, floors: dict[str, float], noise: float = 0.0) -> str:
    """The mark of :func:`seed_class`."""
    return seed_class(ce, floors, noise)[1]


def run_noise(weights, base: float, lags, test_steps: int) -> float:
    """The standard error of a run's test cross-entropy over ``test_steps`` counted steps: the per-step loss's
    standard deviation of a predictor at the floor that spreads most, over the square root of the steps (steps
    are independent given the inputs). It decides borderline classes: a run cannot be told from a floor closer
    than about two of these.

    >>> round(run_noise((0.5, -0.25), 0.5, (3, 8), 100_000 - 200 * 8), 5)
    0.00162
    """
    weights = [w for _, w in sorted(zip(lags, weights))]
    spread = 0.0
    for known in range(len(weights) + 1):
        hidden = base + 0.5 * sum(weights[known:])
        mean = square = 0.0
        for bits in itertools.product((0, 1), repeat=known):
            p = hidden + sum(w * b for w, b in zip(weights[:known], bits))
            for q, y in ((p, 1), (1 - p, 0)):
                if q > 0:
                    mean += q * -math.log(q) / 2**known
                    square += q * math.log(q) ** 2 / 2**known
        spread = max(spread, square - mean**2)
    return math.sqrt(spread / max(1, test_steps))


INDIFFERENCE = 0.005  # nats: a true mean this close to a band's edge may be read as either band, at least


def indifference(floors: dict[str, float], noise: float = 0.0) -> float:
    """How far past a band's edge an interval may reach and still be read as that band: :data:`INDIFFERENCE`, or
    the margin a run's own test noise puts on every band edge (:data:`NOISE_Z` times ``noise``, as in
    :func:`bands`) where that is wider: a true mean closer to an edge than one run's test set can resolve may be
    read either way. At most half the narrowest band above a floor (:data:`BAND_FRACTION` of the closest two
    floors' gap), so close floors keep their distinctions.

    >>> floors = {"none": 0.6616, "first1": 0.5192, "all": 0.4545}
    >>> indifference(floors), round(indifference(floors, noise=0.0036), 4)
    (0.005, 0.0071)
    >>> round(indifference({"none": 0.5882, "first1": 0.4044, "all": 0.3950}, noise=0.0036), 5)
    0.00117
    """
    values = sorted(floors.values())
    gaps = [b - a for a, b in zip(values, values[1:])]
    z = NOISE_Z * (0.0 if noise is None or math.isnan(noise) else noise)
    return min([max(INDIFFERENCE, z)] + [BAND_FRACTION * g / 2 for g in gaps])


def rank_mark(rank: int) -> str:
    """The mark of a seed class's rank (:func:`seed_class`): ``–``, ``0+``, ``1``, ``1+``, …

    >>> [rank_mark(r) for r in range(5)]
    ['–', '0+', '1', '1+', '2']
    """
    return level_mark(rank // 2) if rank % 2 == 0 else f"{rank // 2}+"


def floor_mark(mean: float, low: float, high: float, floors: dict[str, float], noise: float = 0.0,
               values: tuple[float, ...] = ()) -> str:
    """Which dependencies a configuration shows learned, from its seeds' ``values`` (classed by
    :func:`seed_class`) and its interval over seeds against the floors. Two answers are decided, one is not:

    - **seeds split** (``–…1+``, the classes of the worst and the best seed): the best and the worst seed lie in
      classes with a whole band between them even with each moved the :func:`indifference` zone toward the other
      (one learned what another did not even start): what the configuration learns depends on the seed, and more
      seeds only narrow the share (the entry's counts give it, with its interval);
    - **one band**: the whole interval lies in one band (:func:`level_of`), or reaches past it by no more than
      the :func:`indifference` zone on either side, where the true mean is at a band's edge and either reading
      is right to within what one run's test set resolves;
    - otherwise the mean's band followed by ``?`` (undecided: more seeds would decide it), never a mark the mean
      contradicts. One seed (no interval) gives the mean's mark with ``?``; NaN (no finished run) ``''``.

    >>> floors = {"none": 0.6616, "first1": 0.5192, "all": 0.4545}
    >>> [floor_mark(m, m - 0.002, m + 0.002, floors) for m in (0.69, 0.655, 0.60, 0.525, 0.49, 0.46, 0.44)]
    ['–', '–', '0+', '1', '1+', '2', '2']
    >>> floor_mark(0.52, 0.50, 0.54, floors), floor_mark(0.46, float("nan"), float("nan"), floors)
    ('1?', '2?')
    >>> floor_mark(0.4652, 0.4610, 0.4690, floors)  # at the edge of 2 and 1+ (0.4645), within the zone
    '1+'
    >>> floor_mark(0.5202, 0.3022, 0.7382, floors, values=(0.460, 0.479, 0.621))
    '0+…2'
    >>> floor_mark(0.5167, 0.4787, 0.5546, floors, values=(0.50, 0.52, 0.53))  # 1+, 1, 0+: too close to split
    '1?'
    >>> close = {"none": 0.5882, "first1": 0.4044, "all": 0.3950}  # a model that knows only the first lag
    >>> floor_mark(0.4046, 0.4040, 0.4052, close)
    '1'
    """
    if math.isnan(mean):
        return ""
    zone = indifference(floors, noise)
    if len(values) >= 2:
        best, worst = min(values), max(values)
        if seed_class(best + zone, floors, noise)[0] - seed_class(worst - zone, floors, noise)[0] >= 2:
            return f"{level_of(worst, floors, noise)}…{level_of(best, floors, noise)}"
    at = level_of(mean, floors, noise)
    if math.isnan(low) or math.isnan(high):
        return at + "?"
    if high - low <= 2 * zone or level_of(low + zone, floors, noise) == level_of(high - zone, floors, noise) == at:
        return at
    return at + "?"


def mark_legend(floors: dict[str, float], noise: float = 0.0) -> list[str]:
    """One line per mark, saying what it means for these floors.

    >>> mark_legend({"none": 0.6616, "first1": 0.5192, "all": 0.4545})[:2]
    ['`–` learned no dependency: ≥ 0.6516 (knows no lag: 0.6616)', '`0+` between `–` and `1`: learned part of the first lag']
    """
    half = bands(floors, noise)
    levels = sorted((floor_level(k, len(floors)), k, v) for k, v in floors.items())
    top = levels[-1][0]
    lines = []
    for level, key, value in levels:
        mark, (below, above) = level_mark(level), half[key]
        if level == 0:
            lines.append(f"`{mark}` learned no dependency: ≥ {value - below:.4f} ({floor_label(key)}: {value:.4f})")
        elif level == top:
            lines.append(f"`{mark}` learned every dependency: ≤ {value + above:.4f} ({floor_label(key)}: "
                         f"{value:.4f})")
        else:
            lines.append(f"`{mark}` learned the {level} shortest lag(s): {value - below:.4f} to {value + above:.4f} "
                         f"({floor_label(key)}: {value:.4f})")
        if level < top:
            lines.append(f"`{level}+` between `{mark}` and `{level_mark(level + 1)}`: learned part of the "
                         f"{'first' if level == 0 else 'next'} lag")
    lines.append(f"`?` after a mark: the interval of the mean reaches more than {indifference(floors, noise):.4f} past "
                 "the band of the mean's mark (or one seed only): undecided")
    lines.append("`A…B` seeds split: some seeds in class A, some in B, with a whole band between them")
    return lines


def target(floors: dict[str, float]) -> float:
    """The validation cross-entropy a run should reach: the Bayes floor plus its band above
    (:data:`BAND_FRACTION` of the gap to the next-worse floor, at most :data:`FLOOR_MARGIN`), so a model that
    knows one lag fewer never reaches it however close the floors.

    >>> round(target({"none": 0.66, "first1": 0.5192, "all": 0.4545}), 4)
    0.4645
    >>> round(target({"none": 0.5882, "first1": 0.4044, "all": 0.3950}), 4)  # 0.4050 would admit lag 1 only
    0.3973
    """
    worse = [v for v in floors.values() if v > floors["all"]]
    gap = min(worse) - floors["all"] if worse else math.inf
    return floors["all"] + min(FLOOR_MARGIN, BAND_FRACTION * gap)


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
