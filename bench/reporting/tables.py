"""The maths and layout of the compiled tables, as plain pandas functions over :func:`bench.reporting.results.suite_runs`.

``summarize`` reduces runs (one per seed) to configurations; ``comparison_table`` lays a task's
configurations out as rows cell × layers × direction against columns of truncation lengths, with the task's
reference rows (floors, baselines) beside them; ``cost_table`` lists what each configuration costs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from bench.core import stats
from bench.config.run_config import tasks_of
from bench.core.metric_names import is_reference
from bench.tasks import decision, outcomes
from bench.tasks.base import Task

# a task's reference rows under its table: (its summary rows, column label -> their rows) -> label -> column -> value
ReferenceRows = Callable[[pd.DataFrame, dict[str, pd.DataFrame]], dict[str, dict[str, float]]]
COSTS = {  # run metric -> column title, format
    "num_params": ("parameters", ",.0f"),
    "wall_time_s": ("wall time (s)", ".1f"),
    "train/samples_per_s": ("samples/s", ",.0f"),
    "peak_memory_mb": ("peak memory over idle (MB)", ",.1f"),  # the run's increase (train.PeakMemory)
}
# Runs without a result, counted beside each entry: running ones hold a live lease (a suite still under way).
UNFINISHED = ("diverged", "failed", "running", "missing")
PLACE = ["task", "configuration", "cell", "layers", "direction", "variant", "truncation"]


def number(value: float, spec: str) -> str:
    """``value`` formatted, or ``''`` for NaN.

    >>> number(0.45678, ".4f"), number(float("nan"), ".4f")
    ('0.4568', '')
    """
    return "" if value is None or math.isnan(value) else format(value, spec)


def references(finished: pd.DataFrame) -> dict[str, float]:
    """Mean of every reference metric (``floor_*``, ``baseline_*``) over finished runs; absent ones left out."""
    columns = [c for c in finished.columns if is_reference(c)]
    means = finished[columns].mean() if len(finished) else pd.Series(dtype=float)
    return {k: float(v) for k, v in means.items() if pd.notna(v)}


def summarize(runs: pd.DataFrame, specs: Mapping[str, Task]) -> pd.DataFrame:
    """One row per configuration (seeds pooled): where it sits (``PLACE``), counts ``runs``, ``n`` (finished
    with a metric), ``diverged``, ``failed``, ``missing``; the metric's ``values`` by seed, ``mean`` with its 95%
    Student-t interval ``low``–``high`` over seeds (geometric, on the log scale, for a task whose metric spans
    decades; clipped to the values the metric can take, e.g. never below the Bayes floor) and ``std``; each seed's
    outcome class against the task's known answers (``ranks``, ``classes``, ``outcome_names``, judged with the
    run's test ``noise``: :mod:`bench.tasks.outcomes`), the mean's ``score`` from 0 to 1 between them and each
    seed's (``scores``); ``not_converged`` (:func:`not_converged`); ``target`` and
    ``reached`` (finished runs whose validation reached it) with the mean ``steps_to_target`` and
    ``time_to_target_s`` of those; mean costs; mean references; the task's ``mark``. ``specs``: the Task of
    each task name in ``runs`` (:attr:`bench.config.suite.Suite.tasks`).

    >>> runs = pd.DataFrame({"task": "dependency", "configuration": "dependency/gru-L1-uni-T5", "cell": "gru",
    ...     "layers": 1, "direction": "uni", "variant": "", "truncation": 5, "seed": [0, 1, 2, 3],
    ...     "outcome": ["finished"] * 3 + ["diverged"], "metric": [0.520, 0.521, 0.519, float("nan")],
    ...     "converged": [1.0, 0.0, 1.0, float("nan")], "target": 0.4645, "reached": [0.0, 0.0, 1.0, float("nan")],
    ...     "steps_to_target": [float("nan")] * 2 + [400.0, float("nan")], "time_to_target_s": 1.0,
    ...     "num_params": 337.0, "floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545})
    >>> from bench.tasks.dependency import DependencyTask
    >>> row = summarize(runs, {"dependency": DependencyTask()}).iloc[0]
    >>> print(f"{row.runs} runs: n={row.n}, {row.diverged} diverged; {row['mean']:.3f} [{row.low:.4f}, {row.high:.4f}] "
    ...       f"[{row.mark}], {row.not_converged} not converged")
    4 runs: n=3, 1 diverged; 0.520 [0.5175, 0.5225] [1], 1 not converged
    >>> print(f"reached by {row.reached} at step {row.steps_to_target:.0f}")
    reached by 1 at step 400
    """
    rows = []
    for _, group in runs.groupby("configuration", sort=False):
        finished = group[group["outcome"] == "finished"].sort_values("seed")
        task = specs[group.iloc[0]["task"]]
        values = tuple(float(v) for v in finished["metric"] if pd.notna(v))
        judged = decision.judge(task, values, references(finished), group.iloc[0].to_dict())
        row = {key: group.iloc[0][key] for key in PLACE}
        row.update(runs=len(group), n=len(values),
                   **{o: int((group["outcome"] == o).sum()) for o in UNFINISHED},
                   **{k: judged[k] for k in ("values", "mean", "low", "high")}, std=finished["metric"].std(ddof=1),
                   not_converged=not_converged(finished),
                   target=float(group["target"].iloc[0]) if "target" in group else math.nan,
                   reached=int(finished["reached"].sum()))
        hit = finished[finished["reached"] == 1]
        row["steps_to_target"] = hit["steps_to_target"].mean()
        row["time_to_target_s"] = hit["time_to_target_s"].mean()
        row.update({metric: finished[metric].mean() if metric in finished else math.nan for metric in COSTS})
        row["at_cap"] = int((finished["at_cap"] == 1).sum()) if "at_cap" in finished else 0
        row["samples_to_plateau"] = (finished["samples_to_plateau"].mean() if "samples_to_plateau" in finished
                                     else math.nan)
        row.update(judged)
        row["scores"] = tuple(task.score(row, v) for v in row["values"])
        row["open"] = open_question(row, group)
        row["decided"] = not row["open"]
        rows.append(row)
    return pd.DataFrame(rows)


def not_converged(finished: pd.DataFrame) -> int:
    """Finished runs of the whole budget (equal data) still improving over their last fifth (``converged`` 0). A
    plateau-stopped run (``at_cap`` set) converged by its own rule, or is counted at cap, not here; its
    ``converged``, which stores written before this rule hold, is not read."""
    at_cap = finished["at_cap"] if "at_cap" in finished else pd.Series(math.nan, index=finished.index)
    still = finished["converged"] == 0 if "converged" in finished else pd.Series(False, index=finished.index)
    return int((still & at_cap.isna()).sum())


def open_question(row: dict, group: pd.DataFrame) -> str:
    """Why an entry is still undecided (:func:`bench.tasks.decision.open_reason`), and where it stopped: at the
    suite's most seeds, or with runs that did not finish; ``''`` when decided."""
    reason = decision.open_reason(row)
    if not reason:
        return ""
    most = int(group["seeds_max"].iloc[0]) if "seeds_max" in group else row["runs"]
    unfinished = row["runs"] - row["n"]
    stopped = (f"{unfinished} run(s) without a result" if unfinished else
               f"at the most seeds, {most}" if row["runs"] >= most else f"{row['runs']} of at most {most} seeds run")
    return f"{reason}; {stopped}"


def entry_text(row: dict, spec: str) -> str:
    """A table entry: first what the seeds did (``lag 3: 3/3 · lag 8: 1/3 [6%, 79%]``, where the task classes
    seeds), then ``[mark] mean [low, high] (n=…)`` — the 95% interval over seeds — and whatever did not finish or
    converge, never dropped.

    >>> entry_text({"mean": 0.4561, "low": 0.4540, "high": 0.4582, "n": 3, "mark": "2", "diverged": 0, "failed": 0,
    ...             "missing": 0, "not_converged": 1}, ".4f")
    '[2] 0.4561 [0.4540, 0.4582] (n=3), 1 not converged'
    >>> entry_text({"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0, "mark": "",
    ...             "diverged": 2, "failed": 1, "missing": 0, "not_converged": 0}, ".4f")
    'no result (n=0), 2 diverged, 1 failed'
    """
    if row["n"] == 0:
        text = "no result (n=0)"
    else:
        interval = f" [{number(row['low'], spec)}, {number(row['high'], spec)}]" if row["n"] > 1 else ""
        mark = f"[{row['mark']}] " if row.get("mark") else ""
        seeds = outcomes.counts_text(row)
        text = (f"{seeds} · " if seeds else "") + f"{mark}{number(row['mean'], spec)}{interval} (n={row['n']})"
    counts = [(row.get(o, 0), o) for o in UNFINISHED] + [(row.get("not_converged", 0), "not converged"),
                                                        (row.get("at_cap", 0), "at cap")]
    return text + "".join(f", {count} {what}" for count, what in counts if count)


def row_label(row: dict) -> str:
    """A table row: cell, layers, direction and any other varying setting.

    >>> row_label({"cell": "gru", "layers": 2, "direction": "bi", "variant": "hidden=32"})
    'gru L2 bi hidden=32'
    """
    return " ".join(str(p) for p in (row["cell"], f"L{row['layers']}", row["direction"], row["variant"]) if p)


def column_label(truncation: int) -> str:
    return f"T={truncation}"


def comparison_table(summary: pd.DataFrame, name: str, task: Task,
                     reference_rows: ReferenceRows = lambda part, columns: {}) -> pd.DataFrame:
    """Rows cell × layers × direction, columns truncation lengths, entries :func:`entry_text`; then the task's
    reference rows (floors, baselines, a source's figure: its report part's
    :meth:`~bench.reporting.task_reports.base.TaskReport.reference_rows`). ``name``: the task's name in
    ``summary``."""
    part = summary[summary["task"] == name]
    spec = task.number_format
    columns = [column_label(t) for t in sorted(part["truncation"].unique())]
    entries: dict[str, dict[str, str]] = {}
    for row in part.to_dict("records"):
        entries.setdefault(row_label(row), {})[column_label(row["truncation"])] = entry_text(row, spec)
    by_column = {column_label(t): group for t, group in part.groupby("truncation")}
    for label, values in reference_rows(part, by_column).items():
        entries[label] = {column: number(values.get(column, math.nan), spec) for column in columns}
    table = pd.DataFrame.from_dict(entries, orient="index").reindex(columns=columns).fillna("")
    return table.rename_axis("configuration").reset_index()


@dataclass
class CellScores:
    """Where each entry of a comparison table sits between the task's references, for colouring it."""

    frame: pd.DataFrame  # the table's shape: 0 at the best reference .. 1 at the worst (and beyond); NaN: no number
    legend: str  # what the scores mean, with the references' values


def comparison_scores(summary: pd.DataFrame, name: str, task: Task, table: pd.DataFrame,
                      reference_rows: ReferenceRows = lambda part, columns: {}) -> CellScores:
    """A score in [0, 1] for every entry of ``table`` (:func:`comparison_table` of ``task``): 0 at the task's best
    reference or its target, whichever is worse (for the dependency task: the Bayes floor + 0.01; for the sine
    task: the source's RMSE, since no network comes near the linear AR baseline's 1e-8), and 1 at its worst
    reference or beyond (for the dependency task: the floor of a predictor that learned nothing; for the sine task:
    repeating the last value). In between linear, or in the ratio of the two on a log scale for a task whose metric
    spans decades. The references are the ``floor_*`` and ``baseline_*`` columns of the task's summary rows.
    Reference rows are scored like entries; entries without a finished run, and the label column, are NaN.

    >>> summary = pd.DataFrame({"task": "dependency", "cell": "gru", "layers": 1, "direction": "uni",
    ...     "variant": "", "truncation": [2, 10], "n": [1, 1], "mean": [0.70, 0.5], "floor_none": 0.66,
    ...     "floor_all": 0.46})
    >>> table = pd.DataFrame({"configuration": ["gru L1 uni", "floor: knows no lag"], "T=2": "", "T=10": ""})
    >>> from bench.reporting.task_reports import report_for
    >>> from bench.tasks.dependency import DependencyTask
    >>> task = DependencyTask()
    >>> scores = comparison_scores(summary, "dependency", task, table, report_for(task).reference_rows)
    >>> scores.frame.round(2).to_numpy().tolist()
    [[nan, 1.0, 0.16], [nan, 1.0, 1.0]]
    >>> print(scores.legend)
    Colour: blue at 0.47 (the target) or better, orange at 0.66 (the worst reference) or worse, linear in between.
    """
    part = summary[summary["task"] == name]
    frame = pd.DataFrame(math.nan, index=table.index, columns=table.columns)
    references = part[[c for c in part.columns if is_reference(c)]].to_numpy(dtype=float)
    references = references[~pd.isna(references)]
    if not len(references):
        return CellScores(frame, "")
    pick_best, pick_worst = (min, max) if task.lower_is_better else (max, min)
    best, worst = pick_best(references), pick_worst(references)
    goals = [g for g in (task.target(row) for row in part.to_dict("records")) if not math.isnan(g)]
    good, named = (pick_worst(best, pick_best(goals)), "the target") if goals else (best, "the best reference")
    if goals and good == best:
        named = "the best reference"
    log = task.log_scale and min(good, worst) > 0
    position = (lambda v: math.log(max(v, 1e-300))) if log else (lambda v: v)

    def score(value: float) -> float:
        if value is None or math.isnan(value):
            return math.nan
        if good == worst:
            return 0.0 if pick_best(value, good) == value else 1.0
        return min(1.0, max(0.0, (position(value) - position(good)) / (position(worst) - position(good))))

    rows = {label: place for place, label in zip(table.index, table.iloc[:, 0])}
    for row in part.to_dict("records"):
        column = column_label(row["truncation"])
        if row["n"] > 0 and row_label(row) in rows and column in frame.columns:
            frame.loc[rows[row_label(row)], column] = score(row["mean"])
    by_column = {column_label(t): group for t, group in part.groupby("truncation")}
    for label, values in reference_rows(part, by_column).items():
        for column, value in values.items():
            if label in rows and column in frame.columns:
                frame.loc[rows[label], column] = score(value)
    scale = "on a log scale" if log else "linear"
    legend = (f"Colour: blue at {good:.4g} ({named}) or better, orange at {worst:.4g} (the worst reference) or worse, "
              f"{scale} in between.")
    return CellScores(frame, legend)


def cell_scores(summary: pd.DataFrame, task: str, by: str = "cell") -> pd.DataFrame:
    """Per ``by`` (a cell): the ``scores`` of every seed of every configuration of the task (0 at the worst known
    answer, 1 at the best: :meth:`bench.tasks.base.Task.score`, in the summary), aggregated as an interquartile
    mean ``iqm`` (each configuration weighing the same) with a stratified bootstrap 95% interval ``low``-``high``
    (seeds resampled within each configuration: :func:`bench.core.stats.iqm_interval`), and how many
    ``configurations`` and ``seeds`` it pools; empty when the task has no known answers.

    >>> summary = pd.DataFrame({"task": "dependency", "cell": ["gru", "gru", "lstm"], "n": 3,
    ...     "scores": [(0.68, 0.78, 0.73), (0.93, 0.98, 0.88), (0.0, 0.05, 0.30)]})
    >>> cell_scores(summary, "dependency").round(2).to_dict("records")[0]
    {'task': 'dependency', 'cell': 'gru', 'configurations': 2, 'seeds': 6, 'iqm': 0.83, 'low': 0.8, 'high': 0.86}
    """
    part = summary[(summary["task"] == task) & (summary["n"] > 0)]
    rows = []
    for key, group in part.groupby(by, sort=False):
        scores = [[s for s in seeds if not math.isnan(s)] for seeds in group.get("scores", [])]
        scores = [g for g in scores if g]
        if not scores:
            continue
        point, low, high = stats.iqm_interval(scores)
        rows.append({"task": task, by: key, "configurations": len(scores), "seeds": sum(map(len, scores)),
                     "iqm": point, "low": low, "high": high})
    return pd.DataFrame(rows, columns=["task", by, "configurations", "seeds", "iqm", "low", "high"])


def score_table(frame: pd.DataFrame, by: str = "cell") -> pd.DataFrame:
    """:func:`cell_scores` as a page shows it: the IQM with its interval in one column.

    >>> frame = pd.DataFrame({"task": "dependency", "cell": ["gru"], "configurations": 2, "seeds": 6,
    ...     "iqm": 0.8333, "low": 0.79, "high": 0.86})
    >>> score_table(frame).to_dict("records")[0]
    {'cell': 'gru', 'configurations': 2, 'seeds': 6, 'score (IQM) [95% interval]': '0.83 [0.79, 0.86]'}
    """
    return pd.DataFrame({by: frame[by], "configurations": frame["configurations"], "seeds": frame["seeds"],
                         "score (IQM) [95% interval]": [
                             f"{point:.2f}" + (f" [{low:.2f}, {high:.2f}]" if not math.isnan(low) else "")
                             for point, low, high in zip(frame["iqm"], frame["low"], frame["high"])]})


def cost_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per configuration, grouped by task: mean costs over its finished seeds, and how soon it reached its target.

    >>> summary = pd.DataFrame({"configuration": ["sine/gru-L1-uni-T10"], "n": [2], "reached": [1],
    ...     "steps_to_target": [600.0], "time_to_target_s": [2.51], "num_params": [337.0], "wall_time_s": [3.0],
    ...     "train/samples_per_s": [12345.6], "peak_memory_mb": [400.2]})
    >>> cost_table(summary).iloc[0].tolist()
    ['sine/gru-L1-uni-T10', '337', '3.0', '12,346', '400.2', '1/2', '600', '2.5']
    """
    if "task" in summary:  # grouped by task, in the order the tasks come
        order = {task: i for i, task in enumerate(dict.fromkeys(summary["task"]))}
        summary = summary.sort_values("task", key=lambda tasks: tasks.map(order), kind="stable")
    rows = []
    for row in summary.to_dict("records"):
        costs = {title: number(row[metric], spec) for metric, (title, spec) in COSTS.items()}
        unknown = "no result" if row["n"] == 0 else "not reached"
        reached = row["reached"] > 0
        rows.append({"configuration": row["configuration"], **costs, "reached target": f"{row['reached']}/{row['n']}",
                     "steps to target": number(row["steps_to_target"], ".0f") if reached else unknown,
                     "time to target (s)": number(row["time_to_target_s"], ".1f") if reached else unknown})
        if "samples_to_plateau" in row and summary["samples_to_plateau"].notna().any():  # plateau stopping
            rows[-1]["samples to plateau"] = number(row["samples_to_plateau"], ",.0f") or unknown.replace(
                "not reached", "at cap")
    return pd.DataFrame(rows)


def sensitivity_table(tuning) -> pd.DataFrame:
    """The tuning stage's choice and what it changes (:class:`bench.config.suite.Tuning`): per (task, cell), its
    mean metric over the tuning seeds at the suite's shared rate and at its tuned rate, and the cell's rank
    within its task under each (1 = best): the ranking a reader would see without tuning, beside the tuned one.

    >>> from bench.config.settings import resolve
    >>> from bench.config.suite import Tuning
    >>> t = Tuning((0.01, 0.02), (100,), {}, [resolve({"task": "dependency", "cell": c, "lr": 0.02}) for c in ("gru", "lstm")],
    ...            chosen={("dependency", "gru"): 0.02, ("dependency", "lstm"): 0.01},
    ...            scores={("dependency", "gru", 0.01): 0.52, ("dependency", "gru", 0.02): 0.50,
    ...                    ("dependency", "lstm", 0.01): 0.46, ("dependency", "lstm", 0.02): 0.55})
    >>> sensitivity_table(t)[["cell", "rank at shared rate", "tuned rate", "rank tuned"]].values.tolist()
    [['gru', 1, 0.02, 2], ['lstm', 2, 0.01, 1]]
    """
    shared = {(cfg["task"], cfg["cell"]): cfg["lr"] for cfg in tuning.shared}
    specs = tasks_of(tuning.shared)
    rows = [{"task": task, "cell": cell, "shared rate": shared[(task, cell)],
             "at shared rate": tuning.scores.get((task, cell, shared[(task, cell)]), math.nan),
             "tuned rate": rate, "at tuned rate": tuning.scores.get((task, cell, rate), math.nan)}
            for (task, cell), rate in sorted(tuning.chosen.items())]
    frame = pd.DataFrame(rows)
    for column, rank in (("at shared rate", "rank at shared rate"), ("at tuned rate", "rank tuned")):
        ascending = frame["task"].map(lambda name: specs[name].lower_is_better)
        frame[rank] = [int(frame[(frame["task"] == row.task)][column].rank(ascending=bool(up), method="min")[i])
                       for i, row, up in zip(frame.index, frame.itertuples(), ascending)]
    return frame[["task", "cell", "shared rate", "at shared rate", "rank at shared rate", "tuned rate",
                  "at tuned rate", "rank tuned"]]
