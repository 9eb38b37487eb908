"""The sine-prediction task: a window of ``truncation`` samples predicts the next one, judged by test RMSE
against a last-value and a least-squares linear AR baseline (a pure sine is an exact AR(2)).

Source: the TensorFlow sine-prediction example (2-layer LSTM, 30 units, window 10, batch 32, Adagrad 0.1,
10,000 steps; a public rerun reports test RMSE 0.001863). The Lightning classes are
:class:`datamodules.sine.SineDataModule` and :class:`lightning_modules.sine_module.SineModule`.
"""

from __future__ import annotations

from pathlib import Path

from bench.fields import Field, positive
from bench.tasks.base import Task, model_args

SOURCE_RMSE = 0.0019  # the TensorFlow sine example's test RMSE after training (0.001863, rounded)
SOURCE_SETUP = "TensorFlow sine example: LSTM 2×30, window 10, 10,000 steps"
BASELINES = {
    "baseline/last_value_rmse": "baseline: last value of the window",
    "baseline/linear_ar_rmse": "baseline: least-squares linear AR on the same window",
}


class SineTask(Task):
    name = "sine"
    title = "Sine prediction task"
    fields = (
        Field("train_examples", int, "windows in the training range (validation is carved from it)", positive,
              "an integer >= 1"),
        Field("val_examples", int, "validation windows", positive, "an integer >= 1"),
        Field("test_examples", int, "test windows", positive, "an integer >= 1"),
        Field("frequency", float, "angular frequency (radians per unit time; samples are 0.01 apart)",
              lambda v: v > 0, "a number > 0"),
        Field("amplitude", float, "amplitude", lambda v: v > 0, "a number > 0"),
        Field("noise", float, "std of additive Gaussian noise", lambda v: v >= 0, "a number >= 0"),
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

    def build(self, cfg: dict) -> tuple:
        from datamodules.sine import SineDataModule
        from lightning_modules.sine_module import SineModule

        data = SineDataModule(truncation=cfg["truncation"], batch_size=cfg["batch_size"],
                              train_examples=cfg["train_examples"], val_examples=cfg["val_examples"],
                              test_examples=cfg["test_examples"], frequency=cfg["frequency"],
                              amplitude=cfg["amplitude"], noise=cfg["noise"], seed=cfg["seed"],
                              steps_per_item=cfg["steps_per_batch"])
        return data, SineModule(**model_args(cfg))

    def samples_per_step(self, cfg: dict) -> int:
        return cfg["batch_size"]

    def references(self, cfg: dict, data) -> dict[str, float]:
        return {f"baseline/{k}": v for k, v in data.baselines().items()}

    def target(self, row: dict) -> float:
        return SOURCE_RMSE

    def target_text(self) -> str:
        return f"sine `val/rmse` ≤ {SOURCE_RMSE:g} (the TensorFlow example's figure)"

    def reference_rows(self, part, columns) -> dict[str, dict[str, float]]:
        rows = {label: {c: group[metric].mean() for c, group in columns.items()}
                for metric, label in BASELINES.items() if metric in part}
        rows[SOURCE_SETUP] = {"T=10": SOURCE_RMSE}
        return rows

    def notes(self, part) -> list:
        from bench.report import Text

        return [Text(f"Reference rows: the last value of the window; a least-squares linear autoregressive model "
                     f"on the same window (a pure sine is an exact AR(2)); and the {SOURCE_SETUP} "
                     f"({SOURCE_RMSE:g}).")]

    def heatmap_anchors(self, part) -> dict[str, float]:
        return {"TF example": SOURCE_RMSE, "last value": float(part["baseline/last_value_rmse"].mean())}

    def run_plot(self, cfg: dict, data, model, history, path: Path) -> None:
        from bench import plots
        from bench.config import run_name

        x, y = data.splits["test"]
        plots.sine_prediction(y.numpy(), model.test_predictions.numpy(), path, title=run_name(cfg))

    def figures(self, summary, runs, histories, configs, out_dir: Path) -> dict[str, str]:
        if not sine_best_and_worst(summary, runs, configs, out_dir / "sine_best_worst.png"):
            return {}
        return {"sine_best_worst.png": "sine: prediction against truth, best and worst configuration"}


def replay_sine_run(cfg: dict) -> tuple:
    """(truth, prediction, test RMSE) of the test segment, from training ``cfg`` again on this CPU.

    Runs keep no weights, but every random source is seeded from the config and training is deterministic,
    so the replay gives the recorded run's predictions (on the CPU, exactly; a GPU run may differ slightly).
    """
    from bench.train import fit_and_test

    model, data, metrics = fit_and_test(cfg)
    return data.splits["test"][1].numpy(), model.test_predictions.numpy(), metrics["test/rmse"]


def sine_best_and_worst(summary, runs, configs: dict[str, dict], path: Path) -> list[str]:
    """Prediction against truth for the best and the worst sine configuration (by mean test RMSE), each
    replayed from its lowest finished seed; returns the configurations shown (none if no sine run finished)."""
    from bench import plots

    scored = summary[summary["n"] > 0]
    if scored.empty:
        return []
    panels, shown = {}, []
    for label, index in (("best", scored["mean"].idxmin()), ("worst", scored["mean"].idxmax())):
        chosen = scored.loc[index]
        shown.append(chosen["configuration"])
        run = (runs[(runs["configuration"] == chosen["configuration"]) & (runs["outcome"] == "finished")]
               .sort_values("seed").iloc[0])
        truth, prediction, replayed = replay_sine_run(configs[run["config_hash"]])
        panels[f"{label}: {chosen['configuration']} (mean RMSE {chosen['mean']:.3g}, n={chosen['n']})\n"
               f"seed {run['seed']}: recorded RMSE {run['metric']:.3g}, replayed {replayed:.3g}"] = (truth, prediction)
    plots.sine_predictions(panels, path)
    return shown
