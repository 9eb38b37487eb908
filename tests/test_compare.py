"""`bench compare` on real tiny suites in real MLflow stores (``tiny_suite_store``)."""

from __future__ import annotations

import shutil
import sqlite3
import textwrap

import pytest

from bench.reporting import compare
from bench.tasks import BUILTIN
from bench.cli.main import main
from bench.config.settings import ConfigError
from bench.running.store import Store

LSTM_T10 = "dependency/lstm-L1-uni-T10-lr=0.02"
LSTM_T2 = "dependency/lstm-L1-uni-T2-lr=0.02"


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(tmp_path / "results"))


def classes(comparison: compare.Comparison) -> dict[str, str]:
    return dict(zip(comparison.table["configuration"], comparison.table["class"]))


def test_a_suite_run_compared_with_itself_shows_no_change(tiny_suite_store, tmp_path, capsys):
    _, uri, _ = tiny_suite_store
    out = tmp_path / "out"
    assert main(["compare", "suite/tiny", "suite/tiny", "--tracking-uri", uri, "--out", str(out)]) == 0
    side = compare.resolve_side("tiny", uri, "rnn-bench")  # the suite's name alone names its parent run too
    found = compare.compare(side, side, BUILTIN)
    assert len(found.table) == 6 and set(found.table["class"]) == {"no detectable change"} and found.only.empty
    assert found.table.set_index("configuration").at[LSTM_T10, "effect (B − A)"].startswith("+0 [")
    report = (out / "compare.md").read_text()
    assert "PASS: 6 configurations compared: 0 worse, 0 better, 6 no detectable change" in report
    assert "s0 " in report and "s1 " in report  # every seed side by side
    assert "<table" in (out / "compare.html").read_text()


def test_a_store_an_earlier_commit_wrote_compares_with_one_written_now(tiny_suite_store, tmp_path):
    """A: a copy of the store with its figures under the names commits before one-name-per-metric stored them
    (test.ce, floor.all; the learning curves kept train/loss and val/*), B: the store as written now. The same
    numbers under either name: nothing changed, nothing on one side only."""
    _, uri, _ = tiny_suite_store
    (tmp_path / "old").mkdir()
    shutil.copy(uri.removeprefix("sqlite:///"), tmp_path / "old" / "mlflow.db")
    with sqlite3.connect(tmp_path / "old" / "mlflow.db") as db:
        for table in ("metrics", "latest_metrics"):
            renamed = db.execute(f"UPDATE {table} SET key = replace(key, '/', '.') "
                                 "WHERE key LIKE '%/%' AND key != 'train/loss' AND key NOT LIKE 'val/%'").rowcount
            assert renamed > 0
    old = Store(f"sqlite:///{tmp_path / 'old' / 'mlflow.db'}")
    (run,) = old.search(old.find_experiment("rnn-bench"), "tags.mlflow.runName LIKE 'dep·lstm·L1·T10·s0·lr=0.02·%'")
    assert "test.ce" in run.data.metrics and "test/ce" not in run.data.metrics
    found = compare.compare(compare.resolve_side(old.uri, uri, "rnn-bench"),
                            compare.resolve_side(uri, uri, "rnn-bench"), BUILTIN)
    assert len(found.table) == 6 and set(found.table["class"]) == {"no detectable change"} and found.only.empty


def test_a_collapsed_seed_is_caught_and_a_dropped_configuration_listed(tiny_suite_store, tmp_path, capsys):
    """B: a copy of the store in which one seed of one configuration collapsed (its test metric logged again,
    far worse) and another configuration's runs were deleted."""
    _, uri, _ = tiny_suite_store
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(uri.removeprefix("sqlite:///"), copy / "mlflow.db")
    store = Store(f"sqlite:///{copy / 'mlflow.db'}")
    frame = compare.child_runs(store.runs_frame("rnn-bench"))
    named = frame.assign(name=frame["tags.mlflow.runName"])
    collapsed = named[named["name"].str.fullmatch(r"dep·lstm·L1·T10·s1·lr=0\.02·[0-9a-f]{4}")]["run_id"].item()
    store.log_metrics(collapsed, {"test/ce": 0.95}, step=10**9)  # the latest value of the metric
    for run_id in named[named["name"].str.match(r"dep·lstm·L1·T2·")]["run_id"]:
        store.client.delete_run(run_id)

    assert main(["compare", uri, str(copy), "--out", str(tmp_path / "out")]) == 1
    printed = capsys.readouterr().out
    found = compare.compare(compare.resolve_side(uri, uri, "rnn-bench"),
                            compare.resolve_side(str(copy), uri, "rnn-bench"), BUILTIN)
    assert classes(found) == {**{k: "no detectable change" for k in classes(found)}, LSTM_T10: "worse"}
    assert found.only.values.tolist() == [[LSTM_T2, "dependency", "A"]]
    row = found.table.set_index("configuration").loc[LSTM_T10]
    assert "a seed beyond the baseline's range" in row["detail"] and "s1 0.9500" in row["B"]
    assert "FAIL: 5 configurations compared: 1 worse" in printed and LSTM_T2 in printed


def test_what_names_no_runs_is_reported_for_both_sides(tiny_suite_store, capsys):
    _, uri, _ = tiny_suite_store
    assert main(["compare", "0000000", "suite/nothing", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "compare: '0000000': names no runs" in err and "compare: 'suite/nothing': names no runs" in err


def test_a_commit_names_its_runs_and_a_dirty_work_trees_runs_apart(tiny_suite_store):
    _, uri, _ = tiny_suite_store
    tag = compare.child_runs(Store(uri).runs_frame("rnn-bench"))[compare.COMMIT_TAG].iloc[0]
    assert len(compare.resolve_side(tag[:7] + tag[40:], uri, "rnn-bench").runs) == 12  # the prefix names them
    other = tag[:40] if tag.endswith(compare.DIRTY) else tag + compare.DIRTY
    with pytest.raises(ConfigError, match="names no runs"):
        compare.resolve_side(other, uri, "rnn-bench")


PLANTED_CELL = """
import os
from torch import nn

class Cut(nn.Module):
    '''An Elman RNN whose output is cut (zeros) when RNN_BENCH_TEST_PLANT=1: the planted change.'''
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.rnn = nn.RNN(*args, **kwargs)
        self.cut = os.environ.get("RNN_BENCH_TEST_PLANT") == "1"
    def forward(self, x, state=None):
        out, state = self.rnn(x, state)
        return out * 0 if self.cut else out, state

def cut(input_size, hidden_size, num_layers, bidirectional, dropout):
    return Cut(input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
"""

# The smoke suite's dependency budget, where an Elman RNN learns both lags (test CE ~0.49, seeds within 0.005).
PLANT_SUITE = """
description: compare test - a planted change in one cell
axes:
  cell: [rnn_tanh, planted_cell:cut]
  seed: [0, 1, 2]
fixed: {task: dependency, hidden: 8, truncation: 5, optimizer: adam, lr: 0.02, lr_schedule: cosine, epochs: -1,
        log_every: 50, val_every: 100, max_steps: 300, series_length: 100000, eval_length: 20000, batch_size: 50}
"""


@pytest.mark.slow
def test_two_real_suites_differ_by_the_planted_change_only(tmp_path, monkeypatch, capsys):
    """The same suite run twice into two stores; in the second, one cell's code changed (the plant)."""
    (tmp_path / "planted_cell.py").write_text(textwrap.dedent(PLANTED_CELL))
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "plant.yaml"
    suite.write_text(PLANT_SUITE)
    stores = []
    for plant in ("0", "1"):
        monkeypatch.setenv("RNN_BENCH_TEST_PLANT", plant)
        (tmp_path / plant).mkdir()
        uri = f"sqlite:///{tmp_path / plant / 'mlflow.db'}"
        assert main(["run", "--suite", str(suite), "--workers", "2", "--tracking-uri", uri, "--no-progress",
                     "--no-compile"]) == 0
        stores.append(uri)
    assert main(["compare", *stores, "--out", str(tmp_path / "out")]) == 1
    found = compare.compare(*(compare.resolve_side(uri, uri, "rnn-bench") for uri in stores), BUILTIN)
    assert classes(found) == {"dependency/rnn_tanh-L1-uni-T5": "no detectable change",
                              "dependency/planted_cell:cut-L1-uni-T5": "worse"}
    same = found.table.set_index("configuration").loc["dependency/rnn_tanh-L1-uni-T5"]
    assert same["A"] == same["B"]  # the same config and seed give the same numbers
