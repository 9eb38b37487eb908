"""The copy-memory task's report part: the memoryless baseline and the perfect-memory floor under its table (one
baseline row per delay when a suite varies it), the legend, and the heatmap's anchors. Each run's own plot shows
its learning curve against the baseline (:meth:`~.task.CopyMemoryTask.run_plot`)."""

from __future__ import annotations

from bench.reporting.pages import Text
from bench.reporting.task_reports.base import TaskReport

from .task import BASELINE


class CopyMemoryReport(TaskReport):
    def target_text(self) -> str:
        return "copy_memory `val/ce` ≤ half the memoryless baseline"

    def reference_rows(self, part, columns) -> dict[str, dict[str, float]]:
        if BASELINE not in part or not part[BASELINE].notna().any():
            return {}
        rows = {f"baseline: memoryless, 10·log 8/(T_delay+20){f' ({variant})' if variant else ''}":
                {c: group[BASELINE].mean() for c in columns} for variant, group in part.groupby("variant")}
        return {**rows, "floor: remembers every symbol": {c: 0.0 for c in columns}}

    def notes(self, part) -> list:
        return [Text("Copy memory (Hochreiter & Schmidhuber 1997; the set-up of Arjovsky et al. 2016): 10 symbols "
                     "from 8, T_delay − 1 blanks, a delimiter, then the model must output the 10 symbols in order. "
                     "Entries: cross-entropy per step over all T_delay + 20 steps. The baseline row is the best a "
                     "model that remembers no symbol can do; the floor, 0, needs every symbol remembered. Columns: "
                     "the TBPTT window; shorter than T_delay + 11, no gradient reaches from the recall back to the "
                     "symbols.")]

    def heatmap_anchors(self, part) -> dict[str, float]:
        if BASELINE not in part or part[BASELINE].nunique() != 1:
            return {}
        return {"memoryless": float(part[BASELINE].iloc[0]), "target": float(part[BASELINE].iloc[0]) / 2}
