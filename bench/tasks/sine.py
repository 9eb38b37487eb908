"""The sine-prediction task: a window of ``truncation`` samples predicts the next one, judged by test RMSE
against baselines and, on a noisy sine, against the floor of the best linear predictor.

Source: the TensorFlow sine-prediction example (2-layer LSTM, 30 units, window 10, batch 32, Adagrad 0.1,
10,000 steps; a public rerun reports test RMSE 0.001863). The Lightning classes are
:class:`datamodules.sine.SineDataModule` and :class:`lightning_modules.sine_module.SineModule`.

Two tasks share this code. ``sine`` is the example's set-up: one frequency, test segment right after the
training range. A pure sine is periodic, so each test window has near-copies among the training windows and a
lookup of the nearest one scores about 0.0004, better than the source's 0.0019: that task measures
interpolation. ``sine_extrapolation`` trains on some frequencies and tests on others (no overlap), where no test
window has a near-copy in training (though at T = 2 a lookup still beats the last value: two samples of one
frequency look like two of another).

Target: the floor plus the source's figure, ``floor_kalman_rmse + 0.0019``. Without noise the floor is 0 (two
samples pin a sine down) and the target is the source's 0.0019 as before; with noise of std σ no predictor can
beat ≈σ, so a fixed 0.0019 would be unreachable (σ = 0.1, T = 10: floor 0.110, target 0.112). The floor is that
of linear predictors (:mod:`datamodules.sine_floor`), reachable by one.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.core import metric_names
from bench.core.fields import Field, int_range
from bench.tasks.base import Task, model_args

SOURCE_RMSE = 0.0019  # the TensorFlow sine example's test RMSE after training (0.001863, rounded)
SOURCE_SETUP = "TensorFlow sine example: LSTM 2×30, window 10, 10,000 steps"
BASELINES = {
    "baseline_last_value_rmse": "baseline: last value of the window",
    "baseline_linear_ar_rmse": "baseline: least-squares linear AR fitted on the training windows",
    "baseline_nearest_neighbour_rmse": "baseline: value after the nearest training window (lookup)",
    "baseline_window_ar2_rmse": "baseline: AR(2) fitted to each window alone (no training)",
}
FLOOR = f"{metric_names.FLOOR}kalman_rmse"  # logged on noisy runs only
LAST_VALUE = f"{metric_names.BASELINE}last_value_rmse"  # the baseline the target and the anchors are read against
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
        from datamodules.sine import SineDataModule  # torch: only to build a run, never to validate
        from lightning_modules.sine_module import SineModule

        data = SineDataModule(truncation=cfg["truncation"], batch_size=cfg["batch_size"],
                              train_examples=cfg["train_examples"], val_examples=cfg["val_examples"],
                              test_examples=cfg["test_examples"], amplitude=cfg["amplitude"], noise=cfg["noise"],
                              seed=cfg["seed"], steps_per_item=cfg["steps_per_batch"], **self.data_args(cfg))
        return data, SineModule(**model_args(cfg))

    def samples_per_step(self, cfg: dict) -> int:
        return cfg["batch_size"]

    def references(self, cfg: dict, data) -> dict[str, float]:
        found = {f"{metric_names.BASELINE}{k}": v for k, v in data.baselines().items() if not math.isnan(v)}
        if cfg["noise"] > 0:
            found[FLOOR] = data.kalman_floor()
        return found

    def target(self, row: dict) -> float:
        floor = row.get(FLOOR, math.nan)
        return SOURCE_RMSE + (0.0 if floor is None or math.isnan(floor) else floor)

    def known_span(self, row: dict) -> tuple[float, float]:
        """From the target (the floor plus the source's figure) to repeating the window's last value."""
        last = row.get(LAST_VALUE, math.nan)
        return self.target(row), (math.nan if last is None else last)

    def run_plot(self, cfg: dict, data, model, history, path: Path, title: str) -> None:
        from bench.tasks.run_plots import sine_prediction  # matplotlib: only when a run ends

        x, y = data.splits["test"]
        sine_prediction(y.numpy(), model.test_predictions.numpy(), path, title=title)


class SineExtrapolationTask(SineTask):
    """The sine task on a frequency split: train on ``frequencies``, validate and test on ``test_frequencies``.

    Default frequencies: training 0.5, 1, 1.5, 2; held out 2.5 and 3, beyond the training range, so a model
    must continue sines faster than any it saw (validation and test share the held-out frequencies, in
    disjoint segments). The lookup baseline scores worse than the last value there at T = 10 (at T = 2 it still
    beats it: two samples say little of the frequency), while a linear AR fitted
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
