"""Run a suite on every device of this machine: resumable, parallel, and a failed run never costs the others.

The parent process owns the MLflow bookkeeping that must not race (tables, experiment, the suite's parent
run) and hands runs, one at a time, to long-lived worker processes that import torch once. Each worker is
pinned to one GPU (``CUDA_VISIBLE_DEVICES``), ``per_device`` of them per GPU, or on a machine without GPUs
shares the cores with the others (torch threads divided so they do not oversubscribe the cores).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import time
from dataclasses import dataclass, field

from bench import tracking
from bench.config import config_hash, run_name
from bench.suite import Suite


@dataclass
class Slot:
    """Where one worker runs: its device string and the environment it starts with."""

    device: str
    threads: int
    env: dict[str, str] = field(default_factory=dict)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def plan_slots(device: str = "auto", workers: int = 0, per_device: int = 1) -> list[Slot]:
    """One slot per worker: ``per_device`` per visible GPU, else ``workers`` (default: the core count) CPU ones."""
    import torch

    cores = usable_cores()
    gpus = torch.cuda.device_count() if device in ("auto", "cuda") else 0
    if gpus:
        slots = [Slot("cuda", 1, {"CUDA_VISIBLE_DEVICES": str(i)}) for i in range(gpus) for _ in range(per_device)]
    else:
        n = workers or cores
        slots = [Slot("cpu", 1, {"CUDA_VISIBLE_DEVICES": ""}) for _ in range(n)]
    for slot in slots:
        slot.threads = max(1, cores // len(slots))
    return slots


def _worker_main(slot: Slot, tasks: mp.Queue, results: mp.Queue, tracking_uri: str, experiment: str,
                 parent_run_id: str | None, parent_pid: int) -> None:
    """A worker: import torch once, then train whatever the queue hands over until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import torch

    torch.set_num_threads(slot.threads)
    from bench.train import train_run

    while True:
        try:
            item = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent_pid:  # the runner is gone: nobody will read our results
                return
            continue
        if item is None:
            return
        index, cfg = item
        outcome = train_run(cfg, tracking_uri, experiment, parent_run_id, slot.device,
                            on_start=lambda run_id: results.put(("start", index, run_id)))
        results.put(("done", index, outcome))


class Worker:
    def __init__(self, ctx, slot: Slot, results: mp.Queue, args: tuple):
        self.slot, self.tasks = slot, ctx.Queue()
        saved = {k: os.environ.get(k) for k in slot.env}
        os.environ.update(slot.env)  # a spawned child inherits the environment at start: pin its GPU
        try:
            self.process = ctx.Process(target=_worker_main, args=(slot, self.tasks, results, *args), daemon=True)
            self.process.start()
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        self.current: int | None = None  # index of the run it is on
        self.run_id: str | None = None
        self.started = 0.0

    def give(self, index: int, cfg: dict) -> None:
        self.current, self.run_id, self.started = index, None, time.monotonic()
        self.tasks.put((index, cfg))

    def stop(self) -> None:
        if self.process.is_alive():
            self.tasks.put(None)


@dataclass
class SuiteResult:
    parent_run_id: str
    outcomes: dict[int, tuple[str, str, dict]]  # index -> (status, reason, metrics)
    skipped: list[int]
    wall_time_s: float

    def count(self, status: str) -> int:
        return sum(1 for s, _, _ in self.outcomes.values() if s == status)


def finished_hashes(tracking_uri: str, experiment_id: str) -> dict[str, str]:
    """Config hash -> run id of every FINISHED run in the experiment."""
    from mlflow import MlflowClient

    client, found, token = MlflowClient(tracking_uri), {}, None
    while True:
        page = client.search_runs([experiment_id], "attributes.status = 'FINISHED'", max_results=1000,
                                  page_token=token)
        for run in page:
            h = run.data.tags.get("bench.config_hash")
            if h:
                found.setdefault(h, run.info.run_id)
        token = page.token
        if not token:
            return found


def mark_failed(tracking_uri: str, experiment_id: str, run_id: str | None, cfg: dict, parent_run_id: str,
                reason: str) -> None:
    """Record a run whose worker died: its own run if it had one, else a new run that says so."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    if run_id is None:
        tags = {"bench.config_hash": config_hash(cfg), "mlflow.parentRunId": parent_run_id}
        run_id = client.create_run(experiment_id, run_name=run_name(cfg), tags=tags).info.run_id
    client.set_tag(run_id, "bench.outcome", "failed")
    client.set_tag(run_id, "bench.reason", reason)
    client.set_terminated(run_id, "FAILED")


def run_suite(suite: Suite, tracking_uri: str, experiment: str = tracking.EXPERIMENT, device: str = "auto",
              workers: int = 0, per_device: int = 1, force: bool = False, progress: bool = True) -> SuiteResult:
    """Run every configuration of ``suite`` not already FINISHED in the store (all of them with ``force``)."""
    from mlflow import MlflowClient
    from tqdm import tqdm

    start = time.monotonic()
    experiment_id = tracking.ensure_experiment(tracking_uri, experiment)
    client = MlflowClient(tracking_uri)
    done = {} if force else finished_hashes(tracking_uri, experiment_id)
    todo = [i for i, cfg in enumerate(suite.configs) if config_hash(cfg) not in done]
    skipped = [i for i in range(len(suite.configs)) if i not in set(todo)]
    slots = plan_slots(device, workers, per_device)[: max(1, len(todo))]
    parent = client.create_run(experiment_id, run_name=f"suite/{suite.name}", tags={
        **tracking.environment_tags(slots[0].device),
        "bench.role": "suite", "bench.suite": suite.name})
    parent_id = parent.info.run_id
    client.log_param(parent_id, "suite_file", str(suite.path))
    client.log_param(parent_id, "runs", len(suite.configs))
    client.log_param(parent_id, "workers", len(slots))

    outcomes: dict[int, tuple[str, str, dict]] = {}
    pending = list(todo)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    args = (tracking_uri, experiment, parent_id, os.getpid())
    pool = [Worker(ctx, slot, results, args) for slot in slots] if todo else []
    bar = tqdm(total=len(suite.configs), initial=len(skipped), disable=not progress, unit="run",
               desc=f"suite {suite.name}", dynamic_ncols=True)
    interrupted = False
    try:
        def hand_next(worker: Worker) -> None:
            if pending:
                index = pending.pop(0)
                worker.give(index, suite.configs[index])

        for worker in pool:
            hand_next(worker)
        while len(outcomes) < len(todo):
            try:
                kind, index, payload = results.get(timeout=0.5)
            except queue.Empty:
                kind = None
            if kind == "start":
                for worker in pool:
                    if worker.current == index:
                        worker.run_id = payload
            elif kind == "done":
                outcomes[index] = (payload.status, payload.reason, payload.metrics)
                bar.update(1)
                for worker in pool:
                    if worker.current == index:
                        worker.current = None
                        hand_next(worker)
            for n, worker in enumerate(pool):
                if worker.process.exitcode is not None and worker.current is not None:
                    index = worker.current
                    reason = f"worker died (exit code {worker.process.exitcode}) during the run"
                    mark_failed(tracking_uri, experiment_id, worker.run_id, suite.configs[index], parent_id, reason)
                    outcomes[index] = ("failed", reason, {})
                    bar.update(1)
                    pool[n] = Worker(ctx, worker.slot, results, args)
                    hand_next(pool[n])
            failed = sum(1 for s, _, _ in outcomes.values() if s == "failed")
            diverged = sum(1 for s, _, _ in outcomes.values() if s == "diverged")
            bar.set_postfix(failed=failed, diverged=diverged, skipped=len(skipped), refresh=False)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        for worker in pool:
            worker.stop()
        for worker in pool:
            worker.process.join(timeout=5 if not interrupted else 1)
            if worker.process.is_alive():
                worker.process.kill()
            if interrupted and worker.current is not None and worker.current not in outcomes:
                mark_failed(tracking_uri, experiment_id, worker.run_id, suite.configs[worker.current], parent_id,
                            "interrupted by the user")
    result = SuiteResult(parent_id, outcomes, skipped, time.monotonic() - start)
    from mlflow.entities import Metric

    summary = {"runs_finished": result.count("finished"), "runs_failed": result.count("failed"),
               "runs_diverged": result.count("diverged"), "runs_skipped": len(skipped),
               "wall_time_s": result.wall_time_s}
    now = int(time.time() * 1000)
    client.log_batch(parent_id, metrics=[Metric(k, float(v), now, 0) for k, v in summary.items()])
    status = "KILLED" if interrupted else ("FAILED" if result.count("failed") else "FINISHED")
    client.set_terminated(parent_id, status)
    if interrupted:
        raise KeyboardInterrupt
    return result
