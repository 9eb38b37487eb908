"""`bench history`: a suite's metric by commit, on the real tiny suite's store (``tiny_suite_store``)."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.cli.main import main
from bench.config.suite import load_suite
from bench.reporting import history
from bench.reporting.compare import COMMIT_TAG
from bench.running.store import Store

LSTM_T10 = "dependency/lstm-L1-uni-T10-lr=0.02"


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(tmp_path / "results"))


def later_commit(frame: pd.DataFrame, commit: str, days: int, planted: float = 0.0) -> pd.DataFrame:
    """The store's runs as if run again ``days`` later at ``commit`` (same numbers), LSTM T=10 worse by ``planted``."""
    again = frame[frame["tags.bench.config_hash"].notna()].copy()
    again[COMMIT_TAG] = commit
    again["start_time"] = again["start_time"] + pd.Timedelta(days=days)
    again["run_id"] = again["run_id"] + commit[:4]
    lstm = again["tags.mlflow.runName"].str.match(r"dep·lstm·L1·T10·s\d·lr=0\.02·")
    again.loc[lstm, "metrics.test/ce"] += planted
    return again


def test_a_planted_step_is_named_at_its_commit_and_nothing_else_steps(tiny_suite_store):
    suite_file, uri, _ = tiny_suite_store
    frame = Store(uri).runs_frame("rnn-bench")
    stored = frame[COMMIT_TAG].dropna().iloc[0]
    combined = pd.concat([frame, later_commit(frame, "b" * 40, 1), later_commit(frame, "c" * 40, 2, planted=0.2),
                          later_commit(frame, "d" * 40, 3, planted=0.2)])
    found = history.history(load_suite(str(suite_file)), combined)
    assert found.commits == [stored, "b" * 40, "c" * 40, "d" * 40]
    stepped = {key: step.commit for key, step in found.steps.items() if step is not None}
    assert stepped == {("dependency", LSTM_T10): "c" * 40, ("dependency", history.SUMMARY): "c" * 40}
    assert found.steps["dependency", LSTM_T10].change.change == "worse"
    lstm = found.table[found.table["configuration"] == LSTM_T10]
    assert list(lstm["n"]) == [2, 2, 2, 2] and (lstm["low"] < lstm["mean"]).all()


def test_history_of_one_commit_writes_its_table_and_plot(tiny_suite_store, tmp_path, capsys):
    suite_file, uri, _ = tiny_suite_store
    out = tmp_path / "out"
    assert main(["history", "--suite", str(suite_file), "--tracking-uri", uri, "--out", str(out)]) == 0
    report = (out / "history.md").read_text()
    assert f"| {LSTM_T10} | " in report and f"| {history.SUMMARY} | " in report and "| none |" in report
    assert (out / "history.png").stat().st_size > 10_000
    assert main(["history", "--suite", "smoke", "--tracking-uri", uri, "--out", str(out)]) == 2
    assert "history: suite 'smoke': no run of it in the store" in capsys.readouterr().err
