"""A suite's figures, drawn with :mod:`bench.reporting.plots` from the compiled tables and the runs' metric histories.

Task-independent: what a task adds (anchors of the colour scale, floors, which figures it wants) comes from its
:class:`bench.tasks.base.Task`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from bench.reporting import plots, tables
from bench.tasks.base import Task


DIRECTIONS = {"uni": "unidirectional", "bi": "bidirectional"}


def facet_label(row: dict) -> str:
    return f"L{row['layers']} {row['direction']}"


def heatmap_cell_text(row: dict, spec: str) -> str:
    """What a heatmap cell says: the mean and the floor mark, its score (where the task has known answers), and
    how many seeds fell in each class where they split (the split is the finding a mean hides); or why there is
    none.

    >>> heatmap_cell_text({"n": 2, "mean": 0.52, "mark": "1", "diverged": 0, "failed": 0, "missing": 0}, ".3f")
    '0.520 [1]'
    >>> heatmap_cell_text({"n": 4, "mean": 0.52, "mark": "1?", "score": 0.688, "classes": ("1+", "2", "1+", "0+")},
    ...                   ".3f").splitlines()
    ['0.520 [1?]', 'score 0.69', 'seeds 2×1+ 1×2 1×0+']
    >>> heatmap_cell_text({"n": 0, "mean": float("nan"), "mark": "", "diverged": 2, "failed": 0, "missing": 0}, ".3f")
    'diverged'
    """
    if row["n"] == 0:
        return next((o for o in tables.UNFINISHED if row.get(o)), "no result")
    classes = tuple(row.get("classes", ()))
    score = row.get("score", float("nan"))
    lines = [tables.number(row["mean"], spec) + (f" [{row['mark']}]" if row["mark"] else ""),
             f"score {score:.2f}" if not pd.isna(score) else "",
             "seeds " + " ".join(f"{k}×{c}" for c, k in Counter(classes).most_common()) if len(set(classes)) > 1
             else ""]
    return "\n".join(line for line in lines if line)


def metric_heatmap(summary: pd.DataFrame, task_name: str, task: Task, path: Path, anchors: dict[str, float],
                   ends: tuple[str, str] = ("the best known answer", "the worst")) -> None:
    """The configurations of ``task`` (named ``task_name`` in ``summary``) over cell (rows) × truncation (columns), one facet per layers × direction, each
    cell naming its mean metric, mark and score, coloured by the summary's ``score`` (0 at the worst known answer,
    1 at the best, ``ends`` naming them: :meth:`bench.tasks.base.Task.score`), so that configurations with
    different floors share one scale; the ``anchors`` (floors, baselines by name) that lie between the two ends
    are ticked on the colour bar at their scores. A task whose rows have no score (no known answers) is coloured
    by its metric, on a scale anchored at ``anchors``."""
    part = summary[summary["task"] == task_name]
    scored = "score" in part and part["score"].notna().any()
    facets = heatmap_facets(part, "score" if scored else "mean", ".2g" if task.log_scale else ".3f")
    marks = f"; [mark] = {task.mark_meaning}" if task.mark_meaning else ""
    if not scored:
        scale = " (log colour scale)" if task.log_scale else ""
        plots.heatmaps(facets, path, anchors, task.metric_label, log=task.log_scale,
                       title=f"{task_name} task: mean {task.metric_label}{scale}{marks}")
        return
    best, worst = ends
    plots.heatmaps(facets, path, score_anchors(task, part, anchors), f"score: 0 = {worst},\n1 = {best}", score=True,
                   title=f"{task_name} task: score (colour) and mean {task.metric_label}" + marks.replace("; ", "\n"))


def heatmap_facets(part: pd.DataFrame, colour: str, spec: str) -> dict[tuple[str, str], tuple]:
    """One task's summary rows as heatmap facets, one per layers × direction: (``colour``, a summary column, and
    each cell's text, :func:`heatmap_cell_text`) over cell (rows) × truncation (columns). Drawn from the summary
    frame alone.

    >>> part = pd.DataFrame({"cell": "gru", "variant": ["", "weights=0.5,-0.05"], "truncation": 5, "layers": 1,
    ...     "direction": "uni", "n": 3, "mean": [0.5192, 0.4044], "mark": "1", "score": [0.688, 0.0494]})
    >>> values, texts = heatmap_facets(part, "score", ".3f")[("1 layer, unidirectional", "")]
    >>> values.to_dict("index"), texts.at["gru", "T=5"].splitlines()
    ({'gru': {'T=5': 0.688}, 'gru weights=0.5,-0.05': {'T=5': 0.0494}}, ['0.519 [1]', 'score 0.69'])
    """
    part = part.assign(row=[" ".join(p for p in (c, v) if p) for c, v in zip(part["cell"], part["variant"])],
                       column=[tables.column_label(t) for t in part["truncation"]],
                       text=[heatmap_cell_text(r, spec) for r in part.to_dict("records")])
    rows = list(dict.fromkeys(part["row"]))
    columns = [tables.column_label(t) for t in sorted(part["truncation"].unique())]
    facets = {}
    for (layers, direction), group in part.groupby(["layers", "direction"], sort=False):
        values = group.pivot(index="row", columns="column", values=colour).reindex(index=rows, columns=columns)
        texts = group.pivot(index="row", columns="column", values="text").reindex(index=rows, columns=columns)
        # One facet a row: the figure stays as wide as one facet, so its text is readable at page width.
        facets[(f"{layers} layer{'s' if layers != 1 else ''}, {DIRECTIONS.get(direction, direction)}", "")] = (
            values, texts.fillna(""))
    return facets


def score_anchors(task: Task, part: pd.DataFrame, anchors: dict[str, float]) -> dict[str, float]:
    """``anchors`` (name -> metric value) as the scores they have between the task's known answers of ``part``'s
    first scored row (the anchors are shared by every row, or there are none), named with their value; those
    outside the two ends (a Kalman floor below the target) are left out.

    >>> import pandas as pd
    >>> part = pd.DataFrame({"score": [0.5], "floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545})
    >>> from bench.tasks.dependency import DependencyTask
    >>> score_anchors(DependencyTask(), part, {"no lag": 0.6616, "first 1": 0.5192, "every lag": 0.4545})
    {'no lag 0.6616': 0.0, 'first 1 0.5192': 0.688, 'every lag 0.4545': 1.0}
    """
    row = part[part["score"].notna()].iloc[0].to_dict()
    best, worst = task.known_span(row)
    low, high = sorted((best, worst))
    return {f"{name} {value:.4g}": round(task.score(row, value), 3) for name, value in anchors.items()
            if low <= value <= high}


def score_plot(frame: pd.DataFrame, task_name: str, path: Path, ends: tuple[str, str]) -> None:
    """The task's score per cell (:func:`bench.reporting.tables.cell_scores`): its interquartile mean over every
    seed of the cell's configurations, with the stratified bootstrap 95% interval."""
    best, worst = ends
    plots.score_intervals(frame.rename(columns={"cell": "name"}), path,
                          f"{task_name}: score per cell (IQM, 95% interval, configurations weighed equally)",
                          f"score: 0 = {worst}, 1 = {best}")


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


def curve_panels(task: Task, runs: pd.DataFrame, histories: dict, key: str) -> tuple[dict, list[str], list[str]]:
    """The learning-curve grid of ``task``'s ``runs``: (panels, rows, columns). Rows are layers × direction,
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
        per_step = int(task.samples_per_step(first))
        series = [histories[run_id][key] for run_id in group["run_id"]]
        found.setdefault(panel_place(first), {})[int(first["truncation"])] = [
            (step * per_step, value) for step, value in seed_mean(series)]
    panels = {(r, c): {tables.column_label(t): found[r, c][t] for t in sorted(found[r, c])}
              for r in rows for c in columns if (r, c) in found}
    used_rows, used_columns = {r for r, _ in panels}, {c for _, c in panels}
    return panels, [r for r in rows if r in used_rows], [c for c in columns if c in used_columns]


def learning_curves(task: Task, runs: pd.DataFrame, histories: dict, path: Path, key: str,
                    floors: dict[str, float], title: str) -> None:
    """``key`` (mean over seeds) against training samples: the grid of :func:`curve_panels`, a line per
    truncation, the ``floors`` as grey lines. ``runs``: ``task``'s runs."""
    panels, rows, columns = curve_panels(task, runs, histories, key)
    plots.learning_curves(panels, floors, path, rows, columns, title=title, xlabel="training samples")
