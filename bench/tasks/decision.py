"""When an entry's answer is decided: the one rule that both adds seeds (the runner) and reports (the tables) use.

An entry is a configuration pooled over its seeds. :func:`judge` reads its finished seeds the one way both use:
the mean with its 95% interval over seeds (clipped to the metric's range), each seed's outcome class against the
task's known answers, and the task's mark from them. The entry is decided when the mark claims a definite answer
(no trailing ``?``: for the dependency task, the seeds split across classes with a band between them, or the
interval lies in one band up to an indifference zone at its edges, :func:`bench.tasks.dependency_floors.floor_mark`);
a task that marks nothing has no open question. The error rate of this rule when seeds are added until it holds is
simulated by ``tests/test_decision_power.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FEWEST = 2  # seeds an interval needs


def judge(task, values: Sequence[float], references: dict[str, float], cfg: dict | None = None) -> dict:
    """An entry's seeds judged: ``mean``, ``low``, ``high`` (the 95% interval over seeds, clipped to what the
    metric can take), ``n``, the references, ``noise`` (one run's test standard error, from ``cfg``, one of the
    entry's configurations), ``outcome_names``, each seed's class (``ranks``, ``classes``), ``score`` (0-1) and
    ``mark``. ``values``: the finished seeds' metric (NaN ones are left out).

    >>> from bench import tasks
    >>> floors = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}
    >>> row = judge(tasks.get("dependency"), [0.46, 0.479, 0.621], floors)
    >>> row["classes"], row["mark"], round(row["low"], 4)
    (('2', '1+', '0+'), '0+…2', 0.4545)
    """
    from bench.core import stats  # scipy, only when the rule runs: bad input and --help import no heavy library

    finished = tuple(v for v in values if not math.isnan(v))
    mean, low, high = stats.t_interval(finished, log=task.log_scale)
    row = {"mean": mean, "n": len(finished), "values": finished, **references,
           "noise": task.noise(cfg) if cfg else math.nan,
           "outcome_names": tuple(task.outcome_names(cfg)) if cfg else ()}
    classes = [c for c in (task.outcome(row, v) for v in finished) if c is not None]
    row["ranks"], row["classes"] = tuple(c[0] for c in classes), tuple(c[1] for c in classes)
    lowest, highest = task.metric_range(row)
    row["low"], row["high"] = max(low, lowest), min(high, highest)
    row["score"] = task.score(row, mean)
    row["mark"] = task.mark(row)
    return row


def open_reason(row: dict) -> str:
    """Why the entry :func:`judge` gave ``row`` is still undecided, or ``''`` when it is decided.

    >>> from bench import tasks
    >>> floors = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}
    >>> dependency = tasks.get("dependency")
    >>> open_reason(judge(dependency, [0.520, 0.521, 0.519], floors))
    ''
    >>> open_reason(judge(dependency, [0.50, 0.53, 0.52], floors))
    'mark 1?: interval [0.4787, 0.5546] reaches past one band and its edges'
    >>> open_reason(judge(tasks.get("sine"), [0.01], {}))
    ''
    """
    mark = row["mark"]
    if not mark.endswith("?"):
        return ""
    if row["n"] < FEWEST:
        return f"mark {mark}: {row['n']} finished seed(s), no interval"
    return f"mark {mark}: interval [{row['low']:.4f}, {row['high']:.4f}] reaches past one band and its edges"
