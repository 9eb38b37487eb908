"""The suite figures: learning-curve panels in the comparison table's order, colour bars with a numeric scale."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize

from bench.reporting import figures, plots
from bench.tasks import run_plots
from bench.tasks.dependency import DependencyTask

CELLS = ["rnn_tanh", "lstm", "gru"]  # suite order, not alphabetical
PLACES = [(1, "uni"), (1, "bi"), (2, "uni")]


def suite_runs(truncations=(10, 2), outcome=lambda cell, layers, direction, t: "finished"):
    """Runs as :func:`bench.reporting.results.load` lists them (suite order: cell, layers, direction, truncation, seed),
    with a made-up loss history per run: (runs, histories)."""
    rows, histories = [], {}
    for cell in CELLS:
        for layers, direction in PLACES:
            for t in truncations:
                for seed in (0, 1):
                    run_id = f"{cell}-{layers}-{direction}-{t}-{seed}"
                    rows.append({"configuration": f"dependency/{cell}-L{layers}-{direction}-T{t}", "cell": cell,
                                 "task": "dependency", "batch_size": 20, "tbptt_stride": t,
                                 "layers": layers, "direction": direction, "variant": "", "truncation": t,
                                 "seed": seed, "run_id": run_id, "outcome": outcome(cell, layers, direction, t)})
                    histories[run_id] = {"train/loss": [(50, 0.6 + seed / 10), (100, 0.5 + t / 100)]}
    return pd.DataFrame(rows), histories


def test_learning_curve_panels_follow_the_table_order():
    runs, histories = suite_runs()
    panels, rows, columns = figures.curve_panels(DependencyTask(), runs, histories, "train/loss")
    assert rows == ["L1 uni", "L1 bi", "L2 uni"]  # as the table lists them, not sorted or scrambled
    assert columns == CELLS
    assert list(panels) == [(r, c) for r in rows for c in columns]
    lstm = panels["L1 bi", "lstm"]
    assert list(lstm) == ["T=2", "T=10"]  # increasing truncation, whatever order the runs came in
    # The mean over both seeds, against training samples: optimizer steps × batch 20 × stride T.
    assert lstm["T=10"] == [(50 * 200, 0.65), (100 * 200, 0.6)]
    assert lstm["T=2"] == [(50 * 40, 0.65), (100 * 40, 0.52)]


def test_rows_and_columns_without_a_finished_run_are_left_out():
    def outcome(cell, layers, direction, t):
        return "diverged" if cell == "rnn_tanh" or (layers, direction) == (1, "bi") else "finished"

    runs, histories = suite_runs(outcome=outcome)
    panels, rows, columns = figures.curve_panels(DependencyTask(), runs, histories, "train/loss")
    assert (rows, columns) == (["L1 uni", "L2 uni"], ["lstm", "gru"])
    assert set(panels) == {(r, c) for r in rows for c in columns}


def colour_bar(norm, anchors: dict[str, float], log: bool):
    """A real figure's colour bar with :func:`bench.reporting.plots.numeric_scale` applied, drawn: (bar, the labels of
    the ticks on the bar, anchor labels)."""
    fig, ax = plt.subplots()
    image = ax.imshow(np.array([[norm.vmin, norm.vmax]]), norm=norm, cmap="RdYlGn_r")
    bar = fig.colorbar(image, ax=ax)
    plots.numeric_scale(bar, anchors, log)
    fig.canvas.draw()
    low, high = bar.ax.get_ylim()
    ticks = [label.get_text() for minor in (False, True)
             for value, label in zip(bar.ax.get_yticks(minor=minor), bar.ax.get_yticklabels(minor=minor))
             if low <= value <= high and label.get_text()]
    labels = [t.get_text() for t in bar.ax.texts]
    plt.close(fig)
    return bar, ticks, labels


def test_log_colour_bar_has_a_numeric_scale_beside_its_anchors():
    _, ticks, labels = colour_bar(LogNorm(8e-4, 0.23), {"TF example": 0.0019, "last value": 0.00725}, log=True)
    values = sorted(float(t) for t in ticks)  # every tick label is a plain number
    assert {0.001, 0.01, 0.1} <= set(values) and len(values) >= 6  # decades and the steps between them
    assert all(8e-4 <= v <= 0.23 for v in values)
    assert labels == ["TF example 0.0019", "last value 0.00725"]


def test_linear_colour_bar_has_a_numeric_scale_and_skips_anchors_off_the_bar():
    _, ticks, labels = colour_bar(Normalize(0.45, 0.67), {"every lag": 0.4545, "no lag": 0.6616, "off": 0.9},
                                  log=False)
    values = [float(t) for t in ticks]
    assert len(values) >= 4 and all(0.45 <= v <= 0.67 for v in values)
    assert labels == ["every lag 0.4545", "no lag 0.6616"]


def test_floors_are_listed_highest_first():
    fig, ax = plt.subplots()
    run_plots.draw_floors(ax, {"all": 0.4545, "none": 0.6616, "first1": 0.5192})
    assert [line.get_ydata()[0] for line in ax.lines] == [0.6616, 0.5192, 0.4545]
    plt.close(fig)


def test_a_run_plot_does_not_depend_on_the_plots_drawn_before_it(tmp_path):
    """Run plots reuse one figure per process (run_plots.run_figure): each must come out as from a fresh figure."""
    curve = {"train/loss": [(50, 0.69), (100, 0.52), (150, 0.47)], "val/ce": [(100, 0.5)]}
    other = {"train/loss": [(1000, 3.0), (2000, -1.0)], "val/ce": []}
    floors = {"floor_all": 0.4545, "floor_none": 0.6612}
    truth = np.sin(np.arange(200) / 10)

    def draw(history, name, floors=floors):
        run_plots.learning_curve(history, tmp_path / name, floors, title=name)
        return (tmp_path / name).read_text()

    run_plots.run_figure.cache_clear()
    fresh, fresh_empty = draw(curve, "a.svg"), draw({"train/loss": []}, "e.svg", {})
    run_plots.sine_prediction(truth, truth + 0.01, tmp_path / "s.svg", title="s")
    fresh_prediction = (tmp_path / "s.svg").read_text()
    draw(other, "b.svg", {"floor_all": 0.1})
    run_plots.sine_prediction(truth * 5, truth, tmp_path / "t.svg", title="t")
    assert draw(curve, "a.svg") == fresh
    assert draw({"train/loss": []}, "e.svg", {}) == fresh_empty
    assert "no value was logged" in fresh_empty
    run_plots.sine_prediction(truth, truth + 0.01, tmp_path / "s.svg", title="s")
    assert (tmp_path / "s.svg").read_text() == fresh_prediction
    # Both series and every floor are drawn and labelled, as text.
    assert all(f">{label}</text>" in fresh for label in ("train/loss", "val/ce", "a.svg"))
