"""The copy-memory task's specification: its settings, how a run is built, what it is compared against.

Judged by test cross-entropy per step against the memoryless baseline 10·log 8/(delay + 20) (Arjovsky et al.
2016) and the floor of perfect memory, 0 (the target is a function of the inputs). Target: half the baseline,
what a model reaches that recalls half the symbols for sure.
"""

from __future__ import annotations

from pathlib import Path

from bench.core.fields import Field, int_range
from bench.tasks.base import Task, model_args

from .floor import SYMBOLS, memoryless_cross_entropy

BASELINE, FLOOR = "baseline_memoryless", "floor_perfect_memory"  # references: bench.core.metric_names


class CopyMemoryTask(Task):
    name = "copy_memory"
    title = "Copy memory task (plug-in example)"
    fields = (
        Field("delay", int, "copy_memory: T_delay, steps from the last symbol to the delimiter + 1 (sequences are "
              "delay + 20 long)", *int_range(1, 10_000)),
        Field("train_sequences", int, "copy_memory: training sequences", *int_range(1, 10_000_000)),
        Field("eval_sequences", int, "copy_memory: validation and test sequences, each", *int_range(1, 1_000_000)),
    )
    # A delay a CPU learns in minutes (Arjovsky et al. use 100 to 500); truncation = delay + 20 is full BPTT.
    defaults = dict(hidden=64, layers=1, truncation=25, batch_size=32, epochs=-1, max_steps=2000, optimizer="adam",
                    lr=0.005, grad_clip=1.0, delay=5, train_sequences=20_000, eval_sequences=1_000)
    metric, val_metric = "test/ce", "val/ce"
    metric_label = "test cross-entropy per step (nats)"
    number_format = ".4f"
    min_delta = 0.005  # nats
    history_keys = ("val/ce", "val/elapsed_s", "train/loss")
    labelled_fields = ("delay",)
    converge_tolerance = 0.002  # nats

    def cross_checks(self, cfg: dict) -> list[str]:
        if cfg["train_sequences"] < cfg["batch_size"]:
            return [f"train_sequences: {cfg['train_sequences']}; allowed: at least batch_size ({cfg['batch_size']})"]
        return []

    def build(self, cfg: dict) -> tuple:
        from .data import CopyMemoryDataModule  # torch: only when a run is built, never to validate
        from .module import CopyMemoryModule

        data = CopyMemoryDataModule(cfg["delay"], cfg["train_sequences"], cfg["eval_sequences"], cfg["batch_size"],
                                    cfg["seed"])
        return data, CopyMemoryModule(truncation=cfg["truncation"], **model_args(cfg))

    def samples_per_step(self, cfg: dict) -> int:
        return cfg["batch_size"] * min(cfg["truncation"], cfg["delay"] + 2 * SYMBOLS)  # timesteps a window holds

    def references(self, cfg: dict, data) -> dict[str, float]:
        return {BASELINE: memoryless_cross_entropy(cfg["delay"]), FLOOR: 0.0}

    def target(self, row: dict) -> float:
        return row.get(BASELINE, float("nan")) / 2

    def run_plot(self, cfg: dict, data, model, history, path: Path, title: str) -> None:
        from bench.tasks.run_plots import draw_history, run_plot  # matplotlib: only when a run ends

        with run_plot("curve", path) as (ax,):
            draw_history(ax, history(["train/loss", "val/ce"]))
            ax.axhline(memoryless_cross_entropy(cfg["delay"]), color="grey", linestyle="--", linewidth=1,
                       label="memoryless baseline")
            ax.set(xlabel="optimizer step", ylabel="cross-entropy per step (nats)", title=title)
            ax.legend(fontsize=8)

    def variant(self, cfg: dict) -> str:
        return "" if cfg["delay"] == self.defaults["delay"] else f"delay={cfg['delay']}"
