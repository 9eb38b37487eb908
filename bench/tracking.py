"""Where runs are tracked: the embedded SQLite store under ``results/`` or any MLflow server, plus run tags."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from bench.config import ConfigError

EXPERIMENT = "rnn-bench"
REPO_ROOT = Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    return Path(os.environ.get("RNN_BENCH_RESULTS", REPO_ROOT / "results"))


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else SQLite under ``results/`` (MLflow 3 refuses the plain file store)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results_dir() / 'mlflow.db'}"


def check_tracking_uri(uri: str) -> None:
    """Raise :class:`ConfigError` unless the store at ``uri`` can be reached; writes nothing."""
    if uri.startswith("sqlite:///"):
        parent = Path(uri.removeprefix("sqlite:///")).parent
        if parent == results_dir():
            parent.mkdir(parents=True, exist_ok=True)
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError([f"tracking_uri: {uri!r}: folder {str(parent)!r} does not exist or is not writable; "
                               "allowed: sqlite:///<path in a writable folder> or http(s)://<mlflow server>"])
    elif uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
                if response.status != 200:
                    raise urllib.error.URLError(f"status {response.status}")
        except (urllib.error.URLError, OSError) as e:
            raise ConfigError([f"tracking_uri: {uri!r} is unreachable ({getattr(e, 'reason', e)}); allowed: a "
                               "running MLflow server (mlflow server --host 127.0.0.1 --port 5000 ...) or "
                               "sqlite:///<path>"]) from None
    else:
        raise ConfigError([f"tracking_uri: {uri!r}; allowed: sqlite:///<path> or http(s)://<mlflow server>"])


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
    import torch

    if device.startswith("cuda"):
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
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "pytorch-lightning", "torchmetrics", "mlflow")}


def environment_tags(device: str) -> dict[str, str]:
    """What a rerun needs to know about where a run ran: commit, device, package versions."""
    tags = {
        "mlflow.source.git.commit": git_commit(),
        "bench.device": device,
        "bench.device_name": device_name(device),
        "bench.python": platform.python_version(),
    }
    tags.update({f"bench.version.{name}": v for name, v in package_versions().items()})
    return tags
