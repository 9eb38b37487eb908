"""When an entry's answer is decided: the one rule that both adds seeds (the runner) and reports (the tables) use.

An entry is a configuration pooled over its seeds. It is decided when the task's mark, read from the entry's 95%
interval over seeds, claims a definite answer (for the dependency task: a mark without ``?``, i.e. the whole
interval lies in one band of the analytic floors); a task that marks nothing has no open question. The error rate
of this rule when seeds are added until it holds is simulated by ``tests/test_decision_power.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FEWEST = 2  # seeds an interval needs


def open_reason(task, values: Sequence[float], references: dict[str, float], cfg: dict | None = None) -> str:
    """Why the entry whose finished seeds gave ``values`` is still undecided under ``task``'s mark, or ``''``
    when it is decided. ``references``: the runs' ``floor/*`` and ``baseline/*`` metrics; ``cfg``: one of the
    entry's configurations, for the test noise that sets the mark's bands (as the summary row's mark reads it).

    >>> from bench import tasks
    >>> floors = {"floor/none": 0.6616, "floor/first1": 0.5192, "floor/all": 0.4545}
    >>> open_reason(tasks.get("dependency"), [0.520, 0.521, 0.519], floors)
    ''
    >>> open_reason(tasks.get("dependency"), [0.50, 0.53, 0.52], floors)
    'mark 1?: interval [0.4787, 0.5546] spans more than one band'
    >>> open_reason(tasks.get("sine"), [0.01], {})
    ''
    """
    from bench.core import stats  # scipy, only when the rule runs: bad input and --help import no heavy library

    finished = [v for v in values if not math.isnan(v)]
    mean, low, high = stats.t_interval(finished, log=task.log_scale)
    row = {"mean": mean, "n": len(finished), **references, "noise": task.noise(cfg) if cfg else math.nan}
    lowest, highest = task.metric_range(row)  # the interval clipped to the metric's range, as the summary's is
    mark = task.mark({**row, "low": max(low, lowest), "high": min(high, highest)})
    if not mark.endswith("?"):
        return ""
    if len(finished) < FEWEST:
        return f"mark {mark}: {len(finished)} finished seed(s), no interval"
    return f"mark {mark}: interval [{low:.4f}, {high:.4f}] spans more than one band"
