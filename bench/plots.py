"""Per-run plots: the dependency loss curve against its analytic floors, sine prediction against truth."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402

FLOOR_LABELS = {"none": "knows no lag", "all": "knows every lag (Bayes floor)"}


def floor_label(key: str) -> str:
    return FLOOR_LABELS.get(key, f"knows the first {key.removeprefix('first')} lag(s)")


def dependency_curve(history: dict[str, list[tuple[int, float]]], floors: dict[str, float], path: Path,
                     title: str = "") -> None:
    """Loss against optimizer step for each logged series, with the floors as horizontal lines."""
    fig, ax = plt.subplots(figsize=(7, 4))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.12)
    for key, points in history.items():
        if points:
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, label=key, linewidth=1.5 if key.startswith("val") else 0.8)
    for (key, value), style in zip(floors.items(), ("--", "-.", ":", (0, (1, 3)))):
        ax.axhline(value, color="grey", linestyle=style, linewidth=1, label=f"{floor_label(key)}: {value:.4f}")
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats)", title=title)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=72)  # small and fast: drawn once per run
    plt.close(fig)


def sine_prediction(truth, prediction, path: Path, title: str = "") -> None:
    """Prediction and truth over the test segment, and their difference."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 1))
    top.plot(truth, label="truth", linewidth=2)
    top.plot(prediction, label="prediction", linewidth=1)
    top.set(ylabel="value", title=title)
    top.legend(fontsize=8)
    bottom.plot(prediction - truth, color="tab:red", linewidth=1)
    bottom.set(xlabel="test example", ylabel="error")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
