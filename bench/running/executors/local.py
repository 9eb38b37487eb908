"""The local executor: a suite's runs handed, one at a time, to long-lived worker processes on this machine.

Each worker (:mod:`bench.running.executors.worker`) trains run after run. CPU workers are forked from a fork server that
imports torch, Lightning and MLflow once (:func:`prepare` starts it while the runner prepares the store), so a worker
starts in milliseconds instead of importing for seconds beside its siblings; GPU workers are spawned afresh, so that
no CUDA state can reach them through a fork and each starts pinned to its GPU. A worker that dies is
replaced while work is left, and its run is marked FAILED. A run another runner on the same store holds (a live
claim, see :mod:`bench.running.claims`) is tried again later, after the rest: once that runner finishes it, it counts as
done elsewhere; should that runner die, this one trains it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from multiprocessing import forkserver

from bench.config.run_config import RunConfig
from bench.running.executors.book import SuiteBook, WorkList
from bench.running.executors.slots import Slot
from bench.running.executors.worker import worker_main
from bench.running.interrupt import Interrupted
from bench.running.store import KILLED

STOP_WAIT_S = 15.0  # how long workers get to end their runs once the suite stops
# What the fork server imports once for every CPU worker: torch, Lightning, MLflow's store, matplotlib.
PRELOAD = ["bench.running.executors.worker", "bench.running.train", "bench.tasks.run_plots", "mlflow.store.tracking.sqlalchemy_store"]


def context(slots: list[Slot]):
    """The multiprocessing context for these slots' workers: the preloading fork server for CPU workers where
    the platform has one, else spawn."""
    if any(slot.device != "cpu" for slot in slots) or "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    return mp.get_context("forkserver")  # preloading what :func:`prepare` set


def prepare(device: str) -> None:
    """Start the fork server without waiting for it, unless ``device`` asks for GPUs (whose workers are spawned):
    its imports overlap the runner's own start-up (finding the GPUs, the store's tables, the parent run), and the
    first worker forks as soon as they are done. With ``auto`` on a machine that turns out to have GPUs, the
    server is started for nothing, idle."""
    if not device.startswith("cuda") and "forkserver" in mp.get_all_start_methods():
        mp.get_context("forkserver").set_forkserver_preload(PRELOAD)
        forkserver.ensure_running()


class Worker:
    def __init__(self, ctx, slot: Slot, results: mp.Queue, args: tuple):
        self.slot, self.inbox = slot, ctx.Queue()
        # The environment the worker runs in: this process's now (a fork server's is that of when it started),
        # with the slot's on top (its GPU). The worker sets it before anything reads it.
        environment = {**os.environ, **slot.env}
        self.process = ctx.Process(target=worker_main, args=(slot, environment, self.inbox, results, *args),
                                   daemon=True)
        self.process.start()
        self.current: int | None = None  # index of the run it is on
        self.run_id: str | None = None

    def give(self, index: int, cfg: RunConfig, name: str) -> None:
        self.current, self.run_id = index, None
        self.inbox.put((index, cfg, name))

    def stop(self) -> None:
        if self.process.is_alive():
            self.inbox.put(None)


def execute(book: SuiteBook, slots: list[Slot]) -> None:
    """Train the book's runs on one worker per slot; replace dead workers; retry runs held by other runners."""
    work = WorkList(book.todo)
    ctx = context(slots)
    results = ctx.Queue()
    # Workers watch this pipe's read end; only this process holds the write end, so it closes when this dies.
    lifeline, lifeline_end = ctx.Pipe(duplex=False)
    cause = ctx.Value("i", 0)  # the signal that stops this runner, for the reason its workers give
    args = (book.tracking_uri, book.experiment, book.parent_id, os.getpid(), book.claim, lifeline, cause)
    pool = [Worker(ctx, slot, results, args) for slot in slots]

    def hand_out() -> None:
        for worker in pool:
            if worker.current is None and worker.process.exitcode is None and book.store_error is None:
                index = work.next()
                if index is not None:
                    worker.give(index, book.suite.configs[index], book.suite.name_of(index))

    def busy() -> bool:
        return any(worker.current is not None for worker in pool)

    def take(kind: str, index: int, payload) -> None:
        """Take in a worker's message: the run it started, or the run it finished."""
        on_it = next((worker for worker in pool if worker.current == index), None)
        if kind == "start" and on_it is not None:
            on_it.run_id = payload
        elif kind == "done":
            if on_it is not None:
                on_it.current = None
            book.settle(work, index, payload)

    stopping: Interrupted | None = None
    try:
        hand_out()
        while work or busy():
            try:
                take(*results.get(timeout=0.5))
            except queue.Empty:
                pass
            for n, worker in enumerate(pool):
                if worker.process.exitcode is None:
                    continue
                if worker.current is not None:
                    book.fail(worker.current, worker.run_id, died(worker.process.exitcode))
                    worker.current = None
                if work:  # replace it only while there is work left for the new one
                    pool[n] = Worker(ctx, worker.slot, results, args)
            book.refill(work, idle=not busy())
            hand_out()
    except Interrupted as e:
        stopping = e
        raise
    finally:
        if stopping is not None:  # each worker ends its run KILLED, giving the signal this runner got
            cause.value = stopping.signum
            for worker in pool:
                if worker.process.exitcode is None:
                    worker.process.terminate()
        for worker in pool:
            worker.stop()
        for worker in pool:
            worker.process.join(timeout=STOP_WAIT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        while True:  # what the workers reported before they exited
            try:
                take(*results.get(timeout=0.1))
            except queue.Empty:
                break
        for worker in pool:
            if worker.current is not None and worker.current not in book.outcomes:
                if stopping is not None:
                    book.fail(worker.current, worker.run_id, stopping.reason, KILLED)
                else:
                    book.fail(worker.current, worker.run_id, "interrupted by the user")
        lifeline_end.close()


def died(exitcode: int) -> str:
    """Why a worker's run failed when the worker died; a SIGKILL nobody here sent is most often the kernel's
    out-of-memory killer, and said so."""
    if exitcode == -signal.SIGKILL:
        return ("worker died (exit code -9, SIGKILL: most likely out of memory, the kernel's OOM killer; see dmesg) "
                "during the run")
    return f"worker died (exit code {exitcode}) during the run"
