"""``bench history --suite NAME``: a suite's quality across the commits its runs in the store were made at: each
configuration's metric and the suite's summary score by commit, with intervals, and the commit where a series
stepped. :data:`METHOD` states how (it heads the report)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.config.settings import ConfigError
from bench.config.suite import Suite
from bench.core import stats
from bench.reporting import regress, results
from bench.reporting.compare import COMMIT_TAG, effect_text
from bench.reporting.pages import markdown_table
from bench.tasks.base import Task

SUMMARY = "summary score"
METHOD = """Runs record their commit (tag `mlflow.source.git.commit`; `-dirty` when the work tree had changes, kept apart);
commits are ordered by when their first run of the suite started. Each entry: the test metric's mean over seeds
with its 95% Student-t interval, as in the compiled tables (geometric for RMSE). **Summary score** per task: for
each seed, the mean over the configurations that have a result at every commit (of the logs for RMSE), then its
mean and interval over seeds.

**Step change**: each series is split once between every pair of neighbouring commits; a split pools the seeds
before it and after it and reads them with the regression check's tests (`bench regress`: a seed beyond a
prediction interval of the earlier seeds, or the mean shifted, by one-sided t tests and by more than the task's
smallest change that counts), at a false-alarm rate of alpha / (commits − 1) per split (Bonferroni over the
splits). Of the splits that show a change, the one with the largest shift relative to its mean test's threshold
names the commit where the step happened: the first commit after it."""


def commit_runs(suite: Suite, frame: pd.DataFrame) -> pd.DataFrame:
    """The suite's runs at each commit (:func:`bench.reporting.results.suite_runs` of that commit's runs, with
    ``commit`` and ``order``), configurations not run at a commit left out."""
    mine = frame[frame["tags.bench.config_hash"].notna() & frame.get(COMMIT_TAG, pd.Series(index=frame.index)).notna()]
    first = mine.groupby(COMMIT_TAG)["start_time"].min().sort_values()
    parts = []
    for order, commit in enumerate(first.index):
        runs = results.suite_runs(suite, mine[mine[COMMIT_TAG] == commit])
        parts.append(runs[runs["outcome"] != "missing"].assign(commit=commit, order=order))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def summary_values(runs: pd.DataFrame, task_name: str, task: Task) -> dict[str, list[float]]:
    """commit -> the summary score per seed of ``task``, named ``task_name`` in ``runs`` (see the module
    docstring)."""
    part = runs[(runs["task"] == task_name) & runs["metric"].notna()]
    commits = list(dict.fromkeys(part.sort_values("order")["commit"]))
    present = part.groupby("configuration")["commit"].nunique()
    kept = part[part["configuration"].isin(present[present == len(commits)].index)]
    log = task.log_scale
    found = {}
    for commit, at in kept.groupby("commit", sort=False):
        scale = at["metric"].map(math.log) if log else at["metric"]
        per_seed = scale.groupby(at["seed"]).mean()
        found[commit] = [math.exp(v) if log else v for v in per_seed]
    return found


@dataclass
class Step:
    commit: str  # the first commit after the step
    change: regress.SeedChange
    alpha: float  # per split


def step_change(task: Task, series: dict[str, list[float]], prior_var: float, alpha: float) -> Step | None:
    """The best single split of ``series`` (commit -> seeds' values, in commit order) that the regression tests
    call a change at ``alpha / (splits)`` each; None when no split does.

    >>> from bench.tasks.dependency import DependencyTask
    >>> step_change(DependencyTask(), {"a": [0.49, 0.492], "b": [0.491, 0.49], "c": [0.66, 0.661]}, math.nan, 0.01).commit
    'c'
    >>> step_change(DependencyTask(), {"a": [0.49, 0.492], "b": [0.491, 0.49]}, math.nan, 0.01) is None
    True
    """
    commits = [c for c, v in series.items() if v]
    if len(commits) < 2:
        return None
    each = alpha / (len(commits) - 1)
    best, score = None, 0.0
    for j in range(1, len(commits)):
        before = [v for c in commits[:j] for v in series[c]]
        after = [v for c in commits[j:] for v in series[c]]
        moved = regress.seed_change(task, before, after, prior_var, each, task.min_delta)
        if moved is None or not moved.change:
            continue
        ratio = abs(moved.shift) / moved.tests["mean_threshold"] if moved.tests["mean_threshold"] else math.inf
        if ratio > score:
            best, score = Step(commits[j], moved, each), ratio
    return best


@dataclass
class History:
    suite: Suite
    commits: list[str]  # in order
    table: pd.DataFrame  # task, configuration, commit, values, mean, low, high, n (summary rows: SUMMARY)
    steps: dict[tuple[str, str], Step | None]  # (task, configuration) -> its step change


def history(suite: Suite, frame: pd.DataFrame, alpha: float = regress.ALPHA) -> History:
    """The suite's history in a store's runs frame (:meth:`bench.running.store.Store.runs_frame`)."""
    runs = commit_runs(suite, frame)
    if runs.empty:
        raise ConfigError([f"history: suite {suite.name!r}: no run of it in the store records a commit; allowed: a "
                           "store where the suite ran (bench run --suite ...)"])
    commits = list(dict.fromkeys(runs.sort_values("order")["commit"]))
    rows, steps = [], {}
    for task_name, part in runs.groupby("task", sort=False):
        spec = suite.tasks[task_name]
        series = {key: {c: list(at["metric"].dropna()) for c, at in group.groupby("commit", sort=False)}
                  for key, group in part.sort_values("order").groupby("configuration", sort=False)}
        series[SUMMARY] = summary_values(runs, task_name, spec)
        prior = regress.prior_variances(((task_name, v) for key, by_commit in series.items() if key != SUMMARY
                                         for v in by_commit.values()), {task_name: spec})
        for key, by_commit in series.items():
            for commit, values in by_commit.items():
                mean, low, high = stats.t_interval(values, log=spec.log_scale)
                rows.append(dict(task=task_name, configuration=key, commit=commit, values=tuple(values), mean=mean,
                                 low=low, high=high, n=len(values)))
            steps[task_name, key] = step_change(spec, by_commit, math.nan if key == SUMMARY else
                                                prior.get(task_name, math.nan), alpha)
    return History(suite, commits, pd.DataFrame(rows), steps)


def short(commit: str) -> str:
    """``d803262`` for a full hash; a dirty work tree's runs keep their ``-dirty``."""
    return commit[:7] + ("-dirty" if commit.endswith("-dirty") else "")


def step_text(task: Task, step: Step | None) -> str:
    if step is None:
        return "none"
    c = step.change
    return (f"{c.change} from {short(step.commit)}: {effect_text(task, c.shift, c.low, c.high)} "
            f"({c.reason + ': ' if c.reason else ''}{c.detail}; α {step.alpha:.2g} per split)")


def markdown(found: History, image: str) -> str:
    """The history as Markdown: per task a table of configurations × commits, and the step changes."""
    lines = [f"# Quality history: suite `{found.suite.name}`", "",
             f"Commits in the order their first run of the suite started: "
             + ", ".join(f"`{short(c)}`" for c in found.commits) + ".", "", METHOD, "",
             f"![metric by commit]({image})", ""]
    for task_name, part in found.table.groupby("task", sort=False):
        task = found.suite.tasks[task_name]
        spec = regress.number_format(task)
        table = part.assign(entry=[
            f"no result (n={r.n})" if math.isnan(r.mean) else f"{r.mean:{spec}}" + (
                "" if math.isnan(r.low) else f" [{r.low:{spec}}, {r.high:{spec}}]") + f" (n={r.n})"
            for r in part.itertuples()]).pivot(index="configuration", columns="commit", values="entry")
        table = table.reindex(columns=[c for c in found.commits if c in table.columns]).fillna("")
        table.columns = [short(c) for c in table.columns]
        order = [k for k in dict.fromkeys(part["configuration"]) if k != SUMMARY] + [SUMMARY]
        table = table.reindex([k for k in order if k in table.index])
        table["step change"] = [step_text(task, found.steps.get((task_name, k))) for k in table.index]
        steps = sum(found.steps.get((task_name, k)) is not None for k in table.index)
        lines += [f"## {task.title or task_name}: {task.metric_label}", "",
                  f"{steps} of {len(table)} series show a step change.", "", markdown_table(table.reset_index()), ""]
    return "\n".join(lines)


def plot(found: History, path: Path) -> None:
    """One panel per task: every configuration's mean and interval by commit (grey; coloured where it stepped,
    the step marked), the summary score in black."""
    from bench.reporting.plots import plt  # matplotlib: not at the command line's start-up, which imports this

    task_names = list(dict.fromkeys(found.table["task"]))
    fig, axes = plt.subplots(len(task_names), 1, figsize=(max(6, 1.4 * len(found.commits) + 4), 4 * len(task_names)),
                             squeeze=False)
    x_of = {c: i for i, c in enumerate(found.commits)}
    for ax, task_name in zip(axes[:, 0], task_names):
        part = found.table[found.table["task"] == task_name]
        for key, series in part.groupby("configuration", sort=False):
            step = found.steps.get((task_name, key))
            xs = [x_of[c] for c in series["commit"]]
            low = (series["mean"] - series["low"]).fillna(0)
            high = (series["high"] - series["mean"]).fillna(0)
            style = (dict(color="black", lw=2.5, zorder=3, label=SUMMARY) if key == SUMMARY else
                     dict(lw=1.5, zorder=2, label=f"{key}: step at {short(step.commit)}") if step else
                     dict(color="0.75", lw=0.8, zorder=1))
            ax.errorbar(xs, series["mean"], yerr=[low, high], marker="o", ms=3, capsize=3, **style)
            if step:
                ax.axvline(x_of[step.commit] - 0.5, color="black" if key == SUMMARY else "tab:red", ls="--", lw=1)
        spec = found.suite.tasks[task_name]
        ax.set_yscale("log" if spec.log_scale else "linear")
        ax.set_xticks(range(len(found.commits)), [short(c) for c in found.commits], rotation=30, ha="right")
        ax.set_xlim(-0.5, len(found.commits) - 0.5)
        ax.set_ylabel(spec.metric_label)
        ax.set_title(f"{task_name}: mean and 95% interval over seeds by commit (grey: no step change)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
