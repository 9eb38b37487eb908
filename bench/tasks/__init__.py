"""The task registry: a task is found by its built-in name, by the name an installed package gives it under the
entry-point group ``rnn_bench.tasks``, or by a dotted path ``package.module:TaskClass``; an unknown task is an
error, never a fallback.

The task-specification layer: imports bench.core only (and, when a run is built, the Lightning code). A task is
a :class:`bench.tasks.base.Task` subclass; see that module for what it owns.
"""

from __future__ import annotations

import functools
import re
from importlib.metadata import entry_points

from bench.core.fields import ConfigError, choices, did_you_mean
from bench.tasks.base import Task
from bench.tasks.dependency import DependencyTask
from bench.tasks.sine import SineExtrapolationTask, SineTask
from lightning_modules import cell_registry

ENTRY_POINT_GROUP = "rnn_bench.tasks"
BUILTIN: dict[str, Task] = {task.name: task for task in (DependencyTask(), SineTask(), SineExtrapolationTask())}
DEFAULT = "dependency"
SAFE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a task's name becomes part of file names


def allowed() -> str:
    names = [*BUILTIN, *(n for n in installed() if n not in BUILTIN)]
    return f"one of {', '.join(names)}, or a dotted path package.module:TaskClass"


def installed() -> dict[str, str]:
    """Tasks other packages register: name -> ``module:attr``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get(name: str) -> Task:
    """The task called ``name``; raises :class:`ConfigError` (one line) for an unknown or broken one.

    >>> get("sine").metric
    'test/rmse'
    >>> get("echo")
    Traceback (most recent call last):
    ...
    bench.core.fields.ConfigError: task: 'echo'; allowed: one of dependency, sine, sine_extrapolation, or a dotted path package.module:TaskClass
    """
    if not isinstance(name, str):
        raise ConfigError([f"task: {name!r}; allowed: {allowed()}"])
    return BUILTIN[name] if name in BUILTIN else _load(name)


@functools.cache
def _load(name: str) -> Task:
    """A plug-in task, imported once per process."""
    target = installed().get(name) or (name if ":" in name else None)
    if target is None:
        raise ConfigError([f"task: {name!r}{did_you_mean(name, choices(allowed()))}; allowed: {allowed()}"])
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(cell_registry.import_plugin(module_name), attr)
        task = cls()
    except BaseException as e:  # a broken plug-in (sys.exit or its own BaseException too) is a bad setting ...
        if cell_registry.is_signal(e):  # ... but Ctrl-C or SIGTERM while it loads is the user stopping us
            raise
        raise ConfigError([f"task: {name!r} cannot be loaded ({type(e).__name__}: {e}); allowed: {allowed()}"]) from None
    if not isinstance(task, Task) or not SAFE_NAME.fullmatch(task.name or ""):
        raise ConfigError([f"task: {name!r} is not a Task with a name matching {SAFE_NAME.pattern}; "
                           f"allowed: a subclass of bench.tasks.base.Task"])
    return task


def is_unlisted_code(name) -> bool:
    """Whether task ``name`` is a dotted path to code neither built in nor installed under the entry-point group
    (by name or by the same path): what a config file may not name without being trusted.

    >>> is_unlisted_code("sine"), is_unlisted_code("pwn:Task")
    (False, True)
    """
    return isinstance(name, str) and ":" in name and name not in BUILTIN and name not in installed().values()


def problem(name) -> str | None:
    """Why ``name`` is not a usable task (one line), or None."""
    try:
        get(name)
    except ConfigError as e:
        return e.problems[0]
    return None
