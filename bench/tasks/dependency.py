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

from bench.tasks import dependency_floors
from bench.core.fields import Field, int_range, positive
from bench.core.metric_names import FLOOR
from bench.tasks.base import Task, model_args
from datamodules.dependency_spec import check_dependency_spec, cross_entropy_floors

# TBPTT strides by name, relative to the truncation T (R2RT's "Styles of Truncated Backpropagation")
STYLES = {"T": "TF-style BPTT(T; T)", "T/2": "BPTT(T; T/2)", "1": "true truncation BPTT(T; 1)"}


def stride_of(style: str, truncation: int) -> int | None:
    """The stride h′ of ``style`` at truncation ``truncation``, or None where it is not a whole number of steps.

    >>> [stride_of(s, 6) for s in STYLES], stride_of("T/2", 5)
    ([6, 3, 1], None)
    """
    if style == "T":
        return truncation
    if style.startswith("T/"):
        parts = int(style.removeprefix("T/"))
        return truncation // parts if truncation % parts == 0 else None
    return int(style)


def style_label(truncation: int, stride: int) -> str:
    """The name of a stride at ``truncation``: ``T`` first, then ``1``, then the other :data:`STYLES`, else the
    stride itself.

    >>> style_label(10, 10), style_label(10, 1), style_label(10, 5), style_label(2, 1), style_label(10, 3)
    ('T', '1', 'T/2', '1', '3')
    """
    for style in ("T", "1", *STYLES):
        if stride_of(style, truncation) == stride:
            return style
    return str(stride)


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
        Field("fresh_series", bool, "draw a new training series every epoch, seeded from the run's seed and the "
              "epoch (R2RT's set-up); false: every epoch rereads one series", allowed="true or false", neutral=False),
        Field("tbptt_stride", int, "TBPTT step h': windows of truncation h steps advance by h' steps and count only "
              "their last h' outputs (Williams & Peng's BPTT(h; h'); h' = h: TF-style, 1: true truncation)",
              positive, "an integer in [1, truncation]; unset: = truncation; in a suite also T or T/k",
              follows="truncation"),
    )
    # R2RT's set-up: one series of 1,000,000 steps in 200 streams, one epoch.
    defaults = dict(hidden=16, layers=1, truncation=10, batch_size=200, epochs=1, max_steps=-1,
                    series_length=1_000_000, eval_length=100_000, lags=(3, 8), weights=(0.5, -0.25), base=0.5,
                    fresh_series=False)
    metric, val_metric = "test/ce", "val/ce"
    metric_label = "test cross-entropy (nats)"
    number_format = ".4f"
    min_delta = 0.005  # nats: a change smaller than this never counts as a regression
    history_keys = ("val/ce", "val/elapsed_s", "train/loss")
    mark_meaning = "dependencies learned"
    labelled_fields = ("tbptt_stride",)
    data_fields = ("series_length", "eval_length", "lags", "weights", "base", "fresh_series", "seed")  # tbptt_stride is training's
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
        from datamodules.dependency import DependencyDataModule  # torch: only to build a run, never to validate
        from lightning_modules.dependency_module import DependencyModule

        data = DependencyDataModule(truncation=cfg["truncation"], batch_size=cfg["batch_size"],
                                    series_length=cfg["series_length"], eval_length=cfg["eval_length"],
                                    lags=cfg["lags"], weights=cfg["weights"], base=cfg["base"], seed=cfg["seed"],
                                    segment_steps=cfg["steps_per_batch"] * cfg["truncation"],
                                    stride=cfg["tbptt_stride"], fresh_series=cfg["fresh_series"])
        model = DependencyModule(truncation=cfg["truncation"], stride=cfg["tbptt_stride"], floor=data.floors["all"],
                                 eval_skip=max(cfg["lags"]), **model_args(cfg))
        return data, model

    def dataset_spec(self, cfg: dict) -> dict:
        spec = super().dataset_spec(cfg)
        if not spec.get("fresh_series"):
            spec.pop("fresh_series", None)  # one series, as before the option existed: the same digest
        return spec

    def samples_per_step(self, cfg: dict) -> int:
        # The outputs an optimizer step counts (batch x stride): every truncation style is charged once per
        # timestep of training data, however often its windows reread it.
        return cfg["batch_size"] * cfg["tbptt_stride"]

    def references(self, cfg: dict, data) -> dict[str, float]:
        return {f"{FLOOR}{k}": v for k, v in config_floors(cfg).items()}

    def target(self, row: dict) -> float:
        floors = dependency_floors.floors_of(row)
        return dependency_floors.target(floors) if floors else math.nan

    def mark(self, row: dict) -> str:
        floors = dependency_floors.floors_of(row)
        return (dependency_floors.floor_mark(row["mean"], row["low"], row["high"], floors, row.get("noise", math.nan),
                                             tuple(row.get("values", ()))) if floors else "")

    def noise(self, cfg: dict) -> float:
        if not all(k in cfg for k in ("weights", "base", "lags", "eval_length", "batch_size")):
            return math.nan
        steps = cfg["eval_length"] - cfg["batch_size"] * max(cfg["lags"])  # evaluation skips each stream's start
        return dependency_floors.run_noise(cfg["weights"], cfg["base"], cfg["lags"], steps)

    def outcome(self, row: dict, value: float) -> tuple[int, str] | None:
        floors = dependency_floors.floors_of(row)
        if not floors or value is None or math.isnan(value):
            return None
        return dependency_floors.seed_class(value, floors, row.get("noise", math.nan))

    def outcome_names(self, cfg: dict) -> list[tuple[int, str]]:
        lags = sorted(cfg["lags"]) if isinstance(cfg.get("lags"), (tuple, list)) else []
        return [(2 * k, f"lag {lag}") for k, lag in enumerate(lags, start=1)]

    def known_span(self, row: dict) -> tuple[float, float]:
        floors = dependency_floors.floors_of(row)
        return (floors["all"], floors["none"]) if "all" in floors and "none" in floors else (math.nan, math.nan)

    def metric_range(self, row: dict) -> tuple[float, float]:
        return dependency_floors.floors_of(row).get("all", 0.0), math.inf  # no model beats the Bayes floor

    def run_plot(self, cfg: dict, data, model, history, path: Path, title: str) -> None:
        from bench.tasks.run_plots import learning_curve  # matplotlib: only when a run ends

        learning_curve(history(["train/loss", "val/ce"]), path, config_floors(cfg), title=title)

    def variant(self, cfg: dict) -> str:
        stride = cfg.get("tbptt_stride", cfg["truncation"])
        return "" if stride == cfg["truncation"] else f"stride={style_label(cfg['truncation'], stride)}"


