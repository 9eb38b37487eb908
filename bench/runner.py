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
    from bench.train import collect_garbage, train_run

    while True:
        try:
            item = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent_pid:  # the runner is gone: nobody will read our results
                break
            continue
        if item is None:
            break
        index, cfg = item
        outcome = train_run(cfg, tracking_uri, experiment, parent_run_id, slot.device,
                            on_start=lambda run_id: results.put(("start", index, run_id)))
        results.put(("done", index, outcome))
        collect_garbage()
    # Everything is in the store and the queue: skip interpreter teardown, which spends seconds collecting
    # torch and Lightning objects while the runner waits to join us.
    results.close()
    results.join_thread()
    os._exit(0)


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

    def give(self, index: int, cfg: dict) -> None:
        self.current, self.run_id = index, None
        self.tasks.put((index, cfg))

    def stop(self) -> None:
        if self.process.is_alive():
            self.tasks.put(None)


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
                reason: str, create: bool = True) -> None:
    """Mark FAILED, with ``reason``, the run ``run_id`` or, when its id is unknown (a worker may die after
    creating its run but before reporting it; Ray retries leave several), every attempt of ``cfg`` under
    ``parent_run_id`` still RUNNING. With ``create``, a run that says so is recorded if there is none."""
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    client = MlflowClient(tracking_uri)
    run_ids = [run_id] if run_id else [
        run.info.run_id for run in client.search_runs(
            [experiment_id], f"tags.`bench.config_hash` = '{config_hash(cfg)}' and "
            f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'")]
    if not run_ids and create:
        tags = {"bench.config_hash": config_hash(cfg), "mlflow.parentRunId": parent_run_id}
        run_ids = [client.create_run(experiment_id, run_name=run_name(cfg), tags=tags).info.run_id]
    for failed in run_ids:
        client.log_batch(failed, tags=[RunTag("bench.outcome", "failed"), RunTag("bench.reason", reason)])
        client.set_terminated(failed, "FAILED")


@dataclass
class SuiteResult:
    parent_run_id: str
    outcomes: dict[int, tuple[str, str, dict]]  # index -> (status, reason, metrics)
    skipped: list[int]
    wall_time_s: float

    def count(self, status: str) -> int:
        return sum(1 for s, _, _ in self.outcomes.values() if s == status)


class SuiteBook:
    """The bookkeeping every executor shares: what to run, the parent run, progress, outcomes, the summary."""

    def __init__(self, suite: Suite, tracking_uri: str, experiment: str, force: bool, progress: bool):
        from mlflow import MlflowClient
        from tqdm import tqdm

        self.suite, self.tracking_uri, self.experiment = suite, tracking_uri, experiment
        self.start = time.monotonic()
        self.experiment_id = tracking.ensure_experiment(tracking_uri, experiment)
        self.client = MlflowClient(tracking_uri)
        done = {} if force else finished_hashes(tracking_uri, self.experiment_id)
        self.todo = [i for i, cfg in enumerate(suite.configs) if config_hash(cfg) not in done]
        self.skipped = [i for i, cfg in enumerate(suite.configs) if config_hash(cfg) in done]
        self.outcomes: dict[int, tuple[str, str, dict]] = {}
        self.parent_id = ""
        self.bar = tqdm(total=len(suite.configs), initial=len(self.skipped), disable=not progress, unit="run",
                        desc=f"suite {suite.name}", dynamic_ncols=True)

    def open_parent(self, device: str, workers: int, executor: str) -> str:
        parent = self.client.create_run(self.experiment_id, run_name=f"suite/{self.suite.name}", tags={
            **tracking.environment_tags(device), "bench.role": "suite", "bench.suite": self.suite.name,
            "bench.executor": executor})
        self.parent_id = parent.info.run_id
        from mlflow.entities import Param

        self.client.log_batch(self.parent_id, params=[
            Param("suite_file", str(self.suite.path)), Param("runs", str(len(self.suite.configs))),
            Param("workers", str(workers)), Param("executor", executor)])
        return self.parent_id

    def record(self, index: int, status: str, reason: str = "", metrics: dict | None = None) -> None:
        self.outcomes[index] = (status, reason, metrics or {})
        self.bar.update(1)
        counts = {s: sum(1 for o in self.outcomes.values() if o[0] == s) for s in ("failed", "diverged")}
        self.bar.set_postfix(**counts, skipped=len(self.skipped), refresh=False)

    def fail(self, index: int, run_id: str | None, reason: str) -> None:
        mark_failed(self.tracking_uri, self.experiment_id, run_id, self.suite.configs[index], self.parent_id, reason)
        self.record(index, "failed", reason)

    def close(self, interrupted: bool) -> SuiteResult:
        from mlflow.entities import Metric

        self.bar.close()
        result = SuiteResult(self.parent_id, self.outcomes, self.skipped, time.monotonic() - self.start)
        summary = {"runs_finished": result.count("finished"), "runs_failed": result.count("failed"),
                   "runs_diverged": result.count("diverged"), "runs_skipped": len(self.skipped),
                   "wall_time_s": result.wall_time_s}
        now = int(time.time() * 1000)
        self.client.log_batch(self.parent_id, metrics=[Metric(k, float(v), now, 0) for k, v in summary.items()])
        status = "KILLED" if interrupted else ("FAILED" if result.count("failed") else "FINISHED")
        self.client.set_terminated(self.parent_id, status)
        return result


def execute_local(book: SuiteBook, slots: list[Slot]) -> None:
    """Hand the book's runs to long-lived worker processes, one run at a time each; replace dead workers."""
    pending = list(book.todo)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    args = (book.tracking_uri, book.experiment, book.parent_id, os.getpid())
    pool = [Worker(ctx, slot, results, args) for slot in slots]

    def hand_next(worker: Worker) -> None:
        if pending:
            index = pending.pop(0)
            worker.give(index, book.suite.configs[index])

    try:
        for worker in pool:
            hand_next(worker)
        while len(book.outcomes) < len(book.todo):
            try:
                kind, index, payload = results.get(timeout=0.5)
            except queue.Empty:
                kind = None
            if kind == "start":
                for worker in pool:
                    if worker.current == index:
                        worker.run_id = payload
            elif kind == "done":
                book.record(index, payload.status, payload.reason, payload.metrics)
                for worker in pool:
                    if worker.current == index:
                        worker.current = None
                        hand_next(worker)
            for n, worker in enumerate(pool):
                if worker.process.exitcode is not None and worker.current is not None:
                    book.fail(worker.current, worker.run_id,
                              f"worker died (exit code {worker.process.exitcode}) during the run")
                    worker.current = None
                    if pending:  # replace it only while there is work left for the new one
                        pool[n] = Worker(ctx, worker.slot, results, args)
                        hand_next(pool[n])
    finally:
        for worker in pool:
            worker.stop()
        for worker in pool:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
            if worker.current is not None and worker.current not in book.outcomes:
                book.fail(worker.current, worker.run_id, "interrupted by the user")


def run_suite(suite: Suite, tracking_uri: str, experiment: str = tracking.EXPERIMENT, device: str = "auto",
              workers: int = 0, per_device: int = 1, force: bool = False, progress: bool = True,
              executor: str = "local", address: str | None = None) -> SuiteResult:
    """Run every configuration of ``suite`` not already FINISHED in the store (all of them with ``force``).

    ``executor``: ``local`` (worker processes on this machine) or ``ray`` (tasks on a Ray cluster at
    ``address``; see :mod:`bench.ray_executor`).
    """
    cluster = None
    if executor == "ray":  # connect first: a refused cluster must leave the store untouched
        from bench import ray_executor

        cluster = ray_executor.connect(address, tracking_uri, workers)
    book = SuiteBook(suite, tracking_uri, experiment, force, progress)
    interrupted = False
    try:
        if cluster is not None:
            book.open_parent(cluster.device, cluster.slots, "ray")
            if book.todo:
                ray_executor.execute(book, cluster, per_device)
        else:
            slots = plan_slots(device, workers, per_device)[: max(1, len(book.todo))]
            book.open_parent(slots[0].device, len(slots), "local")
            if book.todo:
                execute_local(book, slots)
    except KeyboardInterrupt:
        interrupted = True
    result = book.close(interrupted)
    if interrupted:
        raise KeyboardInterrupt
    return result
