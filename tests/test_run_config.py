"""A resolved configuration carries its Task (bench.config.run_config): the layers below the resolution point
receive the object and never look a task up by name again."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bench import tasks
from bench.config.settings import RunConfig, config_hash, resolve
from bench.config.suite import load_suite
from bench.running.train import train_run
from bench.tasks.dependency import DependencyTask
from conftest import TINY

BENCH = Path(__file__).parents[1] / "bench"
BELOW_RESOLUTION = ("running", "reporting")  # the layers that receive the object
REGISTRY = "bench.tasks"  # the registry is the package itself; its submodules (base, decision, …) are specs
LOOKUPS = {"get", "problem", "installed", "BUILTIN", "DEFAULT", "allowed", "is_unlisted_code"}


class UnlistedTask(DependencyTask):
    """The dependency task under a name no registry lists: only a run handed the object can find it."""

    name = "unlisted_dependency"


class SlashedReferencesTask(DependencyTask):
    """A plug-in naming its references as a split (``floor/all``), as stores before did: read back under the one
    name (``floor_all``), its own report would look for them in vain."""

    name = "slashed_references"

    def references(self, cfg: dict, data) -> dict[str, float]:
        return {k.replace("_", "/", 1): v for k, v in super().references(cfg, data).items()}


def lookups(source: str) -> list[str]:
    """Where ``source`` reaches the task registry by name: an import of the registry module itself or of its
    lookups (``from bench import tasks``, ``import bench.tasks``, ``from bench.tasks import get``), or of
    :func:`bench.config.settings.task_of` (which looks a plain mapping's task up)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "bench":
            found += [f"line {node.lineno}: from bench import tasks" for a in node.names if a.name == "tasks"]
        elif isinstance(node, ast.ImportFrom) and node.module == REGISTRY:
            found += [f"line {node.lineno}: from {REGISTRY} import {a.name}" for a in node.names if a.name in LOOKUPS]
        elif isinstance(node, ast.ImportFrom) and node.module == "bench.config.settings":
            found += [f"line {node.lineno}: task_of" for a in node.names if a.name == "task_of"]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name == REGISTRY]
    return found


def test_the_check_finds_a_lookup_by_name():
    assert lookups("from bench import tasks\ntasks.get('sine')\n") == ["line 1: from bench import tasks"]
    assert lookups("from bench.tasks import get as get_task\n") == ["line 1: from bench.tasks import get"]
    assert lookups("import bench.tasks\n") == ["line 1: import bench.tasks"]
    assert lookups("from bench.tasks import decision\nfrom bench.tasks.base import Task\n") == []


def test_no_layer_below_the_resolution_looks_a_task_up_by_name():
    files = sorted(p for layer in BELOW_RESOLUTION for p in (BENCH / layer).rglob("*.py"))
    assert len(files) > 20
    found = {str(p.relative_to(BENCH)): hits for p in files if (hits := lookups(p.read_text()))}
    assert found == {}


def test_a_task_no_registry_lists_trains_when_handed_over(tracking_uri):
    """Nothing between the resolved config and the stored run looks the task up: its name is unknown."""
    assert tasks.problem(UnlistedTask.name) is not None
    cfg = resolve({**TINY["dependency"], "max_steps": 20}, task=UnlistedTask())
    assert cfg["task"] == "unlisted_dependency" and isinstance(cfg.task, UnlistedTask)
    outcome = train_run(cfg, tracking_uri)
    assert outcome.status == "finished", outcome.reason
    run = MlflowClient(tracking_uri).get_run(outcome.run_id)
    assert run.data.tags["bench.task"] == "unlisted_dependency"
    assert run.data.tags["bench.config_hash"] == config_hash(cfg)
    assert run.inputs.dataset_inputs[0].dataset.name.startswith("unlisted_dependency·")
    assert 0 < outcome.metrics["test/ce"] < 1


def test_a_task_whose_references_are_misnamed_fails_its_run_saying_so(tracking_uri):
    outcome = train_run(resolve({**TINY["dependency"], "max_steps": 10}, task=SlashedReferencesTask()), tracking_uri)
    assert outcome.status == "failed"
    assert outcome.reason.startswith("ValueError: task slashed_references: references ['floor/all', ")
    assert outcome.reason.endswith("allowed: names floor_<name> or baseline_<name>, without '/' "
                                   "(bench.core.metric_names)")


def test_a_resolved_config_is_its_plain_settings_and_its_task():
    cfg = resolve({"task": "sine", "seed": 3})
    assert isinstance(cfg, RunConfig) and cfg.task is tasks.get("sine")
    assert config_hash(cfg) == config_hash(dict(cfg))  # the identity is the plain settings' own
    with pytest.raises(TypeError):
        cfg["seed"] = 4  # read only: what was checked stays checked
    again = pickle.loads(pickle.dumps(cfg))  # what a worker process receives
    assert dict(again) == dict(cfg) and type(again.task) is type(cfg.task)
    other = cfg.replace(seed=4)
    assert (other["seed"], other.task, cfg["seed"]) == (4, cfg.task, 3)
    with pytest.raises(KeyError):
        cfg.replace(lags=(1, 2))  # not a setting of the sine task


def test_a_suites_tuned_rates_and_added_seeds_keep_their_task():
    """The suite copies configurations (a tuned rate, the next seed): each copy still carries its Task."""
    suite = load_suite("default")
    assert suite.tuning is not None and suite.seeds is not None

    def results(cfg_hash):  # every run finished, each seed between the floors: the answer stays open
        return "finished", {"test/ce": 0.5 + int(cfg_hash[:4], 16) / 2**20, "test/rmse": 0.01, "floor_none": 0.6616,
                            "floor_first1": 0.5192, "floor_all": 0.4545, "noise": 0.0016}

    tuned = suite.apply_tuning(results)
    added = suite.add_seeds(results)
    assert tuned and added
    assert all(isinstance(c, RunConfig) and c.task is tasks.get(c["task"]) for c in suite.configs)
    assert suite.tasks == {name: tasks.get(name) for name in {c["task"] for c in suite.configs}}
