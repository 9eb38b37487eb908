"""The dependency task's report part: marks of which lags an entry learned, the floor rows under its table,
the heatmap's floor anchors, learning curves against the floors, and the truncation-styles section when a suite
varies the TBPTT stride."""

from __future__ import annotations

from pathlib import Path

from bench.core.metric_names import FLOOR
from bench.reporting import figures, truncation_styles
from bench.reporting.pages import Bullets, Heading, Text
from bench.reporting.task_reports.base import TaskReport
from bench.tasks import dependency_floors

SHORT_FLOOR = {"none": "no lag", "all": "every lag"}


class DependencyReport(TaskReport):
    score_ends = ("the Bayes floor", "the no-lag floor")

    def target_text(self) -> str:
        return (f"dependency `val/ce` ≤ Bayes floor + {dependency_floors.BAND_FRACTION:g} of its gap to the next floor, at "
                f"most {dependency_floors.FLOOR_MARGIN:g} nats")

    def reference_rows(self, part, columns) -> dict[str, dict[str, float]]:
        # when configurations differ in lags or weights, no row fits them all
        floors = dependency_floors.shared_floors(part)
        return {f"floor: {dependency_floors.floor_label(key)}": {c: value for c in columns}
                for key, value in sorted(floors.items(),
                                         key=lambda kv: dependency_floors.floor_level(kv[0], len(floors)))}

    def notes(self, part) -> list:
        if not part.filter(regex=f"^{FLOOR}").notna().any().any():
            return [Text("No dependency run finished: no floors to mark against.")]
        floors = dependency_floors.shared_floors(part)
        if floors:
            return [Text("Marks: which dependencies each configuration shows learned, read from its 95% interval "
                         "over seeds against the analytic floors (the floor rows at the bottom):"),
                    Bullets(dependency_floors.mark_legend(floors, part["noise"].median() if "noise" in part else 0.0))]
        own = {}
        for row in part.to_dict("records"):
            if dependency_floors.floors_of(row):
                own.setdefault(row["variant"], dependency_floors.floors_of(row))
        return [Text("Marks: which dependencies each configuration shows learned, read from its 95% interval over "
                     "seeds against its own analytic floors — the configurations differ in lags or weights, so no "
                     "floor row fits them all:"),
                Bullets([f"{variant or 'default'}: " + ", ".join(f"{dependency_floors.floor_label(k)} {v:.4f}"
                                                                 for k, v in floors.items()) for variant, floors in own.items()]),
                Text("`–`: no dependency learned; `K`: the K shortest lags; `K+`: between `K` and `K+1`; `?`: the "
                     "interval of the mean reaches past the mean's mark (or one seed only). Bands: above a floor, "
                     f"{dependency_floors.BAND_FRACTION:g} of the gap to the next-worse floor, at most "
                     f"{dependency_floors.BAND_CAP:g} nats; below it, {dependency_floors.NOISE_Z:g} test standard "
                     "errors of the run.")]

    def heatmap_anchors(self, part) -> dict[str, float]:
        return {SHORT_FLOOR.get(k, f"first {k.removeprefix('first')}"): v
                for k, v in dependency_floors.shared_floors(part).items()}

    def sections(self, summary, runs, out_dir: Path) -> list:
        """The truncation-styles comparison, when the suite varies the TBPTT stride."""
        if "tbptt_stride" not in runs or not (runs["tbptt_stride"] != runs["truncation"]).any():
            return []  # every run TF-style: nothing to compare
        summary = truncation_styles.summarize(runs, {name: self.task for name in set(runs["task"])})
        return [Heading("Truncation styles", 3), *truncation_styles.report(summary, out_dir)]

    def figures(self, summary, runs, histories, configs, out_dir: Path, weights, restore) -> dict[str, str]:
        if not (summary["n"] > 0).any():
            return {}
        figures.learning_curves(self.task, runs, histories, out_dir / "learning_curves_dependency.png", "train/loss",
                                dependency_floors.shared_floors(runs[runs["outcome"] == "finished"]),
                                "dependency task: train/loss (mean over seeds), by truncation T; grey: analytic floors")
        return {"learning_curves_dependency.png": "dependency: learning curves against the analytic floors"}
