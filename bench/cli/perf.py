"""``make perf``: the suite's own overhead, each figure a ratio against a reference measured in the same process.

Timed pairs are interleaved (A B B A …) so that drift of a noisy machine hits both sides alike; the table
reports medians with the interval of the median, and a target counts as met or missed only when that whole
interval says so (:attr:`Figure.verdict`). Writes ``results/perf.md`` and logs it to MLflow.
"""

from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import yaml

from bench.running import locations, provenance
from bench.cli.args import ArgumentParser, output_file, report
from bench.config.settings import ConfigError, resolve
from bench.config.suite import load_suite
from bench.core.stats import LEVEL, median_interval
from bench.reporting.regress import target_verdict
from bench.running.executors.book import estimated_cost
from bench.running.store import Store
from bench.tasks.sine import SOURCE_RMSE as SEED_SINE_RMSE
from bench.running.train import RunLogger, build, fit_and_test, make_trainer
from datamodules.dependency import generate_dependency_series
from lightning_modules.recurrent_task import OPTIMIZERS

VERDICTS = {"reached": "pass", "not reached": "miss", "undecided": "within noise"}  # regress's words -> perf's
SEED_SINE_STEPS = 10_000  # the TensorFlow sine example trains 10,000 steps to RMSE 0.0019


@dataclass
class Figure:
    name: str
    ours: list[float]
    reference: list[float]
    unit: str
    target: str
    note: str = ""

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.reference)] if self.reference else []

    def judged(self) -> list[float]:
        """What the target is about, one value per repeat: speed-ups (reference / ours) for ``… faster``, ratios
        for ``…×``, else our own values."""
        if self.target.endswith("faster"):
            return [b / a for a, b in zip(self.ours, self.reference)]
        if self.target.endswith("×"):
            return self.ratios
        return self.ours

    @property
    def interval(self) -> tuple[float, float, float, float]:
        """(median, low, high, coverage) of :meth:`judged` (:func:`bench.core.stats.median_interval`)."""
        return median_interval(self.judged())

    @property
    def bound(self) -> float:
        """The target's number (``≤ 1.03×``: 1.03)."""
        return float(self.target.split()[1].rstrip("×"))

    @property
    def verdict(self) -> str:
        """On the target: a ratio (``≤ 1.03×``, ``≥ 0.85×``), a speed-up (``≥ 30× faster``), seconds
        (``≤ 0.10 s``), a share of a run (``≤ 0.10``) or optimizer steps. ``pass`` when the whole interval of the
        median meets the target, ``miss`` when none of it does, ``within noise`` when it straddles the bound: on
        a machine whose timings swing by tens of percent from one repeat to the next, a median alone a hair
        either side of a bound decides nothing (:func:`bench.reporting.regress.target_verdict`)."""
        median, low, high, _ = self.interval
        return VERDICTS[target_verdict(low, high, median, self.bound, lower_is_better=self.target.startswith("≤"))]

    def interval_text(self, form: str, unit: str = "") -> str:
        """The judged median (``unit`` after it) and its interval, formatted with ``form``; how sure the interval
        is when that is less than the usual 95 % (too few repeats); the bare value when there is one repeat."""
        median, low, high, coverage = self.interval
        if form.endswith("f"):  # as many decimals as it takes to tell each figure from the bound (1.0304, not 1.030)
            bound, decimals = self.bound, int(form[1:-1])
            while decimals < 6 and any(v != bound and f"{v:.{decimals}f}" == f"{bound:.{decimals}f}"
                                       for v in (median, low, high)):
                decimals += 1
            form = f".{decimals}f"
        if len(self.ours) == 1:
            return f"{median:{form}}{unit}"
        sure = "" if coverage >= LEVEL else f", {coverage:.0%} sure"
        return f"{median:{form}}{unit} ({low:{form}}–{high:{form}}{sure})"


def interleave(a, b, repeats: int) -> tuple[list[float], list[float]]:
    """Time ``a()`` and ``b()`` as ``repeats`` pairs, each returning its own measured seconds; every other pair
    runs ``b`` first (A B B A A B …), so that whatever favours the first or the second of a pair (a machine
    speeding up or slowing down, caches the other left warm) hits both sides alike.

    >>> order = []
    >>> interleave(lambda: order.append("a") or 1.0, lambda: order.append("b") or 2.0, 3)
    ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])
    >>> "".join(order)
    'abbaab'
    """
    times_a, times_b = [], []
    pair = [(a, times_a), (b, times_b)]
    for n in range(repeats):
        for timed_side, times in pair[::-1] if n % 2 else pair:
            times.append(timed_side())
    return times_a, times_b


# --- training-step overhead -------------------------------------------------------------------------------

def lightning_loop_seconds(cfg: dict, store: Path, device: str) -> float:
    """Our path, logging on: the training loop of Trainer.fit with the MLflow logger (no validation)."""
    torch.manual_seed(cfg["seed"])
    data, model = build(cfg)
    target = Store(f"sqlite:///{store}")
    run_id = target.create_run(target.experiment_id("perf"), None, {})
    trainer = make_trainer(cfg, RunLogger(target, run_id), device, False)
    trainer.limit_val_batches = 0
    trainer.fit(model, datamodule=data)
    return model.train_loop_s


def plain_loop(cfg: dict, device: str):
    """The same model, data, optimizer, clipping and schedule in a hand-written PyTorch loop, over the module's own
    per-step maths (``step_inputs``, ``step_loss``: the TBPTT windows and the carried state). Returns (seconds,
    the trained module); tests/test_perf.py checks that it trains exactly what the Lightning path trains."""
    torch.manual_seed(cfg["seed"])
    data, model = build(cfg)
    data.setup("fit")
    model.to(device)
    optimizer = OPTIMIZERS[cfg["optimizer"]](model.parameters(), lr=cfg["lr"])
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["max_steps"])
                if cfg["lr_schedule"] == "cosine" else None)

    def steps():
        """Every optimizer step's inputs in order; the carried state resets where an epoch starts."""
        for _ in range(cfg["epochs"] if cfg["epochs"] > 0 else 10**9):
            model.on_train_epoch_start()
            for batch in data.train_dataloader():
                yield from model.step_inputs(tuple(t.to(device) for t in batch))

    budget = cfg["max_steps"] if cfg["max_steps"] > 0 else None
    start = time.perf_counter()
    for done, inputs in enumerate(steps(), start=1):
        loss = model.step_loss(inputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if done == budget:
            break
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, model


def plain_loop_seconds(cfg: dict, device: str) -> float:
    return plain_loop(cfg, device)[0]


def step_overhead(name: str, cfg: dict, device: str, repeats: int, tmp: Path) -> Figure:
    plain_loop_seconds(cfg, device)  # warm-up: first-call allocations and kernel selection
    ours, plain = interleave(lambda: lightning_loop_seconds(cfg, tmp / f"{time.time_ns()}.db", device),
                             lambda: plain_loop_seconds(cfg, device), repeats)
    return Figure(name, ours, plain, "s", "≤ 1.03×")


# --- logging cost -------------------------------------------------------------------------------------------

def logging_cost(cfg: dict, repeats: int, tmp: Path) -> Figure:
    """A whole run (fit and test) with the MLflow logger against the same run with logging off."""
    store = Store(f"sqlite:///{tmp / 'logging.db'}")
    experiment_id = store.experiment_id("perf")

    def logged() -> float:
        logger = RunLogger(store, store.create_run(experiment_id, None, {}))
        start = time.perf_counter()
        fit_and_test(cfg, logger)
        logger.flush()
        return time.perf_counter() - start

    def silent() -> float:
        start = time.perf_counter()
        fit_and_test(cfg, None)
        return time.perf_counter() - start

    ours, reference = interleave(logged, silent, repeats)
    return Figure("MLflow logging over a whole default dependency run (fit + test)", ours, reference, "s", "≤ 1.05×")


# --- generation ---------------------------------------------------------------------------------------------

def seed_generator(size: int) -> tuple[np.ndarray, np.ndarray]:
    """R2RT's Python loop, kept only as the reference for the vectorized generator."""
    x = np.array(np.random.choice(2, size=(size,)))
    y = []
    for i in range(size):
        threshold = 0.5
        if x[i - 3] == 1:
            threshold += 0.5
        if x[i - 8] == 1:
            threshold -= 0.25
        y.append(0 if np.random.rand() > threshold else 1)
    return x, np.array(y)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def generation(steps: int, repeats: int) -> Figure:
    ours, reference = interleave(lambda: timed(generate_dependency_series, steps, 0),
                                 lambda: timed(seed_generator, steps), repeats)
    return Figure(f"dependency series generation, {steps:,} steps", ours, reference, "s", "≥ 30× faster")


# --- the suite as a whole -------------------------------------------------------------------------------------

TINY_BUDGETS = {"dependency": {"max_samples": 4000, "series_length": 20_000, "eval_length": 2000},
                "sine": {"max_samples": 960}}


def default_sample() -> list[dict]:
    """Twelve configurations of the default suite (seed 0, its budgets): every cell on both tasks, both directions,
    each task's shortest and longest truncation, depths 1 and 2, in balanced turns, so that the sample mixes cheap
    and expensive runs (the shortest window against T=10, bidirectional evaluation window by window) as the suite
    does."""
    # Its whole budget (the cap, where the suite stops at a plateau): the plain loop it is held against has no
    # plateau stopping, and the two must train the same steps.
    configs = [c.replace(stop="budget", patience=0, plateau_tolerance=-1.0) for c in load_suite("default").matrix()]
    cells = list(dict.fromkeys(c["cell"] for c in configs))
    truncations = {task: sorted({c["truncation"] for c in configs if c["task"] == task})
                   for task in ("dependency", "sine")}
    by_key = {(c["task"], c["cell"], c["layers"], c["bidirectional"], c["truncation"]): c
              for c in configs if c["seed"] == 0}
    sample = []
    for i, cell in enumerate(cells):
        odd = i % 2 == 1
        for j, (task, bidirectional, longest) in enumerate(
                [("dependency", odd, False), ("dependency", not odd, True), ("sine", not odd, odd)]):
            truncation = truncations[task][-1 if longest else 0]
            sample.append(by_key[(task, cell, 1 + (i + j) % 2, bidirectional, truncation)])
    return sample


@dataclass
class SuiteCommand:
    """One ``rnn-bench run`` of the sample: its wall time (start-up included), when it began, and its runs."""
    wall_s: float
    began: float  # epoch seconds
    runs: list

    @property
    def first_start(self) -> float:
        return min(r.info.start_time for r in self.runs) / 1000

    @property
    def last_end(self) -> float:
        return max(r.info.end_time for r in self.runs) / 1000


def run_command(configs: list[dict], workers: int, tmp: Path) -> SuiteCommand:
    """Run ``configs`` as a suite with ``rnn-bench run --workers N`` in a fresh process, as a user would."""
    tmp = Path(tempfile.mkdtemp(prefix=f"sample_{workers}_", dir=tmp))  # a fresh store: nothing done already
    suite_file = tmp / "sample.yaml"
    suite_file.write_text(yaml.safe_dump({"points": [{k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in cfg.items()} for cfg in configs]}))
    uri = f"sqlite:///{tmp / 'sample.db'}"
    command = [sys.executable, "-m", "bench", "run", "--suite", str(suite_file), "--workers", str(workers),
               "--device", "cpu", "--tracking-uri", uri, "--no-compile", "--no-progress"]
    began, start = time.time(), time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    store = Store(uri)
    runs = [r for r in store.search(store.experiment_id(locations.EXPERIMENT)) if r.data.tags.get("bench.role") != "suite"]
    if len(runs) != len(configs) or any(r.data.tags.get("bench.outcome") != "finished" for r in runs):
        raise RuntimeError(f"perf sample with {workers} worker(s): not every run finished")
    return SuiteCommand(wall, began, runs)


def _one_thread() -> None:
    torch.set_num_threads(1)


def plain_loops_two_at_a_time(configs: list[dict], pool) -> list[float]:
    """Each configuration's plain-loop training time, measured in ``pool``'s two processes (one torch thread
    each) running side by side, longest first: the loop under the same load as the suite's two workers."""
    order = sorted(range(len(configs)), key=lambda i: -estimated_cost(configs[i]))
    futures = {i: pool.submit(plain_loop_seconds, configs[i], "cpu") for i in order}
    return [futures[i].result() for i in range(len(configs))]


def per_run_fixed_costs(command: SuiteCommand) -> list[float]:
    """Each run's time in the runner that is neither its training loop nor its test pass: from its start to the
    next run's start (to its end for the last), so the hand-over between runs counts too. Meant for a one-worker
    command, whose runs follow each other; the mean is (last end − first start) / runs − mean(loop + test)."""
    runs = sorted(command.runs, key=lambda r: r.info.start_time)
    starts = [r.info.start_time / 1000 for r in runs]
    cycles = [b - a for a, b in zip(starts, starts[1:])] + [runs[-1].info.end_time / 1000 - starts[-1]]
    return [cycle - r.data.metrics["train_loop_s"] - r.data.metrics["test_time_s"] for cycle, r in zip(cycles, runs)]


def suite_figures(configs: list[dict], tmp: Path, rounds: int, reference_epoch: float) -> list[Figure]:
    """The sample through the real runner and through the plain loop, in this one run, in ``rounds`` rounds; each
    times the plain loops two at a time (as the suite's two workers run), right before the 2-worker command, so
    that both see the same machine (this one's speed drifts by tens of percent within minutes), and the 1-worker
    command after that pair in one round and before it in the next (A B B A):

    - suite efficiency: the plain loop's training time over the sample / (2-worker time × 2 workers): what
      fraction of the machine the suite spends on training steps as a hand-written loop would take them; median
      over the rounds. The suite's time runs from the first run's start to the last one's end; the command's
      start-up is the next figure (and its note gives the efficiency with it);
    - start-up: each round's 1-worker command's wall time over its 2-worker one's, start-up and teardown
      included;
    - per-run fixed cost (1 worker): each run's time from its start to the next one's, less its training loop
      and its test pass (validations and test are evaluation, the last figure); the median over every round's
      runs, since a 12-run sample counts the once-per-data-set floors and baselines and the worker's first run
      in a few of them, which the default suite's hundreds of runs spread thin (the mean is in the note), also in
      ``reference_epoch``s (the header's plain-loop epoch), for comparing machines;
    - evaluation: the share of the shortest-window unidirectional dependency run's wall time spent validating and
      testing.
    """
    plain, twos, ones = [], [], []
    with ProcessPoolExecutor(2, multiprocessing.get_context("spawn"), initializer=_one_thread) as pool:
        for n in range(rounds):
            if n % 2:
                ones.append(run_command(configs, 1, tmp))
            plain.append(sum(plain_loops_two_at_a_time(configs, pool)))
            twos.append(run_command(configs, 2, tmp))
            if not n % 2:
                ones.append(run_command(configs, 1, tmp))
    spans = [(two.last_end - two.first_start) * 2 for two in twos]
    whole = statistics.median(p / (two.wall_s * 2) for p, two in zip(plain, twos))

    def steps_share(command: SuiteCommand) -> float:
        """The workers' time in training steps (Lightning's loop less its validations), read off the suite's own
        runs: what the efficiency would be with a plain loop as fast as Lightning's, free of the machine's drift
        between a plain loop and the suite."""
        steps = sum(m["train_loop_s"] - (m["eval_time_s"] - m["test_time_s"]) for m in
                    (r.data.metrics for r in command.runs))
        return steps / ((command.last_end - command.first_start) * 2)

    efficiency = Figure(f"suite efficiency: plain-loop training time of {len(configs)} default-suite runs, two at a "
                        "time / (time from the first run's start to the last one's end × 2 workers)", plain, spans,
                        "s", "≥ 0.85×",
                        note=f"{rounds} round(s), each plain loops then suite; the workers' time in training "
                             f"steps, from the suite's own runs: {statistics.median(map(steps_share, twos)):.2f}; "
                             f"whole command, start-up included: {whole:.2f} (the start-up, the next figure, weighs "
                             f"{len(configs)} runs here, hundreds in the default suite)")
    costs = [cost for one in ones for cost in per_run_fixed_costs(one)]
    tests = statistics.median(r.data.metrics["test_time_s"] for one in ones for r in one.runs)
    fixed = Figure("per-run fixed cost in the runner (queue → first step, last step → results in store), less the "
                   "test pass; median over the sample's runs", costs, [], "s", "≤ 0.10 s",
                   note=f"{statistics.median(costs) / reference_epoch:.3f} reference epochs; "
                        f"mean {statistics.mean(costs):.3f} s, with what a worker does once per data set (floors "
                        f"and baselines) or once (its first run); the test pass: median {tests:.3f} s; 1 worker, "
                        f"{len(costs)} runs")
    startup = Figure(f"suite of {len(configs)} runs, 2 CPU workers vs 1, whole command (start-up included)",
                     [one.wall_s for one in ones], [two.wall_s for two in twos], "s", "≥ 1.6×",
                     note=f"first run started "
                          f"{statistics.median(one.first_start - one.began for one in ones):.1f} s (1 worker), "
                          f"{statistics.median(two.first_start - two.began for two in twos):.1f} s (2 workers) into "
                          "the command")
    dependency = [r for one in ones for r in one.runs if r.data.params.get("task") == "dependency"]
    shortest = min((int(r.data.params["truncation"]) for r in dependency), default=1)
    shortest_runs = [r for r in dependency if int(r.data.params["truncation"]) == shortest]  # most steps per sample

    def share(bidirectional: bool) -> list[float]:
        return [r.data.metrics["eval_time_s"] / r.data.metrics["wall_time_s"] for r in shortest_runs
                if r.data.params.get("bidirectional") == str(bidirectional)]

    bidirectional = share(True)
    evaluation = Figure(f"evaluation (validations and test) in a T={shortest} unidirectional dependency run",
                        share(False), [], "of the run", "≤ 0.10",
                        note=f"bidirectional, evaluated window by window: {statistics.median(bidirectional):.1%}"
                        if bidirectional else "")
    return [efficiency, startup, fixed, evaluation]


# --- sine quality per step ------------------------------------------------------------------------------------

def sine_steps_to_target(cfg: dict) -> Figure:
    """Steps until validation RMSE first reaches the TensorFlow sine example's figure, and the test RMSE at the end."""
    reached: list[int] = []

    class FirstHit(pl.Callback):
        def on_validation_epoch_end(self, trainer, module):
            rmse = trainer.callback_metrics.get("val/rmse")
            if not reached and rmse is not None and float(rmse) <= SEED_SINE_RMSE:
                reached.append(trainer.global_step)

    pl.seed_everything(cfg["seed"], verbose=False)
    data, model = build(cfg)
    trainer = make_trainer(cfg, None, "cpu", False)
    trainer.callbacks.append(FirstHit())
    trainer.fit(model, datamodule=data)
    test_rmse = trainer.test(model, datamodule=data, verbose=False)[0]["test/rmse"]
    steps = reached[0] if reached else float("inf")
    return Figure("sine: steps until RMSE ≤ 0.0019 (LSTM 2×30)", [steps], [SEED_SINE_STEPS], "steps",
                  "≤ 1000 steps", note=f"{cfg['optimizer']} lr {cfg['lr']} {cfg['lr_schedule']}, "
                                        f"test RMSE {test_rmse:.5f} after {trainer.global_step} steps")


# --- report ---------------------------------------------------------------------------------------------------

def markdown(figures: list[Figure], header: str) -> str:
    lines = [header, "", "| figure | ours | reference | ratio: median (interval) | target | result | note |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in figures:
        form = ".1%" if f.unit == "of the run" else ".4g"
        ours = f"{statistics.median(f.ours):{form}} {f.unit}"
        ref = f"{statistics.median(f.reference):.4g} {f.unit}" if f.reference else "—"
        ratio = "—"
        if f.target.endswith("faster"):
            ratio = f.interval_text(".1f", "× faster")
        elif f.target.endswith("×"):
            ratio = f.interval_text(".3f")
        else:  # judged on our own values
            ours = f.interval_text(form, f" {f.unit}")
        lines.append(f"| {f.name} | {ours} | {ref} | {ratio} | {f.target} | {f.verdict} | {f.note} |")
    return "\n".join(lines) + "\n"


def run(scale: str = "full", out: Path | None = None, tracking_uri: str | None = None) -> Path:
    tracking_uri = tracking_uri or locations.default_tracking_uri()
    tiny = scale == "tiny"
    repeats = 1 if tiny else 9  # pairs: a ratio on this machine swings by ±20 % from one pair to the next
    torch.set_num_threads(1)
    dep = resolve({"task": "dependency", "hidden": 16, "truncation": 10, "batch_size": 200,
                   "series_length": 40_000 if tiny else 1_000_000, "eval_length": 20_000})
    sine = resolve({"task": "sine", "max_steps": 60 if tiny else 1000, "optimizer": "adam", "lr": 0.03,
                    "lr_schedule": "cosine", "val_every": 50})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sample = default_sample()
    if tiny:  # the same kinds of run, with budgets of seconds
        sample = [resolve({**{k: v for k, v in cfg.items() if k != "max_steps"}, **TINY_BUDGETS[cfg["task"]]})
                  for cfg in sample[:3]]
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        epoch = step_overhead("training-step overhead, dependency LSTM h16 T10 batch 200, one epoch", dep, "cpu",
                              repeats, tmp)
        figures = [
            epoch,
            step_overhead("training-step overhead, sine LSTM 2×30", sine, "cpu", repeats, tmp),
            logging_cost(dep, 1 if tiny else 5, tmp),
            generation(10_000 if tiny else 1_000_000, 1 if tiny else 3),
            *suite_figures(sample, tmp, 2 if tiny else 3, statistics.median(epoch.reference)),  # tiny: both orders
            sine_steps_to_target(sine),
        ]
        if device == "cuda":
            figures += [step_overhead("GPU: training-step overhead, dependency LSTM (CUDA)", dep, "cuda", repeats,
                                      tmp)]
    header = (f"# rnn-bench performance ({scale})\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')} on "
              f"{provenance.device_name('cpu')}, {provenance.git_commit()}, torch threads 1. Ratios: ours / reference, "
              f"interleaved pairs, the median over repeats and, in brackets, the 95 % interval of the median (order "
              f"statistics; with too few repeats their range, and how sure it is). A result is pass or miss only "
              f"when the whole interval lies on one side of the target, else within noise. Regenerate with "
              f"`make perf`.\n\n"
              f"**Plain-loop reference epoch: {statistics.median(epoch.reference):.3f} s** (a hand-written PyTorch "
              f"loop over one epoch of the dependency LSTM above, {dep['series_length']:,} steps): absolute times "
              "from another machine compare through it.")
    out = out or locations.results_dir() / "perf.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(figures, header))
    log_report(out, figures, tracking_uri)
    return out


def log_report(path: Path, figures: list[Figure], uri: str) -> None:
    store = Store(uri)
    run_id = store.create_run(store.experiment_id("rnn-bench-perf"), "perf", provenance.environment_tags("cpu"))
    store.log_metrics(run_id, {f"perf/ratio_{i}": statistics.median(f.ratios) for i, f in enumerate(figures)
                               if f.ratios})
    store.log_artifacts(run_id, [path])
    store.set_terminated(run_id, "FINISHED")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m bench.cli.perf", description=__doc__)
    parser.add_argument("--scale", choices=("full", "tiny"), default="full", help="tiny: a seconds-long check")
    parser.add_argument("--out", type=output_file, default=None,
                        help="where to write the table (default results/perf.md)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store for the report (default: $MLFLOW_TRACKING_URI, else sqlite under results/)")
    try:  # every argument checked before minutes of measuring, not when the report is written
        args = parser.parse_args(argv)
        uri = args.tracking_uri or locations.default_tracking_uri()
        locations.check_tracking_uri(uri)
    except ConfigError as e:
        return report(e)
    path = run(args.scale, args.out, uri)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
