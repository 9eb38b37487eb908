"""The Ray executor end to end: a real ``mlflow server`` as the store, a local Ray and a simulated two-node cluster.

Ray costs seconds per start, so the file shares one MLflow server and one two-node cluster (``ray.cluster_utils``,
one CPU per node) among its tests. The executor calls ``ray.shutdown()`` when it is done; for the cluster that only
disconnects this process (the fixture never connects it), so the next ``run_suite`` joins the same cluster again.

Every Ray instance of this file lives under a private ``RAY_TMPDIR``: another Ray on this machine (another test
session, a ``ray start``) can neither be joined by mistake nor join ours.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mlflow_server import server_process, wait_healthy

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install -e .[ray]; make test-all installs "
                                        "it)")
pytestmark = pytest.mark.slow  # real Ray clusters and a real MLflow server: make test-all

from mlflow import MlflowClient  # noqa: E402

from bench.config.settings import ConfigError, config_hash, resolve  # noqa: E402
from bench.running.leases import EXPERIMENT, LEDGER, PID, RUN  # noqa: E402
from bench.running.runner import run_suite  # noqa: E402
from bench.running.store import code_key  # noqa: E402
from bench.config.suite import Suite, load_suite  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

# 2 tasks x 1 cell x 2 truncations x 2 seeds = 8 runs of a few tenths of a second each.
SUITE_YAML = """\
description: Smoke-sized suite for the Ray executor tests
axes:
  task: [dependency, sine]
  cell: [gru]
  truncation: [2, 5]
  seed: [0, 1]
fixed:
  hidden: 4
tasks:
  dependency: {series_length: 20000, eval_length: 4000, batch_size: 20}
  sine: {max_steps: 50, train_examples: 1000, val_examples: 100, test_examples: 100}
"""


# ---------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def private_ray_tmpdir():
    """Ray's temp folder (sessions, sockets, the ``ray_current_cluster`` address file) private to this module.

    Short on purpose: Ray puts Unix sockets under it (107-character limit).
    """
    path = tempfile.mkdtemp(prefix="rbray-", dir="/tmp")
    saved = {k: os.environ.pop(k, None) for k in ("RAY_TMPDIR", "RAY_ADDRESS")}
    os.environ["RAY_TMPDIR"] = path
    try:
        yield path
    finally:
        if ray.is_initialized():
            ray.shutdown()
        os.environ.pop("RAY_TMPDIR", None)
        for k, v in saved.items():
            if v is not None:
                os.environ[k] = v
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server_process(tmp_path_factory):
    """Launch a real ``mlflow server`` on 127.0.0.1 (SQLite behind it, artifacts served by it); stop it at the end.

    Yields (process, uri, log path) without waiting for it: :func:`mlflow_server` waits, so a test that asks for
    this fixture, then the cluster, then ``mlflow_server`` overlaps the two start-ups.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    log_path = root / "server.log"
    with server_process(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", log_path) as (proc, uri):
        yield proc, uri, log_path


@pytest.fixture(scope="module")
def mlflow_server(mlflow_server_process) -> str:
    """The URI of the module's MLflow server, once it answers 200 on ``/health``."""
    return wait_healthy(*mlflow_server_process)


@pytest.fixture(scope="module")
def two_nodes(private_ray_tmpdir):
    """Two Ray nodes of one CPU each on this machine; this process is never connected by the fixture itself."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Suite:
    path = tmp_path_factory.mktemp("suite") / "ray-smoke.yaml"
    path.write_text(SUITE_YAML)
    loaded = load_suite(str(path))
    assert len(loaded.configs) == 8
    return loaded


# ----------------------------------------------------------------------------------------------------- helpers


def child_runs(uri: str, experiment: str, parent_run_id: str) -> list:
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'", max_results=1000)


def metrics_by_hash(runs) -> dict[str, dict[str, float]]:
    out = {}
    for run in runs:
        h = run.data.tags["bench.config_hash"]
        assert h not in out, f"two runs of config {h}"
        out[h] = {code_key(k): v for k, v in run.data.metrics.items() if code_key(k).startswith("test/")}
        assert out[h], f"run {run.info.run_id} has no test metrics"
    return out


def node_ids(cluster) -> set[str]:
    return {node.node_id for node in cluster.list_all_nodes()}


def is_ray_worker(pid: int) -> bool:
    """A Ray worker process (``ray::…`` process title), and neither this process nor its parent."""
    if pid in (os.getpid(), os.getppid(), 0, 1):
        return False
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return title.startswith(b"ray::")


class AttemptKiller(threading.Thread):
    """Polls the store for RUNNING runs of one config hash and SIGKILLs the Ray worker of each, ``attempts`` times."""

    def __init__(self, uri: str, experiment: str, cfg_hash: str, attempts: int, timeout_s: float = 240):
        super().__init__(daemon=True)
        self.uri, self.experiment, self.cfg_hash, self.attempts = uri, experiment, cfg_hash, attempts
        self.deadline = time.monotonic() + timeout_s
        self.killed: dict[str, int] = {}  # run id -> pid
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        client = MlflowClient(self.uri)
        experiment_id = ledger_id = None
        try:
            while len(self.killed) < self.attempts and not self.stop.is_set() and time.monotonic() < self.deadline:
                if experiment_id is None or ledger_id is None:
                    found, ledger = client.get_experiment_by_name(self.experiment), client.get_experiment_by_name(LEDGER)
                    experiment_id, ledger_id = found and found.experiment_id, ledger and ledger.experiment_id
                leases = ledger_id and client.search_runs(  # the lease of each run: who runs it
                    [ledger_id], f"tags.`bench.config_hash` = '{self.cfg_hash}' and attributes.status = 'RUNNING' "
                                 f"and tags.`{EXPERIMENT}` = '{experiment_id}'")
                for lease in leases or []:
                    run_id = lease.data.tags.get(RUN)
                    if run_id is None or run_id in self.killed:
                        continue
                    pid = int(lease.data.tags[PID])
                    if not is_ray_worker(pid):
                        self.errors.append(f"run {run_id}: pid {pid} is not a Ray worker; not killed")
                        return
                    os.kill(pid, signal.SIGKILL)
                    self.killed[run_id] = pid
                time.sleep(0.2)
        except Exception as e:  # reported by the test, not lost in the thread
            self.errors.append(f"{type(e).__name__}: {e}")


# ------------------------------------------------------------------------------------------------------- tests


def test_ray_executor_gives_the_local_executors_results(mlflow_server_process, two_nodes, mlflow_server, suite,
                                                       tmp_path, capsys):
    """Same configs and seeds: the Ray executor's test metrics (server store) equal the local executor's (SQLite).

    The two-node cluster is up on purpose: its address file is where ``ray.init()`` without an address would look,
    and the executor without ``--address`` must still start its own local Ray (two CPUs here). Fixture order
    matters for time only: the MLflow server boots while the cluster starts.
    """
    experiment = "ray-vs-local"
    local_uri = f"sqlite:///{tmp_path / 'local' / 'mlflow.db'}"
    (tmp_path / "local").mkdir()

    start = time.perf_counter()
    local = run_suite(suite, local_uri, experiment, device="cpu", workers=2, progress=False)
    local_s = time.perf_counter() - start
    start = time.perf_counter()
    remote = run_suite(suite, mlflow_server, experiment, workers=2, progress=False, executor="ray")
    ray_s = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n[timing] smoke-sized suite ({len(suite.configs)} runs, 2 workers): local executor {local_s:.1f} s, "
              f"ray executor {ray_s:.1f} s (ray: with ray.init and shutdown, server store; local: fresh SQLite)")

    assert local.count("finished") == remote.count("finished") == len(suite.configs), (local.outcomes, remote.outcomes)
    assert not ray.is_initialized()  # the executor shut its local Ray down

    local_runs = child_runs(local_uri, experiment, local.parent_run_id)
    ray_runs = child_runs(mlflow_server, experiment, remote.parent_run_id)
    want, got = metrics_by_hash(local_runs), metrics_by_hash(ray_runs)
    assert set(got) == set(suite.hashes())
    assert got == want  # exact: deterministic CPU training, same seeds, one torch thread per worker
    assert {r.info.status for r in ray_runs} == {"FINISHED"}
    # What Ray handed back to the driver is what the store holds.
    for index, (status, _, metrics) in remote.outcomes.items():
        assert {k: v for k, v in metrics.items() if k.startswith("test/")} == got[config_hash(suite.configs[index])]

    # A fresh local Ray, not the cluster whose address file lies in RAY_TMPDIR.
    ray_nodes = {r.data.tags["bench.ray_node"] for r in ray_runs}
    assert len(ray_nodes) == 1 and not ray_nodes & node_ids(two_nodes)
    parent = MlflowClient(mlflow_server).get_run(remote.parent_run_id)
    assert parent.data.params["executor"] == "ray" and parent.data.params["workers"] == "2"
    assert parent.data.tags["bench.executor"] == "ray" and parent.info.status == "FINISHED"
    client = MlflowClient(mlflow_server)
    owners = {lease.data.tags.get(RUN): lease.data.tags[PID]
              for lease in client.search_runs([client.get_experiment_by_name(LEDGER).experiment_id])}
    assert all(owners[r.info.run_id] != str(os.getpid()) for r in ray_runs)


def test_runs_spread_over_both_nodes_of_a_cluster(two_nodes, mlflow_server, suite):
    experiment = "two-nodes"
    result = run_suite(suite, mlflow_server, experiment, progress=False, executor="ray", address=two_nodes.address)

    assert result.count("finished") == len(suite.configs), result.outcomes
    runs = child_runs(mlflow_server, experiment, result.parent_run_id)
    assert sorted(r.data.tags["bench.config_hash"] for r in runs) == sorted(suite.hashes())
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["bench.ray_node"] for r in runs} == node_ids(two_nodes)  # both nodes, nothing else
    parent = MlflowClient(mlflow_server).get_run(result.parent_run_id)
    assert parent.data.params["workers"] == "2"  # one slot per CPU of the cluster
    # The executor's ray.shutdown() disconnected this driver only: the cluster is still there to rejoin.
    assert not ray.is_initialized()
    assert two_nodes.remaining_processes_alive()


def test_run_whose_worker_is_killed_twice_fails_and_the_others_finish(two_nodes, mlflow_server, suite):
    experiment = "planted-kill"
    # The planted run: its own truncation and seed, and ~100x the others' series, so it is still training when
    # each of its two attempts (Ray retries a dead worker's task once) is found and killed.
    planted = resolve({"task": "dependency", "cell": "gru", "hidden": 4, "truncation": 10, "seed": 7,
                       "batch_size": 20, "series_length": 2_000_000, "eval_length": 4000})
    planted_hash = config_hash(planted)
    assert planted_hash not in suite.hashes()
    planted_suite = replace(suite, name="planted", configs=[planted, *suite.configs])  # submitted first

    killer = AttemptKiller(mlflow_server, experiment, planted_hash, attempts=2)
    killer.start()
    try:
        result = run_suite(planted_suite, mlflow_server, experiment, progress=False, executor="ray",
                           address=two_nodes.address)
    finally:
        killer.stop.set()
        killer.join(timeout=10)
    assert not killer.errors, killer.errors
    assert len(killer.killed) == 2, f"killed {killer.killed}; outcome {result.outcomes.get(0)}"
    assert len(set(killer.killed.values())) == 2  # the retry ran in a new worker

    status, reason, _ = result.outcomes[0]
    assert status == "failed" and "worker" in reason and "died" in reason, reason
    assert result.count("failed") == 1 and result.count("finished") == len(suite.configs), result.outcomes

    runs = child_runs(mlflow_server, experiment, result.parent_run_id)
    attempts = [r for r in runs if r.data.tags["bench.config_hash"] == planted_hash]
    assert {r.info.run_id for r in attempts} == set(killer.killed)  # one run per attempt, nothing more
    for run in attempts:
        assert run.info.status == "FAILED"
        assert run.data.tags["bench.outcome"] == "failed"
        assert "worker" in run.data.tags["bench.reason"] and "died" in run.data.tags["bench.reason"]
    others = [r for r in runs if r.data.tags["bench.config_hash"] != planted_hash]
    assert sorted(r.data.tags["bench.config_hash"] for r in others) == sorted(suite.hashes())
    assert {r.info.status for r in others} == {"FINISHED"}

    parent = MlflowClient(mlflow_server).get_run(result.parent_run_id)
    assert parent.data.metrics["runs_failed"] == 1
    assert parent.data.metrics["runs_finished"] == len(suite.configs)
    assert parent.info.status == "FAILED"


def test_sqlite_store_is_refused_on_a_multi_node_cluster(two_nodes, suite, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"

    with pytest.raises(ConfigError) as refused:
        run_suite(suite, uri, "refused", progress=False, executor="ray", address=two_nodes.address)
    message = str(refused.value)
    assert message.startswith("tracking_uri:") and "2 nodes" in message
    assert "mlflow server --backend-store-uri" in message and "--tracking-uri" in message  # how to start one
    assert not ray.is_initialized()
    assert list(store.iterdir()) == []  # no database, no artifacts folder: nothing written

    cli = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--suite", str(suite.path), "--executor", "ray",
         "--address", two_nodes.address, "--tracking-uri", uri, "--no-progress"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "error: tracking_uri:" in cli.stderr and "mlflow server" in cli.stderr, cli.stderr
    assert list(store.iterdir()) == []
    assert two_nodes.remaining_processes_alive()


def test_a_run_another_runner_holds_is_trained_once_that_runner_dies(two_nodes, mlflow_server, suite):
    """A configuration another live runner has claimed is held and looked at again, as the local executor does:
    once that runner is gone, this one trains it, rather than counting it as done elsewhere."""
    from bench.running.leases import RunLease
    from bench.running.store import KILLED, Store

    experiment = "held-claim"
    held = replace(suite, configs=suite.configs[:2])
    store = Store(mlflow_server)
    other = RunLease.start(store, store.experiment_id(experiment), "another runner's run",
                           {"bench.config_hash": config_hash(held.configs[0])}, {})  # this live process holds it
    dies = threading.Timer(10.0, other.end, (KILLED, {"bench.outcome": "killed"}))  # well after the first try
    dies.start()
    try:
        result = run_suite(held, mlflow_server, experiment, progress=False, executor="ray", address=two_nodes.address)
    finally:
        dies.cancel()
        other.end(KILLED)
    assert result.outcomes[0][0] == "finished" and result.count("finished") == 2, result.outcomes


def test_adaptive_seeds_are_added_on_a_cluster_as_locally(two_nodes, mlflow_server, tmp_path):
    """``seeds: {min, max}`` under Ray: each entry gets seeds 0, 1, … in order, one past the minimum only while
    its answer was open (bench.tasks.decision), and a rerun finds every run done."""
    from bench import tasks
    from bench.tasks import decision

    path = tmp_path / "adaptive.yaml"
    path.write_text(SUITE_YAML.replace("  task: [dependency, sine]\n", "  task: [dependency]\n")
                    .replace("  seed: [0, 1]\n", "").replace("fixed:\n", "seeds: {min: 2, max: 4}\nfixed:\n"))
    adaptive = load_suite(str(path))
    experiment = "adaptive"
    result = run_suite(adaptive, mlflow_server, experiment, progress=False, executor="ray", address=two_nodes.address)
    runs = child_runs(mlflow_server, experiment, result.parent_run_id)
    assert {r.info.status for r in runs} == {"FINISHED"} and result.count("finished") == len(runs)
    values: dict[str, dict[int, float]] = {}
    for run in runs:
        entry = run.data.params["truncation"]
        values.setdefault(entry, {})[int(run.data.params["seed"])] = run.data.metrics["test/ce"]
    floors = {code_key(k): v for k, v in runs[0].data.metrics.items() if k.startswith("floor")}
    task = tasks.get("dependency")
    for entry, by_seed in values.items():
        assert sorted(by_seed) == list(range(len(by_seed))) and 2 <= len(by_seed) <= 4
        got = [by_seed[s] for s in sorted(by_seed)]
        for n in range(2, len(got)):
            assert decision.open_reason(decision.judge(task, got[:n], floors, adaptive.configs[0])), (entry, got)
    again = run_suite(load_suite(str(path)), mlflow_server, experiment, progress=False, executor="ray",
                      address=two_nodes.address)
    assert len(again.skipped) == len(runs) and not again.outcomes
