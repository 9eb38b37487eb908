"""`bench compile` on a real tiny suite run into a real MLflow store (the session's ``tiny_suite_store``)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats

from bench.reporting.task_reports import report_for
from bench.reporting import results, tables
from bench.tasks import dependency_floors
from bench.tasks import sine
from bench.tasks import BUILTIN
from bench.config.settings import config_hash
from bench.running.store import Store
from bench.config.suite import load_suite

FILES = ["README.md", "results.html", "summary.csv", "runs.csv", "comparison_dependency.csv", "comparison_sine.csv",
         "cost.csv", "score_per_cell.csv", "heatmap_dependency.png", "heatmap_sine.png", "scores_dependency.png",
         "scores_sine.png", "learning_curves_dependency.png", "sine_best_worst.png"]
LSTM, RELU = "lstm L1 uni lr=0.02", "rnn_relu L1 uni lr=1000000.0"


@pytest.fixture(scope="module")
def compiled(tiny_suite_store):
    """The folder ``bench run`` compiled the suite into, and the store's own view of every run."""
    suite_file, uri, results_dir = tiny_suite_store
    stored = Store(uri).runs_frame("rnn-bench")
    return results_dir / "tiny", stored, uri


def read(folder, name) -> pd.DataFrame:
    """A written CSV; the formatted tables' empty cells stay empty strings, the numeric ones' NaN."""
    return pd.read_csv(folder / name, keep_default_na=not name.startswith(("comparison_", "cost")))


def test_compile_writes_every_file_and_a_self_contained_page(compiled):
    folder, _, _ = compiled
    # The interactive page and its script stay in the folder, not on the parent run (tests/test_explore.py).
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "explore.html", "plotly.min.js"])
    page = (folder / "results.html").read_text()
    assert page.count("src='data:image/png;base64,") == 6 and ".png'" not in page
    readme = (folder / "README.md").read_text()
    for image in (f for f in FILES if f.endswith(".png")):
        assert f"]({image})" in readme


def test_each_cell_scores_the_interquartile_mean_of_its_seeds_with_an_interval(compiled):
    """score_per_cell.csv: per task and cell, every seed's score from its own floors or baselines (0 at the worst
    known answer, 1 at the best), pooled over the cell's configurations (each weighing the same) as an
    interquartile mean with a stratified bootstrap interval: what the heatmap's colours and the page's score table
    show."""
    folder, _, _ = compiled
    summary, per_cell = read(folder, "summary.csv"), read(folder, "score_per_cell.csv")
    assert sorted(zip(per_cell["task"], per_cell["cell"])) == sorted(
        {(t, c) for t, c, n in zip(summary["task"], summary["cell"], summary["n"]) if n > 0})
    for row in per_cell.to_dict("records"):
        part = summary[(summary["task"] == row["task"]) & (summary["cell"] == row["cell"]) & (summary["n"] > 0)]
        seeds = [s for scores in part["scores"] for s in eval(scores, {"nan": math.nan})]
        if row["task"] == "dependency":
            values = [v for values in part["values"] for v in eval(values)]
            floors = part.iloc[0]
            assert seeds == pytest.approx([min(1, max(0, (floors["floor_none"] - v) /
                                                      (floors["floor_none"] - floors["floor_all"]))) for v in values])
        assert (row["configurations"], row["seeds"]) == (len(part), len(seeds))
        # each configuration weighs the same: repeat its seeds up to a common count (a multiple of 4, so that
        # trimming a quarter from each end cuts whole values) and take scipy's trimmed mean
        groups = [eval(scores, {"nan": math.nan}) for scores in part["scores"]]
        common = 4 * math.lcm(*(len(g) for g in groups))
        equal = [s for g in groups for s in g * (common // len(g))]
        assert row["iqm"] == pytest.approx(scipy.stats.trim_mean(equal, 0.25))
        assert 0 <= row["low"] <= row["high"] <= 1 and min(seeds) <= row["iqm"] <= max(seeds)


def test_files_are_logged_on_the_suites_parent_run(compiled):
    _, stored, uri = compiled
    parent = stored[stored["tags.bench.role"] == "suite"]
    assert len(parent) == 1
    folder = Store(uri).artifact_folder(parent["run_id"].iloc[0])
    logged = [str(path.relative_to(folder)) for path in (folder / "results").iterdir()]
    assert sorted(logged) == sorted(f"results/{name}" for name in FILES)


def test_dependency_table_rows_columns_n_and_spread(compiled):
    folder, stored, _ = compiled
    table = read(folder, "comparison_dependency.csv")
    assert list(table.columns) == ["configuration", "T=2", "T=10"]
    assert list(table["configuration"]) == [LSTM, RELU, "floor: knows no lag", "floor: knows the 1 shortest lag(s)",
                                            "floor: knows every lag (Bayes floor)"]
    # The analytic floors of R2RT's task, in every column.
    assert table.iloc[2:, 1:].to_numpy().tolist() == [["0.6616"] * 2, ["0.5192"] * 2, ["0.4545"] * 2]
    summary = read(folder, "summary.csv").set_index("configuration")
    for truncation in (2, 10):
        ce = stored[(stored["tags.bench.task"] == "dependency") & (stored["params.cell"] == "lstm")
                    & (stored["params.truncation"] == str(truncation))
                    ]["metrics.test/ce"]
        row = summary.loc[f"dependency/lstm-L1-uni-T{truncation}-lr=0.02"]
        assert (row["runs"], row["n"]) == (2, 2)
        assert math.isclose(row["mean"], ce.mean()) and math.isclose(row["std"], ce.std(ddof=1))
        half = 12.706 * ce.std(ddof=1) / math.sqrt(2)  # Student t, 1 degree of freedom, 97.5%
        assert math.isclose(row["high"] - row["mean"], half, rel_tol=1e-4)
        entry = table.loc[0, f"T={truncation}"]
        assert f"{ce.mean():.4f} [{ce.mean() - half:.4f}, {ce.mean() + half:.4f}] (n=2)" in entry, entry


def test_diverged_runs_are_counted_and_shown(compiled):
    folder, _, _ = compiled
    table = read(folder, "comparison_dependency.csv").set_index("configuration")
    assert table.loc[RELU].tolist() == ["no result (n=0), 2 diverged"] * 2
    summary = read(folder, "summary.csv").set_index("configuration")
    assert summary.loc["dependency/rnn_relu-L1-uni-T10-lr=1000000.0", ["runs", "n", "diverged"]].tolist() == [2, 0, 2]
    readme = (folder / "README.md").read_text()
    assert readme.count("`dependency/rnn_relu-L1-uni-T") == 4 and "diverged: loss became nan" in readme


def test_marks_agree_with_the_floors(compiled):
    folder, _, _ = compiled
    summary = read(folder, "summary.csv")
    finished = summary[(summary["task"] == "dependency") & (summary["n"] > 0)]
    assert len(finished) == 2
    for row in finished.to_dict("records"):
        none, first, both, m = row["floor_none"], row["floor_first1"], row["floor_all"], dependency_floors.BAND_CAP

        def reading(ce):
            return {"–": ce >= none - m, "0+": first + m < ce < none - m, "1": abs(ce - first) <= m,
                    "1+": both + m < ce < first - m, "2": ce <= both + m}

        # Where the interval's worse (upper) end sits; "?" when its better end sits elsewhere.
        worse = reading(row["high"])
        assert worse[row["mark"].rstrip("?")], row
        assert row["mark"].endswith("?") == (not reading(row["low"])[row["mark"].rstrip("?")]), row
    assert "`1+` between `1` and `2`" in (folder / "README.md").read_text()


def test_sine_table_has_baselines_and_the_seed_figure(compiled):
    folder, stored, _ = compiled
    table = read(folder, "comparison_sine.csv").set_index("configuration")
    assert list(table.index) == ["lstm L2 uni", *sine.BASELINES.values(), sine.SOURCE_SETUP]
    assert table.loc[sine.SOURCE_SETUP].tolist() == ["", "0.0019"]
    sine_runs = stored[stored["tags.bench.task"] == "sine"]
    for truncation in (2, 10):
        runs = sine_runs[sine_runs["params.truncation"] == str(truncation)]
        for metric, label in sine.BASELINES.items():
            mean = runs[f"metrics.{metric}"].mean()  # NaN where a baseline does not apply (AR(2) per window at T=2)
            assert table.loc[label, f"T={truncation}"] == ("" if pd.isna(mean) else format(mean, ".3g"))


def test_cost_table_has_every_configuration_and_time_to_target(compiled):
    folder, stored, _ = compiled
    costs = read(folder, "cost.csv").set_index("configuration")
    assert len(costs) == 6
    lstm = costs.loc["dependency/lstm-L1-uni-T10-lr=0.02"]
    named = stored["tags.mlflow.runName"].str.fullmatch(r"dep·lstm·L1·T10·s0·lr=0.02·[0-9a-f]{4}", na=False)
    params = stored[named]["metrics.num_params"].iloc[0]
    assert lstm["parameters"] == f"{params:,.0f}" and float(lstm["samples/s"].replace(",", "")) > 0
    # Nothing this small gets within 0.01 nats of the Bayes floor or to RMSE 0.0019: every run says so.
    assert set(costs["time to target (s)"]) == {"not reached", "no result"}
    relu = costs.loc["dependency/rnn_relu-L1-uni-T2-lr=1000000.0"]
    assert (relu["reached target"], relu["steps to target"]) == ("0/0", "no result")
    runs = read(folder, "runs.csv")
    finished = runs[runs["outcome"] == "finished"]
    assert len(finished) == 8 and (finished["reached"] == 0).all()


def test_the_cost_table_is_grouped_by_task():
    """A suite whose matrix interleaves its tasks (task not the outermost axis) still lists each task's rows
    together, in the order the tasks first come."""
    keys = ["dependency/lstm-T2", "sine/lstm-T2", "dependency/gru-T2", "sine/gru-T2", "sine_extrapolation/gru-T2"]
    summary = pd.DataFrame({"configuration": keys, "task": [k.split("/")[0] for k in keys], "n": 1, "reached": 0,
                            "steps_to_target": math.nan, "time_to_target_s": math.nan, "num_params": 10.0,
                            "wall_time_s": 1.0, "train/samples_per_s": 100.0, "peak_memory_mb": 1.0})
    assert tables.cost_table(summary)["configuration"].tolist() == [
        "dependency/lstm-T2", "dependency/gru-T2", "sine/lstm-T2", "sine/gru-T2", "sine_extrapolation/gru-T2"]


def test_failed_and_missing_runs_are_counted(tiny_suite_store):
    """A third seed: one config recorded as FAILED (as the runner does when a worker dies), the rest missing."""
    suite_file, uri, _ = tiny_suite_store
    suite = load_suite(str(suite_file), axis_overrides={"seed": ["0", "1", "2"]})
    lost = next(c for c in suite.configs if c["seed"] == 2 and c["task"] == "sine" and c["truncation"] == 2)
    store = Store(uri)
    store.mark_failed(store.experiment_id("rnn-bench"), None, lost, "no-parent", "worker died (planted by the test)")
    runs = results.suite_runs(suite, store.runs_frame("rnn-bench"))
    summary = tables.summarize(results.add_time_to_target(runs, {}, suite.tasks), suite.tasks).set_index("configuration")
    assert summary.loc["sine/lstm-L2-uni-T2", ["runs", "n", "failed", "missing"]].tolist() == [3, 2, 1, 0]
    assert summary.loc["sine/lstm-L2-uni-T10", ["runs", "n", "failed", "missing"]].tolist() == [3, 2, 0, 1]
    text = tables.comparison_table(summary.reset_index(), "sine", suite.tasks["sine"],
                                   report_for(suite.tasks["sine"]).reference_rows).set_index("configuration")
    assert "(n=2), 1 failed" in text.loc["lstm L2 uni", "T=2"]
    assert config_hash(lost) in set(runs[runs["outcome"] == "failed"]["config_hash"])


def test_time_to_target_is_the_first_validation_at_the_target():
    """Histories as the store returns them: (optimizer step, value), validation metric beside val/elapsed_s."""
    runs = pd.DataFrame({"task": ["dependency", "sine", "sine"], "run_id": ["a", "b", "c"],
                         "outcome": ["finished", "finished", "diverged"], "floor_all": [0.4545, None, None]})
    histories = {"a": {"val/ce": [(200, 0.6), (400, 0.46), (600, 0.455)],
                       "val/elapsed_s": [(200, 1.0), (400, 2.5), (600, 3.0)]},
                 "b": {"val/rmse": [(200, 0.01), (400, 0.002)], "val/elapsed_s": [(200, 1.0), (400, 2.0)]}}
    found = results.add_time_to_target(runs, histories, BUILTIN).fillna(-1)
    assert found[["target", "reached", "steps_to_target", "time_to_target_s"]].round(4).values.tolist() == [
        [0.4645, 1, 400, 2.5], [sine.SOURCE_RMSE, 0, -1, -1], [sine.SOURCE_RMSE, -1, -1, -1]]


# ------------------------------------------------------------------------------- a store or suite from outside

INJECTED = "# Owned\n| a | b |\n| --- | --- |\n<script>alert(1)</script> [click](javascript:alert(2)) ![x](http://t/x.png)"


@pytest.fixture
def store_copy(tiny_suite_store, tmp_path):
    """A copy of the tiny suite's store (database and artifacts), to alter without touching the session's."""
    import shutil

    suite_file, uri, _ = tiny_suite_store
    root = Path(uri.removeprefix("sqlite:///")).parent
    shutil.copy(root / "mlflow.db", tmp_path / "mlflow.db")
    shutil.copytree(root / "mlartifacts", tmp_path / "mlartifacts")
    return suite_file, f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path


def compile_copy(suite, uri: str, out: Path):
    from bench.reporting.compile import compile_suite
    from bench.running.train import restore

    return compile_suite(suite, uri, restore, out_dir=out, partial=True)


@pytest.mark.slow
def test_text_from_the_suite_and_the_store_reaches_the_pages_as_text(store_copy):
    """A suite description, a failure reason and a commit tag holding headings, a table, a script, a link and an
    image: README.md shows them as text (one paragraph, every tag and link escaped) and results.html escapes them."""
    suite_file, uri, folder = store_copy
    doc = re.sub(r"(?m)^description:.*$", "description: " + json.dumps(INJECTED), suite_file.read_text(), count=1)
    (folder / "evil.yaml").write_text(doc)
    suite = load_suite(str(folder / "evil.yaml"), axis_overrides={"seed": ["0", "1", "3"]})
    store = Store(uri)
    lost = next(c for c in suite.configs if c["seed"] == 3)
    store.mark_failed(store.experiment_id("rnn-bench"), None, lost, "no-parent", INJECTED)
    (failed,) = store.search(store.experiment_id("rnn-bench"), f"tags.`bench.config_hash` = '{config_hash(lost)}'")
    store.log(failed.info.run_id, tags={"mlflow.source.git.commit": "<img src=x onerror=alert(3)>"})
    compiled = compile_copy(suite, uri, folder / "out")
    readme = (compiled.out_dir / "README.md").read_text()
    page = (compiled.out_dir / "results.html").read_text()
    assert not [line for line in readme.splitlines() if line.startswith(("# Owned", "| a |", "<"))]
    for raw in ("<script>", "<img src=x", "](javascript:", "![x](http"):  # as markup: not after a backslash
        assert not re.search(r"(?<!\\)" + re.escape(raw), readme), raw
    for raw in ("<script>", "<img src=x"):  # in HTML, only tags are markup
        assert raw not in page.replace("<script>function sortKey", ""), raw  # only the page's own sort script
    assert readme.count("\\# Owned") == 2  # the description and the failure reason, each as text
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2 and "&lt;img src=x onerror" in page


@pytest.mark.slow
def test_a_bad_model_pt_marks_its_run_and_the_compile_goes_on(store_copy):
    """Every saved model.pt of the copy overwritten with junk: the compile still writes every page; the sine
    figure's runs are trained again, and the page says which run's weights were unusable."""
    suite_file, uri, folder = store_copy
    weights = list((folder / "mlartifacts").rglob("model.pt"))
    assert weights
    for path in weights:
        path.write_bytes(b"not a torch file")
    compiled = compile_copy(load_suite(str(suite_file)), uri, folder / "out")
    assert sorted(p.name for p in compiled.out_dir.iterdir()) == sorted([*FILES, "explore.html", "plotly.min.js"])
    readme = (compiled.out_dir / "README.md").read_text()
    assert "its model.pt is unusable (UnpicklingError), so it was trained again" in readme


@pytest.mark.slow
def test_a_failing_compile_leaves_the_pages_as_they_were(store_copy, monkeypatch):
    """A compile that fails half-way (here: drawing a figure) leaves the folder exactly as the last compile wrote it,
    and no temporary folder behind."""
    from bench.reporting import compile as compile_module

    suite_file, uri, folder = store_copy
    suite = load_suite(str(suite_file))
    compiled = compile_copy(suite, uri, folder / "out")
    before = {p.name: p.read_bytes() for p in compiled.out_dir.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("planted")

    monkeypatch.setattr(compile_module, "draw_figures", broken)
    with pytest.raises(RuntimeError, match="planted"):
        compile_copy(suite, uri, folder / "out")
    assert {p.name: p.read_bytes() for p in compiled.out_dir.iterdir()} == before
    assert sorted(p.name for p in (folder / "out").parent.iterdir() if p.name.startswith(".")) == []


def test_a_run_with_a_live_lease_counts_as_running_not_failed(tiny_suite_store):
    """A run still RUNNING whose process lives (this one's, its heartbeat fresh) is counted running, with its
    reason, not failed; the comparison entry says so."""
    from bench.running.leases import RunLease

    suite_file, uri, _ = tiny_suite_store
    suite = load_suite(str(suite_file), axis_overrides={"seed": ["0", "1", "4"]})
    live = next(c for c in suite.configs if c["seed"] == 4 and c["task"] == "dependency")
    store = Store(uri)
    lease = RunLease.start(store, store.experiment_id("rnn-bench"), "live", {"bench.config_hash": config_hash(live)})
    try:
        runs = results.suite_runs(suite, store.runs_frame("rnn-bench"))
        (row,) = runs[runs["config_hash"] == config_hash(live)].to_dict("records")
        assert (row["outcome"], row["reason"]) == ("running", "still running (its process holds a live lease)")
        summary = tables.summarize(results.add_time_to_target(runs, {}, suite.tasks), suite.tasks)
        assert summary["running"].sum() == 1 and summary["failed"].sum() == 0
    finally:
        lease.end("KILLED")
