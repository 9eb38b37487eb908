"""What a task's results look like on a suite's page: its report part, beside its specification
(:class:`bench.tasks.base.Task`).

Hooks (all optional): ``target_text``, ``reference_rows``, ``notes``, ``heatmap_anchors``, ``sections``,
``figures``. The plain :class:`TaskReport` says nothing beyond the comparison table and the heatmap, which fits any
task with a metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from bench.config.run_config import RunConfig
from bench.reporting.pages import Block
from bench.tasks.base import History, Task

# What the figures are handed to show a run's predictions: its saved weights (``model.pt``, None if it has none)
# and a way to get the trained (data, model) of a config from them, or by training again (:mod:`bench.running.train`).
Weights = Callable[[str], "Path | None"]
Restore = Callable[[RunConfig, "Path | None"], tuple]


class TaskReport:
    """The report part of one task; ``self.task`` is its specification."""

    score_ends: tuple[str, str] = ("the best known answer", "the worst")  # what scores 1 and 0 (Task.score)

    def __init__(self, task: Task):
        self.task = task

    def target_text(self) -> str:
        """One sentence: what the target is."""
        return ""

    def reference_rows(self, part: pd.DataFrame, columns: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
        """Rows shown under the comparison table: label -> {column label: value}. ``columns`` maps each column
        label to the summary rows in it."""
        return {}

    def notes(self, part: pd.DataFrame) -> list[Block]:
        """The legend of the task's comparison table."""
        return []

    def heatmap_anchors(self, part: pd.DataFrame) -> dict[str, float]:
        """Named reference values the heatmap's colour scale spans and ticks."""
        return {}

    def sections(self, summary: pd.DataFrame, runs: pd.DataFrame, out_dir: Path) -> list[Block]:
        """Extra report sections after the task's table (e.g. a comparison only some suites make)."""
        return []

    def figures(self, summary: pd.DataFrame, runs: pd.DataFrame, histories: dict[str, History],
                configs: dict[str, dict], out_dir: Path, weights: Weights, restore: Restore) -> dict[str, str]:
        """Draw the task's suite-level figures (besides the heatmap) into ``out_dir``; file name -> alt text.
        ``configs`` maps config hash -> resolved config; ``weights(run_id)`` gives a run's saved weights and
        ``restore(cfg, weights)`` its trained (data, model), for figures that show a run's predictions."""
        return {}
