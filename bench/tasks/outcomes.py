"""What a configuration's seeds did, counted: how many seeds learned each thing a task's seed can learn (its
:meth:`~bench.tasks.base.Task.outcome` classes), with an interval over seeds. Whether an entry is decided is the
one rule of :mod:`bench.tasks.decision`.
"""

from __future__ import annotations

from bench.core import stats


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
