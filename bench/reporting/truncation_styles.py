"""Truncation styles compared: what BPTT(T; h′) learns and costs against TF-style BPTT(T; T).

Williams & Peng (1990) define BPTT(h; h′): every h′ steps, backpropagate h steps. R2RT's "Styles of Truncated
Backpropagation" compares TF-style truncation (h′ = h = T: a window's last error travels T − 1 steps back, its
first none) with "true" truncation (h′ = 1: every error travels T − 1 steps back) and finds that true
truncation learns a dependency at a shorter T, a gap that closes as T grows. This module reads that off a
suite's per-configuration summary rows (:func:`bench.reporting.tables.summarize`, plus the settings :func:`summarize`
carries over): a figure of test cross-entropy against T per style, the smallest T at which each style learns
each lag, and what each style costs relative to TF-style.

A style is named relative to T: ``T``, ``T/2`` or ``1`` (:data:`STYLES`); at a T where ``T/2`` is not whole
the style has no configuration (:func:`bench.tasks.dependency.stride_of`), and where two styles give the same stride (T = 2: T/2 = 1) they share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from bench.reporting import tables
from bench.reporting.plots import draw_floors, plt
from bench.tasks import dependency_floors
from bench.tasks.base import Task
from bench.tasks.dependency import STYLES, stride_of
from bench.reporting.pages import Block, Bullets, Image, Table, Text
from bench.core.stats import LEVEL as CONFIDENCE


NUMBER_FORMAT, METRIC_LABEL = ".4f", "test cross-entropy (nats)"  # the dependency task's
SETTINGS = ("hidden", "tbptt_stride", "lags")  # what the summary needs beyond tables.PLACE


def summarize(runs: pd.DataFrame, specs: Mapping[str, Task]) -> pd.DataFrame:
    """:func:`bench.reporting.tables.summarize` of a suite's runs (:func:`bench.reporting.results.suite_runs`) with the settings
    a style comparison needs: ``hidden``, ``tbptt_stride`` (the truncation where unset) and ``lags``."""
    summary = tables.summarize(runs, specs)
    first = runs.groupby("configuration", sort=False).first()
    for column in SETTINGS:
        summary[column] = summary["configuration"].map(first[column]) if column in first else math.nan
    summary["tbptt_stride"] = summary["tbptt_stride"].fillna(summary["truncation"]).astype(int)
    return summary


def learns(row: dict, level: int) -> bool:
    """Whether a configuration has learned the first ``level`` lags: the upper end of its mean's t-interval
    (one seed: the value itself) lies below the midpoint between the floors of knowing ``level`` − 1 and
    ``level`` lags. The midpoint rather than a margin around the floor: a style that learned a lag partly
    still shows it, and the interval keeps a lucky seed from doing so.

    >>> row = {"mean": 0.56, "high": 0.585, "n": 3, "floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}
    >>> learns(row, 1), learns(row, 2), learns({**row, "high": 0.61}, 1)
    (True, False, False)
    """
    floors = dependency_floors.floors_of(row)
    by_level = {dependency_floors.floor_level(k, len(floors)): v for k, v in floors.items()}
    if row["n"] == 0 or level not in by_level or level - 1 not in by_level:
        return False
    upper = row["mean"] if math.isnan(row["high"]) else row["high"]
    return upper < (by_level[level - 1] + by_level[level]) / 2


def style_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (configuration, style it belongs to): the summary's rows with ``style``, sorted by
    cell, hidden, style and T; a configuration whose stride two styles share appears under both."""
    part = summary[summary["task"] == "dependency"]
    rows = [{**row, "style": style} for row in part.to_dict("records") for style in STYLES
            if stride_of(style, row["truncation"]) == row["tbptt_stride"]]
    frame = pd.DataFrame(rows, columns=[*part.columns, "style"])
    frame["style_order"] = frame["style"].map({s: i for i, s in enumerate(STYLES)})
    return frame.sort_values(["cell", "hidden", "style_order", "truncation"]).drop(columns="style_order")


def lag_names(summary: pd.DataFrame) -> list[str]:
    """``lag 3``, ``lag 8``: one name per lag, in the order the floors count them.

    >>> lag_names(pd.DataFrame({"lags": [(8, 3)]})), lag_names(pd.DataFrame({"x": [1]}))
    (['lag 3', 'lag 8'], ['lag 1st', 'lag 2nd'])
    """
    lags = summary["lags"].dropna() if "lags" in summary else []
    if len(lags):
        return [f"lag {lag}" for lag in sorted(lags.iloc[0])]  # the floors count the shortest lag first
    return ["lag 1st", "lag 2nd"]


def learned_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell, hidden size and style: the smallest T of the suite at which it learns each lag (:func:`learns`),
    ``–`` where it learns it at none.

    >>> floors = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}
    >>> summary = pd.DataFrame([{"task": "dependency", "cell": "lstm", "hidden": 4, "truncation": t,
    ...     "tbptt_stride": s, "mean": m, "high": m + 0.0025, "n": 3, "lags": (3, 8), **floors}
    ...     for t, s, m in [(2, 2, 0.66), (2, 1, 0.66), (4, 4, 0.66), (4, 1, 0.52), (4, 2, 0.60)]])
    >>> learned_table(summary).to_dict("records")[-1]
    {'cell': 'lstm', 'hidden': 4, 'style': '1', 'lag 3: smallest T': '4', 'lag 8: smallest T': '–'}
    """
    names = lag_names(summary)
    out = []
    for (cell, hidden, style), group in style_rows(summary).groupby(["cell", "hidden", "style"], sort=False):
        row = {"cell": cell, "hidden": hidden, "style": style}
        for level, name in enumerate(names, start=1):
            hits = [r["truncation"] for r in group.to_dict("records") if learns(r, level)]
            row[f"{name}: smallest T"] = str(min(hits)) if hits else "–"
        out.append(row)
    return pd.DataFrame(out)


def against_source(table: pd.DataFrame) -> list[str]:
    """One sentence per cell, hidden size and lag of :func:`learned_table`: whether true truncation (``1``) learned
    the lag at a smaller T than TF-style (``T``), as R2RT's "Styles of Truncated Backpropagation" reports, and
    whether TF-style learned a lag at a T shorter than the lag (no gradient reaches it: the carried state does).
    Each is read off the table beside it, under its own condition (cell, state size).

    >>> table = pd.DataFrame([{"cell": "lstm", "hidden": 16, "style": "T", "lag 8: smallest T": "5"},
    ...                       {"cell": "lstm", "hidden": 16, "style": "1", "lag 8: smallest T": "5"}])
    >>> against_source(table)
    ['lstm, state 16, lag 8: true truncation first learns it at T=5, TF-style at T=5: not earlier, unlike R2RT; TF-style learns it at a T shorter than the lag, through the carried state alone']
    """
    out = []
    columns = [c for c in table.columns if c.endswith(": smallest T")]
    for (cell, hidden), group in table.groupby(["cell", "hidden"], sort=False):
        styles = group.set_index("style")
        if not {"T", "1"} <= set(styles.index):
            continue
        for column in columns:
            lag = column.removesuffix(": smallest T")
            tf, true = styles.loc["T", column], styles.loc["1", column]
            value = {"–": math.inf}
            a, b = value.get(true, None) or int(true), value.get(tf, None) or int(tf)
            if math.isinf(a) and math.isinf(b):
                sentence = f"{cell}, state {hidden}, {lag}: no style learns it at any T of the suite"
            else:
                said = "earlier, as R2RT reports" if a < b else "not earlier, unlike R2RT"
                sentence = (f"{cell}, state {hidden}, {lag}: true truncation first learns it at "
                            f"{'no T' if math.isinf(a) else f'T={true}'}, TF-style at "
                            f"{'no T' if math.isinf(b) else f'T={tf}'}: {said}")
            number = int(lag.removeprefix("lag ")) if lag.removeprefix("lag ").isdigit() else None
            if number is not None and b < number:
                sentence += "; TF-style learns it at a T shorter than the lag, through the carried state alone"
            out.append(sentence)
    return out


def ce_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell, hidden size and style (rows) and T (columns): mean test cross-entropy, its 95% interval and n,
    as every comparison table writes them (:func:`bench.reporting.tables.entry_text`)."""
    out: dict[tuple, dict[str, str]] = {}
    for row in style_rows(summary).to_dict("records"):
        text = tables.entry_text(row, NUMBER_FORMAT)
        out.setdefault((row["cell"], row["hidden"], row["style"]), {})[row["truncation"]] = text
    return _by_truncation(out, ["cell", "hidden", "style"])


def _by_truncation(entries: dict[tuple, dict[int, str]], keys: list[str]) -> pd.DataFrame:
    """Rows ``keys``, columns ``T=…`` in increasing T, from {row key: {T: text}}.

    >>> _by_truncation({("lstm",): {10: "b", 2: "a"}, ("gru",): {2: "c"}}, ["cell"]).to_dict("records")
    [{'cell': 'lstm', 'T=2': 'a', 'T=10': 'b'}, {'cell': 'gru', 'T=2': 'c', 'T=10': ''}]
    """
    truncations = sorted({t for values in entries.values() for t in values})
    return pd.DataFrame([{**dict(zip(keys, key)), **{f"T={t}": values.get(t, "") for t in truncations}}
                         for key, values in entries.items()], columns=[*keys, *(f"T={t}" for t in truncations)])


def cost_ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """Per configuration of a style other than ``T``: its mean wall time and training samples/s (one sample: one
    counted output, so every style trains on the same samples) divided by those of TF-style at the same cell,
    hidden size and T.

    >>> summary = pd.DataFrame({"task": "dependency", "cell": "gru", "hidden": 4, "truncation": 4,
    ...     "tbptt_stride": [4, 1], "wall_time_s": [2.0, 5.0], "train/samples_per_s": [1000.0, 300.0]})
    >>> cost_ratios(summary)[["style", "wall_time_ratio", "samples_per_s_ratio"]].to_dict("records")
    [{'style': '1', 'wall_time_ratio': 2.5, 'samples_per_s_ratio': 0.3}]
    """
    rows = style_rows(summary)
    key = ["cell", "hidden", "truncation"]
    base = rows[rows["style"] == "T"].set_index(key)
    other = rows[rows["style"] != "T"].join(base[["wall_time_s", "train/samples_per_s"]], on=key, rsuffix="_tf")
    other["wall_time_ratio"] = other["wall_time_s"] / other["wall_time_s_tf"]
    other["samples_per_s_ratio"] = other["train/samples_per_s"] / other["train/samples_per_s_tf"]
    return other[[*key, "style", "tbptt_stride", "wall_time_ratio", "samples_per_s_ratio"]].reset_index(drop=True)


def cost_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell and style (rows) and T (columns): wall time and samples/s relative to TF-style, geometric
    means over the hidden sizes, e.g. ``×4.10 time, ×0.24 samples/s``."""
    ratios = cost_ratios(summary)
    out: dict[tuple, dict[str, str]] = {}
    for (cell, style, truncation), group in ratios.groupby(["cell", "style", "truncation"], sort=False):
        wall, rate = (math.exp(group[c].map(math.log).mean()) for c in ("wall_time_ratio", "samples_per_s_ratio"))
        out.setdefault((cell, style), {})[truncation] = f"×{wall:.2f} time, ×{rate:.2f} samples/s"
    return _by_truncation(out, ["cell", "style"])


def figure(summary: pd.DataFrame, path: Path) -> None:
    """Test cross-entropy against T, one line per style (mean over seeds, bars: the t-interval), one panel per
    cell (rows) and hidden size (columns), the analytic floors as grey lines."""
    rows = style_rows(summary)
    rows = rows[rows["n"] > 0]
    cells, hiddens = list(dict.fromkeys(rows["cell"])), sorted(rows["hidden"].unique())
    fig, axes = plt.subplots(len(cells), len(hiddens), figsize=(4.5 * len(hiddens), 3.4 * len(cells)),
                             sharex=True, sharey=True, squeeze=False)
    offsets = {style: 0.08 * (i - (len(STYLES) - 1) / 2) for i, style in enumerate(STYLES)}
    for (i, cell), (j, hidden) in ((a, b) for a in enumerate(cells) for b in enumerate(hiddens)):
        ax = axes[i][j]
        panel = rows[(rows["cell"] == cell) & (rows["hidden"] == hidden)]
        for style, line in panel.groupby("style", sort=False):
            width = [(line["mean"] - line["low"]).fillna(0), (line["high"] - line["mean"]).fillna(0)]
            ax.errorbar(line["truncation"] + offsets[style], line["mean"], yerr=width, marker="o", markersize=3,
                        capsize=2, linewidth=1.2, label=f"h′ = {style}: {STYLES[style]}")
        draw_floors(ax, dependency_floors.shared_floors(panel), labelled=(i, j) == (0, 0))  # it orders them
        ax.set(title=f"{cell}, hidden {hidden}", xticks=sorted(rows["truncation"].unique()))
        if i == len(cells) - 1:
            ax.set_xlabel("truncation T")
        if j == 0:
            ax.set_ylabel(METRIC_LABEL)
    fig.suptitle(f"Truncation styles: mean over seeds, {CONFIDENCE:.0%} t-interval; grey: analytic floors",
                 fontsize=10)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def report(summary: pd.DataFrame, out_dir: Path, image: str = "styles_dependency.png") -> list[Block]:
    """The styles section of a compiled page: draws ``out_dir/image`` and returns the blocks around it."""
    figure(summary, Path(out_dir) / image)
    names = lag_names(summary)
    return [
        Text("Truncation styles, BPTT(T; h′) (Williams & Peng 1990; R2RT, \"Styles of Truncated "
             "Backpropagation\"): windows of T steps every h′ steps, the loss on each window's last h′ outputs. "
             + "; ".join(f"h′ = {s}: {d}" for s, d in STYLES.items()) + ". Every style trains on the same data."),
        Image(image, "test cross-entropy against T per truncation style, with the analytic floors"),
        Text(f"Smallest T at which a style learns a lag: the upper end of the {CONFIDENCE:.0%} t-interval of its "
             "mean test cross-entropy over seeds lies below the midpoint between the floors of knowing one lag "
             f"fewer and knowing it ({names[0]}: between 'knows no lag' and 'knows the 1 shortest lag(s)')."),
        Table(table := learned_table(summary)),
        Text("Against R2RT's \"Styles of Truncated Backpropagation\" (true truncation learns a dependency at a "
             "shorter T than TF-style), read off the table above for each cell and state size — a finding holds "
             "only under its own condition:"),
        Bullets(against_source(table)),
        Text(f"Test cross-entropy: mean over seeds [its {CONFIDENCE:.0%} Student-t interval] (n)."),
        Table(ce_table(summary)),
        Text("Cost against TF-style at the same cell, hidden size and T (geometric mean over hidden sizes): "
             "wall time of the run, and training samples/s, a sample being one counted output."),
        Table(cost_table(summary)),
    ]
