"""`bench baseline` and `bench regress` on a real tiny suite in a real MLflow store (``tiny_suite_store``)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from bench.reporting import regress, results, tables
from bench.cli.main import main
from bench.config.suite import load_suite
from bench.running.train import train_run

LSTM_T10 = "dependency/lstm-L1-uni-T10-lr=0.02"
LSTM_T2 = "dependency/lstm-L1-uni-T2-lr=0.02"  # learns no lag: its seeds sit at the no-lag floor


@pytest.fixture(scope="module")
def store(tiny_suite_store, tmp_path_factory):
    """A copy of the tiny suite's store (regress writes its report beside the store: the session's own stays as
    compiled), a baseline written from it by ``bench baseline``, and its current summary."""
    suite_file, shared_uri, _ = tiny_suite_store
    db = tmp_path_factory.mktemp("regress_store") / "mlflow.db"
    shutil.copyfile(shared_uri.removeprefix("sqlite:///"), db)
    uri = f"sqlite:///{db}"
    baseline_file = tmp_path_factory.mktemp("baseline") / "tiny.json"
    assert main(["baseline", "--suite", str(suite_file), "--tracking-uri", uri, "--out", str(baseline_file)]) == 0
    suite = load_suite(str(suite_file))
    summary = tables.summarize(results.load(suite, uri, "rnn-bench").runs, suite.tasks)
    return suite_file, uri, baseline_file, suite, summary


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('empty') / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(tmp_path / "results"))


def run_regress(suite_file, uri, baseline_file, *extra) -> int:
    return main(["regress", "--suite", str(suite_file), "--tracking-uri", uri, "--baseline", str(baseline_file),
                 *extra])


def edited(baseline_file, tmp_path, change) -> str:
    doc = json.loads(baseline_file.read_text())
    change(doc)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_baseline_file_holds_every_configuration(store):
    suite_file, _, baseline_file, suite, summary = store
    doc = regress.load_baseline(baseline_file)
    assert doc["suite"] == "tiny" and doc["suite_hash"] == regress.suite_hash(suite) and doc["commit"]
    assert sorted(doc["configurations"]) == sorted(summary["configuration"])
    entry = doc["configurations"][LSTM_T10]
    row = summary.set_index("configuration").loc[LSTM_T10]
    assert entry["metric"] == "test/ce" and entry["n"] == 2 and entry["reached_target"] is False
    assert entry["mean"] == pytest.approx(row["mean"], rel=1e-5) and entry["std"] == pytest.approx(row["std"], rel=1e-5)
    relu = doc["configurations"]["dependency/rnn_relu-L1-uni-T2-lr=1000000.0"]
    assert (relu["mean"], relu["n"], relu["diverged"]) == (None, 0, 2)


def test_identical_results_pass(store, tmp_path, capsys):
    suite_file, uri, baseline_file, _, _ = store
    assert run_regress(suite_file, uri, baseline_file) == 0
    # Beside the store (not the committed results/): the tiny suite's store is a throw-away SQLite file.
    report = (Path(uri.removeprefix("sqlite:///")).parent / "results" / "tiny" / "regress.md").read_text()
    assert not (tmp_path / "results").exists()
    assert "**PASS: 6 configurations of the baseline compared; 0 failing" in report
    assert "PASS" in capsys.readouterr().out


def test_planted_regression_fails_and_names_the_configuration(store, tmp_path, capsys):
    suite_file, uri, baseline_file, _, _ = store

    def claim_much_better(doc):
        shift(doc["configurations"][LSTM_T10], -0.05)

    assert run_regress(suite_file, uri, edited(baseline_file, tmp_path, claim_much_better)) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(f"| {LSTM_T10} |"))
    assert "| worse | fail |" in line and "mean +0.05" in line
    assert "FAIL: 6 configurations of the baseline compared; 1 failing" in out


def test_every_seed_losing_what_every_baseline_seed_had_fails_whatever_the_spread(store, tmp_path, capsys):
    """A baseline whose three seeds spread (0.469, 0.499, 0.539: every one learned at least part of lag 3) against
    the store's seeds at T=2, which learned nothing: today's check, its thresholds widened by that spread to
    more than the span from the Bayes floor to the no-lag floor, passed."""
    suite_file, uri, baseline_file, _, summary = store
    now = summary.set_index("configuration").loc[LSTM_T2]
    assert min(now["values"]) > now["floor_none"] - 0.02, now["values"]  # the store's seeds learned no lag

    def learned(doc):
        doc["configurations"][LSTM_T2].update(values=[0.469, 0.499, 0.539], mean=0.5023, std=0.035, n=3, runs=3)

    assert run_regress(suite_file, uri, edited(baseline_file, tmp_path, learned)) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(f"| {LSTM_T2} |"))
    assert "| worse | fail |" in line and "seeds lost what every baseline seed had learned" in line, line


def test_a_baseline_holding_a_collapsed_seed_says_how_many_seeds_would_decide(store, tmp_path, capsys):
    """When the baseline already holds a seed that learned nothing, the new seeds learning nothing may be chance
    at these n: the report says so, and how many seeds would tell, instead of passing in silence."""
    suite_file, uri, baseline_file, _, _ = store

    def one_collapsed(doc):
        doc["configurations"][LSTM_T2].update(values=[0.469, 0.499, 0.6616], mean=0.5432, std=0.10, n=3, runs=3)

    assert run_regress(suite_file, uri, edited(baseline_file, tmp_path, one_collapsed)) == 0
    out = capsys.readouterr().out
    line = next((line for line in out.splitlines() if line.startswith(f"| {LSTM_T2} |")), out)
    assert "| undecided | warn |" in line and "1 of 3 in the baseline" in line, line
    assert "cannot tell from chance at a false-alarm rate of 0.01" in line and "seeds on each side would decide" in line


def test_worse_training_fails(store, tmp_path, capsys):
    """The same suite trained with 1 optimizer step instead of 60 (sine: 40) against the good baseline."""
    suite_file, _, baseline_file, _, _ = store
    handicapped = tmp_path / "tiny.yaml"
    handicapped.write_text(suite_file.read_text().replace("max_steps: 60", "max_steps: 1")
                           .replace("max_steps: 40", "max_steps: 1"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for cfg in load_suite(str(handicapped)).configs:
        assert train_run(cfg, uri).status in ("finished", "diverged")
    assert run_regress(handicapped, uri, baseline_file) == 1
    worse = {line.split(" | ")[0].removeprefix("| ") for line in capsys.readouterr().out.splitlines()
             if " | worse | fail | " in line}
    # The sine configuration got 5x worse too, but two seeds and a prior spread drawn from two sine
    # configurations, one of them wildly noisy, cannot tell that from noise at a 1% false-alarm rate.
    assert LSTM_T10 in worse


def test_missing_runs_fail(store, empty_store, capsys):
    suite_file, _, baseline_file, _, _ = store
    assert run_regress(suite_file, empty_store, baseline_file) == 1
    out = capsys.readouterr().out
    assert out.count("| missing | fail |") == 6 and "2 of 2 runs not in the store" in out


def test_configuration_dropped_from_the_suite_fails(store, tmp_path, capsys):
    suite_file, uri, baseline_file, _, _ = store

    def add_gru(doc):
        doc["configurations"]["dependency/gru-L1-uni-T10-lr=0.02"] = doc["configurations"][LSTM_T10]

    assert run_regress(suite_file, uri, edited(baseline_file, tmp_path, add_gru)) == 1
    assert "| dependency/gru-L1-uni-T10-lr=0.02 | missing | fail | " in capsys.readouterr().out


def shift(entry: dict, delta: float, spread: float | None = None) -> None:
    """Move a baseline entry's seeds by ``delta``; with ``spread``, spread them ± that much around their mean."""
    mean = sum(entry["values"]) / len(entry["values"])
    if spread is not None:
        entry["values"] = [mean - spread, mean + spread]
    entry["values"] = [v + delta for v in entry["values"]]
    entry["mean"] += delta


def compare(store, change, **settings):
    suite_file, _, baseline_file, suite, summary = store
    doc = copy.deepcopy(regress.load_baseline(baseline_file))
    change(doc["configurations"][LSTM_T10])
    found = regress.compare(doc, baseline_file, suite, summary, **settings).findings
    return found[found["configuration"] == LSTM_T10][["change", "severity"]].values.tolist()


@pytest.mark.parametrize("change, expected", [
    (lambda e: None, []),
    # A baseline whose seeds spread ± 0.03 around a mean 0.02 better: within its noise, passes.
    (lambda e: shift(e, -0.02, 0.03), []),
    # Worse by less than the smallest change that counts (0.005 nats): passes however tight the seeds.
    (lambda e: shift(e, -0.004), []),
    (lambda e: shift(e, +0.05), [["better", "info"]]),
    (lambda e: e.update(reached_target=True), [["no longer reaches target", "fail"]]),
    (lambda e: e.update(samples_per_s=e["samples_per_s"] * 10), [["slower", "warn"]]),
    # A baseline with more seeds than the current entry (adaptive seeds give each entry its own n): still passes.
    (lambda e: e.update(values=e["values"] + [e["mean"]] * 3, n=e["n"] + 3), []),
    (lambda e: shift(e, -0.1) or e.update(values=e["values"] + [e["mean"]] * 3, n=e["n"] + 3), [["worse", "fail"]]),
])
def test_what_counts_as_a_regression(store, change, expected):
    assert compare(store, change) == expected


def test_more_divergence_fails(store):
    suite_file, _, baseline_file, suite, summary = store
    doc = regress.load_baseline(baseline_file)
    doc["configurations"]["dependency/rnn_relu-L1-uni-T2-lr=1000000.0"]["diverged"] = 1
    found = regress.compare(doc, baseline_file, suite, summary).findings
    assert found[["configuration", "change", "severity"]].values.tolist() == [
        ["dependency/rnn_relu-L1-uni-T2-lr=1000000.0", "more diverged", "fail"]]


def test_slower_fails_only_when_asked(store, tmp_path):
    suite_file, uri, baseline_file, _, _ = store

    def ten_times_faster(doc):
        doc["configurations"][LSTM_T10]["samples_per_s"] *= 10

    path = edited(baseline_file, tmp_path, ten_times_faster)
    assert run_regress(suite_file, uri, path) == 0
    assert run_regress(suite_file, uri, path, "--fail-on-slow") == 1


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (None, "configurations.dependency/lstm-L1-uni-T10-lr=0.02.mean: missing; allowed: a number or null"),
    ('{"suite": "tiny", "configurations": []}', "configurations: []; allowed: a mapping"),
])
def test_malformed_baseline_exits_2_naming_file_and_field(store, tmp_path, capsys, content, message):
    suite_file, uri, baseline_file, _, _ = store
    path = tmp_path / "bad.json"
    if content is None:
        doc = json.loads(baseline_file.read_text())
        del doc["configurations"][LSTM_T10]["mean"]
        content = json.dumps(doc)
    path.write_text(content)
    assert run_regress(suite_file, uri, path) == 2
    err = capsys.readouterr().err
    assert f"error: baseline: {path}: " in err and message in err


def test_missing_baseline_file_and_incomplete_store_exit_2(store, empty_store, tmp_path, capsys):
    suite_file, uri, _, _, _ = store
    assert run_regress(suite_file, uri, tmp_path / "none.json") == 2
    assert "none.json: no such file" in capsys.readouterr().err
    out = str(tmp_path / "b.json")
    assert main(["baseline", "--suite", str(suite_file), "--tracking-uri", empty_store, "--out", out]) == 2
    assert "12 of 12 runs of suite 'tiny' are not in" in capsys.readouterr().err
