"""A suite's figures, drawn with :mod:`bench.plots` from the compiled tables and the runs' metric histories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench import plots, tables, targets
from bench.config import config_hash
from bench.suite import Suite

SHORT_FLOOR = {"none": "no lag", "all": "every lag"}


def facet_label(row: dict) -> str:
    return f"L{row['layers']} {row['direction']}"


def heatmap_cell_text(row: dict, spec: str) -> str:
    """What a heatmap cell says: the mean and the floor mark, or why there is none.

    >>> heatmap_cell_text({"n": 2, "mean": 0.52, "mark": "1", "diverged": 0, "failed": 0, "missing": 0}, ".3f")
    '0.520 [1]'
    >>> heatmap_cell_text({"n": 0, "mean": float("nan"), "mark": "", "diverged": 2, "failed": 0, "missing": 0}, ".3f")
    'diverged'
    """
    if row["n"] == 0:
        return next(o for o in ("diverged", "failed", "missing") if row[o])
    return tables.number(row["mean"], spec) + (f" [{row['mark']}]" if row["mark"] else "")


def metric_heatmap(summary: pd.DataFrame, task: str, path: Path) -> None:
    """The task's metric over cell (rows) × truncation (columns), one facet per layers × direction, coloured on
    a scale anchored at the floors (dependency) or at the seed's figure and the last-value baseline (sine)."""
    part = summary[summary["task"] == task].assign(
        row=lambda f: [" ".join(p for p in (c, v) if p) for c, v in zip(f["cell"], f["variant"])],
        column=lambda f: [tables.column_label(t) for t in f["truncation"]])
    spec = ".3f" if task == "dependency" else ".2g"
    part = part.assign(text=[heatmap_cell_text(r, spec) for r in part.to_dict("records")])
    rows, columns = list(dict.fromkeys(part["row"])), [tables.column_label(t) for t in sorted(part["truncation"].unique())]
    facets = {}
    for (layers, direction), group in part.groupby(["layers", "direction"], sort=False):
        values = group.pivot(index="row", columns="column", values="mean").reindex(index=rows, columns=columns)
        texts = group.pivot(index="row", columns="column", values="text").reindex(index=rows, columns=columns)
        facets[(f"{layers} layer(s)", direction)] = (values, texts.fillna(""))
    if task == "dependency":
        floors = tables.floors_of(tables.references(part))
        anchors = {SHORT_FLOOR.get(k, f"first {k.removeprefix('first')}"): v for k, v in floors.items()}
        plots.heatmaps(facets, path, anchors, targets.METRIC_LABEL[task],
                       title="dependency task: mean test cross-entropy; [mark] = dependencies learned")
    else:
        anchors = {"seed 003": targets.SEED_SINE_RMSE,
                   "last value": part["baseline/last_value_rmse"].mean()}
        plots.heatmaps(facets, path, anchors, targets.METRIC_LABEL[task], log=True,
                       title="sine task: mean test RMSE (log colour scale)")


def seed_mean(histories: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Mean over seeds of (step, value) series, step by step.

    >>> seed_mean([[(1, 0.6), (2, 0.5)], [(1, 0.7), (2, 0.4)]])
    [(1, 0.65), (2, 0.45)]
    """
    frame = pd.DataFrame([p for h in histories for p in h], columns=["step", "value"])
    means = frame.groupby("step")["value"].mean()
    return [(int(s), round(float(v), 12)) for s, v in means.items()]


def dependency_learning_curves(runs: pd.DataFrame, histories: dict, path: Path, key: str = "train/loss") -> None:
    """Training loss (mean over seeds) against step: a panel per layers × direction (rows) and cell (columns),
    a line per truncation, the floors as grey lines."""
    finished = runs[(runs["task"] == "dependency") & (runs["outcome"] == "finished")]
    panels: dict[tuple[str, str], dict] = {}
    for (_, truncation), group in finished.sort_values("truncation").groupby(["configuration", "truncation"],
                                                                            sort=False):
        first = group.iloc[0].to_dict()
        row = " ".join(p for p in (facet_label(first), first["variant"]) if p)
        series = [histories[run_id][key] for run_id in group["run_id"]]
        panels.setdefault((row, first["cell"]), {})[tables.column_label(truncation)] = seed_mean(series)
    floors = tables.floors_of(tables.references(finished))
    plots.learning_curves(panels, floors, path,
                          title=f"dependency task: {key} (mean over seeds), by truncation T; grey: analytic floors")


def replay_sine_run(cfg: dict) -> tuple:
    """(truth, prediction, test RMSE) of the test segment, from training ``cfg`` again on this CPU.

    Runs keep no weights, but every random source is seeded from the config and training is deterministic,
    so the replay gives the recorded run's predictions (on the CPU, exactly; a GPU run may differ slightly).
    """
    from bench.train import fit_and_test

    model, data, metrics = fit_and_test(cfg)
    return data.splits["test"][1].numpy(), model.test_predictions.numpy(), metrics["test/rmse"]


def sine_best_and_worst(summary: pd.DataFrame, runs: pd.DataFrame, suite: Suite, path: Path) -> list[str]:
    """Prediction against truth for the best and the worst sine configuration (by mean test RMSE), each
    replayed from its lowest finished seed; returns the configurations shown (none if no sine run finished)."""
    scored = summary[(summary["task"] == "sine") & (summary["n"] > 0)]
    if scored.empty:
        return []
    configs = {config_hash(cfg): cfg for cfg in suite.configs}
    panels, shown = {}, []
    for label, index in (("best", scored["mean"].idxmin()), ("worst", scored["mean"].idxmax())):
        chosen = scored.loc[index]
        shown.append(chosen["configuration"])
        run = (runs[(runs["configuration"] == chosen["configuration"]) & (runs["outcome"] == "finished")]
               .sort_values("seed").iloc[0])
        truth, prediction, replayed = replay_sine_run(configs[run["config_hash"]])
        panels[f"{label}: {chosen['configuration']} (mean RMSE {chosen['mean']:.3g}, n={chosen['n']})\n"
               f"seed {run['seed']}: recorded RMSE {run['metric']:.3g}, replayed {replayed:.3g}"] = (truth, prediction)
    plots.sine_predictions(panels, path)
    return shown
