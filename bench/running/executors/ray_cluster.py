"""Run a suite's training runs as Ray tasks, so one ``bench run`` spreads over a cluster of machines.

Ray places each run where its resources fit (``{"GPU": 1/K}`` for K runs per GPU, else one CPU); the suite's
bookkeeping (skip-if-done, parent run, progress, summary) is the same as the local executor's. A run whose
task errors or whose worker or node dies is retried once by Ray, then marked FAILED with the reason. Each task
claims its run in the store first (:mod:`bench.running.claims`): one another runner holds or has finished counts as done
elsewhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import ray
from ray.exceptions import RayTaskError

from bench.running.claims import Claim
from bench.config.settings import ConfigError, RunConfig
from bench.running.executors.book import SuiteBook, WorkList
from bench.running.executors.slots import usable_cores
from bench.running.interrupt import Interrupted
from bench.running.store import FAILED, KILLED, StoreError


class RunFailed(RuntimeError):
    """Raised inside a Ray task whose run failed, so that Ray retries it once."""


@dataclass
class Cluster:
    device: str  # "cuda" when the cluster has GPUs, else "cpu"
    slots: int  # runs that can train at once with one run per CPU or GPU
    nodes: int
    started_here: bool


def connect(address: str | None, tracking_uri: str, workers: int = 0) -> Cluster:
    """Join the cluster at ``address`` (``auto``: the one this machine belongs to) or start a local Ray.

    Refuses, before anything is written, a SQLite store with a multi-node cluster: the other nodes cannot
    reach the file.
    """
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    else:
        # address="local": always a new Ray here. Without it ray.init joins the cluster named by RAY_ADDRESS or
        # the last `ray start` on this machine (and then refuses num_cpus).
        ray.init(address="local", num_cpus=workers or usable_cores(), include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    nodes = [n for n in ray.nodes() if n["Alive"]]
    if len(nodes) > 1 and tracking_uri.startswith("sqlite:"):
        ray.shutdown()
        raise ConfigError([
            f"tracking_uri: {tracking_uri!r} is a local SQLite file, but the Ray cluster has {len(nodes)} nodes "
            "that cannot all reach it; allowed: an MLflow server every node can reach. Start one with "
            "`mlflow server --backend-store-uri sqlite:////abs/path/mlflow.db --host <a private address> --port 5000` "
            "(behind authentication) and set "
            "MLFLOW_TRACKING_URI=http://<that host>:5000 (or --tracking-uri)"])
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    return Cluster("cuda" if gpus else "cpu", gpus or int(resources.get("CPU", 1)), len(nodes), not address)


def _train_task(cfg: RunConfig, tracking_uri: str, experiment: str, parent_run_id: str, claim: Claim, name: str):
    """Body of one Ray task: train one run on whatever this worker was given; raise if it failed."""
    import torch  # in the Ray worker only: the runner that submits tasks never needs it

    context = ray.get_runtime_context()
    torch.set_num_threads(max(1, int(context.get_assigned_resources().get("CPU", 1))))
    from bench.running.train import collect_garbage, train_run  # torch and Lightning: as above

    device = "cuda" if ray.get_gpu_ids() else "cpu"
    outcome = train_run(cfg, tracking_uri, experiment, parent_run_id, device,
                        extra_tags={"bench.ray_node": context.get_node_id()}, claim=claim, name=name)
    collect_garbage()  # the worker lives on for the next task
    if outcome.status == "failed":
        raise RunFailed(outcome.reason)
    return outcome


def execute(book: SuiteBook, cluster: Cluster, per_device: int = 1) -> None:
    """Submit every pending run as a Ray task and record outcomes as they arrive; a run another runner holds is
    submitted again later (:class:`WorkList`), as the local executor does."""
    options = {"num_gpus": 1.0 / per_device, "num_cpus": 0} if cluster.device == "cuda" else {"num_cpus": 1}
    # max_calls=0: workers stay alive between tasks, so torch is imported once per worker, not per run.
    task = ray.remote(max_retries=1, retry_exceptions=[RunFailed], max_calls=0)(_train_task).options(**options)
    work = WorkList(book.todo)
    futures: dict = {}

    def submit() -> None:  # everything fresh at once (Ray queues it), held runs once their time has come
        while book.store_error is None and (index := work.next()) is not None:
            futures[task.remote(book.suite.configs[index], book.tracking_uri, book.experiment, book.parent_id,
                                book.claim, book.suite.name_of(index))] = index

    stopping: Interrupted | None = None  # SIGINT or SIGTERM (bench.running.interrupt): runs cancelled end KILLED
    try:
        submit()
        while futures or work:
            if not futures:  # only held runs are left: wait for their time
                time.sleep(0.5)
            ready = ray.wait(list(futures), num_returns=1, timeout=1.0)[0] if futures else []
            for ref in ready:
                index = futures.pop(ref)
                try:
                    outcome = ray.get(ref)
                except RayTaskError as e:  # the run raised twice; train_run already marked both attempts
                    cause = e.cause if isinstance(e.cause, RunFailed) else e
                    book.record(index, "failed", f"failed twice: {cause}")
                except ray.exceptions.RayError as e:  # worker or node died, twice
                    book.fail(index, None, f"worker or node died during the run ({type(e).__name__})")
                else:
                    book.settle(work, index, outcome)
            book.refill(work, idle=not futures)
            submit()
    except Interrupted as e:
        stopping = e
        raise
    finally:
        for ref, index in futures.items():
            ray.cancel(ref, force=True)
            # Only attempts already running leave a trace; runs still queued simply stay missing.
            try:
                book.store.mark_failed(book.experiment_id, None, book.suite.configs[index], book.parent_id,
                                       stopping.reason if stopping else "interrupted by the user", create=False,
                                       status=KILLED if stopping else FAILED)
            except StoreError:
                pass  # the reap of the next run or compile marks them

        ray.shutdown()
