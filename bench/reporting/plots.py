"""Plots: per run (the dependency loss curve against its analytic floors, sine prediction against truth) and
per suite (heatmaps of a metric over the matrix, learning curves, best and worst sine predictions).

A run's own plot is drawn once per run, inside the suite's time, so it is made for speed: an SVG whose text is
left to the viewer's fonts (rasterizing the glyphs of tick labels and legend was about half of a PNG's time), on
a bare :class:`~matplotlib.figure.Figure` that pyplot never registers. Suite plots are PNG, embedded in the page.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import LogLocator, MaxNLocator, NullLocator, StrMethodFormatter  # noqa: E402

from bench.tasks.dependency_floors import floor_label  # noqa: E402

FLOOR_STYLES = ("--", "-.", ":", (0, (1, 3)))
History = dict[str, list[tuple[int, float]]]  # series label -> [(optimizer step, value), …]


def draw_history(ax, history: History, colors: list | None = None) -> None:
    """One line per non-empty series; validation series drawn heavier."""
    for n, (key, points) in enumerate(history.items()):
        if points:
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, label=key, linewidth=1.5 if key.startswith("val") else 0.8,
                    color=colors[n] if colors else None)


def draw_floors(ax, floors: dict[str, float], labelled: bool = True) -> None:
    """The analytic floors as grey horizontal lines, one line style each, highest first (the legend then reads
    top to bottom as the lines lie)."""
    for (key, value), style in zip(sorted(floors.items(), key=lambda item: -item[1]), FLOOR_STYLES):
        ax.axhline(value, color="grey", linestyle=style, linewidth=1,
                   label=f"{floor_label(key)}: {value:.4f}" if labelled else None)


def learning_curve(history: History, path: Path, floors: dict[str, float] | None = None,
                   ylabel: str = "cross-entropy (nats)", title: str = "") -> None:
    """One run's logged series against optimizer step, with its floors (if any) as horizontal lines (SVG)."""
    with run_plot("curve", path) as (ax,):
        draw_history(ax, history)
        draw_floors(ax, floors or {})
        ax.set(xlabel="optimizer step", ylabel=ylabel, title=title)
        if ax.lines:
            ax.legend(fontsize=8)
        if not any(history.values()):  # e.g. a run that diverged before its first logged step
            ax.text(0.5, 0.5, "no value was logged", ha="center", va="center", transform=ax.transAxes,
                    color="grey")


def draw_prediction(top, bottom, truth, prediction, title: str = "") -> None:
    """Prediction and truth on ``top``, their difference on ``bottom``."""
    top.plot(truth, label="truth", linewidth=2)
    top.plot(prediction, label="prediction", linewidth=1)
    top.set(ylabel="value", title=title)
    top.legend(fontsize=8)
    bottom.plot(prediction - truth, color="tab:red", linewidth=1)
    bottom.set(xlabel="test example", ylabel="error")


def sine_prediction(truth, prediction, path: Path, title: str = "") -> None:
    """Prediction and truth over the test segment, and their difference (SVG)."""
    with run_plot("prediction", path) as (top, bottom):
        draw_prediction(top, bottom, truth, prediction, title)


RUN_FIGURE_LOCK = threading.Lock()  # one run plot at a time on the shared figures, whatever thread draws it


@contextlib.contextmanager
def run_plot(layout: str, path: Path):
    """The cleared axes of the run figure ``layout`` to draw on, saved to ``path`` (SVG) afterwards, one run plot
    at a time in a process."""
    with RUN_FIGURE_LOCK:
        fig = run_figure(layout)
        yield cleared(fig)
        save_run_plot(fig, path)


@functools.cache
def run_figure(layout: str) -> Figure:
    """The figure of a run's plot, ``curve`` or ``prediction``: one per layout and process, reused by every run's
    plot, because most of drawing a fresh figure goes into making its axes' tick objects, which reused axes keep.
    :func:`cleared` empties it first, so a plot never depends on the ones drawn before it (tests/test_plots.py)."""
    if layout == "curve":
        fig = Figure(figsize=(7, 4))
        fig.subplots()
        fig.subplots_adjust(left=0.1, right=0.97, top=0.92, bottom=0.12)
    else:
        fig = Figure(figsize=(7, 5))
        fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.1, hspace=0.08)  # tight_layout: 0.1 s a run
    return fig


def cleared(fig: Figure) -> list:
    """``fig``'s axes with the last plot's lines, texts and legend taken away, data limits and colour cycle reset."""
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.texts]:
            artist.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_prop_cycle(None)
        ax.relim()
        ax.autoscale()
    return fig.axes


def save_run_plot(fig: Figure, path: Path) -> None:
    """A run's plot as SVG with its text as text (``svg.fonttype: none``) and fixed element ids, so the same run
    gives the same file."""
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rnn-bench"}):
        fig.savefig(path, format="svg", metadata={"Date": None})


def sine_predictions(panels: dict[str, tuple], path: Path) -> None:
    """Several runs' predictions side by side: title -> (truth, prediction)."""
    fig, axes = plt.subplots(2, len(panels), figsize=(6 * len(panels), 5), sharex=True, height_ratios=(3, 1),
                             squeeze=False)
    for n, (title, (truth, prediction)) in enumerate(panels.items()):
        draw_prediction(axes[0, n], axes[1, n], truth, prediction, title)
        axes[0, n].title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def grid_order(keys: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Row and column names of a facet grid keyed (row, column), in order of first appearance."""
    return list(dict.fromkeys(r for r, _ in keys)), list(dict.fromkeys(c for _, c in keys))


def learning_curves(panels: dict[tuple[str, str], History], floors: dict[str, float], path: Path,
                    rows: list[str], columns: list[str], title: str = "",
                    ylabel: str = "cross-entropy (nats)") -> None:
    """A grid of panels keyed (row, column), each with its series coloured in order and the floors drawn;
    ``rows`` and ``columns`` give the grid's order."""
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.2 * len(columns) + 3.5, 2.4 * len(rows) + 1),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    labels = list(dict.fromkeys(label for history in panels.values() for label in history))
    palette = plt.get_cmap("viridis")(
        [i / max(1, len(labels) - 1) * 0.9 for i in range(len(labels))]).tolist()
    for n, ((row, column), history) in enumerate(panels.items()):
        ax = axes[rows.index(row), columns.index(column)]
        draw_history(ax, history, [palette[labels.index(k)] for k in history])
        draw_floors(ax, floors, labelled=n == 0)
        ax.set_title(f"{column} · {row}", fontsize=9)
    for ax in axes.flat:
        if not ax.lines:  # no panel for this row and column
            ax.axis("off")
    low, high = min(floors.values()), max(floors.values())
    axes[0, 0].set_ylim(low - 0.03, high + 0.06)
    for ax in axes[-1]:
        ax.set_xlabel("optimizer step")
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


def numeric_scale(bar, anchors: dict[str, float], log: bool) -> None:
    """A colour bar's numeric scale on its right (decades and the values between them on a log scale), and the
    ``anchors`` as labelled marks on its left: a line across the bar and the name and value beside it."""
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
            bar.ax.annotate(f"{name} {value:.4g}", (0, value), xycoords=("axes fraction", "data"),
                            xytext=(-4, 0), textcoords="offset points", ha="right", va="center", fontsize=7)


def heatmaps(facets: dict[tuple[str, str], tuple], path: Path, anchors: dict[str, float], label: str,
             log: bool = False, title: str = "") -> None:
    """A grid of heatmaps keyed (row, column); each facet is (values, texts): DataFrames of the same shape.

    All share one colour scale (green: low, red: high) spanning the ``anchors`` (floors, baselines) and every
    value; the colour bar has a numeric scale and the anchors marked on it. NaN cells (no finished run) are
    grey; ``texts`` is written in every cell.
    """
    rows, columns = grid_order(list(facets))
    shape = next(iter(facets.values()))[0].shape
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False, layout="constrained",
                             figsize=(1.3 * shape[1] * len(columns) + 3, 0.55 * shape[0] * len(rows) + 1.5))
    span = [*anchors.values(), *(v for frame, _ in facets.values() for v in frame.to_numpy(dtype=float).ravel()
                                 if not math.isnan(v))]
    low, high = min(span), max(span)
    norm = LogNorm(low, high) if log else Normalize(low, high)
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="lightgrey")
    image = None
    for (row, column), (values, texts) in facets.items():
        ax = axes[rows.index(row), columns.index(column)]
        image = ax.imshow(values.to_numpy(dtype=float), cmap=cmap, norm=norm, aspect="auto")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                ax.text(j, i, texts.iat[i, j], ha="center", va="center", fontsize=7)
        ax.set_xticks(range(values.shape[1]), values.columns, fontsize=8)
        ax.set_yticks(range(values.shape[0]), values.index, fontsize=8)
        ax.set_title(f"{row} · {column}", fontsize=9)
    for ax in axes.flat:
        if not ax.images:
            ax.axis("off")
    bar = fig.colorbar(image, ax=axes, shrink=0.9)
    numeric_scale(bar, anchors, log)
    bar.set_label(label)
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=90)
    plt.close(fig)
