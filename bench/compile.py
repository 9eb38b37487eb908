"""``bench compile``: a suite's results, from the store to ``results/<suite>/`` and onto its parent run.

Writes ``README.md`` (README-ready), ``results.html`` (one self-contained page), the CSVs behind them
(``summary.csv`` one row per configuration, ``runs.csv`` one per run, ``comparison_<task>.csv``, ``cost.csv``)
and the PNGs, then logs them all as artifacts (under ``results/``) of the suite's latest parent run.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import figures, results, tables, targets, tracking
from bench.report import Block, Bullets, Heading, Image, Table, Text, to_html, to_markdown
from bench.store import Store
from bench.suite import Suite

TASK_TITLES = {"dependency": "Dependency (echo) task", "sine": "Sine prediction task"}
RUN_COLUMNS = ["configuration", "seed", "outcome", "reason", "metric", "target", "reached", "steps_to_target",
               "time_to_target_s", "run_id", "config_hash", "commit"]


@dataclass
class Compiled:
    out_dir: Path
    summary: pd.DataFrame  # one row per configuration (tables.summarize)
    comparisons: dict[str, pd.DataFrame]  # task -> comparison table
    costs: pd.DataFrame
    files: list[Path]
    parent_run_id: str | None  # where the files were logged, if the suite has a parent run


def compile_suite(suite: Suite, tracking_uri: str, experiment: str = tracking.EXPERIMENT,
                  out_dir: Path | None = None) -> Compiled:
    """Compile ``suite``'s results from the store into ``out_dir`` (default ``results/<suite>/``)."""
    out_dir = Path(out_dir or tracking.results_dir() / suite.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    found = results.load(suite, tracking_uri, experiment)
    summary = tables.summarize(found.runs)
    tasks = [t for t in targets.METRIC if (summary["task"] == t).any()]
    comparisons = {task: tables.comparison_table(summary, task) for task in tasks}
    costs = tables.cost_table(summary)

    files = []

    def write_csv(frame: pd.DataFrame, name: str) -> None:
        frame.to_csv(out_dir / name, index=False)
        files.append(out_dir / name)

    write_csv(summary, "summary.csv")
    write_csv(found.runs[RUN_COLUMNS + [c for c in found.runs.columns if c not in RUN_COLUMNS]], "runs.csv")
    for task, table in comparisons.items():
        write_csv(table, f"comparison_{task}.csv")
    write_csv(costs, "cost.csv")
    images = draw_figures(suite, summary, found, tasks, out_dir)
    files += [out_dir / name for name in images]
    blocks = report_blocks(suite, tracking_uri, found.runs, summary, comparisons, costs, images)
    (out_dir / "README.md").write_text(to_markdown(blocks))
    (out_dir / "results.html").write_text(to_html(blocks, f"rnn-bench results: {suite.name}", out_dir))
    files += [out_dir / "README.md", out_dir / "results.html"]

    if found.parent_run_id:
        Store(tracking_uri).log_artifacts(found.parent_run_id, files, "results")
    return Compiled(out_dir, summary, comparisons, costs, files, found.parent_run_id)


def draw_figures(suite: Suite, summary: pd.DataFrame, found: results.SuiteResults, tasks: list[str],
                 out_dir: Path) -> dict[str, str]:
    """File name -> what it shows, for every figure there is data for."""
    images = {}
    for task in tasks:
        if (summary[summary["task"] == task]["n"] > 0).any():
            figures.metric_heatmap(summary, task, out_dir / f"heatmap_{task}.png")
            images[f"heatmap_{task}.png"] = f"{task}: mean {targets.METRIC_LABEL[task]} over cell × truncation"
    if "dependency" in tasks and (summary[summary["task"] == "dependency"]["n"] > 0).any():
        figures.dependency_learning_curves(found.runs, found.histories, out_dir / "learning_curves_dependency.png")
        images["learning_curves_dependency.png"] = "dependency: learning curves against the analytic floors"
    if "sine" in tasks and figures.sine_best_and_worst(summary, found.runs, suite, out_dir / "sine_best_worst.png"):
        images["sine_best_worst.png"] = "sine: prediction against truth, best and worst configuration"
    return images


def report_blocks(suite: Suite, tracking_uri: str, runs: pd.DataFrame, summary: pd.DataFrame,
                  comparisons: dict[str, pd.DataFrame], costs: pd.DataFrame, images: dict[str, str]) -> list[Block]:
    counts = runs["outcome"].value_counts()
    commits = ", ".join(sorted(runs["commit"].dropna().unique())) or "none"
    blocks: list[Block] = [
        Heading(f"Results: suite `{suite.name}`", 1),
        Text(suite.description.strip()),
        Text(f"Compiled {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC from `{tracking_uri}`; "
             f"runs of commit {commits}. {len(summary)} configurations, {len(runs)} runs: "
             + ", ".join(f"{counts.get(o, 0)} {o}" for o in ("finished", "diverged", "failed", "missing")) + "."),
        Bullets(["Entries: mean ± standard deviation of the test metric over seeds; n = runs that finished. "
                 "Diverged (loss became NaN/inf), failed and missing runs are counted beside it, never dropped.",
                 "Columns: T = truncation length (dependency: TBPTT window; sine: input window)."]),
    ]
    for task, table in comparisons.items():
        blocks += [Heading(f"{TASK_TITLES[task]}: {targets.METRIC_LABEL[task]}"), *task_notes(task, summary),
                   Table(table)]
        blocks += [Image(name, alt) for name, alt in images.items() if task in name]
    blocks += [
        Heading("Cost and time to target"),
        Text(f"Means over finished seeds. Target: dependency `val/ce` ≤ Bayes floor + {targets.FLOOR_MARGIN:g} "
             f"nats; sine `val/rmse` ≤ {targets.SEED_SINE_RMSE:g} (the seed's figure). Steps and wall time to "
             "target: the first validation that reaches it, averaged over the seeds that did."),
        Table(costs),
    ]
    unfinished = runs[runs["outcome"].isin(["diverged", "failed"])]
    missing = int((runs["outcome"] == "missing").sum())
    if len(unfinished) or missing:
        blocks += [Heading("Runs without a result"), Bullets(
            [f"`{c}` seed {s}: {o}: {r}" for c, s, o, r in
             unfinished[["configuration", "seed", "outcome", "reason"]].itertuples(index=False)]
            + ([f"{missing} runs missing: the store has no run of their configuration; "
                f"`bench run --suite {suite.name}` adds them"] if missing else []))]
    return blocks


def task_notes(task: str, summary: pd.DataFrame) -> list[Block]:
    """The legend of a task's table."""
    if task == "dependency":
        floors = tables.floors_of(tables.references(summary[summary["task"] == task]))
        if not floors:
            return [Text("No dependency run finished: no floors to mark against.")]
        return [Text("Marks: which dependencies the mean shows learned, read against the analytic floors "
                     "(the floor rows at the bottom):"), Bullets(targets.mark_legend(floors))]
    return [Text(f"Reference rows: the last value of the window; a least-squares linear autoregressive model "
                 f"on the same window (a pure sine is an exact AR(2)); and the seed's figure "
                 f"({targets.SEED_SINE_SETUP}: {targets.SEED_SINE_RMSE:g}).")]
