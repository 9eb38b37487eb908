"""One run's plot, drawn when the run ends (its ``plot.svg`` artifact): the learning curve against the task's
floors, or a prediction against the truth. Each task's :meth:`~bench.tasks.base.Task.run_plot` picks one.

Drawn once per run, inside the suite's time, so made for speed: an SVG whose text is left to the viewer's fonts
(rasterizing the glyphs of tick labels and legend was about half of a PNG's time), on a bare
:class:`~matplotlib.figure.Figure` that pyplot never registers, reused per layout and process. Imported by the
training code and when a run ends, never to validate a config, which so never loads matplotlib. The suite's plots (:mod:`bench.reporting.plots`)
reuse its drawing functions.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workers and CI have no display
from matplotlib.figure import Figure  # noqa: E402

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
                   ylabel: str = "cross-entropy (nats)", title: str = "", note: str = "") -> None:
    """One run's logged series against optimizer step, with its floors (if any) as horizontal lines (SVG);
    ``note`` (a diverged run's reason) written across the axes, so an empty or cut-off curve says why."""
    with run_plot("curve", path) as (ax,):
        draw_history(ax, history)
        draw_floors(ax, floors or {})
        ax.set(xlabel="optimizer step", ylabel=ylabel)
        ax.set_title(title, fontsize=10)
        if ax.lines:
            ax.legend(fontsize=8)
        said = [note] if note else []
        if not any(history.values()):  # e.g. a run that diverged before its first logged step
            said.append("no value was logged before it stopped" if note else "no value was logged")
        if said:
            ax.text(0.5, 0.5, "\n".join(said), ha="center", va="center", transform=ax.transAxes, color="tab:red",
                    wrap=True)


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
