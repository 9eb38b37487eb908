"""Each task's report part, found from the top: a built-in task's by its name, a plug-in's through the entry-point
group ``rnn_bench.reports`` (same name as its task), else the plain :class:`TaskReport` (a table with no
reference rows, the heatmap, no extra figures). The task specifications never import these."""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from bench.core.fields import ConfigError
from bench.reporting.task_reports.base import TaskReport
from bench.reporting.task_reports.dependency import DependencyReport
from bench.reporting.task_reports.sine import SineExtrapolationReport, SineReport
from bench.tasks.base import Task

ENTRY_POINT_GROUP = "rnn_bench.reports"
BUILTIN = {"dependency": DependencyReport, "sine": SineReport, "sine_extrapolation": SineExtrapolationReport}


@functools.cache
def report_for(task: Task) -> TaskReport:
    """The report part of ``task``.

    >>> from bench.tasks.sine import SineTask
    >>> report_for(SineTask()).task.metric
    'test/rmse'
    """
    cls = BUILTIN.get(task.name) or _installed(task.name) or TaskReport
    return cls(task)


def _installed(name: str) -> type[TaskReport] | None:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        return None
    try:
        cls = found[0].load()
    except Exception as e:  # a broken plug-in is reported in one line, like a broken task
        raise ConfigError([f"task: {name!r}: its report part {found[0].value!r} cannot be loaded "
                           f"({type(e).__name__}: {e})"]) from None
    if not (isinstance(cls, type) and issubclass(cls, TaskReport)):
        raise ConfigError([f"task: {name!r}: its report part {found[0].value!r} is not a TaskReport subclass"])
    return cls
