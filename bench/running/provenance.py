"""What a run records so that it can be rerun: commit, device, package versions, its settings as tags, and its
generated data set as an MLflow dataset input."""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

from bench.config.settings import RunConfig, resolve, setting_text
from bench.tasks.base import Task
from bench.running.locations import REPO_ROOT


@functools.cache
def git_commit() -> str:
    """The commit the code runs from, with ``-dirty`` when the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@functools.cache
def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch  # only here: the runner names a CPU without importing torch (~1.7 s of its start-up)

        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


@functools.cache
def package_versions() -> dict[str, str]:
    return {name: version(name) for name in ("torch", "pytorch-lightning", "torchmetrics", "mlflow")}


def run_description_tags(cfg: RunConfig) -> dict[str, str]:
    """A training run's task as a tag, and its description (shown on the run's page): the resolved settings."""
    settings = ", ".join(f"{k}={setting_text(v)}" for k, v in cfg.items())
    return {"bench.task": str(cfg["task"]), "mlflow.note.content": f"rnn-bench run. Settings: {settings}."}


@functools.cache
def task_defaults(task: Task) -> RunConfig:
    """Task ``task``'s resolved defaults, once per process (every run's dataset name compares to them)."""
    return resolve({}, task=task)


def dataset_input(cfg: RunConfig) -> dict:
    """A run's data set as an MLflow dataset input (the arguments of :meth:`bench.running.store.Store.log_input`).

    The data are generated, not read, so the settings that define them (:meth:`bench.tasks.base.Task.dataset_spec`)
    stand for them: the digest hashes them (same settings, same digest, on any machine), the profile lists them
    and the name is the task with those that differ from its defaults, and the seed; the source names the task
    that generates them.

    >>> from bench.config.settings import resolve
    >>> found = dataset_input(resolve({"task": "dependency", "lags": "3,8,12", "weights": "0.4,-0.25,0.1", "seed": 2}))
    >>> found["name"], found["digest"], found["context"]
    ('dependency·lags=3,8,12·weights=0.4,-0.25,0.1·seed=2', 'b8bd353c', 'training')
    """
    task = cfg.task
    spec = task.dataset_spec(cfg)
    defaults = task_defaults(task)
    shown = [f"{k}={setting_text(v)}" for k, v in spec.items() if k != "seed" and v != defaults[k]]
    shown += [f"seed={spec['seed']}"] if "seed" in spec else []
    profile = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()}  # as JSON writes it
    digest = hashlib.sha256(json.dumps({"task": task.name, **profile}, sort_keys=True).encode()).hexdigest()[:8]
    generator = f"{type(task).__module__}.{type(task).__name__}"
    return {"name": "·".join([task.name, *shown]), "digest": digest, "source": {"tags": {"generator": generator, "task": task.name}},
            "profile": profile, "context": "training"}


def environment_tags(device: str) -> dict[str, str]:
    """What a rerun needs to know about where a run ran: commit, device, package versions; and MLflow's own
    source and user tags, which runs created through the client lack (the UI's Source and User columns)."""
    tags = {
        "mlflow.source.git.commit": git_commit(),
        "mlflow.source.name": "rnn-bench",
        "mlflow.source.type": "LOCAL",
        "mlflow.user": getpass.getuser(),
        "bench.device": device,
        "bench.device_name": device_name(device),
        "bench.python": platform.python_version(),
    }
    tags.update({f"bench.version.{name}": v for name, v in package_versions().items()})
    return tags
