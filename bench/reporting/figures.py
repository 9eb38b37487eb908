"""A suite's figures, drawn with :mod:`bench.reporting.plots` from the compiled tables and the runs' metric histories.

Task-independent: what a task adds (anchors of the colour scale, floors, which figures it wants) comes from its
:class:`bench.tasks.base.Task`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.reporting import plots, tables
from bench import tasks


DIRECTIONS = {"uni": "unidirectional", "bi": "bidirectional"}


def facet_label(row: dict) -> str:
    return f"L{row['layers']} {row['direction']}"


def heatmap_cell_text(row: dict, spec: str) -> str:
    """What a heatmap cell says: the mean and the floor mark, and each seed's class where the seeds split (the
    split is the finding a mean hides); or why there is none.

    >>> heatmap_cell_text({"n": 2, "mean": 0.52, "mark": "1", "diverged": 0, "failed": 0, "missing": 0}, ".3f")
    '0.520 [1]'
    >>> heatmap_cell_text({"n": 3, "mean": 0.52, "mark": "1?", "classes": ("2", "1+", "0+")}, ".3f").splitlines()
    ['0.520 [1?]', 'seeds 2 1+ 0+']
    >>> heatmap_cell_text({"n": 0, "mean": float("nan"), "mark": "", "diverged": 2, "failed": 0, "missing": 0}, ".3f")
    'diverged'
    """
    if row["n"] == 0:
        return next((o for o in tables.UNFINISHED if row.get(o)), "no result")
    classes = tuple(row.get("classes", ()))
    split = f"\nseeds {' '.join(classes)}" if len(set(classes)) > 1 else ""
    return tables.number(row["mean"], spec) + (f" [{row['mark']}]" if row["mark"] else "") + split


def metric_heatmap(summary: pd.DataFrame, task_name: str, path: Path, anchors: dict[str, float]) -> None:
    """The task's metric over cell (rows) × truncation (columns), one facet per layers × direction, coloured on
    a scale anchored at the task's references (``anchors``: floors, baselines by name)."""
    task = tasks.get(task_name)
    part = summary[summary["task"] == task_name].assign(
        row=lambda f: [" ".join(p for p in (c, v) if p) for c, v in zip(f["cell"], f["variant"])],
        column=lambda f: [tables.column_label(t) for t in f["truncation"]])
    spec = ".2g" if task.log_scale else ".3f"
    part = part.assign(text=[heatmap_cell_text(r, spec) for r in part.to_dict("records")])
    rows, columns = list(dict.fromkeys(part["row"])), [tables.column_label(t) for t in sorted(part["truncation"].unique())]
    facets = {}
    for (layers, direction), group in part.groupby(["layers", "direction"], sort=False):
        values = group.pivot(index="row", columns="column", values="mean").reindex(index=rows, columns=columns)
        texts = group.pivot(index="row", columns="column", values="text").reindex(index=rows, columns=columns)
        # One facet a row: the figure stays as wide as one facet, so its text is readable at page width.
        facets[(f"{layers} layer{'s' if layers != 1 else ''}, {DIRECTIONS.get(direction, direction)}", "")] = (
            values, texts.fillna(""))
    marks = f"; [mark] = {task.mark_meaning}" if task.mark_meaning else ""
    scale = " (log colour scale)" if task.log_scale else ""
    plots.heatmaps(facets, path, anchors, task.metric_label, log=task.log_scale,
                   title=f"{task_name} task: mean {task.metric_label}{scale}{marks}")


def seed_mean(histories: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Mean over seeds of (step, value) series, step by step.

    >>> seed_mean([[(1, 0.6), (2, 0.5)], [(1, 0.7), (2, 0.4)]])
    [(1, 0.65), (2, 0.45)]
    """
    frame = pd.DataFrame([p for h in histories for p in h], columns=["step", "value"])
    means = frame.groupby("step")["value"].mean()
    return [(int(s), round(float(v), 12)) for s, v in means.items()]


def panel_place(row: dict) -> tuple[str, str]:
    """Where a configuration's learning curves go: (layers × direction and any other varying setting, cell).

    >>> panel_place({"cell": "gru", "layers": 2, "direction": "bi", "variant": "hidden=32"})
    ('L2 bi hidden=32', 'gru')
    """
    return " ".join(p for p in (facet_label(row), row["variant"]) if p), row["cell"]


def curve_panels(runs: pd.DataFrame, histories: dict, key: str) -> tuple[dict, list[str], list[str]]:
    """The learning-curve grid of one task's ``runs``: (panels, rows, columns). Rows are layers × direction,
    columns cells, both in the comparison table's order (the order of ``runs``); a panel (row, column) maps
    ``T=…`` to the seed mean of ``key`` against training samples (optimizer steps × the task's samples per step,
    so that truncations given equal data end at the same place), by increasing truncation. Only finished runs have
    curves; a row or
    column without any is left out."""
    places = [panel_place(row) for row in runs.to_dict("records")]
    rows, columns = plots.grid_order(places)
    found: dict[tuple[str, str], dict[int, list]] = {}
    finished = runs[runs["outcome"] == "finished"]
    for _, group in finished.groupby("configuration", sort=False):
        first = group.iloc[0].to_dict()
        per_step = int(tasks.get(first["task"]).samples_per_step(first))
        series = [histories[run_id][key] for run_id in group["run_id"]]
        found.setdefault(panel_place(first), {})[int(first["truncation"])] = [
            (step * per_step, value) for step, value in seed_mean(series)]
    panels = {(r, c): {tables.column_label(t): found[r, c][t] for t in sorted(found[r, c])}
              for r in rows for c in columns if (r, c) in found}
    used_rows, used_columns = {r for r, _ in panels}, {c for _, c in panels}
    return panels, [r for r in rows if r in used_rows], [c for c in columns if c in used_columns]


def learning_curves(runs: pd.DataFrame, histories: dict, path: Path, key: str, floors: dict[str, float],
                    title: str) -> None:
    """``key`` (mean over seeds) against training samples: the grid of :func:`curve_panels`, a line per
    truncation, the ``floors`` as grey lines. ``runs``: one task's runs."""
    panels, rows, columns = curve_panels(runs, histories, key)
    plots.learning_curves(panels, floors, path, rows, columns, title=title, xlabel="training samples")
