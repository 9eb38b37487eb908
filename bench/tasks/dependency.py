"""The dependency ("echo") task: per-step binary prediction of Y_t from lagged inputs, trained with stateful
truncated BPTT, judged by test cross-entropy against the analytic floors of a predictor that knows none, the
first k, or all of the lags.

Source: R2RT, "Recurrent Neural Networks in Tensorflow I" (one series of 1,000,000 steps in 200 parallel
streams, state size 4, Adagrad 0.1). The Lightning classes are :class:`datamodules.dependency.DependencyDataModule`
and :class:`lightning_modules.dependency_module.DependencyModule`.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.tasks import dependency_floors as targets
from bench.core.fields import Field, int_range, positive
from bench.tasks.base import Task, model_args
from datamodules.dependency_spec import check_dependency_spec, cross_entropy_floors

SHORT_FLOOR = {"none": "no lag", "all": "every lag"}


def config_floors(cfg: dict) -> dict[str, float]:
    """The analytic floors of a resolved config, "first k" meaning the k shortest lags."""
    return cross_entropy_floors(cfg["weights"], cfg["base"], cfg["lags"])


class DependencyTask(Task):
    name = "dependency"
    title = "Dependency (echo) task"
    fields = (
        # Bounds within reason: a generated step costs ~18 bytes, and the floors enumerate 2^(lags) cases.
        Field("series_length", int, "training series length in steps", *int_range(1, 100_000_000)),
        Field("eval_length", int, "validation and test series length in steps", *int_range(1, 100_000_000)),
        Field("lags", tuple, "lags of the inputs Y depends on",
              lambda v: 1 <= len(v) <= 16 and all(1 <= x <= 10_000 for x in v),
              "a comma-separated list of 1 to 16 integers in [1, 10000]", item=int),
        Field("weights", tuple, "weight of each lagged input on P(Y=1)", lambda v: 1 <= len(v) <= 16,
              "a comma-separated list of finite numbers, one per lag"),
        Field("base", float, "P(Y=1) when every lagged input is 0", lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]"),
        Field("tbptt_stride", int, "TBPTT step h': windows of truncation h steps advance by h' steps and count only "
              "their last h' outputs (Williams & Peng's BPTT(h; h'); h' = h: TF-style, 1: true truncation)",
              positive, "an integer in [1, truncation]; unset: = truncation; in a suite also T or T/k",
              follows="truncation"),
    )
    # R2RT's set-up: one series of 1,000,000 steps in 200 streams, one epoch.
    defaults = dict(hidden=16, layers=1, truncation=10, batch_size=200, epochs=1, max_steps=-1,
                    series_length=1_000_000, eval_length=100_000, lags=(3, 8), weights=(0.5, -0.25), base=0.5)
    metric, val_metric = "test/ce", "val/ce"
    metric_label = "test cross-entropy (nats)"
    number_format = ".4f"
    min_delta = 0.005  # nats: a change smaller than this never counts as a regression
    history_keys = ("val/ce", "val/elapsed_s", "train/loss")
    mark_meaning = "dependencies learned"
    labelled_fields = ("tbptt_stride",)
    data_fields = ("series_length", "eval_length", "lags", "weights", "base", "seed")  # tbptt_stride is training's
    converge_tolerance = 0.002  # nats

    def cross_checks(self, cfg: dict) -> list[str]:
        problems = []
        try:
            check_dependency_spec(cfg["lags"], cfg["weights"], cfg["base"])
        except ValueError as e:
            problems.append(str(e))
        if cfg["tbptt_stride"] > cfg["truncation"]:
            problems.append(f"tbptt_stride: {cfg['tbptt_stride']}; allowed: an integer in [1, truncation "
                            f"({cfg['truncation']})]")
        if cfg["eval_length"] // cfg["batch_size"] <= max(cfg["lags"]):
            problems.append(f"eval_length: {cfg['eval_length']}; allowed: more than batch_size x the longest lag "
                            f"({cfg['batch_size'] * max(cfg['lags'])}): evaluation skips each stream's first "
                            f"{max(cfg['lags'])} steps")
        for name in ("series_length", "eval_length"):
            if cfg[name] < cfg["batch_size"] * cfg["truncation"]:
                problems.append(f"{name}: {cfg[name]}; allowed: at least batch_size x truncation "
                                f"({cfg['batch_size'] * cfg['truncation']}) so every stream holds one window")
        return problems

    def build(self, cfg: dict) -> tuple:
        from datamodules.dependency import DependencyDataModule
        from lightning_modules.dependency_module import DependencyModule

        data = DependencyDataModule(truncation=cfg["truncation"], batch_size=cfg["batch_size"],
                                    series_length=cfg["series_length"], eval_length=cfg["eval_length"],
                                    lags=cfg["lags"], weights=cfg["weights"], base=cfg["base"], seed=cfg["seed"],
                                    segment_steps=cfg["steps_per_batch"] * cfg["truncation"],
                                    stride=cfg["tbptt_stride"])
        model = DependencyModule(truncation=cfg["truncation"], stride=cfg["tbptt_stride"], floor=data.floors["all"],
                                 eval_skip=max(cfg["lags"]), **model_args(cfg))
        return data, model

    def samples_per_step(self, cfg: dict) -> int:
        # The outputs an optimizer step counts (batch x stride): every truncation style is charged once per
        # timestep of training data, however often its windows reread it.
        return cfg["batch_size"] * cfg["tbptt_stride"]

    def references(self, cfg: dict, data) -> dict[str, float]:
        return {f"floor/{k}": v for k, v in config_floors(cfg).items()}

    def target(self, row: dict) -> float:
        floors = targets.floors_of(row)
        return targets.target(floors) if floors else math.nan

    def target_text(self) -> str:
        return f"dependency `val/ce` ≤ Bayes floor + {targets.FLOOR_MARGIN:g} nats"

    def mark(self, row: dict) -> str:
        floors = targets.floors_of(row)
        return targets.floor_mark(row["mean"], row["low"], row["high"], floors) if floors else ""

    def reference_rows(self, part, columns) -> dict[str, dict[str, float]]:
        floors = targets.shared_floors(part)  # when configurations differ in lags or weights, no row fits them all
        return {f"floor: {targets.floor_label(key)}": {c: value for c in columns}
                for key, value in sorted(floors.items(), key=lambda kv: targets.floor_level(kv[0], len(floors)))}

    def notes(self, part) -> list:
        from bench.reporting.pages import Bullets, Text

        if not part.filter(like="floor/").notna().any().any():
            return [Text("No dependency run finished: no floors to mark against.")]
        floors = targets.shared_floors(part)
        if floors:
            return [Text("Marks: which dependencies each configuration shows learned, read from its 95% interval "
                         "over seeds against the analytic floors (the floor rows at the bottom):"),
                    Bullets(targets.mark_legend(floors))]
        own = {}
        for row in part.to_dict("records"):
            if targets.floors_of(row):
                own.setdefault(row["variant"], targets.floors_of(row))
        return [Text("Marks: which dependencies each configuration shows learned, read from its 95% interval over "
                     "seeds against its own analytic floors — the configurations differ in lags or weights, so no "
                     "floor row fits them all:"),
                Bullets([f"{variant or 'default'}: " + ", ".join(f"{targets.floor_label(k)} {v:.4f}"
                                                                 for k, v in floors.items()) for variant, floors in own.items()]),
                Text("`–`: no dependency learned; `K`: the K shortest lags; `K+`: between `K` and `K+1`; `?`: the "
                     "interval reaches past the mark but is too wide to say more (or one seed only). Bands: "
                     f"{targets.BAND_FRACTION:g} of the gap to the neighbouring floor, at most {targets.BAND_CAP:g} "
                     "nats.")]

    def heatmap_anchors(self, part) -> dict[str, float]:
        return {SHORT_FLOOR.get(k, f"first {k.removeprefix('first')}"): v for k, v in targets.shared_floors(part).items()}

    def run_plot(self, cfg: dict, data, model, history, path: Path) -> None:
        from bench.reporting import plots
        from bench.config.settings import display_name

        plots.learning_curve(history(["train/loss", "val/ce"]), path, config_floors(cfg), title=display_name(cfg))

    def variant(self, cfg: dict) -> str:
        from bench.reporting.truncation_styles import style_label

        stride = cfg.get("tbptt_stride", cfg["truncation"])
        return "" if stride == cfg["truncation"] else f"stride={style_label(cfg['truncation'], stride)}"

    def sections(self, summary, runs, out_dir: Path) -> list:
        """The truncation-styles comparison, when the suite varies the TBPTT stride."""
        from bench.reporting.pages import Heading
        from bench.reporting import truncation_styles

        if "tbptt_stride" not in runs or not (runs["tbptt_stride"] != runs["truncation"]).any():
            return []  # every run TF-style: nothing to compare
        return [Heading("Truncation styles", 3), *truncation_styles.report(truncation_styles.summarize(runs), out_dir)]

    def figures(self, summary, runs, histories, configs, out_dir: Path, weights=None) -> dict[str, str]:
        from bench.reporting import figures

        if not (summary["n"] > 0).any():
            return {}
        figures.learning_curves(runs, histories, out_dir / "learning_curves_dependency.png", "train/loss",
                                targets.shared_floors(runs[runs["outcome"] == "finished"]),
                                "dependency task: train/loss (mean over seeds), by truncation T; grey: analytic floors")
        return {"learning_curves_dependency.png": "dependency: learning curves against the analytic floors"}

