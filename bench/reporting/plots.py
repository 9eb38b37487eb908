"""A suite's plots, PNGs embedded in its page: heatmaps of a score or metric over the matrix, each cell's score
with its interval, learning curves, predictions side by side. They draw what they are handed (frames, series,
floors) and know no task. One run's own plot is :mod:`bench.tasks.run_plots`, whose drawing functions these
reuse.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm, Normalize  # noqa: E402
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator, StrMethodFormatter  # noqa: E402

from bench.tasks.run_plots import History, draw_floors, draw_history, draw_prediction  # noqa: E402

def sine_predictions(panels: dict[str, tuple], path: Path) -> None:
    """Several runs' predictions side by side: title -> (truth, prediction, each example's frequency). Where the
    test examples pass from one frequency to the next (held-out frequencies, one segment each) a dotted line
    marks the join and each segment is labelled with its frequency, so a jump there is not read as a glitch."""
    fig, axes = plt.subplots(2, len(panels), figsize=(6.5 * len(panels), 5.5), sharex=True, height_ratios=(3, 1),
                             squeeze=False, layout="constrained")
    for n, (title, (truth, prediction, frequencies)) in enumerate(panels.items()):
        draw_prediction(axes[0, n], axes[1, n], truth, prediction, title)
        axes[0, n].title.set_fontsize(8)
        mark_joins(axes[0, n], axes[1, n], frequencies)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def mark_joins(top, bottom, frequencies) -> None:
    """A dotted line at every change of frequency along the test examples, and each segment's frequency on top."""
    frequencies = np.asarray(frequencies)
    starts = [0, *np.flatnonzero(frequencies[1:] != frequencies[:-1]) + 1]
    if len(starts) < 2:
        return
    for start in starts[1:]:
        for ax in (top, bottom):
            ax.axvline(start - 0.5, color="black", linestyle=":", linewidth=1)
    for start in starts:
        top.annotate(f"f = {frequencies[start]:g}", (start, 1), xycoords=("data", "axes fraction"),
                     xytext=(3, -3), textcoords="offset points", va="top", fontsize=8)


def grid_order(keys: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Row and column names of a facet grid keyed (row, column), in order of first appearance."""
    return list(dict.fromkeys(r for r, _ in keys)), list(dict.fromkeys(c for _, c in keys))


# Okabe and Ito's qualitative palette: distinct hues that stay distinct with any common colour deficiency.
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#000000", "#F0E442"]


def learning_curves(panels: dict[tuple[str, str], History], floors: dict[str, float], path: Path,
                    rows: list[str], columns: list[str], title: str = "",
                    ylabel: str = "cross-entropy (nats)", xlabel: str = "optimizer step") -> None:
    """A grid of panels keyed (row, column), each with its series coloured in order and the floors drawn;
    ``rows`` and ``columns`` give the grid's order."""
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.2 * len(columns) + 3.5, 2.4 * len(rows) + 1),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    labels = list(dict.fromkeys(label for history in panels.values() for label in history))
    palette = [OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(labels))]
    for n, ((row, column), history) in enumerate(panels.items()):
        ax = axes[rows.index(row), columns.index(column)]
        draw_history(ax, history, [palette[labels.index(k)] for k in history])
        draw_floors(ax, floors, labelled=n == 0)
        ax.set_title(f"{column} · {row}", fontsize=9)
    for ax in axes.flat:
        if not ax.lines:  # no panel for this row and column
            ax.axis("off")
    if floors:  # none when the panels' configurations differ in lags or weights: the data set the limits
        low, high = min(floors.values()), max(floors.values())
        axes[0, 0].set_ylim(low - 0.03, high + 0.06)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    handles, names = [], []
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    fig.legend(handles, names, loc="outside right center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def numeric_scale(bar, anchors: dict[str, float], log: bool, named: bool = True) -> None:
    """A colour bar's numeric scale on its right (decades and the values between them on a log scale), and the
    ``anchors`` as labelled marks on its left: a line across the bar and the name beside it, and with ``named``
    the value."""
    axis = bar.ax.yaxis
    if log:
        axis.set_major_locator(LogLocator(numticks=12))
        axis.set_minor_locator(LogLocator(subs=(2, 5), numticks=12))
    else:
        axis.set_major_locator(MaxNLocator(6))
        axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.set_minor_formatter(StrMethodFormatter("{x:g}"))
    bar.ax.tick_params(which="both", labelsize=7)
    low, high = bar.norm.vmin, bar.norm.vmax
    for name, value in anchors.items():
        if low <= value <= high:
            bar.ax.axhline(value, color="black", linewidth=1)
            bar.ax.annotate(f"{name} {value:.4g}" if named else name, (0, value), xycoords=("axes fraction", "data"),
                            xytext=(-4, 0), textcoords="offset points", ha="right", va="center", fontsize=7)


def heatmaps(facets: dict[tuple[str, str], tuple], path: Path, anchors: dict[str, float], label: str,
             log: bool = False, title: str = "", score: bool = False) -> None:
    """A grid of heatmaps keyed (row, column); each facet is (values, texts): DataFrames of the same shape.

    All share one colour scale with a numeric scale and the ``anchors`` (name -> value) marked on its bar. With
    ``score`` the values are scores from 0 to 1 (0: the worst known answer, 1: the best): a fixed 0-1 scale in
    cividis, light yellow to dark blue (blue is good, as on the pages' tables), made to read alike with any
    common colour deficiency; else a metric, on a scale
    spanning the anchors (floors, baselines) and every value, blue low to red high (no red-green pair). NaN cells
    (no finished run) are grey; ``texts`` is written in every cell, white on the dark colours, black on the light.
    """
    rows, columns = grid_order(list(facets))
    shape = next(iter(facets.values()))[0].shape
    lines = max((str(t).count("\n") + 1 for _, texts in facets.values() for t in texts.to_numpy().ravel()), default=1)
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False, layout="constrained",
                             figsize=(max(1.3 * shape[1] * len(columns) + 3, 6.5),
                                      max((0.3 + 0.15 * lines) * shape[0] * len(rows) + 1.5, 3.5)))
    if score:
        norm = Normalize(0.0, 1.0)
        cmap = plt.get_cmap("cividis_r").with_extremes(bad="lightgrey")
    else:
        span = [*anchors.values(), *(v for frame, _ in facets.values()
                                     for v in frame.to_numpy(dtype=float).ravel() if not math.isnan(v))]
        low, high = min(span), max(span)
        norm = LogNorm(low, high) if log else Normalize(low, high)
        # Blue low, red high, without the darkest ends.
        cmap = ListedColormap(plt.get_cmap("RdBu_r")(np.linspace(0.12, 0.88, 256))).with_extremes(bad="lightgrey")
    image = None
    for (row, column), (values, texts) in facets.items():
        ax = axes[rows.index(row), columns.index(column)]
        grid = values.to_numpy(dtype=float)
        image = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                ax.text(j, i, texts.iat[i, j], ha="center", va="center", fontsize=9 if lines < 3 else 8,
                        color=text_colour(cmap(norm(grid[i, j])) if not math.isnan(grid[i, j]) else (1, 1, 1, 1)))
        ax.set_xticks(range(values.shape[1]), values.columns, fontsize=9)
        ax.set_yticks(range(values.shape[0]), values.index, fontsize=9)
        ax.set_title(" · ".join(p for p in (row, column) if p), fontsize=10)
    for ax in axes.flat:
        if not ax.images:
            ax.axis("off")
    bar = fig.colorbar(image, ax=axes, shrink=0.9)
    numeric_scale(bar, anchors, log and not score, named=not score)  # a score anchor's name holds its value
    bar.set_label(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def text_colour(rgba) -> str:
    """Black or white, whichever contrasts more with the colour (WCAG 2's relative luminance and contrast ratio),
    so a cell's text stays legible.

    >>> text_colour((1.0, 1.0, 0.6, 1.0)), text_colour((0.4, 0.41, 0.44, 1.0)), text_colour((0.49, 0.48, 0.47, 1.0))
    ('black', 'white', 'black')
    """
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3])
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "white"


def score_intervals(frame, path: Path, title: str, label: str) -> None:
    """A small dot-and-whisker plot, one line per row of ``frame`` (columns ``name``, ``iqm``, ``low``, ``high``,
    ``configurations``, ``seeds``): each row's aggregate score on a fixed 0-1 axis with its interval, and how many
    configurations and seeds it pools."""
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(frame) + 1.3), layout="constrained")
    y = np.arange(len(frame))[::-1]
    low = (frame["iqm"] - frame["low"]).fillna(0).clip(lower=0)
    high = (frame["high"] - frame["iqm"]).fillna(0).clip(lower=0)
    ax.errorbar(frame["iqm"], y, xerr=[low, high], fmt="o", color=OKABE_ITO[3], ecolor=OKABE_ITO[3], capsize=3)
    ax.set_yticks(y, frame["name"], fontsize=9)
    for place, row in zip(y, frame.to_dict("records")):
        ax.annotate(f"{row['iqm']:.2f}  ({row['configurations']} conf., {row['seeds']} seeds)", (1.0, place),
                    xycoords=("axes fraction", "data"), xytext=(6, 0), textcoords="offset points", va="center",
                    fontsize=8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.6, len(frame) - 0.4)
    ax.set_xlabel(label, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="0.85", linewidth=0.8)
    ax.set_title(title, fontsize=9)
    fig.savefig(path, dpi=90)
    plt.close(fig)
