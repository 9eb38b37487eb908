"""A suite's results as the MLflow store holds them: one row per run configuration, with its latest outcome.

Runs belong to a suite through their config hash (tag ``bench.config_hash``); a rerun suite skips hashes
that already have a result, so one suite's runs may sit under several parent runs. Per hash the latest run with a
result counts (FINISHED, or FAILED as diverged: :func:`bench.running.store.has_result`; its ``bench.outcome``
says finished or diverged); a hash with only other FAILED (or killed) runs counts as failed, one with no run at
all as missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from bench.tasks import dependency_floors
from bench.config.settings import RunConfig, config_hash, run_name, setting_text
from bench.running.store import Store, has_result
from bench.config.suite import Suite
from bench.tasks.base import Task

def configuration_key(cfg: dict, extra_fields: list[str] = ()) -> str:
    """A configuration without its seed: :func:`bench.config.settings.run_name` less the seed, plus varying settings.

    >>> cfg = {"task": "dependency", "cell": "lstm", "layers": 2, "bidirectional": True, "truncation": 10,
    ...        "seed": 1, "hidden": 32}
    >>> configuration_key(cfg), configuration_key(cfg, ["hidden"])
    ('dependency/lstm-L2-bi-T10', 'dependency/lstm-L2-bi-T10-hidden=32')
    """
    extras = "".join(f"-{name}={setting_text(cfg[name])}" for name in extra_fields)
    return run_name(cfg).removesuffix(f"-s{cfg['seed']}") + extras


def variant_text(cfg: RunConfig, extra_fields: list[str]) -> str:
    """What sets a configuration apart within its table cell: the varying settings, and what the task labels
    itself (a truncation style other than TF-style, named relative to T so that one row holds a style at every T).

    >>> from bench.config.settings import resolve
    >>> variant_text(resolve({"task": "dependency", "hidden": 4, "truncation": 10, "tbptt_stride": 5}), ["hidden"])
    'hidden=4 stride=T/2'
    >>> variant_text(resolve({"task": "dependency", "hidden": 4, "truncation": 10}), ["hidden"])
    'hidden=4'
    """
    parts = [f"{name}={setting_text(cfg[name])}" for name in extra_fields]
    return " ".join(p for p in (*parts, cfg.task.variant(cfg)) if p)



def latest_suite_parent(runs: pd.DataFrame, suite_name: str) -> str | None:
    """Run id of the suite's most recently started parent run, or None."""
    parents = runs[(runs["tags.bench.role"] == "suite") & (runs["tags.bench.suite"] == suite_name)]
    return None if parents.empty else parents.sort_values("start_time").iloc[-1]["run_id"]


def suite_runs(suite: Suite, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of ``suite``: its settings, ``configuration`` (key without seed), ``direction``,
    ``outcome`` (finished | diverged | failed | running | missing), ``reason``, ``run_id``, ``commit``, ``metric`` (the
    task's metric) and every metric of the chosen run under its own name (``test/ce``, ``fit_time_s``, …)."""
    suite.apply_tuning(stored_results(runs).get)  # the reported runs' rates, as the runner chose them
    extras = suite.varying
    configs = suite.reported() + suite.possible_seed_configs()  # with adaptive seeds, every seed it may have added
    table = pd.DataFrame(configs)
    table["config_hash"] = [config_hash(cfg) for cfg in configs]
    table["configuration"] = [configuration_key(cfg, extras[cfg["task"]]) for cfg in configs]
    table["variant"] = [variant_text(cfg, extras[cfg["task"]]) for cfg in configs]
    table["seeds_max"] = suite.seeds[1] if suite.seeds else len(set(table["seed"]))
    table["direction"] = table["bidirectional"].map({True: "bi", False: "uni"})

    mine = runs[runs["tags.bench.config_hash"].isin(set(table["config_hash"]))].copy()
    outcomes = mine["tags.bench.outcome"] if "tags.bench.outcome" in mine else pd.Series(None, index=mine.index)
    mine["is_finished"] = [has_result(s, o) for s, o in zip(mine["status"], outcomes)]
    chosen = (mine.sort_values(["is_finished", "start_time"], ascending=False)
              .drop_duplicates("tags.bench.config_hash").set_index("tags.bench.config_hash"))
    metric_columns = sorted(c for c in chosen.columns if c.startswith("metrics."))  # the store's order varies
    picked = chosen.reindex(table["config_hash"])
    for column in metric_columns:
        table[column.removeprefix("metrics.")] = picked[column].to_numpy(dtype=float)
    table["run_id"] = picked["run_id"].to_numpy()
    table["status"] = _column(picked, "status")  # the chosen run's MLflow status; None when missing
    table["commit"] = _column(picked, "tags.mlflow.source.git.commit")
    outcome_tag = _column(picked, "tags.bench.outcome")
    reason_tag = _column(picked, "tags.bench.reason")
    # Compile reaps runs whose process is gone first: a run still RUNNING here holds a live lease, so it runs.
    table["outcome"] = [
        "missing" if pd.isna(status) else ((outcome or "finished") if has_result(status, outcome) else
                                           "running" if status == "RUNNING" else "failed")
        for status, outcome in zip(picked["status"], outcome_tag)]
    table["reason"] = [
        "no run in the store" if pd.isna(status) else "still running (its process holds a live lease)"
        if status == "RUNNING" else (
            reason if isinstance(reason, str) else ("" if status == "FINISHED" else f"run left {status}"))
        for status, reason in zip(picked["status"], reason_tag)]
    specs = suite.tasks
    table["metric"] = [row.get(specs[row["task"]].metric, float("nan")) if row["outcome"] == "finished"
                       else float("nan") for row in table.to_dict("records")]
    if suite.seeds:  # a seed beyond the minimum that is not in the store was not needed: no run, not missing
        table = table[(table["outcome"] != "missing") | (table["seed"] < suite.seeds[0])]
    # Configurations in the suite's order, each seed by seed: seeds past the minimum come in the order a runner
    # added them, which a later compile of the same store does not know.
    first = {name: i for i, name in enumerate(dict.fromkeys(table["configuration"]))}
    return (table.sort_values("seed", kind="stable")
            .sort_values("configuration", key=lambda names: names.map(first), kind="stable").reset_index(drop=True))


def stored_results(runs: pd.DataFrame) -> dict[str, tuple[str, dict]]:
    """Config hash -> (outcome, metrics) of the latest run of each that ended with a result (:func:`has_result`),
    from :meth:`Store.runs_frame`, and ("failed", {}) for a configuration with runs but none with a result: what
    :meth:`bench.config.suite.Suite.apply_tuning` reads, as the runner reads the store."""
    outcome_tags = _column(runs, "tags.bench.outcome")
    with_result = pd.Series([has_result(status, outcome) for status, outcome in zip(runs["status"], outcome_tags)],
                            index=runs.index, dtype=bool)
    finished = runs[with_result].sort_values("start_time", ascending=False)
    finished = finished.drop_duplicates("tags.bench.config_hash")
    metrics = [c for c in finished.columns if c.startswith("metrics.")]
    outcomes = _column(finished, "tags.bench.outcome")
    found = {h: ("failed", {}) for h in runs["tags.bench.config_hash"] if isinstance(h, str)}
    found.update({h: (outcome or "finished", {c.removeprefix("metrics."): row[c] for c in metrics if pd.notna(row[c])})
                  for (h, row), outcome in zip(finished.set_index("tags.bench.config_hash").iterrows(), outcomes)
                  if isinstance(h, str)})
    return found


def _column(frame: pd.DataFrame, name: str) -> list:
    """A column as a list, None where a value (or the whole column) is absent."""
    if name not in frame:
        return [None] * len(frame)
    return [None if pd.isna(v) else v for v in frame[name]]


def add_time_to_target(table: pd.DataFrame, histories: dict[str, dict[str, list]],
                       specs: Mapping[str, Task]) -> pd.DataFrame:
    """Columns ``target``, ``reached`` (bool; NaN for runs that did not finish), ``steps_to_target`` and
    ``time_to_target_s`` (NaN unless reached): the first validation at or below the task's target. ``specs``:
    the Task of each task name in ``table``."""
    table = table.copy()
    goals, reached, steps, seconds = [], [], [], []
    for row in table.to_dict("records"):
        task = specs[row["task"]]
        goal = task.target(row)
        history = histories.get(row["run_id"]) if row["outcome"] == "finished" else None
        if history is None or pd.isna(goal):
            step, elapsed = float("nan"), float("nan")
        else:
            step, elapsed = dependency_floors.first_reaching(history[task.val_metric],
                                                   history["val/elapsed_s"], goal)
        goals.append(goal)
        reached.append(float("nan") if history is None else float(pd.notna(step)))
        steps.append(step)
        seconds.append(elapsed)
    table["target"], table["reached"], table["steps_to_target"], table["time_to_target_s"] = (
        goals, reached, steps, seconds)
    return table


@dataclass
class SuiteResults:
    runs: pd.DataFrame  # one row per configuration of the suite (see suite_runs), with time to target
    histories: dict[str, dict[str, list]]  # finished run id -> its task's history_keys -> [(step, value), …]
    parent_run_id: str | None  # the suite's latest parent run


def load(suite: Suite, tracking_uri: str, experiment: str) -> SuiteResults:
    """Everything the store holds about ``suite``'s configurations."""
    store = Store(tracking_uri)
    stored = store.runs_frame(experiment)
    runs = suite_runs(suite, stored)
    histories = {}
    for task, finished in runs[runs["outcome"] == "finished"].groupby("task"):
        histories.update(store.metric_histories(list(finished["run_id"]), list(suite.tasks[task].history_keys)))
    return SuiteResults(add_time_to_target(runs, histories, suite.tasks), histories, latest_suite_parent(stored, suite.name))
