"""Where runs are tracked and results go: the embedded SQLite store under ``results/`` of the folder the command
runs in (or ``$RNN_BENCH_RESULTS``), never of the folder the package was installed from, or an MLflow server;
checked before anything is written."""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from bench.core.fields import ConfigError

EXPERIMENT = "rnn-bench"
REPO_ROOT = Path(__file__).resolve().parents[2]  # the code's checkout: its commit, its bundled suites


def results_dir() -> Path:
    """``$RNN_BENCH_RESULTS``, else ``results/`` of the working directory (``make bench`` runs in the checkout)."""
    return Path(os.environ.get("RNN_BENCH_RESULTS") or Path.cwd() / "results").absolute()


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else SQLite under ``results/`` (MLflow 3 refuses the plain file store)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results_dir() / 'mlflow.db'}"


def shown_path(path: str | Path) -> str:
    """A path as a compiled page shows it: relative inside the repository (bundled suites) or the working
    directory (its results/), else only its last two parts, so a committed page holds no machine's absolute path.

    >>> shown_path(REPO_ROOT / "bench" / "suites" / "smoke.yaml"), shown_path("/srv/runs/mlflow.db")
    ('bench/suites/smoke.yaml', '…/runs/mlflow.db')
    """
    path = Path(path).resolve()
    for root in (REPO_ROOT, Path.cwd()):
        with contextlib.suppress(ValueError):
            return str(path.relative_to(root.resolve()))
    return "…/" + "/".join(path.parts[-2:])


def shown_uri(uri: str) -> str:
    """A tracking URI as a compiled page shows it (:func:`shown_path` for a SQLite file)."""
    return f"sqlite:///{shown_path(uri.removeprefix('sqlite:///'))}" if uri.startswith("sqlite:///") else uri


def output_dir(uri: str, suite_name: str, out: str | Path | None = None) -> Path:
    """Where a suite's compiled results go: ``out`` if given; ``results/<suite>/`` for the embedded store only
    (the committed results); beside any other SQLite store (``<its folder>/results/<suite>/``); for a tracking
    server, ``./rnn-bench-results/<suite>/``. So a run into a throw-away store never touches the committed results.

    >>> output_dir("sqlite:////tmp/x/mlflow.db", "smoke")
    PosixPath('/tmp/x/results/smoke')
    >>> output_dir("http://127.0.0.1:5000", "smoke", out="/tmp/out")
    PosixPath('/tmp/out')
    """
    if out is not None:
        return Path(out)
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///")).resolve()
        if db == (results_dir() / "mlflow.db").resolve():
            return results_dir() / suite_name
        return db.parent / "results" / suite_name
    return Path.cwd() / "rnn-bench-results" / suite_name


SQLITE_HEADER = b"SQLite format 3\x00"
URI_ALLOWED = "allowed: sqlite:///<MLflow SQLite file in a writable folder> or http(s)://<mlflow server>"


def check_tracking_uri(uri: str, write: bool = True) -> None:
    """Raise :class:`ConfigError` unless the store at ``uri`` can be reached (and, with ``write``, written);
    writes nothing (except creating the default ``results/`` folder for the default store)."""
    if uri.startswith("sqlite:///"):
        problem = _sqlite_problem(Path(uri.removeprefix("sqlite:///")), write)
        if problem:
            raise ConfigError([f"tracking_uri: {uri!r}: {problem}; {URI_ALLOWED}"])
    elif uri.startswith(("http://", "https://")):
        try:
            request, context = _health_request(uri)
            with urllib.request.urlopen(request, timeout=5, context=context) as response:
                if response.status != 200:
                    raise urllib.error.URLError(f"status {response.status}")
        except urllib.error.HTTPError as e:
            if e.code not in (401, 403):
                raise ConfigError([f"tracking_uri: {uri!r} answers HTTP {e.code} at /health; allowed: a running "
                                   "MLflow server"]) from None
            raise ConfigError([f"tracking_uri: {uri!r} refuses the credentials (HTTP {e.code}); allowed: "
                               "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials, "
                               "or MLFLOW_TRACKING_TOKEN) that the server accepts"]) from None
        except (urllib.error.URLError, OSError, ValueError) as e:  # ValueError: a malformed host or port
            raise ConfigError([f"tracking_uri: {uri!r} is unreachable ({getattr(e, 'reason', e)}); allowed: a "
                               "running MLflow server (mlflow server --host 127.0.0.1 --port 5000 ...) or "
                               "sqlite:///<path>"]) from None
    else:
        raise ConfigError([f"tracking_uri: {uri!r}; {URI_ALLOWED}"])


def _health_request(uri: str) -> tuple[urllib.request.Request, ssl.SSLContext | None]:
    """The probe of a server's /health with what MLflow's own client would send: its credentials (environment
    or ~/.mlflow/credentials) and its TLS settings, so that a server behind a login or a private CA passes."""
    from mlflow.utils.credentials import get_default_host_creds  # mlflow: only when a server is checked

    creds = get_default_host_creds(uri)
    request = urllib.request.Request(uri.rstrip("/") + "/health")
    if creds.username and creds.password:
        basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {basic}")
    elif creds.token:
        request.add_header("Authorization", f"Bearer {creds.token}")
    context = None
    if uri.startswith("https://"):
        context = ssl.create_default_context(cafile=creds.server_cert_path or None)
        if creds.ignore_tls_verification:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return request, context


def _sqlite_problem(path: Path, write: bool = True) -> str | None:
    """What keeps ``path`` from being an MLflow SQLite store, or None. A missing file is fine (MLflow creates
    it); an existing one must be a SQLite database that is empty or already holds MLflow's tables, so that
    MLflow never adds its tables to someone else's database."""
    try:
        if path.is_dir():
            return "is a folder"
        parent = path.parent
        if parent == results_dir():
            parent.mkdir(parents=True, exist_ok=True)
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            return f"folder {str(parent)!r} does not exist or is not writable"
        if not path.exists():
            return None
        if not path.is_file():
            return "is not a regular file"
        if not os.access(path, os.R_OK | (os.W_OK if write else 0)):
            return "is read-only (not writable by this user)" if os.access(path, os.R_OK) else "cannot be read"
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        return f"cannot be used ({e})"
    if not header:
        return None  # SQLite treats an empty file as an empty database
    if header != SQLITE_HEADER:
        return "is not a SQLite database"
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    except sqlite3.Error as e:
        return f"cannot be read as a SQLite database ({e})"
    if tables and not tables & {"alembic_version", "experiments"}:
        return f"is a SQLite database but not an MLflow store (tables: {', '.join(sorted(tables)[:5])})"
    return None
