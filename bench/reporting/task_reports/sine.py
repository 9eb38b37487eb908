"""The sine tasks' report part: baseline and floor rows under the table, the source's figure where it was
measured on the same split, and the best and worst predictions, restored from the runs' saved weights."""

from __future__ import annotations

from pathlib import Path

from bench.config.run_config import RunConfig
from bench.reporting import plots
from bench.reporting.pages import Text
from bench.reporting.task_reports.base import Restore, TaskReport, Weights
from bench.tasks.sine import BASELINES, FLOOR, FLOOR_LABEL, LAST_VALUE, SOURCE_RMSE, SOURCE_SETUP


class SineReport(TaskReport):
    score_ends = ("the target", "the last value, log scale")
    shows_source = True  # the source's figure is a reference row: it was measured on this very split
    split_note = ("Time split, as in the TensorFlow example: one frequency, the test segment right after the "
                  "training range. The sine is periodic, so the lookup row shows how far interpolation alone gets.")

    def split_text(self, part) -> str:
        """What the split is, and what the reference rows beside it show of it."""
        return self.split_note

    def target_text(self) -> str:
        return (f"{self.task.name} `val/rmse` ≤ floor + {SOURCE_RMSE:g} (the TensorFlow example's figure; the floor is 0 "
                f"without noise, the Kalman floor with it)")

    def reference_rows(self, part, columns) -> dict[str, dict[str, float]]:
        labels = {**BASELINES, FLOOR: FLOOR_LABEL}
        rows = {label: {c: group[metric].mean() for c, group in columns.items()}
                for metric, label in labels.items() if metric in part and part[metric].notna().any()}
        if self.shows_source:
            rows[SOURCE_SETUP] = {"T=10": SOURCE_RMSE}
        return rows

    def notes(self, part) -> list:
        source = f"; and the {SOURCE_SETUP} ({SOURCE_RMSE:g})" if self.shows_source else ""
        return [Text(f"{self.split_text(part)} Reference rows: the last value of the window; a least-squares linear "
                     f"autoregressive model fitted on the training windows (a pure sine is an exact AR(2)); the "
                     f"value after the nearest training window, a lookup that models nothing; an AR(2) fitted to "
                     f"each test window alone, which needs no training data and no frequency{source}. On a noisy "
                     f"sine, the floor row is the RMSE of the best linear predictor, a Kalman filter on the sine's "
                     f"AR(2) state that knows the frequency. Target: floor + {SOURCE_RMSE:g} (the source's figure "
                     f"on top of what noise makes unavoidable; without noise the floor is 0).")]

    def heatmap_anchors(self, part) -> dict[str, float]:
        anchors = {"TF example": SOURCE_RMSE, "last value": float(part[LAST_VALUE].mean())}
        if FLOOR in part and part[FLOOR].notna().any():
            anchors["Kalman floor"] = float(part[FLOOR].mean())
        return anchors

    def figures(self, summary, runs, histories, configs, out_dir: Path, weights: Weights,
                restore: Restore) -> dict[str, str]:
        file = f"{self.task.name}_best_worst.png"
        shown, unusable = sine_best_and_worst(summary, runs, configs, out_dir / file, weights, restore)
        if not shown:
            return {}
        return {file: f"{self.task.name}: prediction against truth, the best seed of the best configuration and the "
                      f"worst seed of the worst" + "".join(f"; {note}" for note in unusable)}


class SineExtrapolationReport(SineReport):
    shows_source = False  # the source measured interpolation; its figure says nothing about this split
    split_note = ("Frequency split: trained on some frequencies, validated and tested on others, so no test "
                  "window has a near-copy in training.")

    def split_text(self, part) -> str:
        """The split, and at which T the lookup of training windows fails (scores worse than repeating the last
        value) and at which it does not: a short window of one frequency looks like a window of another."""
        return self.split_note + " " + lookup_claim(part)


def lookup_claim(part) -> str:
    """Where the lookup row fails, read off the baselines of ``part`` (a task's summary rows) per T.

    >>> import pandas as pd
    >>> part = pd.DataFrame({"truncation": [2, 10], "baseline_nearest_neighbour_rmse": [0.00854, 0.05],
    ...                      "baseline_last_value_rmse": [0.0196, 0.02]})
    >>> lookup_claim(part)
    'The lookup row fails (worse than the last value) at T=10; at T=2 it beats the last value (0.00854 against 0.0196): short windows of different frequencies look alike.'
    """
    look, last = "baseline_nearest_neighbour_rmse", LAST_VALUE
    if look not in part or last not in part:
        return ""
    means = part.groupby("truncation")[[look, last]].mean().dropna()
    fails = [t for t, row in means.iterrows() if row[look] > row[last]]
    holds = [(t, row[look], row[last]) for t, row in means.iterrows() if row[look] <= row[last]]
    text = f"The lookup row fails (worse than the last value) at {', '.join(f'T={t}' for t in fails)}" if fails else \
        "The lookup row fails at no T of this suite"
    if holds:
        text += "; at " + ", ".join(f"T={t} it beats the last value ({a:.3g} against {b:.3g})" for t, a, b in holds)
        text += ": short windows of different frequencies look alike"
    return text + "."


def replay_sine_run(cfg: RunConfig, weights: Path | None, restore: Restore) -> tuple:
    """(truth, prediction, test RMSE, each test window's frequency) of the test segment of the run trained with
    ``cfg`` (the frequencies tell where one held-out frequency's segment joins the next): ``restore`` gives its
    trained (data, model), from its saved weights when it has them (its ``model.pt`` artifact), else by training
    ``cfg`` again on this CPU (every random source is seeded from the config and training is deterministic, so
    that gives the recorded run's predictions too, on the CPU exactly; a GPU run may differ slightly)."""
    import torch  # only when a figure shows predictions

    data, model = restore(cfg, weights)
    x, y = data.splits["test"]
    with torch.no_grad():
        _, prediction = model.model_step(x, y)
    return (y.numpy(), prediction.numpy(), float(torch.sqrt(torch.mean((prediction - y) ** 2))),
            data.window_frequencies["test"].numpy())


def best_and_worst_runs(summary, runs) -> list[tuple[str, dict, dict]]:
    """``[("best", configuration row, run row), ("worst", …)]``: the best finished seed of the configuration
    with the lowest mean metric, and the worst finished seed of the one with the highest mean.

    A configuration's mean can hide a bad seed among good ones (0.0046 and 0.683 average to 0.233), so the worst
    panel shows the seed that made it worst, and the best panel the best that training reached.

    >>> import pandas as pd
    >>> summary = pd.DataFrame({"configuration": ["a", "b"], "n": [2, 3], "mean": [0.001, 0.233]})
    >>> runs = pd.DataFrame({"configuration": ["a", "a", "b", "b", "b", "b"], "seed": [0, 1, 0, 1, 2, 3],
    ...     "outcome": ["finished"] * 5 + ["diverged"], "metric": [0.0012, 0.0008, 0.0046, 0.683, 0.011, None]})
    >>> [(label, row["configuration"], run["seed"]) for label, row, run in best_and_worst_runs(summary, runs)]
    [('best', 'a', 1), ('worst', 'b', 1)]
    """
    scored = summary[summary["n"] > 0]
    if scored.empty:
        return []
    chosen = []
    for label, index, pick in (("best", scored["mean"].idxmin(), "idxmin"),
                               ("worst", scored["mean"].idxmax(), "idxmax")):
        row = scored.loc[index]
        seeds = runs[(runs["configuration"] == row["configuration"]) & (runs["outcome"] == "finished")]
        chosen.append((label, row.to_dict(), seeds.loc[getattr(seeds["metric"], pick)()].to_dict()))
    return chosen


def sine_best_and_worst(summary, runs, configs: dict[str, dict], path: Path, weights: Weights,
                        restore: Restore) -> tuple[list[str], list[str]]:
    """Prediction against truth for :func:`best_and_worst_runs`, from each run's saved weights (or replayed from
    its config); returns the configurations shown (none if no run finished) and a note per run whose saved weights
    could not be used (a bad artifact: that run's panel is trained again and says so; the compile goes on)."""
    panels, shown, notes = {}, [], []
    for label, row, run in best_and_worst_runs(summary, runs):
        shown.append(row["configuration"])
        cfg, unusable = configs[run["config_hash"]], ""
        try:
            truth, prediction, replayed, frequencies = replay_sine_run(cfg, weights(run["run_id"]), restore)
        except Exception as e:  # noqa: BLE001 - a bad artifact (unreadable, another model's, outside the store)
            unusable = f" (its model.pt is unusable, {type(e).__name__}: trained again)"
            notes.append(f"run {run['run_id']}: its model.pt is unusable ({type(e).__name__}), so it was trained again")
            truth, prediction, replayed, frequencies = replay_sine_run(cfg, None, restore)
        panels[f"{label} configuration: {row['configuration']} (mean RMSE {row['mean']:.3g}, n={row['n']})\n"
               f"its {label} seed, {run['seed']}: recorded RMSE {run['metric']:.3g}, replayed {replayed:.3g}"
               + unusable] = (truth, prediction, frequencies)
    plots.sine_predictions(panels, path)
    return shown, notes
