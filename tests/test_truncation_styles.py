"""bench.reporting.truncation_styles on hand-made summary rows: styles per T, the smallest T that learns each lag, cost ratios, figure."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.reporting import truncation_styles as styles
from bench.reporting.pages import Image, Table, to_markdown
from bench.tasks import BUILTIN

FLOORS = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}


def summary_rows() -> pd.DataFrame:
    """lstm with 4 units at T = 2, 3, 4, 8: true truncation learns lag 3 at T = 3 and lag 8 at T = 8, TF-style
    lag 3 only at T = 4 (at T = 3 its mean is below the midpoint, its interval is not); T/2 at T = 2 is true
    truncation's run; T/2 at T = 3 does not exist. Costs: true truncation takes T times TF-style's time."""
    rows = []
    for t, stride, mean, std in [(2, 2, 0.66, 0.001), (2, 1, 0.66, 0.001),
                                 (3, 3, 0.585, 0.01), (3, 1, 0.53, 0.005),
                                 (4, 4, 0.53, 0.004), (4, 2, 0.525, 0.002), (4, 1, 0.52, 0.001),
                                 (8, 8, 0.50, 0.01), (8, 4, 0.475, 0.003), (8, 1, 0.46, 0.002)]:
        rows.append({"task": "dependency", "configuration": f"dependency/lstm-L1-uni-T{t}-stride{stride}-hidden=4",
                     "cell": "lstm", "layers": 1, "direction": "uni", "variant": "", "truncation": t, "hidden": 4,
                     "tbptt_stride": stride, "lags": (3, 8), "runs": 3, "n": 3, "mean": mean, "std": std,
                     "low": mean - 4.302653 * std / math.sqrt(3), "high": mean + 4.302653 * std / math.sqrt(3),
                     "mark": "", "diverged": 0, "failed": 0, "missing": 0, "not_converged": 0,
                     "wall_time_s": 2.0 * t / stride, "train/samples_per_s": 1000.0 * stride / t, **FLOORS})
    return pd.DataFrame(rows)


def test_each_configuration_joins_every_style_whose_stride_it_has():
    rows = styles.style_rows(summary_rows())
    got = sorted(zip(rows["style"], rows["truncation"], rows["tbptt_stride"]))
    assert got == sorted([("T", 2, 2), ("T", 3, 3), ("T", 4, 4), ("T", 8, 8), ("T/2", 2, 1), ("T/2", 4, 2),
                          ("T/2", 8, 4), ("1", 2, 1), ("1", 3, 1), ("1", 4, 1), ("1", 8, 1)])


def test_smallest_truncation_that_learns_each_lag_reads_the_interval_against_the_floor_midpoints():
    table = styles.learned_table(summary_rows()).set_index("style")
    assert table.loc["1"].to_dict() == {"cell": "lstm", "hidden": 4, "lag 3: smallest T": "3",
                                        "lag 8: smallest T": "8"}
    # TF-style at T = 3: mean 0.585 < midpoint 0.5904, but the interval reaches 0.585 + 4.303 · 0.01/√3 = 0.6098.
    assert table.loc["T", "lag 3: smallest T"] == "4" and table.loc["T", "lag 8: smallest T"] == "–"
    assert table.loc["T/2", "lag 3: smallest T"] == "4" and table.loc["T/2", "lag 8: smallest T"] == "8"


def test_one_seed_is_judged_by_its_value_and_no_seed_learns_nothing():
    rows = summary_rows()
    rows.loc[rows["truncation"] == 3, ["n", "std", "low", "high"]] = [1, math.nan, math.nan, math.nan]
    assert styles.learned_table(rows).set_index("style").loc["T", "lag 3: smallest T"] == "3"
    rows.loc[rows["truncation"] == 3, ["n", "mean"]] = [0, math.nan]
    assert styles.learned_table(rows).set_index("style").loc["1", "lag 3: smallest T"] == "4"


def test_cross_entropy_table_gives_mean_and_interval_per_style_and_truncation():
    table = styles.ce_table(summary_rows()).set_index("style")
    assert list(table.columns) == ["cell", "hidden", "T=2", "T=3", "T=4", "T=8"]
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert table.loc["T", "T=3"] == f"0.5850 [{0.585 - half:.4f}, {0.585 + half:.4f}] (n=3)"
    assert table.loc["T/2", "T=3"] == ""


def test_cost_is_relative_to_tf_style_at_the_same_truncation():
    ratios = styles.cost_ratios(summary_rows())
    true = ratios[ratios["style"] == "1"].set_index("truncation")
    assert true["wall_time_ratio"].to_dict() == pytest.approx({2: 2.0, 3: 3.0, 4: 4.0, 8: 8.0})
    assert true["samples_per_s_ratio"].to_dict() == pytest.approx({2: 0.5, 3: 1 / 3, 4: 0.25, 8: 0.125})
    assert "T" not in set(ratios["style"])
    table = styles.cost_table(summary_rows()).set_index("style")
    assert table.loc["1", "T=4"] == "×4.00 time, ×0.25 samples/s"
    assert table.loc["T/2", "T=3"] == ""


def test_summarize_carries_the_settings_and_fills_an_unset_stride_with_the_truncation():
    runs = pd.DataFrame({"task": "dependency", "cell": "gru", "layers": 1, "direction": "uni", "variant": "",
                         "configuration": ["a", "a", "b"], "seed": [0, 1, 0], "truncation": [4, 4, 4], "hidden": [4, 4, 4],
                         "tbptt_stride": [1, 1, math.nan], "lags": [(3, 8)] * 3, "outcome": "finished",
                         "metric": [0.5, 0.52, 0.6], "reached": 0.0, "steps_to_target": math.nan,
                         "time_to_target_s": math.nan, **FLOORS})
    summary = styles.summarize(runs, BUILTIN).set_index("configuration")
    assert summary.loc["a", "mean"] == pytest.approx(0.51) and summary.loc["a", "n"] == 2
    assert summary["tbptt_stride"].to_dict() == {"a": 1, "b": 4}
    assert summary.loc["a", "hidden"] == 4 and summary.loc["a", "lags"] == (3, 8)


def test_report_draws_the_figure_and_lays_out_the_tables(tmp_path):
    blocks = styles.report(summary_rows(), tmp_path)
    image = tmp_path / "styles_dependency.png"
    assert image.stat().st_size > 10_000 and image.read_bytes()[:4] == b"\x89PNG"
    assert [b.file for b in blocks if isinstance(b, Image)] == ["styles_dependency.png"]
    assert len([b for b in blocks if isinstance(b, Table)]) == 3
    assert "| lstm | 4 | 1 | 3 | 8 |" in to_markdown(blocks)
