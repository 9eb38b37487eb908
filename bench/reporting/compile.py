"""``bench compile``: a suite's results, from the store to ``results/<suite>/`` and onto its parent run.

Writes ``README.md`` (README-ready), ``results.html`` (one self-contained page), the CSVs behind them
(``summary.csv`` one row per configuration, ``runs.csv`` one per run, ``comparison_<task>.csv``, ``cost.csv``,
``score_per_cell.csv``: each cell's score over its configurations) and the PNGs, then logs them all as artifacts (under ``results/``) of the suite's latest parent run. Beside
them goes the interactive page ``explore.html`` (:mod:`bench.reporting.explore`) with ``plotly.min.js``; those
two stay in the folder only: the page needs its script beside it, and 5 MB of plotly.js per suite run would fill
the store.
"""

from __future__ import annotations

import datetime
import filecmp
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.reporting import explore, figures, reproduce, results, tables
from bench.reporting.task_reports import report_for
from bench.reporting.task_reports.base import Restore
from bench.running import locations
from bench.reporting.pages import Block, Bullets, Heading, Image, Table, Text, literal, to_html, to_markdown
from bench.config.settings import config_hash, setting_text
from bench.core.fields import ConfigError
from bench.running.store import Store
from bench.config.suite import SUITES_DIR, Suite
from bench.tasks.dependency import style_label

PAGES = ("README.md", "results.html")
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


def compile_suite(suite: Suite, tracking_uri: str, restore: Restore, experiment: str = locations.EXPERIMENT,
                  out_dir: Path | None = None, partial: bool = False) -> Compiled:
    """Compile ``suite``'s results from the store into ``out_dir`` (default: :func:`bench.running.locations.output_dir`).
    ``restore(cfg, weights)`` gives a run's trained (data, model), for figures that show predictions
    (:func:`bench.running.train.restore`, handed down by the command line). A suite with runs missing or still
    running compiles only with ``partial`` (the page says so); one with none of its runs in the store never
    (:func:`incomplete`): nothing is written then, so compiled pages are never replaced by empty ones.

    All or nothing: every file is written into a temporary folder beside ``out_dir`` and moved in only once all
    are written (the pages last), so a compile that fails leaves the pages as they were, never CSVs of one compile
    beside a README of another. A parent run whose artifacts would land outside the store is refused first."""
    out_dir = locations.output_dir(tracking_uri, suite.name, out_dir)
    found = results.load(suite, tracking_uri, experiment)
    store = Store(tracking_uri)
    if found.parent_run_id:
        store.artifact_folder(found.parent_run_id)  # raises StoreError if it lies outside the store's folder
    note = incomplete(suite, found.runs, tracking_uri, experiment, partial)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{suite.name}-compiling-", dir=out_dir.parent) as staging:
        summary, comparisons, costs, names = write_files(suite, tracking_uri, found, Path(staging), restore, note)
        explore.write(Path(staging), *explore_frames(suite, found, summary, store.find_experiment(experiment)),
                      f"rnn-bench results: {suite.name} (interactive)")  # beside the pages, not logged on the run
        for path in sorted(Path(staging).iterdir(), key=lambda p: p.name in (*PAGES, explore.PAGE)):  # pages last
            target = out_dir / path.name
            if not (target.is_file() and filecmp.cmp(path, target, shallow=False)):  # unchanged files stay as they are
                os.replace(path, target)
    files = [out_dir / name for name in names]
    if found.parent_run_id:
        store.log_artifacts(found.parent_run_id, files, "results")
    return Compiled(out_dir, summary, comparisons, costs, files, found.parent_run_id)


def write_files(suite: Suite, tracking_uri: str, found: results.SuiteResults, out_dir: Path,
                restore: Restore, note: str) -> tuple:
    """Write every compiled file into ``out_dir`` (``note``: why the results are partial, if they are);
    (summary, comparisons, costs, the files' names)."""
    specs = suite.tasks
    summary = tables.summarize(found.runs, specs)
    task_names = list(dict.fromkeys(summary["task"]))
    comparisons = {name: tables.comparison_table(summary, name, specs[name], report_for(specs[name]).reference_rows)
                   for name in task_names}
    costs = tables.cost_table(summary)
    names: list[str] = []

    def write_csv(frame: pd.DataFrame, name: str) -> None:
        frame.to_csv(out_dir / name, index=False)
        names.append(name)

    write_csv(summary, "summary.csv")
    write_csv(found.runs[RUN_COLUMNS + [c for c in found.runs.columns if c not in RUN_COLUMNS]], "runs.csv")
    for task, table in comparisons.items():
        write_csv(table, f"comparison_{specs[task].name}.csv")
    write_csv(costs, "cost.csv")
    per_cell = {name: tables.cell_scores(summary, name) for name in task_names}  # a bootstrap each: computed once
    write_csv(pd.concat(per_cell.values(), ignore_index=True), "score_per_cell.csv")
    images = draw_figures(suite, summary, per_cell, found, out_dir, tracking_uri, restore)
    names += [name for task_images in images.values() for name in task_images]
    blocks = report_blocks(suite, tracking_uri, found.runs, summary, comparisons, per_cell, costs, images, out_dir)
    if note:
        blocks.insert(1, Text(f"**Partial results:** {note}"))
    (out_dir / "README.md").write_text(to_markdown(blocks))
    (out_dir / "results.html").write_text(to_html(blocks, f"rnn-bench results: {suite.name}", out_dir))
    names += [block.file for block in blocks if isinstance(block, Image) and block.file not in names]
    return summary, comparisons, costs, names + list(PAGES)


SHOWN_SETTINGS = ["cell", "layers", "bidirectional", "truncation", "tbptt_stride", "hidden", "optimizer", "lr", "seed"]


def explore_frames(suite: Suite, found: results.SuiteResults, summary: pd.DataFrame,
                   experiment_id: str | None) -> tuple[pd.DataFrame, ...]:
    """What the interactive page (:func:`bench.reporting.explore.page`) draws: the runs with their truncation
    style, MLflow UI address, settings as text and metric's name; the configurations' summaries; the learning
    curves; the task's references (the static heatmap's anchors: floors, baselines, the source's figure)."""
    runs = found.runs[found.runs["run_id"].notna()].copy()
    configs = {config_hash(cfg): cfg for cfg in suite.configs + suite.possible_seed_configs()}
    shown = {task: [*SHOWN_SETTINGS, *(f for f in extras if f not in SHOWN_SETTINGS)]
             for task, extras in suite.varying.items()}
    cfgs = [configs[h] for h in runs["config_hash"]]
    runs["style"] = [style_label(c["truncation"], c["tbptt_stride"]) if "tbptt_stride" in c else "T" for c in cfgs]
    runs["settings"] = [" ".join(f"{k}={setting_text(c[k])}" for k in shown.get(c["task"], SHOWN_SETTINGS) if k in c)
                        for c in cfgs]
    runs["url"] = [explore.run_url(experiment_id, r) for r in runs["run_id"]]
    specs = suite.tasks
    runs["metric_label"] = [specs[t].metric_label for t in runs["task"]]
    runs["log_scale"] = [specs[t].log_scale for t in runs["task"]]
    runs["lower_is_better"] = [specs[t].lower_is_better for t in runs["task"]]
    task_of_run = dict(zip(runs["run_id"], runs["task"]))
    curves = pd.DataFrame(
        [(run_id, step, value) for run_id, history in found.histories.items()
         for step, value in history.get(specs[task_of_run[run_id]].val_metric, [])],
        columns=["run_id", "step", "value"])
    references = pd.DataFrame(
        [(name, label, value) for name, part in summary.groupby("task", sort=False) if (part["n"] > 0).any()
         for label, value in report_for(specs[name]).heatmap_anchors(part).items()],
        columns=["task", "reference", "value"])
    return runs, summary, curves, references


def incomplete(suite: Suite, runs: pd.DataFrame, tracking_uri: str, experiment: str, partial: bool) -> str | None:
    """None when every run of ``suite`` has ended in the store; else what is missing or running, as the page of a
    ``partial`` compile states it. Raises :class:`ConfigError` (one line: what was looked for, where, and the
    command that fills the store) when none of its runs is there, or when some are and ``partial`` is not given."""
    missing = int((runs["outcome"] == "missing").sum())
    running = int((runs["status"] == "RUNNING").sum())
    if missing == len(runs):
        raise nothing_to_compile(suite, tracking_uri, experiment)
    if not missing and not running:
        return None
    state = ", ".join(f"{count} {what}" for count, what in ((missing, "missing"), (running, "still running")) if count)
    fill = f"rnn-bench run --suite {suite_argument(suite)}"
    if not partial:
        raise ConfigError([f"compile: {state} of the {len(runs)} runs of suite {suite.name!r} in "
                           f"{locations.shown_uri(tracking_uri)} (experiment {experiment!r}); allowed: `{fill}` to "
                           "complete it, or --partial to compile what is there"])
    return (f"{state} of the {len(runs)} runs when compiled (`rnn-bench compile --partial`); "
            f"`{fill}` completes the suite.")


def nothing_to_compile(suite: Suite, tracking_uri: str, experiment: str) -> ConfigError:
    """The refusal to compile a suite the store holds no run of: what was looked for, where, what fills it."""
    return ConfigError([f"compile: none of the {len(suite.configs)} runs of suite {suite.name!r} is in "
                        f"{locations.shown_uri(tracking_uri)} (experiment {experiment!r}); allowed: a store that "
                        f"holds them: `rnn-bench run --suite {suite_argument(suite)}` fills it, or --tracking-uri "
                        "names another"])


def draw_figures(suite: Suite, summary: pd.DataFrame, per_cell: dict[str, pd.DataFrame], found: results.SuiteResults,
                 out_dir: Path, tracking_uri: str, restore: Restore) -> dict[str, dict[str, str]]:
    """Per task (the keys of ``per_cell``, each task's :func:`bench.reporting.tables.cell_scores`): file name ->
    what it shows, for every figure there is data for."""
    configs = {config_hash(cfg): cfg for cfg in suite.reported() + suite.possible_seed_configs()}
    store = Store(tracking_uri)
    images: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="rnn-bench-weights-") as tmp:
        for name in per_cell:
            task, part = suite.tasks[name], summary[summary["task"] == name]
            images[name] = {}
            if not (part["n"] > 0).any():
                continue
            heatmap, ends = f"heatmap_{task.name}.png", report_for(task).score_ends
            figures.metric_heatmap(summary, name, task, out_dir / heatmap, report_for(task).heatmap_anchors(part), ends)
            scored = part["score"].notna().any()
            images[name][heatmap] = (f"{name}: score of the mean {task.metric_label} (0 = {ends[1]}, 1 = {ends[0]})"
                                     if scored else f"{name}: mean {task.metric_label}") + " over cell × truncation"
            if len(per_cell[name]):
                figures.score_plot(per_cell[name], name, out_dir / f"scores_{task.name}.png", ends)
                images[name][f"scores_{task.name}.png"] = f"{name}: score per cell (IQM, 95% stratified bootstrap interval)"
            weights = lambda run_id: store.download_artifact(run_id, "model.pt", tmp)  # noqa: E731
            images[name].update(report_for(task).figures(part, found.runs[found.runs["task"] == name],
                                                         found.histories, configs, out_dir, weights, restore))
    return images


def report_blocks(suite: Suite, tracking_uri: str, runs: pd.DataFrame, summary: pd.DataFrame,
                  comparisons: dict[str, pd.DataFrame], per_cell: dict[str, pd.DataFrame], costs: pd.DataFrame,
                  images: dict[str, dict[str, str]], out_dir: Path) -> list[Block]:
    counts = runs["outcome"].value_counts()
    commits = literal(", ".join(sorted(runs["commit"].dropna().unique())) or "none")  # text from the store
    blocks: list[Block] = [
        Heading(f"Results: suite `{suite.name}`", 1),
        Text(literal(suite.description)),
        Text(f"Suite file `{locations.shown_path(suite.path)}`" + (f", overridden on the command line by {literal(' '.join(suite.overrides))}"
                                             if suite.overrides else ", as written") + "."),
        Text(f"Compiled {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC from `{locations.shown_uri(tracking_uri)}`; "
             f"runs of commit {commits}. {len(summary)} configurations, {len(runs)} runs: "
             + ", ".join(f"{counts.get(o, 0)} {o}" for o in ("finished", *tables.UNFINISHED)) + "."),
        Text(f"Interactive: `{explore.PAGE}` in this folder draws every seed with the filters of your choice, and "
             "links each run to the MLflow UI (`make ui`)."),
        Bullets(["Entries: first what the seeds did where the task classes them (dependency: how many seeds "
                 "learned each lag, with the 95% Wilson interval of that share where they split; \"partly\": "
                 "part of it), then the mean of the test metric over seeds and its 95% Student-t interval "
                 "[low, high], clipped to the values the metric can take (never below the Bayes floor; for RMSE, "
                 "which spreads by factors, the geometric mean and the interval of the logs); n = runs "
                 "that finished. Diverged (loss became NaN/inf), failed and missing runs are counted beside it, "
                 "never dropped; so are runs still improving over the last fifth of training (not converged: "
                 "they ran out of budget, which is not the same as being unable to learn).",
                 "Columns: T = truncation length (dependency: TBPTT window; sine: input window). What each row "
                 "holds equal is in the suite's description above: the rows of one column share data, budget, "
                 "optimizer and everything not named in the row.",
                 *protocol(suite, summary)]),
    ]
    if suite.tuning and suite.tuning.chosen:
        tuning = suite.tuning
        blocks += [Heading("Tuned learning rates"),
                   Text(f"Each (task, cell) trained at every rate of {', '.join(f'{r:g}' for r in tuning.grid)} on the "
                        f"tuning seeds {', '.join(map(str, tuning.seeds))} (never reported), at the suite's budget, on "
                        f"its configurations with {', '.join(f'{k}={v}' for k, v in tuning.at.items()) or 'any setting'}; "
                        "the rate with the best mean test metric is used for all its reported runs (also params "
                        "tuned_lr.<task>.<cell> of the suite's parent run). Beside it, the mean at the suite's shared "
                        "rate and the ranking of the cells under each: how much the comparison depends on tuning."
                        + "".join(f" {task} is not tuned: its runs train at {other}'s tuned rates (the same data and "
                                  "model; only the test split differs)." for task, other in tuning.same_as.items())),
                   Table(tables.sensitivity_table(tuning).round(4))]
    if suite.published:
        found = reproduce.verdicts(suite, runs, summary)
        counts = found["verdict"].value_counts()
        blocks += [Heading("Reproduction: published figures beside ours"),
                   Text("Verdicts: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ". " + reproduce.RULES),
                   Table(found, reproduce.verdict_scores(found),
                         "Verdict: blue reproduced, white inconclusive, orange not reproduced.")]
    specs = suite.tasks
    for name, table in comparisons.items():
        task = specs[name]
        scores = tables.comparison_scores(summary, name, task, table, report_for(task).reference_rows)
        blocks += [Heading(f"{task.title or name}: {task.metric_label}"), *report_for(task).notes(summary[summary["task"] == name]),
                   Table(table, scores.frame, scores.legend)]
        aggregate = tables.score_table(per_cell[name])
        if len(aggregate):
            best, worst = report_for(task).score_ends
            blocks += [Text(f"Score per cell, from 0 ({worst}) to 1 ({best}), every seed of every configuration of "
                            "the cell, each configuration weighing the same: interquartile mean with a stratified "
                            "bootstrap 95% interval (seeds resampled within each configuration; Agarwal et al. "
                            "2021)."), Table(aggregate)]
        blocks += [Image(file, alt) for file, alt in images[name].items()]
        blocks += report_for(task).sections(summary[summary["task"] == name], runs[runs["task"] == name], out_dir)
    goals = "; ".join(text for name in comparisons if (text := report_for(specs[name]).target_text()))
    blocks += [
        Heading("Cost and time to target"),
        Text(f"Means over finished seeds. Target: {goals}. Steps and wall time to target: the first validation "
             "that reaches it, averaged over the seeds that did."),
        Table(costs),
    ]
    undecided = summary[~summary["decided"]]
    if len(undecided):
        blocks += [Heading("Entries still undecided"), Bullets(
            [f"`{c}` (n={n}): {why}" for c, n, why in undecided[["configuration", "n", "open"]].itertuples(index=False)])]
    unfinished = runs[runs["outcome"].isin(["diverged", "failed", "running"])]
    missing = int((runs["outcome"] == "missing").sum())
    if len(unfinished) or missing:
        blocks += [Heading("Runs without a result"), Bullets(
            [f"`{c}` seed {s}: {o}: {literal(r)}" for c, s, o, r in
             unfinished[["configuration", "seed", "outcome", "reason"]].itertuples(index=False)]
            + ([f"{missing} runs missing: the store has no run of their configuration; "
                f"`rnn-bench run --suite {suite_argument(suite)}` adds them"] if missing else []))]
    return blocks


def protocol(suite: Suite, summary: pd.DataFrame) -> list[str]:
    """What the page must say about how its runs ended and how many seeds each entry got: per task, whether every
    run trained its whole budget (equal data) or stopped at a validation plateau (and how many the cap stopped
    instead), and, with adaptive seeds, the rule that added them and how many entries it decided."""
    lines = []
    for name in suite.tasks:
        configs = [cfg for cfg in suite.configs if cfg["task"] == name]
        part = summary[summary["task"] == name]
        stops = sorted({(cfg["stop"], cfg["patience"], cfg["plateau_tolerance"]) for cfg in configs})
        texts = []
        for stop, patience, tolerance in stops:
            if stop == "budget":
                texts.append("every run trains its whole step budget (equal data)")
            else:
                texts.append(f"a run stops once {patience} validations in a row have not improved on its best by more "
                             f"than {math.expm1(tolerance):.1%} ({tolerance:g} of the log), or at the "
                             f"step budget, its cap; {int(part['at_cap'].sum())} of {int(part['n'].sum())} finished "
                             "runs stopped at the cap; each is tested with its best validation's weights; samples "
                             "to plateau: the training samples up to its best validation (the cost table)")
        lines.append(f"Stopping, {name}: " + "; ".join(texts) + ".")
    if suite.seeds:
        decided = int(summary["decided"].sum())
        lines.append(f"Seeds: {suite.seeds[0]} per entry, then one more at a time (seeds {suite.seeds[0]}, "
                     f"{suite.seeds[0] + 1}, …) to each entry whose answer is open — its mark ends in `?` — until "
                     f"it is decided or has {suite.seeds[1]}; {decided} of {len(summary)} entries decided (the "
                     "undecided ones, and why, are listed below). Decided: the seeds split across classes with a "
                     "band between them (`A…B`), or the interval lies in one band, reaching at most the "
                     "indifference zone past its edges (`bench/tasks/decision.py`).")
    return lines


def suite_argument(suite: Suite) -> str:
    """How ``--suite`` names this suite: its name when bundled, else its file."""
    return suite.name if suite.path.parent.resolve() == SUITES_DIR.resolve() else str(suite.path)
