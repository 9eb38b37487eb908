"""What ``rnn-bench train`` says when its run ends: the run's name, its store, the link to it in ``make ui``, one
line of verdict against the task's floors or baselines, then every figure, under the names the store and the
MLflow UI's search use (``test/ce``; the search box takes it as ``metrics.`test/ce```)."""

from __future__ import annotations

import math

from bench.core.metric_names import BASELINE, FLOOR
from bench.running import locations
from bench.tasks.base import Task

UI = "http://127.0.0.1:5000"  # where `make ui` serves


def verdict(task: Task, metrics: dict[str, float]) -> str:
    """One line judging the run's test metric against its task's target and best reference.

    >>> from bench.tasks import BUILTIN
    >>> verdict(BUILTIN["sine"], {"test/rmse": 0.04, "baseline_last_value_rmse": 0.013, "baseline_linear_ar_rmse": 0.02})
    'test/rmse 0.04: misses the target 0.0019; beats 0 of 2 baselines (best: baseline_last_value_rmse 0.013)'
    >>> verdict(BUILTIN["dependency"], {"test/ce": 0.455, "floor_all": 0.45, "floor_first1": 0.52, "floor_none": 0.66})
    'test/ce 0.455: reaches the target 0.46; 0.005 above the lowest floor (floor_all 0.45)'
    """
    value = metrics.get(task.metric, math.nan)
    if math.isnan(value):
        return f"{task.metric}: no result"
    target = task.target(metrics)
    text = f"{task.metric} {value:.3g}"
    if not math.isnan(target):
        better = value <= target if task.lower_is_better else value >= target
        text += f": {'reaches' if better else 'misses'} the target {target:.3g}"
    floors = {k: v for k, v in metrics.items() if k.startswith(FLOOR)}
    baselines = {k: v for k, v in metrics.items() if k.startswith(BASELINE)}
    pick = min if task.lower_is_better else max
    if floors:
        key = pick(floors, key=floors.get)
        text += f"; {abs(value - floors[key]):.2g} above the lowest floor ({key} {floors[key]:.3g})"
    if baselines:
        beaten = sum(value < v if task.lower_is_better else value > v for v in baselines.values())
        key = pick(baselines, key=baselines.get)
        text += (f"; beats {beaten} of {len(baselines)} baselines (best: {key} "
                 f"{baselines[key]:.3g})")
    return text


def summary(name: str, run_id: str, status: str, reason: str, task: Task, metrics: dict[str, float],
            uri: str, experiment: str, experiment_id: str | None) -> list[str]:
    """The lines ``rnn-bench train`` ends with."""
    lines = [f"run {name}: {status}" + (f" ({reason})" if reason else ""),
             f"  store    {locations.shown_uri(uri)} (experiment {experiment}, run id {run_id})"]
    if experiment_id is not None:
        page = f"#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"  # bench.cli.ui
        if uri.startswith(("http://", "https://")):
            lines.append(f"  browse   {uri.rstrip('/')}/{page}")
        else:
            start = "make ui" if uri == locations.default_tracking_uri() else f"mlflow ui --backend-store-uri {uri}"
            lines.append(f"  browse   {start}, then {UI}/{page}")
    if status == "finished":
        lines.append(f"  verdict  {verdict(task, metrics)}")
    elif status == "diverged":
        lines.append(f"  verdict  no {task.metric}: the run diverged (a result: this configuration "
                     "does not train stably; a lower --lr or a --grad-clip may)")
    first = [k for k in (task.metric, task.val_metric) if k in metrics]
    width = max(map(len, metrics), default=0)
    for key in first + sorted(k for k in metrics if k not in first):
        lines.append(f"  {key:{width}s}  {metrics[key]:.6g}")
    return lines
