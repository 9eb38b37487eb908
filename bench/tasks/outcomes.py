"""What a configuration's seeds did, counted: how many seeds learned each thing a task's seed can learn (its
:meth:`~bench.tasks.base.Task.outcome` classes), with an interval over seeds, and whether an entry is decided.

:func:`decided` is the one rule for "does this entry need more seeds?": a caller that adds seeds adaptively asks
it of a summary row (:func:`bench.reporting.tables.summarize`) and gets the reason when the answer is no.
"""

from __future__ import annotations

import math

from bench.core import stats

DECIDING = 0.5  # a count decides when its interval lies wholly on one side of half the seeds


def counts(row: dict) -> list[tuple[str, int, int, int, float, float]]:
    """Per thing a seed can learn (``row["outcome_names"]``): (name, seeds that learned it, seeds that learned
    part of it, seeds with a class, and the Wilson interval of the share that learned it).

    >>> counts({"ranks": (2, 3, 0), "outcome_names": ((2, "lag 3"), (4, "lag 8"))})[0][:4]
    ('lag 3', 2, 0, 3)
    """
    ranks = [r for r in row.get("ranks", ()) if r is not None]
    out = []
    for rank, name in row.get("outcome_names", ()):
        k, part = sum(r >= rank for r in ranks), sum(r == rank - 1 for r in ranks)
        out.append((name, k, part, len(ranks), *stats.proportion_interval(k, len(ranks))))
    return out


def counts_text(row: dict) -> str:
    """``lag 3: 3/3 · lag 8: 2/5 [12%, 77%], 1 partly``: seeds that learned each thing, with the interval of the
    share where the seeds split (a unanimous count's interval is only a matter of n); '' without classes.

    >>> counts_text({"ranks": (2, 3, 4, 4, 2), "outcome_names": ((2, "lag 3"), (4, "lag 8"))})
    'lag 3: 5/5 · lag 8: 2/5 [12%, 77%], 1 partly'
    """
    parts = []
    for name, k, part, n, low, high in counts(row):
        if n == 0:
            continue
        interval = f" [{low:.0%}, {high:.0%}]" if 0 < k < n else ""
        parts.append(f"{name}: {k}/{n}{interval}" + (f", {part} partly" if part else ""))
    return " · ".join(parts)


def decided(row: dict) -> tuple[bool, str]:
    """Whether a summary row's entry is decided, and why not: every count of seeds that learned something lies,
    with its 95% interval, wholly on one side of half the seeds or is unanimous at n >= 3; and, for a task without
    outcome classes, the interval of the mean shows on which side of the target it lies. Adding seeds is what
    decides an undecided entry.

    >>> decided({"n": 3, "ranks": (2, 2, 2), "outcome_names": ((2, "lag 3"), (4, "lag 8"))})
    (True, '')
    >>> decided({"n": 3, "ranks": (2, 4, 2), "outcome_names": ((2, "lag 3"), (4, "lag 8"))})
    (False, 'seeds split on lag 8: 1/3 [6%, 79%] includes 50%')
    >>> decided({"n": 1, "ranks": (2,), "outcome_names": ((2, "lag 3"),)})
    (False, 'one seed: no spread to judge')
    """
    if row.get("n", 0) < 2:
        return False, "one seed: no spread to judge" if row.get("n", 0) == 1 else "no finished seed"
    found = counts(row)
    if found:
        for name, k, part, n, low, high in found:
            if (k in (0, n) and n >= 3) or high < DECIDING or low > DECIDING:
                continue
            if k in (0, n):
                return False, f"{name}: {k}/{n}, too few seeds to be sure (at least 3)"
            return False, f"seeds split on {name}: {k}/{n} [{low:.0%}, {high:.0%}] includes {DECIDING:.0%}"
        return True, ""
    low, high, target = row.get("low", math.nan), row.get("high", math.nan), row.get("target", math.nan)
    if any(v is None or math.isnan(v) for v in (low, high, target)) or not (low <= target <= high):
        return True, ""
    return False, f"the interval [{low:.4g}, {high:.4g}] contains the target {target:.4g}"
