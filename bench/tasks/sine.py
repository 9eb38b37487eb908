"""The sine-prediction task: a window of ``truncation`` samples predicts the next one, judged by test RMSE
against baselines and, on a noisy sine, against the floor of the best linear predictor.

Source: the TensorFlow sine-prediction example (2-layer LSTM, 30 units, window 10, batch 32, Adagrad 0.1,
10,000 steps; a public rerun reports test RMSE 0.001863). The Lightning classes are
:class:`datamodules.sine.SineDataModule` and :class:`lightning_modules.sine_module.SineModule`.

Two tasks share this code. ``sine`` is the example's set-up: one frequency, test segment right after the
training range. A pure sine is periodic, so each test window has near-copies among the training windows and a
lookup of the nearest one scores about 0.0004, better than the source's 0.0019: that task measures
interpolation. ``sine_extrapolation`` trains on some frequencies and tests on others (no overlap), where the
lookup fails and only a model of how a sine continues scores well.

Target: the floor plus the source's figure, ``floor/kalman_rmse + 0.0019``. Without noise the floor is 0 (two
samples pin a sine down) and the target is the source's 0.0019 as before; with noise of std σ no predictor can
beat ≈σ, so a fixed 0.0019 would be unreachable (σ = 0.1, T = 10: floor 0.110, target 0.112). The floor is that
of linear predictors (:mod:`datamodules.sine_floor`), reachable by one.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.core.fields import Field, int_range
from bench.tasks.base import Task, model_args

SOURCE_RMSE = 0.0019  # the TensorFlow sine example's test RMSE after training (0.001863, rounded)
SOURCE_SETUP = "TensorFlow sine example: LSTM 2×30, window 10, 10,000 steps"
BASELINES = {
    "baseline/last_value_rmse": "baseline: last value of the window",
    "baseline/linear_ar_rmse": "baseline: least-squares linear AR fitted on the training windows",
    "baseline/nearest_neighbour_rmse": "baseline: value after the nearest training window (lookup)",
    "baseline/window_ar2_rmse": "baseline: AR(2) fitted to each window alone (no training)",
}
FLOOR = "floor/kalman_rmse"  # logged on noisy runs only
FLOOR_LABEL = "floor: Kalman filter, best linear predictor"


MAX_FREQUENCY = 314.159  # π / 0.01: faster sines alias at the 0.01 sample spacing
MAX_EXAMPLES = 10_000_000  # windows are held in memory


def frequency_list(v: tuple) -> bool:
    """1 to 64 distinct frequencies in (0, π/0.01] (a repeat would weigh one frequency twice)."""
    return 1 <= len(v) <= 64 and all(0 < f <= MAX_FREQUENCY for f in v) and len(set(v)) == len(v)


class SineTask(Task):
    name = "sine"
    title = "Sine prediction task"
    fields = (
        Field("train_examples", int, "windows in the training range (validation is carved from it)",
              *int_range(1, MAX_EXAMPLES)),
        Field("val_examples", int, "validation windows", *int_range(1, MAX_EXAMPLES)),
        Field("test_examples", int, "test windows", *int_range(1, MAX_EXAMPLES)),
        Field("frequency", float, "angular frequency (radians per unit time; samples are 0.01 apart)",
              lambda v: 0 < v <= MAX_FREQUENCY, f"a number in (0, {MAX_FREQUENCY}]"),
        Field("amplitude", float, "amplitude", lambda v: 0 < v <= 1e6, "a number in (0, 1e6]"),
        Field("noise", float, "std of additive Gaussian noise", lambda v: 0 <= v <= 1e6, "a number in [0, 1e6]"),
    )
    # The TensorFlow example's set-up: LSTM 2x30, window 10, batch 32, 10,000 steps.
    defaults = dict(hidden=30, layers=2, truncation=10, batch_size=32, epochs=-1, max_steps=10_000,
                    train_examples=10_000, val_examples=1_000, test_examples=1_000, frequency=1.0, amplitude=1.0,
                    noise=0.0)
    metric, val_metric = "test/rmse", "val/rmse"
    metric_label = "test RMSE"
    number_format = ".3g"  # RMSEs span 1e-7 (linear AR) to 1e-1
    min_delta = 0.18  # log RMSE (the regression check compares logs): a change under ~20% never counts
    history_keys = ("val/rmse", "val/elapsed_s")
    log_scale = True
    converge_tolerance = 0.1  # log RMSE: still improving by more than ~10% is not converged
    shows_source = True  # the source's figure is a reference row: it was measured on this very split
    split_note = ("Time split, as in the TensorFlow example: one frequency, the test segment right after the "
                  "training range. The sine is periodic, so the lookup row shows how far interpolation alone gets.")

    def cross_checks(self, cfg: dict) -> list[str]:
        needed = cfg["val_examples"] + cfg["truncation"] + cfg["batch_size"]
        if cfg["train_examples"] < needed:
            return [f"train_examples: {cfg['train_examples']}; allowed: at least val_examples + truncation + "
                    f"batch_size ({needed})"]
        return []

    def dataset_spec(self, cfg: dict) -> dict:
        return {**super().dataset_spec(cfg), "truncation": cfg["truncation"]}  # the windows' length

    def data_args(self, cfg: dict) -> dict:
        """The data module's arguments that differ between the two splits."""
        return dict(frequency=cfg["frequency"])

    def build(self, cfg: dict) -> tuple:
        from datamodules.sine import SineDataModule
        from lightning_modules.sine_module import SineModule

        data = SineDataModule(truncation=cfg["truncation"], batch_size=cfg["batch_size"],
                              train_examples=cfg["train_examples"], val_examples=cfg["val_examples"],
                              test_examples=cfg["test_examples"], amplitude=cfg["amplitude"], noise=cfg["noise"],
                              seed=cfg["seed"], steps_per_item=cfg["steps_per_batch"], **self.data_args(cfg))
        return data, SineModule(**model_args(cfg))

    def samples_per_step(self, cfg: dict) -> int:
        return cfg["batch_size"]

    def references(self, cfg: dict, data) -> dict[str, float]:
        found = {f"baseline/{k}": v for k, v in data.baselines().items() if not math.isnan(v)}
        if cfg["noise"] > 0:
            found[FLOOR] = data.kalman_floor()
        return found

    def target(self, row: dict) -> float:
        floor = row.get(FLOOR, math.nan)
        return SOURCE_RMSE + (0.0 if floor is None or math.isnan(floor) else floor)

    def target_text(self) -> str:
        return (f"{self.name} `val/rmse` ≤ floor + {SOURCE_RMSE:g} (the TensorFlow example's figure; the floor is 0 "
                f"without noise, the Kalman floor with it)")

    def reference_rows(self, part, columns) -> dict[str, dict[str, float]]:
        labels = {**BASELINES, FLOOR: FLOOR_LABEL}
        rows = {label: {c: group[metric].mean() for c, group in columns.items()}
                for metric, label in labels.items() if metric in part and part[metric].notna().any()}
        if self.shows_source:
            rows[SOURCE_SETUP] = {"T=10": SOURCE_RMSE}
        return rows

    def notes(self, part) -> list:
        from bench.reporting.pages import Text

        source = f"; and the {SOURCE_SETUP} ({SOURCE_RMSE:g})" if self.shows_source else ""
        return [Text(f"{self.split_note} Reference rows: the last value of the window; a least-squares linear "
                     f"autoregressive model fitted on the training windows (a pure sine is an exact AR(2)); the "
                     f"value after the nearest training window, a lookup that models nothing; an AR(2) fitted to "
                     f"each test window alone, which needs no training data and no frequency{source}. On a noisy "
                     f"sine, the floor row is the RMSE of the best linear predictor, a Kalman filter on the sine's "
                     f"AR(2) state that knows the frequency. Target: floor + {SOURCE_RMSE:g} (the source's figure "
                     f"on top of what noise makes unavoidable; without noise the floor is 0).")]

    def heatmap_anchors(self, part) -> dict[str, float]:
        anchors = {"TF example": SOURCE_RMSE, "last value": float(part["baseline/last_value_rmse"].mean())}
        if FLOOR in part and part[FLOOR].notna().any():
            anchors["Kalman floor"] = float(part[FLOOR].mean())
        return anchors

    def run_plot(self, cfg: dict, data, model, history, path: Path) -> None:
        from bench.reporting import plots
        from bench.config.settings import display_name

        x, y = data.splits["test"]
        plots.sine_prediction(y.numpy(), model.test_predictions.numpy(), path, title=display_name(cfg))

    def figures(self, summary, runs, histories, configs, out_dir: Path, weights=lambda run_id: None) -> dict[str, str]:
        file = f"{self.name}_best_worst.png"
        if not sine_best_and_worst(summary, runs, configs, out_dir / file, weights):
            return {}
        return {file: f"{self.name}: prediction against truth, the best seed of the best configuration and the "
                      f"worst seed of the worst"}


class SineExtrapolationTask(SineTask):
    """The sine task on a frequency split: train on ``frequencies``, validate and test on ``test_frequencies``.

    Default frequencies: training 0.5, 1, 1.5, 2; held out 2.5 and 3, beyond the training range, so a model
    must continue sines faster than any it saw (validation and test share the held-out frequencies, in
    disjoint segments). The lookup baseline scores worse than the last value there, while a linear AR fitted
    on the training frequencies and an AR(2) fitted to each window stay near exact: the task is solvable from
    the window by modelling, not by memory.
    """

    name = "sine_extrapolation"
    title = "Sine prediction on unseen frequencies (extrapolation)"
    fields = (
        Field("train_examples", int, "training windows, shared out over the training frequencies",
              *int_range(1, MAX_EXAMPLES)),
        *(f for f in SineTask.fields if f.name not in ("train_examples", "frequency")),
        Field("frequencies", tuple, "sine_extrapolation: training frequencies (radians per unit time)",
              frequency_list, f"a comma-separated list of 1 to 64 distinct numbers in (0, {MAX_FREQUENCY}]"),
        Field("test_frequencies", tuple, "sine_extrapolation: held-out frequencies of validation and test, none "
              "of them a training frequency", frequency_list,
              f"a comma-separated list of 1 to 64 distinct numbers in (0, {MAX_FREQUENCY}]"),
    )
    defaults = {**{k: v for k, v in SineTask.defaults.items() if k != "frequency"},
                "frequencies": (0.5, 1.0, 1.5, 2.0), "test_frequencies": (2.5, 3.0)}
    shows_source = False  # the source measured interpolation; its figure says nothing about this split
    split_note = ("Frequency split: trained on some frequencies, validated and tested on others, so no test "
                  "window has a near-copy in training and the lookup row fails.")

    def cross_checks(self, cfg: dict) -> list[str]:
        problems = []
        shared = sorted(set(cfg["frequencies"]) & set(cfg["test_frequencies"]))
        if shared:
            problems.append(f"test_frequencies: {', '.join(map(str, shared))} also in frequencies; allowed: "
                            f"frequencies not used in training (training: "
                            f"{', '.join(map(str, cfg['frequencies']))})")
        least = max(cfg["batch_size"], len(cfg["frequencies"]))
        if cfg["train_examples"] < least:
            problems.append(f"train_examples: {cfg['train_examples']}; allowed: at least batch_size and one window "
                            f"per training frequency ({least})")
        for name in ("val_examples", "test_examples"):
            if cfg[name] < len(cfg["test_frequencies"]):
                problems.append(f"{name}: {cfg[name]}; allowed: at least one window per held-out frequency "
                                f"({len(cfg['test_frequencies'])})")
        return problems

    def data_args(self, cfg: dict) -> dict:
        return dict(frequencies=cfg["frequencies"], test_frequencies=cfg["test_frequencies"])


def replay_sine_run(cfg: dict, weights: Path | None = None) -> tuple:
    """(truth, prediction, test RMSE) of the test segment: from the run's saved weights when it has them (its
    ``model.pt`` artifact), else from training ``cfg`` again on this CPU — every random source is seeded from the
    config and training is deterministic, so that gives the recorded run's predictions too (on the CPU exactly;
    a GPU run may differ slightly), only slower."""
    if weights is None:
        from bench.running.train import fit_and_test

        model, data, metrics = fit_and_test(cfg)
        return data.splits["test"][1].numpy(), model.test_predictions.numpy(), metrics["test/rmse"]
    import torch

    from bench.running.train import build

    data, model = build(cfg)
    data.setup("test")
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    x, y = data.splits["test"]
    with torch.no_grad():
        _, prediction = model.model_step(x, y)
    return y.numpy(), prediction.numpy(), float(torch.sqrt(torch.mean((prediction - y) ** 2)))


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


def sine_best_and_worst(summary, runs, configs: dict[str, dict], path: Path,
                        weights=lambda run_id: None) -> list[str]:
    """Prediction against truth for :func:`best_and_worst_runs`, from each run's saved weights (or replayed from
    its config); returns the configurations shown (none if no run finished)."""
    from bench.reporting import plots

    panels, shown = {}, []
    for label, row, run in best_and_worst_runs(summary, runs):
        shown.append(row["configuration"])
        truth, prediction, replayed = replay_sine_run(configs[run["config_hash"]], weights(run["run_id"]))
        panels[f"{label} configuration: {row['configuration']} (mean RMSE {row['mean']:.3g}, n={row['n']})\n"
               f"its {label} seed, {run['seed']}: recorded RMSE {run['metric']:.3g}, replayed {replayed:.3g}"] = (
            truth, prediction)
    plots.sine_predictions(panels, path)
    return shown
