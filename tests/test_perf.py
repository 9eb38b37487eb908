"""The perf benchmark: its plain-PyTorch reference trains exactly what the Lightning path trains, and the tiny
run writes a table whose verdicts follow from its own ratios (timings themselves are not asserted)."""

import re

import pytest
import torch

from bench.cli import perf
from bench.running.train import build, make_trainer


@pytest.mark.parametrize("task, overrides", [
    ("dependency", dict(truncation=5, grad_clip=0.5)),
    ("dependency", dict(truncation=4, tbptt_stride=2, bidirectional=True, layers=2)),
    ("sine", dict(lr_schedule="cosine", grad_clip=1.0)),
])
def test_the_reference_loop_trains_what_lightning_trains(tiny_cfg, task, overrides):
    """Same seed, same steps: the same weights to float precision, so the ratio compares like with like."""
    cfg = tiny_cfg(task, optimizer="adam", lr=0.01, max_steps=30, epochs=-1, **overrides)
    _, plain = perf.plain_loop(cfg, "cpu")
    torch.manual_seed(cfg["seed"])
    data, model = build(cfg)
    trainer = make_trainer(cfg, None, "cpu", False)
    trainer.limit_val_batches = 0
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 30
    for (name, ours), theirs in zip(model.named_parameters(), plain.parameters()):
        assert torch.allclose(ours, theirs, atol=1e-6), name
    assert not all(torch.equal(p, q) for p, q in zip(model.parameters(), build(cfg)[1].parameters()))  # it trained


@pytest.mark.slow
def test_perf_tiny_writes_table(tmp_path):
    out = perf.run("tiny", tmp_path / "perf.md", f"sqlite:///{tmp_path / 'mlflow.db'}")
    lines = out.read_text().splitlines()
    header = "| figure | ours | reference | ratio: median (interval) | target | result | note |"
    assert header in lines
    rows = [line for line in lines[lines.index(header) + 2:] if line.startswith("|")]
    names = [row.split("|")[1].strip() for row in rows]
    for expected in ("training-step overhead, dependency", "training-step overhead, sine", "MLflow logging",
                     "dependency series generation", "suite efficiency", "suite of 3 runs, 2 CPU workers vs 1",
                     "per-run fixed cost", "evaluation (validations and test)", "sine: steps until"):
        assert any(n.startswith(expected) for n in names), expected
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7
        assert re.match(r"^[\d.e+-]+%? |^inf ", cells[1]), cells
        target, verdict = cells[4], cells[5]
        assert verdict in ("pass", "miss", "within noise"), cells
        ratio = re.match(r"^([\d.]+)(?: \(([\d.]+)–([\d.]+))?", cells[3])
        if ratio and target.endswith("×"):  # the verdict follows from the interval (a lone pair: its ratio)
            low, high = ((float(ratio.group(2)), float(ratio.group(3))) if ratio.group(2)
                         else (float(ratio.group(1)),) * 2)
            meets = [v <= float(target[2:-1]) if target.startswith("≤ ") else v >= float(target[2:-1])
                     for v in (low, high)]
            assert verdict == ("pass" if all(meets) else "miss" if not any(meets) else "within noise"), cells
    assert "Plain-loop reference epoch:" in out.read_text()
    fixed_cost = next(row for name, row in zip(names, rows) if name.startswith("per-run fixed cost"))
    assert "1 worker, 6 runs" in fixed_cost  # two rounds, a 1-worker command of the 3-run sample in each


def test_a_ratio_shows_which_side_of_the_target_it_lies_on():
    """A ratio a hair above its bound is not printed as the bound next to "miss"."""
    above = perf.Figure("step overhead", [1.0302], [1.0], "s", "≤ 1.03×")
    assert (above.interval_text(".3f"), above.verdict) == ("1.0302", "miss")
    at = perf.Figure("step overhead", [1.03], [1.0], "s", "≤ 1.03×")
    assert at.interval_text(".3f") == "1.030"
    spread = perf.Figure("step overhead", [1.00, 1.0302, 0.99], [1.0] * 3, "s", "≤ 1.03×")
    assert spread.interval_text(".3f").startswith("1.0000 (0.9900–1.0302")  # one precision for all three


@pytest.mark.parametrize("ours, verdict", [
    ([1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01, 1.00, 0.99], "pass"),  # the whole interval ≤ 1.03
    ([1.10, 1.12, 1.08, 1.15, 1.11, 1.09, 1.10, 1.13, 1.07], "miss"),  # none of it
    ([1.00, 1.06, 0.97, 1.08, 1.02, 1.05, 0.99, 1.04, 1.01], "within noise"),  # median 1.02, interval to 1.06
])
def test_a_verdict_needs_the_whole_interval_of_the_median_on_one_side_of_the_target(ours, verdict):
    figure = perf.Figure("step overhead", ours, [1.0] * len(ours), "s", "≤ 1.03×")
    assert figure.verdict == verdict
    median, low, high, coverage = figure.interval
    assert low <= median <= high and coverage >= 0.95


def test_per_run_fixed_cost_counts_the_hand_over_and_leaves_out_loop_and_test():
    """Each run's cycle (its start to the next one's; the last one's to its end) less its loop and test pass, in
    start order whatever order the store lists them in; the mean is the span per run less the mean loop + test."""
    from types import SimpleNamespace

    def run(start_s, end_s, loop, test):
        return SimpleNamespace(info=SimpleNamespace(start_time=int(start_s * 1000), end_time=int(end_s * 1000)),
                               data=SimpleNamespace(metrics={"train_loop_s": loop, "test_time_s": test}))

    runs = [run(10.0, 12.5, 2.0, 0.25), run(5.0, 9.8, 4.5, 0.1), run(13.0, 14.0, 0.8, 0.05)]
    command = perf.SuiteCommand(wall_s=20.0, began=4.0, runs=runs)
    costs = perf.per_run_fixed_costs(command)
    assert costs == pytest.approx([5.0 - 4.6, 3.0 - 2.25, 1.0 - 0.85])
    loop_and_test = sum(r.data.metrics["train_loop_s"] + r.data.metrics["test_time_s"] for r in runs) / 3
    assert sum(costs) / 3 == pytest.approx((command.last_end - command.first_start) / 3 - loop_and_test)
