"""A real ``mlflow server`` on 127.0.0.1 for the tests that need one: started, waited for, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(backend_uri: str, artifacts: Path, log_path: Path, port: int | None = None):
    """Launch ``mlflow server`` over ``backend_uri`` (on ``port``, default a free one); yield (process, its URI)
    without waiting for it (see :func:`wait_healthy`); stop it, children included, at the end."""
    port = port or free_port()
    with open(log_path, "ab") as log:
        # One server worker: it boots in about half the time of two on a loaded 2-core machine, and the few
        # concurrent requests of the tests go to its thread pool anyway.
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            # No job runner (a huey consumer for GenAI jobs): the tests have no use for it, and it competes for
            # the cores while it starts and holds the shutdown up for seconds.
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        # It starts children: stop the whole process group (its own, thanks to start_new_session).
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_healthy(proc: subprocess.Popen, uri: str, log_path: Path, timeout_s: float = 120) -> str:
    """``uri`` once the server answers 200 on ``/health``; the test fails with the server's log otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as response:
                if response.status == 200:
                    return uri
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"mlflow server not healthy after {timeout_s:.0f} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.25)
