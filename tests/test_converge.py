"""Runs that converge and seeds where the answer is open (issue 21): plateau stopping with a cap, the
``seeds: {min, max}`` rule that adds seeds only to undecided entries, and what the tables make of both.

Fast tests train a few tiny real runs; the end-to-end runs (one runner, a resumed one, two runners sharing a
store) are slow.
"""

from __future__ import annotations

import math
import subprocess

import pandas as pd
import pytest
import pytorch_lightning as pl

from bench import tasks
from bench.cli.main import main
from bench.config.settings import ConfigError, config_hash, resolve
from bench.config.suite import load_suite
from bench.reporting import tables
from bench.running.train import Plateau, ValidationHistory, build, fit_and_test, make_trainer
from bench.tasks import decision
from suite_procs import (REPO, TINY_FIXED, bench_args, bench_run, child_env, children, describe, parents,
                         sqlite_uri, summary_count, write_suite)

FLOORS = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}


# ----------------------------------------------------------------------------------------------- plateau stopping

def test_plateau_stops_before_a_loose_cap_and_records_the_samples_it_took(tiny_cfg):
    cfg = tiny_cfg(stop="plateau", patience=2, plateau_tolerance=0.05, max_steps=400, epochs=-1, val_every=20)
    _, _, metrics = fit_and_test(cfg)
    assert metrics["at_cap"] == 0.0
    assert metrics["train/steps"] < 400  # the plateau ended it, not the cap
    per_step = tasks.get("dependency").samples_per_step(cfg)
    # the best validation came `patience` validations before the end
    assert metrics["samples_to_plateau"] == (metrics["train/steps"] - 2 * 20) * per_step
    assert metrics["train/samples"] == metrics["train/steps"] * per_step


def test_plateau_stopping_reads_relative_changes_of_the_metric(tiny_cfg):
    """The rule the suites were tuned, run and judged with: an improvement counts when it exceeds the tolerance on
    the metric's log. Replayed from the run's own validation history, it gives the step the run stopped at; read
    on the metric itself (nats), the same tolerance would have stopped this run elsewhere."""
    cfg = tiny_cfg(stop="plateau", patience=2, plateau_tolerance=0.03, max_steps=600, epochs=-1, val_every=20)
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    data, model = build(cfg)
    trainer = make_trainer(cfg, None, "cpu", False)
    history, plateau = ValidationHistory("val/ce"), Plateau(tasks.get("dependency"), 2, 0.03)
    trainer.callbacks += [history, plateau]  # in a real Trainer: Lightning sets attributes on its callbacks
    trainer.fit(model, datamodule=data)

    def stop_step(scale) -> int | None:
        best, waited = math.inf, 0
        for step, value in history.points:
            if scale(value) < best - 0.03:
                best, waited = scale(value), 0
                continue
            waited += 1
            if waited == 2:
                return step
        return None

    assert plateau.reached and trainer.global_step == stop_step(math.log)
    assert stop_step(lambda v: v) != stop_step(math.log)


def test_a_plateau_run_is_tested_with_its_best_validations_weights(tiny_cfg):
    cfg = tiny_cfg(stop="plateau", patience=3, plateau_tolerance=0.0, max_steps=800, epochs=-1, val_every=20, lr=0.2)
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)  # unseeded, the model's start varied between runs
    data, model = build(cfg)
    trainer = make_trainer(cfg, None, "cpu", False)
    history, plateau = ValidationHistory("val/ce"), Plateau(tasks.get("dependency"), 3, 0.0)
    trainer.callbacks += [history, plateau]
    trainer.fit(model, datamodule=data)
    values = [v for _, v in history.points]
    assert values[-1] > min(values)  # the last validation was not the best: restoring must change the weights
    plateau.restore(model)
    again = make_trainer(cfg, None, "cpu", False).validate(model, datamodule=data, verbose=False)[0]["val/ce"]
    assert again == pytest.approx(min(values), abs=1e-6)


def test_a_tight_cap_binds_and_counts_as_at_cap(tiny_cfg):
    cfg = tiny_cfg(stop="plateau", patience=50, max_steps=60, epochs=-1, val_every=20)
    _, _, metrics = fit_and_test(cfg)
    assert metrics["at_cap"] == 1.0 and metrics["train/steps"] == 60
    assert "samples_to_plateau" not in metrics


def test_budget_stopping_records_no_cap_and_keeps_existing_identities(tiny_cfg):
    cfg = tiny_cfg(max_steps=40, epochs=-1)
    assert (cfg["stop"], cfg["patience"], cfg["plateau_tolerance"]) == ("budget", 0, -1.0)
    old = {k: v for k, v in cfg.items() if k not in ("stop", "patience", "plateau_tolerance")}
    assert config_hash(cfg) == config_hash(old)  # a config from before these settings keeps its hash
    _, _, metrics = fit_and_test(cfg)
    assert "at_cap" not in metrics and "samples_to_plateau" not in metrics
    plateau = tiny_cfg(max_steps=40, epochs=-1, stop="plateau")
    assert config_hash(plateau) != config_hash(cfg)
    assert (plateau["patience"], plateau["plateau_tolerance"]) == (3, 0.002)  # the task's defaults, stated


def test_plateau_settings_without_plateau_stopping_are_refused():
    with pytest.raises(ConfigError) as e:
        resolve({"task": "dependency", "patience": 4, "plateau_tolerance": 0.01, "stop": "budget"})
    assert e.value.problems == [
        "patience: 4 with stop budget; allowed: 0, or set stop to plateau",
        "plateau_tolerance: 0.01 with stop budget; allowed: -1.0, or set stop to plateau"]
    with pytest.raises(ConfigError, match="stop: 'early'; allowed: one of budget, plateau"):
        resolve({"task": "dependency", "stop": "early"})


# ----------------------------------------------------------------------------------------------- adaptive seeds

ADAPTIVE = {
    "description": "test: adaptive seeds",
    "axes": {"cell": ["lstm", "gru"], "truncation": [5, 10]},
    "fixed": {**TINY_FIXED, "max_steps": 60, "epochs": -1, "val_every": 20},
    "seeds": {"min": 2, "max": 4},
}


def test_seeds_min_max_starts_every_entry_at_the_minimum(tmp_path):
    suite = load_suite(str(write_suite(tmp_path / "adaptive.yaml", ADAPTIVE)))
    assert suite.seeds == (2, 4)
    assert sorted(c["seed"] for c in suite.configs) == [0] * 4 + [1] * 4
    assert len(suite.entries()) == 4
    fixed = load_suite(str(tmp_path / "adaptive.yaml"), axis_overrides={"seed": ["0", "1", "2"]})
    assert fixed.seeds is None and len(fixed.configs) == 12  # seeds on the command line replace the rule


@pytest.mark.parametrize("seeds, allowed", [({"min": 1, "max": 4}, True), ({"min": 3}, True),
                                            ({"min": 5, "max": 4}, True), ("3-10", True)])
def test_bad_seeds_are_one_line_naming_what_is_allowed(tmp_path, seeds, allowed):
    with pytest.raises(ConfigError) as e:
        load_suite(str(write_suite(tmp_path / "bad.yaml", {**ADAPTIVE, "seeds": seeds})))
    (line,) = e.value.problems
    assert line.endswith("allowed: a mapping {min: m, max: M} of whole numbers, 2 <= m <= M <= 1000")
    with pytest.raises(ConfigError, match="seeds: given with a seed axis; allowed: one of them"):
        load_suite(str(write_suite(tmp_path / "both.yaml", {**ADAPTIVE, "axes": {**ADAPTIVE["axes"], "seed": [0]}})))


def test_add_seeds_extends_only_entries_that_are_open_and_complete(tmp_path):
    suite = load_suite(str(write_suite(tmp_path / "adaptive.yaml", ADAPTIVE)))
    entries = list(suite.entries().values())
    # entry 0: decided (1 learned, tight); entry 1: open (interval across bands); entry 2: a run not in yet;
    # entry 3: open, but diverged once: one value is no interval
    values = {0: (0.520, 0.521), 1: (0.50, 0.525), 3: (0.52, math.nan)}
    results = {}
    for entry, value in values.items():
        for index, v in zip(entries[entry], value):
            outcome = "diverged" if math.isnan(v) else "finished"
            results[config_hash(suite.configs[index])] = (outcome, {"test/ce": v, **FLOORS})
    results[config_hash(suite.configs[entries[2][0]])] = ("finished", {"test/ce": 0.5, **FLOORS})
    new = suite.add_seeds(results.get)
    assert [suite.configs[i]["seed"] for i in new] == [2, 2]
    assert {config_hash({**suite.configs[i], "seed": 0}) for i in new} == {
        config_hash(suite.configs[entries[1][0]]), config_hash(suite.configs[entries[3][0]])}
    assert suite.add_seeds(results.get) == []  # the new seeds have no result yet: nothing more
    for i, v in zip(new, (0.53, 0.521)):  # entry 1 stays open, entry 3 (0.520, 0.521) is decided
        results[config_hash(suite.configs[i])] = ("finished", {"test/ce": v, **FLOORS})
    assert len(suite.add_seeds(results.get)) == 1  # entry 1 still open (seed 3, its last); entry 3 decided
    for _ in range(10):  # every run in, alternating values that keep entries open: each stops at the maximum
        for i, cfg in enumerate(suite.configs):
            results.setdefault(config_hash(cfg), ("finished", {"test/ce": (0.50, 0.525)[i % 2], **FLOORS}))
        if not suite.add_seeds(results.get):
            break
    assert [len(indices) for indices in suite.entries().values()] == [2, 4, 4, 3]  # 0 and 3 were decided


def test_open_reason_follows_the_mark():
    task = tasks.get("dependency")
    assert decision.open_reason(decision.judge(task, [0.60, 0.601, 0.599], FLOORS)) == ""  # 0+: between bands
    assert decision.open_reason(decision.judge(task, [0.46], FLOORS)) == "mark 2?: 1 finished seed(s), no interval"
    assert decision.open_reason(decision.judge(task, [0.50, 0.53, 0.52], FLOORS)).startswith("mark 1?: interval")
    assert decision.open_reason(decision.judge(task, [0.4650, 0.4645, 0.4655], FLOORS)) == ""  # at 2's edge
    assert decision.judge(task, [0.4650, 0.4645, 0.4655], FLOORS)["mark"] == "1+"
    assert decision.judge(task, [0.52, 0.519, 0.66], FLOORS)["mark"] == "–…1"  # seeds split: decided


def test_summary_says_decided_at_cap_and_why_an_entry_stayed_open():
    runs = pd.DataFrame({"task": "dependency", "configuration": ["a"] * 4 + ["b"] * 3, "cell": "gru", "layers": 1,
                         "direction": "uni", "variant": "", "truncation": [5] * 4 + [10] * 3,
                         "seed": [0, 1, 2, 3, 0, 1, 2], "outcome": "finished",
                         "metric": [0.50, 0.528, 0.53, 0.52, 0.520, 0.521, 0.519], "converged": 1.0,
                         "at_cap": [1.0, 0, 0, 0, 0, 0, 0], "samples_to_plateau": [math.nan, 4e4, 6e4, 5e4, 1e4, 2e4, 3e4],
                         "target": 0.4645, "reached": 0.0, "steps_to_target": math.nan, "time_to_target_s": math.nan,
                         "seeds_max": 4, **FLOORS})
    summary = tables.summarize(runs, tasks.BUILTIN).set_index("configuration")
    assert summary.loc["a", "decided"] == False and summary.loc["b", "decided"] == True  # noqa: E712
    assert summary.loc["a", "open"].endswith("; at the most seeds, 4")
    assert summary.loc["a", "at_cap"] == 1 and summary.loc["a", "samples_to_plateau"] == 5e4
    assert tables.entry_text(summary.loc["a"].to_dict() | {"configuration": "a"}, ".4f").endswith(", 1 at cap")
    assert tables.cost_table(summary.reset_index())["samples to plateau"].tolist() == ["50,000", "20,000"]


def test_a_plateau_stopped_run_is_not_flagged_not_converged_and_the_cap_is_counted_once():
    finished = pd.DataFrame({"converged": [0.0, 0.0, 1.0, 0.0], "at_cap": [0.0, 1.0, 0.0, math.nan]})
    assert tables.not_converged(finished) == 1  # only the budget-stopped run (no at_cap) still improving


# ----------------------------------------------------------------------------------------------- end to end

def seeds_by_entry(uri: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for run in children(uri):
        if run.info.status != "FINISHED":  # a claim lost to the other runner leaves a KILLED run, never trained
            assert run.data.tags["bench.outcome"] == "claimed", run.info
            continue
        params = run.data.params
        found.setdefault(f"{params['cell']}-T{params['truncation']}", []).append(int(params["seed"]))
    return {k: sorted(v) for k, v in found.items()}


@pytest.mark.slow
def test_a_suite_adds_seeds_where_open_resumes_to_the_same_runs_and_two_runners_share_it(tmp_path):
    suite_file = write_suite(tmp_path / "adaptive.yaml", ADAPTIVE)
    one = sqlite_uri(tmp_path / "one.db")
    proc = bench_run(suite_file, one, "--workers", "2")
    assert proc.returncode == 0, describe(proc)
    seeds = seeds_by_entry(one)
    assert len(seeds) == 4 and all(s == list(range(len(s))) and 2 <= len(s) <= 4 for s in seeds.values())
    assert any(len(s) > 2 for s in seeds.values()), seeds  # tiny runs leave some entries open after two seeds
    values: dict[str, list[float]] = {}
    for run in sorted(children(one), key=lambda r: int(r.data.params["seed"])):
        values.setdefault(f"{run.data.params['cell']}-T{run.data.params['truncation']}", []).append(
            run.data.metrics["test/ce"])
    task, cfg = tasks.get("dependency"), load_suite(str(suite_file)).configs[0]  # the entries share their noise
    for entry, got in values.items():  # every seed past the minimum was added because the entry was open
        for n in range(2, len(got)):
            assert decision.open_reason(decision.judge(task, got[:n], FLOORS, cfg)), (entry, got)
        assert len(got) == 4 or not decision.open_reason(decision.judge(task, got, FLOORS, cfg)), (entry, got)
    # A later compile of the store lists the runs as the runner's own compile did, added seeds included.
    compiled_by_run = (tmp_path / "results" / "adaptive" / "runs.csv").read_text()
    assert main(["compile", "--suite", str(suite_file), "--tracking-uri", one, "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "runs.csv").read_text() == compiled_by_run
    again = bench_run(suite_file, one)  # resumed: every run is in the store, none is trained again
    assert again.returncode == 0, describe(again)
    assert summary_count(again.stdout, "skipped") == sum(map(len, seeds.values()))
    assert seeds_by_entry(one) == seeds

    shared = sqlite_uri(tmp_path / "shared.db")
    runners = [subprocess.Popen(bench_args(suite_file, shared, "--workers", "1"), cwd=REPO, env=child_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for runner in runners:
        out, err = runner.communicate(timeout=600)
        assert runner.returncode == 0, err[-3000:]
    assert seeds_by_entry(shared) == seeds  # the same seeds, each trained once
    assert len([r for r in children(shared) if r.info.status == "FINISHED"]) == sum(map(len, seeds.values()))


# ----------------------------------------------------------------------------------------------- tuned rates

TUNED = {
    "description": "test: a tuned rate per cell",
    "axes": {"cell": ["lstm", "gru"], "truncation": [5, 10], "seed": [0, 1]},
    "fixed": {**TINY_FIXED, "max_steps": 60, "epochs": -1, "val_every": 20, "optimizer": "adam", "lr": 0.02},
    "tune": {"lr": [0.005, 0.02, 0.08], "seeds": [100], "at": {"truncation": 5}},
}


def test_tuning_runs_come_first_on_their_own_seeds_and_the_choice_sets_each_cells_rate(tmp_path):
    suite = load_suite(str(write_suite(tmp_path / "tuned.yaml", TUNED)))
    assert suite.tuning.runs == len(suite.configs) == 6  # 2 cells x 3 rates x 1 tuning seed, at T=5
    assert {c["seed"] for c in suite.configs} == {100} and suite.reported() == []
    assert suite.apply_tuning({}.get) == []  # nothing before every tuning run has a result
    ce = {("lstm", 0.005): 0.60, ("lstm", 0.02): 0.55, ("lstm", 0.08): 0.50,
          ("gru", 0.005): 0.52, ("gru", 0.02): 0.52, ("gru", 0.08): math.nan}  # gru at 0.08 diverged
    results = {config_hash(c): ("diverged" if math.isnan(ce[(c["cell"], c["lr"])]) else "finished",
                                {"test/ce": ce[(c["cell"], c["lr"])]}) for c in suite.configs}
    new = suite.apply_tuning(results.get)
    assert len(new) == 8 and suite.reported() == [suite.configs[i] for i in new]
    assert suite.tuning.chosen == {("dependency", "lstm"): 0.08, ("dependency", "gru"): 0.005}  # a tie: the smaller
    assert {(c["cell"], c["lr"]) for c in suite.reported()} == {("lstm", 0.08), ("gru", 0.005)}
    assert {c["seed"] for c in suite.reported()} == {0, 1}
    assert suite.apply_tuning(results.get) == []  # applied once
    view = tables.sensitivity_table(suite.tuning).set_index("cell")
    assert view.loc["lstm", "rank at shared rate"] == 2 and view.loc["lstm", "rank tuned"] == 1


def test_a_task_same_as_another_is_not_tuned_and_trains_at_the_others_rates(tmp_path):
    doc = {**TUNED, "axes": {**TUNED["axes"], "task": ["sine", "sine_extrapolation"], "truncation": [10]},
           "fixed": {"max_steps": 30, "epochs": -1, "val_every": 10, "optimizer": "adam", "lr": 0.02},
           "tune": {**TUNED["tune"], "at": {"truncation": 10}, "same_as": {"sine_extrapolation": "sine"}}}
    suite = load_suite(str(write_suite(tmp_path / "same.yaml", doc)))
    assert {c["task"] for c in suite.configs} == {"sine"} and suite.tuning.runs == 6  # 2 cells x 3 rates
    rmse = {("lstm", 0.005): 0.3, ("lstm", 0.02): 0.2, ("lstm", 0.08): 0.1, ("gru", 0.005): 0.1,
            ("gru", 0.02): 0.2, ("gru", 0.08): 0.3}
    results = {config_hash(c): ("finished", {"test/rmse": rmse[(c["cell"], c["lr"])]}) for c in suite.configs}
    suite.apply_tuning(results.get)
    assert {(c["task"], c["cell"], c["lr"]) for c in suite.reported()} == {
        (task, "lstm", 0.08) for task in ("sine", "sine_extrapolation")} | {
        (task, "gru", 0.005) for task in ("sine", "sine_extrapolation")}
    with pytest.raises(ConfigError, match=": tune: "):  # the task it names must itself be tuned
        load_suite(str(write_suite(tmp_path / "bad.yaml", {**doc, "tune": {**doc["tune"], "same_as": {
            "sine_extrapolation": "sine", "sine": "sine_extrapolation"}}})))


@pytest.mark.parametrize("tune", [{"lr": [0.005, 0.01], "seeds": [100], "at": {}},  # the shared 0.02 not in it
                                  {"lr": [0.02], "seeds": [1], "at": {}},  # a reported seed
                                  {"lr": [0.02], "seeds": [100], "at": {"truncation": 3}},  # matches nothing
                                  {"lr": [0.02], "seeds": [100]}])
def test_bad_tuning_is_one_line(tmp_path, tune):
    with pytest.raises(ConfigError) as e:
        load_suite(str(write_suite(tmp_path / "bad.yaml", {**TUNED, "tune": tune})))
    (line,) = e.value.problems
    assert ": tune: " in line and "allowed: a mapping {lr: [rates > 0], seeds: [whole numbers" in line


@pytest.mark.slow
def test_a_tuned_suite_records_its_choice_and_the_page_states_it(tmp_path, monkeypatch):
    from bench.cli.main import main

    suite_file = write_suite(tmp_path / "tuned.yaml", TUNED)
    uri = sqlite_uri(tmp_path / "tuned.db")
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(tmp_path / "results"))
    assert main(["run", "--suite", str(suite_file), "--workers", "2", "--tracking-uri", uri, "--no-progress"]) == 0
    runs = children(uri)
    assert len(runs) == 6 + 8
    (parent,) = parents(uri)
    chosen = {k: float(v) for k, v in parent.data.params.items() if k.startswith("tuned_lr.")}
    assert set(chosen) == {"tuned_lr.dependency.lstm", "tuned_lr.dependency.gru"}
    reported = [r for r in runs if int(r.data.params["seed"]) < 100]
    assert all(float(r.data.params["lr"]) == chosen[f"tuned_lr.dependency.{r.data.params['cell']}"]
               for r in reported)
    page = (tmp_path / "results" / "tuned" / "README.md").read_text()
    assert "## Tuned learning rates" in page and "rank tuned" in page
    summary = pd.read_csv(tmp_path / "results" / "tuned" / "summary.csv")
    assert len(summary) == 4 and set(summary["n"]) == {2}  # the tuning runs are not reported
    assert {"decided", "at_cap", "open"} <= set(summary.columns)


def test_a_failed_tuning_run_counts_as_the_worst_rate_and_holds_nothing_back(tmp_path):
    from bench.reporting.results import stored_results

    suite = load_suite(str(write_suite(tmp_path / "tuned.yaml", TUNED)))
    rows = [{"run_id": f"r{i}", "status": "FAILED" if (c["cell"], c["lr"]) == ("gru", 0.005) else "FINISHED",
             "start_time": i, "tags.bench.config_hash": config_hash(c), "tags.bench.outcome": None,
             "metrics.test/ce": 0.5 + c["lr"]} for i, c in enumerate(suite.configs)]
    found = stored_results(pd.DataFrame(rows))
    assert found[config_hash(suite.configs[0])][0] in ("finished", "failed") and len(found) == 6
    assert len(suite.apply_tuning(found.get)) == 8
    assert suite.tuning.chosen == {("dependency", "lstm"): 0.005, ("dependency", "gru"): 0.02}
