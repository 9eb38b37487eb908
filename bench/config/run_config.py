"""A resolved run configuration: its checked settings, read only, and the Task they belong to.

Made only where a command line or a suite is resolved (:func:`bench.config.settings.resolve`); every layer below
receives it and reads ``cfg.task`` instead of looking the task up by name again. It reads as a mapping of
settings (``cfg["truncation"]``), so that a task's hooks, the config hash (of the plain settings: unchanged) and
``{**cfg}`` see just the settings. It pickles with its Task (by the task's class, as pickle does), so a worker
process or a Ray task receives the object itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bench.tasks.base import Task


def tasks_of(configs) -> dict[str, Task]:
    """Each task ``configs`` name (as they name it) -> its :class:`Task`, in the order they first name it."""
    return {cfg["task"]: cfg.task for cfg in configs}


class RunConfig(Mapping):
    """Settings (name -> checked value, in field order) and ``task``, the :class:`Task` they configure."""

    __slots__ = ("_values", "task")

    def __init__(self, values: Mapping[str, Any], task: Task):
        self._values, self.task = dict(values), task

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RunConfig({self._values!r})"

    def __reduce__(self):
        return RunConfig, (self._values, self.task)

    def replace(self, **changes: Any) -> RunConfig:
        """The same task with ``changes`` to settings that stay valid whatever else is set (a seed of the suite's
        range, a rate of its checked grid): how a suite adds seeds and tuned rates without resolving again.

        >>> from bench.config.settings import resolve
        >>> cfg = resolve({"task": "sine", "seed": 1}).replace(seed=2)
        >>> cfg["seed"], cfg.task.name
        (2, 'sine')
        """
        if unknown := set(changes) - set(self._values):
            raise KeyError(f"not settings of this config: {sorted(unknown)}")
        return RunConfig({**self._values, **changes}, self.task)
