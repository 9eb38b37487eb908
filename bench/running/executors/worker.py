"""The body of a local worker process: import torch once, then train whatever the runner hands over.

It runs under a :class:`bench.running.leases.Watchdog`: when the runner dies (SIGKILL, the OOM killer), the worker marks
the run it is on KILLED and exits within a second, instead of training on for nobody. SIGINT and SIGTERM (a
Ctrl-C reaches the whole process group; a runner that is stopped passes SIGTERM on) end its run KILLED with the
signal as the reason (:mod:`bench.running.interrupt`).
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue

from bench.running.claims import Claim
from bench.running.executors.slots import Slot
from bench.running.interrupt import Interrupted, catch_signals
from bench.running.leases import Watchdog
from bench.running.outcome import RunOutcome


def worker_main(slot: Slot, environment: dict[str, str], inbox: mp.Queue, results: mp.Queue, tracking_uri: str,
                experiment: str, parent_run_id: str | None, parent_pid: int, claim: Claim, lifeline, cause) -> None:
    os.environ.clear()  # the runner's environment and the slot's (pinning its GPU), before CUDA or MLflow read it
    os.environ.update(environment)
    watchdog = Watchdog(parent_pid, lifeline)
    watchdog.start()
    with catch_signals(cause):  # Ctrl-C (the terminal's, to the whole group) or the runner's SIGTERM
        try:
            serve(slot, inbox, results, tracking_uri, experiment, parent_run_id, claim, watchdog)
        except Interrupted as e:  # the run under way is ended KILLED: say so, and go
            if e.run_id is not None:
                results.put(("done", e.index, RunOutcome(e.run_id, "killed", {}, e.reason)))
            results.close()
            results.join_thread()
            os._exit(e.exit_code)
    # Everything is in the store and the queue: skip interpreter teardown, which spends seconds collecting
    # torch and Lightning objects while the runner waits to join us.
    results.close()
    results.join_thread()
    os._exit(0)


def serve(slot: Slot, inbox: mp.Queue, results: mp.Queue, tracking_uri: str, experiment: str,
          parent_run_id: str | None, claim: Claim, watchdog: Watchdog) -> None:
    """Train what the runner hands over until it says stop (None)."""
    import torch  # in the worker only (this module is imported by the runner, which never needs torch)

    torch.set_num_threads(slot.threads)
    from bench.running.train import collect_garbage, train_run  # torch and Lightning: as above

    gc.freeze()  # what the imports made lives as long as the worker: never scanned by a collection (~0.3 s)

    while True:
        try:
            item = inbox.get(timeout=1.0)
        except queue.Empty:
            continue
        if item is None:
            return
        index, cfg, name = item
        try:
            outcome = train_run(cfg, tracking_uri, experiment, parent_run_id, slot.device,
                                on_start=lambda run_id: results.put(("start", index, run_id)), claim=claim,
                                watchdog=watchdog, name=name)
        except Interrupted as e:
            e.index = index
            raise
        results.put(("done", index, outcome))
        collect_garbage()
