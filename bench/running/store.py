"""The project's one door to the MLflow store: every tracking call the harness makes goes through :class:`Store`.

Keeping them here gives three things one place each:
- **First use of a fresh store is serialized.** MLflow creates a SQLite store's tables (an alembic migration)
  and the experiment on first use; two processes doing so at once crash one of them (``table alembic_version
  already exists``, ``UNIQUE constraint failed``). A file lock beside the database serializes it across
  processes, and the known race errors are retried (a server migrates its own database at start).
- **Store failures read as one line.** A full disk, a read-only or corrupt database, a lock held too long or an
  unreachable server becomes :class:`StoreError`: ``store <uri>: <cause>``, never a page of SQLAlchemy
  traceback (MLflow's own logging of the error is silenced for that reason).
- **The write-once register** (:meth:`Store.set_once`) the claim protocol of :mod:`bench.running.claims` is built on
  (a param of a lease run, in the ledger experiment of :mod:`bench.running.leases`, never of a result run).
- **One name per metric** (:mod:`bench.core.metric_names`). A metric is stored under the harness's own name
  (``test/ce``, ``val/ce``, ``floor_all``): the name the pages, the CSVs, ``rnn-bench train`` and MLflow's search
  (``metrics.`test/ce```) all use. Runs written by earlier commits stored other forms (``test.ce``,
  ``floor/all``); reading, the store gives them their one name back (:func:`code_key`).
- **A store folder that can be moved.** A SQLite store's experiments keep their artifacts at
  ``mlflow-artifacts:/<experiment>`` (:meth:`Store.artifact_location`), which the store resolves against
  ``mlartifacts/`` beside the database, as ``mlflow server --artifacts-destination <that folder>`` (``make ui``)
  does; no absolute path is recorded, so the folder can be copied or moved. Artifacts recorded under an
  absolute ``file:`` path that is gone (stores written before) are looked up in that folder as well.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import resource
import shutil
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

from bench.config.settings import config_hash, run_name
from bench.core.metric_names import REFERENCES
from bench.core.names import check_name
SQLITE_PREFIX = "sqlite:///"
FINISHED, FAILED, KILLED, RUNNING = "FINISHED", "FAILED", "KILLED", "RUNNING"
# MLflow's log_batch limits: metrics, params and tags per call, and entities in all.
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 1000}
BATCH_TOTAL = 1000
# Errors two processes creating one store's tables or experiment at once run into; retrying resolves them.
CREATION_RACES = ("already exists", "UNIQUE constraint failed", "RESOURCE_ALREADY_EXISTS", "database is locked")

# How often system metrics (--system-metrics) are sampled: a short run still gets a few points. MLflow's
# MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL overrides it.
SYSTEM_METRICS_INTERVAL_S = 2.0
# Where a SQLite store's artifacts lie, beside the database; mlflow-artifacts:/<path> resolves to <that>/<path>.
ARTIFACTS_FOLDER = "mlartifacts"
PROXIED_ARTIFACTS = "mlflow-artifacts:"

# MLflow logs every SQLAlchemy error with its whole traceback before raising it; we report it in one line.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


# The experiment's kind (MLflow 3.17's UI reads its view from the workflowType URL parameter or the sidebar switch
# instead: see bench.cli.ui) and the description shown on its page (markdown: no <...>, which would be HTML).
EXPERIMENT_TAGS = {
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": "rnn-bench: recurrent cells, depths, directions and truncation lengths on tasks with "
                           "known answers. Each suite invocation is a parent run (suite/NAME) with one child run "
                           "per configuration, named what tells runs apart first (dep·lstm·L2bi·T10·s0·3f6d: task, "
                           "cell, depth and direction, truncation, seed; the last part, from the config hash, keeps "
                           "names unique). A diverged run ends FAILED with tag bench.outcome=diverged and a name that "
                           "starts with diverged·. The test figures are test/ce (dependency, nats) and test/rmse "
                           "(sine): search e.g. ``metrics.`test/ce` < 0.5`` (a name with a / goes in backticks).",
}


def has_result(status: str, outcome: str | None) -> bool:
    """Whether a run ended with a result: FINISHED, or FAILED with tag ``bench.outcome=diverged`` (a divergence
    is a result, ended FAILED so that the UI shows it as not successful; runs written before ended FINISHED).

    >>> has_result("FINISHED", None), has_result("FAILED", "diverged"), has_result("FAILED", "failed")
    (True, True, False)
    """
    return status == FINISHED or (status == FAILED and outcome == "diverged")


class StoreError(RuntimeError):
    """The store at ``uri`` cannot be used: ``store <uri>: <cause>``.

    ``partial``: the command had done part of its work (runs trained, result files written) when the store
    failed; the command line exits 1 then, else 2.
    """

    def __init__(self, uri: str, cause: str, partial: bool = False):
        super().__init__(f"store {uri}: {cause}")
        self.uri, self.cause, self.partial = uri, cause, partial

    def __reduce__(self):  # crosses process boundaries inside a run's outcome
        return StoreError, (self.uri, self.cause, self.partial)

    def after_work(self) -> StoreError:
        return StoreError(self.uri, self.cause, partial=True)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from, outermost first."""
    out: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in out):
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _messages(exc: BaseException) -> list[str]:
    return [str(e) for e in _chain(exc)]


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, links and ``..`` resolved, is ``folder`` (resolved) or lies under it."""
    resolved = path.resolve()
    return resolved == folder or folder in resolved.parents


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix(SQLITE_PREFIX)) if uri.startswith(SQLITE_PREFIX) else None


def code_key(stored: str) -> str:
    """The harness's name of a stored metric (:mod:`bench.core.metric_names`), whichever commit wrote it: earlier
    ones stored the figures logged once with ``.`` for ``/`` (``test.ce``, ``floor.all``), and the references as a
    split of their own (``floor/all``).

    >>> [code_key(k) for k in ("test.ce", "test/ce", "floor.all", "floor/all", "baseline/last_value_rmse")]
    ['test/ce', 'test/ce', 'floor_all', 'floor_all', 'baseline_last_value_rmse']
    >>> code_key("system/cpu_utilization_percentage")
    'system/cpu_utilization_percentage'
    """
    key = stored.replace(".", "/")
    for prefix in REFERENCES:
        if key.startswith(prefix.replace("_", "/")):
            return prefix + key[len(prefix):]
    return key


def dotted_key(key: str) -> str:
    """The name earlier commits stored the learning curve ``key`` under (``val.ce``; see :func:`code_key`)."""
    return key.replace("/", ".")


def _full_disk_hint(uri: str) -> str:
    """Why a SQLite write failed with an I/O error, when the disk or the file-size limit says so."""
    path = sqlite_path(uri)
    if path is None:
        return ""
    try:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and path.stat().st_size + 65536 >= limit:
            return f"; the database reached this process's file-size limit ({limit:,} bytes)"
        free = shutil.disk_usage(path.parent).free
        if free < 1 << 20:
            return f"; its disk is full ({free:,} bytes free)"
    except OSError:
        pass
    return ""


OPENED: dict[str, int] = {}  # SQLite store URI -> the inode of its database when this process first opened it


def _replaced(uri: str) -> bool:
    """Whether a SQLite store's database file is gone, or another file now (deleted and made anew), since this
    process opened it: SQLite then calls the open one read-only."""
    try:
        return sqlite_path(uri).stat().st_ino != OPENED.get(uri, sqlite_path(uri).stat().st_ino)
    except OSError:
        return True


def _schema_cause(uri: str) -> str | None:
    """Why MLflow finds a SQLite store's schema out of date, when its revision tells: one this MLflow does not
    know was written by a newer MLflow (``mlflow db upgrade`` cannot help)."""
    path = sqlite_path(uri)
    if path is None:
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            (revision,) = db.execute("select version_num from alembic_version").fetchone()
    except (sqlite3.Error, TypeError, ValueError):
        return None
    import mlflow  # mlflow: as in client
    from mlflow.store import db_migrations

    known = Path(db_migrations.__file__).parent / "versions"
    if any(known.glob(f"{revision}_*.py")):
        return None
    return (f"written by a newer MLflow (schema revision {revision}, unknown to MLflow {mlflow.__version__} here); "
            "upgrade MLflow here (pip install -U mlflow) or use a store this version wrote")


def describe(uri: str, exc: BaseException) -> str | None:
    """The cause, in a few words, when ``exc`` is the store failing (not a bug of ours); else None."""
    import sqlalchemy.exc  # MLflow's database layer: loaded with MLflow, not with this module

    text = " | ".join(_messages(exc))
    known = [("database or disk is full", "disk full (database or disk is full)"),
             ("attempt to write a readonly database", "read-only (attempt to write a readonly database)"),
             ("readonly database", "read-only (readonly database)"),
             ("database is locked", "locked by another process for longer than SQLite waits (database is locked)"),
             ("file is not a database", "corrupt or not an MLflow database (file is not a database)"),
             ("database disk image is malformed", "corrupt (database disk image is malformed)"),
             ("unable to open database file", "cannot be opened (unable to open database file)"),
             ("out-of-date database schema", "its schema is older than this MLflow; run `mlflow db upgrade "
                                             "<uri>` (out-of-date database schema)"),
             ("Can't locate revision identified by", "its schema revision is unknown to this MLflow"),
             ("disk I/O error", "disk I/O error")]
    if sqlite_path(uri) is not None and uri in OPENED and _replaced(uri):  # read-only, or "no such table" anew
        return f"its database file {sqlite_path(uri)} was deleted or moved while in use"
    for needle, cause in known:
        if needle in text:
            if needle in ("out-of-date database schema", "Can't locate revision identified by"):
                cause = _schema_cause(uri) or cause
            return cause + (_full_disk_hint(uri) if needle == "disk I/O error" else "")
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return f"disk full ({e.strerror})"
        if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"read-only ({e.strerror}: {e.filename})"
        if isinstance(e, OSError) and e.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
            return f"its folder cannot take the artifacts ({e.strerror}: {e.filename})"
        if isinstance(e, (sqlite3.Error, sqlalchemy.exc.OperationalError, sqlalchemy.exc.DatabaseError)):
            return str(getattr(e, "orig", None) or e).splitlines()[0]
        if type(e).__name__ in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "MaxRetryError"):
            return f"unreachable ({type(e).__name__}){UNREACHABLE_HINT}"
    if "API request to" in text and "failed" in text:
        return "unreachable (" + text.split(" | ")[0].splitlines()[0][:200] + ")" + UNREACHABLE_HINT
    return None


EXPERIMENT_IDS: dict[tuple[str, str], str] = {}  # (store URI, experiment name) -> id, found in this process


# A tracking server that stops answering is given up on within ~30 s a call (MLflow's own default is minutes of
# retries a call, which made a suite silent for a quarter of an hour): 3 tries of 8 s and ~3 s of backoff. Set
# MLflow's variables to choose otherwise.
SERVER_PATIENCE = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "8", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                   "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
UNREACHABLE_HINT = ("; check that the server runs and answers at that address (each call is given up after ~30 s: "
                    "MLFLOW_HTTP_REQUEST_TIMEOUT, MLFLOW_HTTP_REQUEST_MAX_RETRIES)")


class Store:
    """One MLflow tracking store (``sqlite:///…`` or ``http(s)://…``), with the calls the harness needs."""

    def __init__(self, uri: str):
        self.uri = uri
        if sqlite_path(uri) is None:
            for name, value in SERVER_PATIENCE.items():  # before MLflow's first request (its session is cached)
                os.environ.setdefault(name, value)
        self._client = None
        self._artifact_uris: dict[str, str] = {}  # of the runs this object created: saves a read per run

    # --- plumbing ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def errors(self, partial: bool = False):
        """Translate the store failing into :class:`StoreError`; anything else propagates unchanged."""
        try:
            yield
        except StoreError:
            raise
        except Exception as e:
            cause = describe(self.uri, e)
            if cause is None:
                raise
            raise StoreError(self.uri, cause, partial) from None

    @contextlib.contextmanager
    def _creation_lock(self):
        """Hold a file lock beside a SQLite database while its tables or experiment may be created."""
        path = sqlite_path(self.uri)
        if path is None:
            yield
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _retry_locked(self, make):
        """``make()`` under the creation lock, retried a few times on the errors of a creation race."""
        for attempt in range(5):
            try:
                with self._creation_lock():
                    return make()
            except Exception as e:  # noqa: BLE001 - only the known races are retried
                if attempt == 4 or not any(r in m for m in _messages(e) for r in CREATION_RACES):
                    raise
                time.sleep(0.2 * (attempt + 1))

    @property
    def client(self):
        """The MLflow client; on first use in this process the store (its tables) is opened under the lock."""
        if self._client is None:
            from mlflow import MlflowClient  # mlflow: not at start-up nor to validate (~1 s)

            with self.errors():
                self._client = self._retry_locked(lambda: MlflowClient(self.uri))
            if sqlite_path(self.uri) is not None and sqlite_path(self.uri).exists():
                OPENED.setdefault(self.uri, sqlite_path(self.uri).stat().st_ino)
        return self._client

    def _create(self, make):
        """``make(client)`` under the creation lock, retried on the errors of a creation race: for what several
        processes may create at once. The client is opened first (on first use, itself under the lock): flock
        is not reentrant."""
        client = self.client
        return self._retry_locked(lambda: make(client))

    # --- experiments ------------------------------------------------------------------------------------------

    def artifact_location(self, experiment: str) -> str | None:
        """Artifacts of a SQLite store live beside the database, one folder per experiment, recorded as
        ``mlflow-artifacts:/<experiment>`` (relative to that folder, so the store can move); a server chooses its
        own. The experiment name must be a safe name (:func:`bench.running.locations.check_name`): it stays inside
        ``mlartifacts``."""
        if sqlite_path(self.uri) is None:
            return None
        check_name("experiment", experiment)
        return f"{PROXIED_ARTIFACTS}/{experiment}"

    def artifact_folder(self, run_id: str) -> Path | None:
        """Where a run's artifacts lie in a SQLite store (None for a server, whose client moves them); see
        :meth:`local_artifacts`. Raises :class:`StoreError` if that is outside the store's folder."""
        if sqlite_path(self.uri) is None:
            return None
        return self.local_artifacts(self._artifact_uris.get(run_id) or self.get_run(run_id).info.artifact_uri,
                                    f"run {run_id}")

    def local_artifacts(self, uri: str, whose: str) -> Path:
        """The folder an artifact location of this SQLite store stands for: ``mlflow-artifacts:/<path>`` under
        ``mlartifacts/`` beside the database; a ``file:`` path an older store recorded, as is when inside the
        store's folder, else its part from ``mlartifacts/`` on, in this store's (the store was moved or copied).

        A store is data, maybe received from someone else: a location that resolves outside the store's folder
        (``mlflow-artifacts:/../..``, a ``file:`` path elsewhere) is refused, :class:`StoreError` naming
        ``whose`` location it is and where it leads, before anything is read or written there."""
        folder = sqlite_path(self.uri).parent.resolve()
        root = folder / ARTIFACTS_FOLDER
        path = Path(unquote(urlparse(uri).path))
        if uri.startswith(PROXIED_ARTIFACTS):
            path = root / path.relative_to(path.anchor)
        elif not _inside(path, folder) and ARTIFACTS_FOLDER in path.parts:
            parts = path.parts
            path = root.joinpath(*parts[len(parts) - parts[::-1].index(ARTIFACTS_FOLDER):])
        if not _inside(path, folder):
            raise StoreError(self.uri, f"{whose}: artifact location {uri!r} leads to {path.resolve()}, outside the "
                                       f"store's folder {folder}; allowed: a location inside it (this store was "
                                       "altered: nothing is read or written there)")
        return path

    def find_experiment(self, name: str) -> str | None:
        """The id of experiment ``name``, or None where the store has none (see :meth:`experiment_id`)."""
        known = EXPERIMENT_IDS.get((self.uri, name))
        if known is not None:
            return known
        with self.errors():
            found = self.client.get_experiment_by_name(name)
        return None if found is None else found.experiment_id

    def experiment_id(self, name: str, tags: dict[str, str] = EXPERIMENT_TAGS) -> str:
        """The id of experiment ``name``, created (with the store's tables) if missing, with ``tags`` (its kind and
        description); looked up once per store and name in a process, since every run of a suite asks (an
        experiment keeps its id while it exists)."""
        known = EXPERIMENT_IDS.get((self.uri, name))
        if known is not None:
            return known

        def ensure(client) -> str:
            found = client.get_experiment_by_name(name)
            if found is not None:
                if sqlite_path(self.uri) is not None and found.artifact_location:
                    self.local_artifacts(found.artifact_location, f"experiment {name!r}")  # its new runs' artifacts
                for key, value in tags.items():  # a store made before keeps up: its description renders
                    if found.tags.get(key) != value:
                        client.set_experiment_tag(found.experiment_id, key, value)
                return found.experiment_id
            return client.create_experiment(name, artifact_location=self.artifact_location(name), tags=tags)

        with self.errors():
            EXPERIMENT_IDS[self.uri, name] = self._create(ensure)
        return EXPERIMENT_IDS[self.uri, name]

    # --- runs: writing ----------------------------------------------------------------------------------------

    def create_run(self, experiment_id: str, name: str | None, tags: dict[str, str],
                   params: dict | None = None) -> str:
        with self.errors():
            info = self.client.create_run(experiment_id, run_name=name, tags=tags).info
        run_id = info.run_id
        self._artifact_uris[run_id] = info.artifact_uri
        if params:
            self.log(run_id, params=params)
        return run_id

    def log(self, run_id: str, metrics: list[tuple] = (), params: dict | None = None,
            tags: dict[str, str] | None = None) -> None:
        """Log ``metrics`` (``(key, value, timestamp_ms, step)`` rows),
        ``params`` and ``tags`` in as few batches as MLflow allows."""
        from mlflow.entities import Metric, Param, RunTag  # mlflow: as in client

        left = {"metrics": [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in metrics],
                "params": [Param(k, str(v)) for k, v in (params or {}).items()],
                "tags": [RunTag(k, str(v)) for k, v in (tags or {}).items()]}
        with self.errors():
            while any(left.values()):
                batch, room = {}, BATCH_TOTAL
                for kind, items in left.items():
                    take = min(BATCH_LIMITS[kind], room, len(items))
                    batch[kind], left[kind], room = items[:take], items[take:], room - take
                self.client.log_batch(run_id, **batch)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self.log(run_id, [(k, v, now, step) for k, v in metrics.items()])

    def log_artifacts(self, run_id: str, paths: list[Path | str], artifact_path: str | None = None) -> None:
        """Log files on a run. Callers log artifacts once their results exist, so a failure here comes after
        work was done: its :class:`StoreError` is marked ``partial``."""
        with self.errors(partial=True):
            folder = self.artifact_folder(run_id)
            for path in paths:
                if folder is None:
                    self.client.log_artifact(run_id, str(path), artifact_path)
                    continue
                target = folder / (artifact_path or "")
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / Path(path).name)

    def download_artifact(self, run_id: str, path: str, folder: Path | str) -> Path | None:
        """A run's artifact ``path`` copied into ``folder``, or None when the run has none by that name."""
        with self.errors():
            stored = self.artifact_folder(run_id)
            if stored is not None:
                if not (stored / path).is_file():
                    return None
                Path(folder).mkdir(parents=True, exist_ok=True)
                return Path(shutil.copyfile(stored / path, Path(folder) / Path(path).name))
            if path not in {a.path for a in self.client.list_artifacts(run_id)}:
                return None
            return Path(self.client.download_artifacts(run_id, path, str(folder)))

    def log_input(self, run_id: str, name: str, digest: str, source: dict, profile: dict, context: str) -> None:
        """Record the data set a run used as an MLflow dataset input (the UI's "Datasets used"): ``source`` says
        where the data come from, ``profile`` what defines them; ``context`` says what the run used it for."""
        from mlflow.entities import Dataset, DatasetInput, InputTag  # mlflow: as in client
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        dataset = Dataset(name=name, digest=digest, source_type="code", source=json.dumps(source),
                          profile=json.dumps(profile))
        inputs = [DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, context)])]
        with self.errors():
            # Runs on one data set share its row, which MLflow creates if missing: two workers doing so at once
            # collide on its unique key (datasets.experiment_id, name, digest).
            self._create(lambda client: client.log_inputs(run_id, inputs))

    @contextlib.contextmanager
    def system_metrics(self, run_id: str):
        """While the block runs, sample this machine's CPU, memory, disk, network (and NVIDIA GPUs, through
        nvidia-ml-py) into the run as ``system/*`` metrics, when MLflow's switch
        ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` is on (``--system-metrics`` turns it on); else nothing.

        MLflow's monitor attaches itself only to runs started with ``mlflow.start_run``; ours are made by the
        client, so it is started here for the run id. It publishes a sample per interval; what it took since
        the last one is published on leaving, so a run shorter than the interval still gets its point."""
        from mlflow.environment_variables import MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING  # mlflow: as in client

        if not MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get():
            yield
            return
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor  # mlflow: as in client

        monitor = SystemMetricsMonitor(run_id, sampling_interval=SYSTEM_METRICS_INTERVAL_S, tracking_uri=self.uri)
        monitor.start()
        try:
            yield
        finally:
            monitor.finish()
            last = monitor.aggregate_metrics()
            if last:
                with self.errors():
                    monitor.publish_metrics(last)
                    monitor.mlflow_logger.flush()

    def set_terminated(self, run_id: str, status: str) -> None:
        with self.errors():
            self.client.set_terminated(run_id, status)

    def end(self, run_id: str, status: str, tags: dict[str, str] | None = None, metrics: list[tuple] = ()) -> None:
        """Log the run's last ``metrics`` (rows as for :meth:`log`) and tags (its outcome and reason) in one
        batch, then end it with ``status``."""
        if tags or metrics:
            self.log(run_id, metrics, tags=tags)
        self.set_terminated(run_id, status)

    def set_once(self, run_id: str, key: str, value: str) -> str | None:
        """Write param ``key`` of run ``run_id`` unless it is set; return the value it holds afterwards (None if
        the run was deleted meanwhile and takes no params).

        A param cannot change once written: the store rejects a second, different value (the params table's
        primary key; SQLite and every server alike), and answers a race with the value that won, so exactly one
        of several concurrent writers gets its value in. That makes each param an atomic compare-and-set register.
        """
        from mlflow.exceptions import MlflowException  # mlflow: as in client

        with self.errors():
            try:
                self.client.log_param(run_id, key, value)
                return value
            except MlflowException as e:
                if e.error_code != "INVALID_PARAMETER_VALUE":
                    raise
            return self.client.get_run(run_id).data.params.get(key)

    def mark_failed(self, experiment_id: str, run_id: str | None, cfg: dict, parent_run_id: str, reason: str,
                    create: bool = True, status: str = FAILED) -> None:
        """Mark FAILED (or ``status``: KILLED for a run stopped on purpose), with ``reason``, the run ``run_id``
        or, when its id is unknown (a worker may die after creating its run but before reporting it; Ray retries
        leave several), every attempt of ``cfg`` under ``parent_run_id`` still RUNNING. With ``create``, a run
        that says so is recorded if there is none."""
        cfg_hash = config_hash(cfg)
        run_ids = [run_id] if run_id else [run.info.run_id for run in self.search(
            experiment_id, f"tags.`bench.config_hash` = '{cfg_hash}' and "
            f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'")]
        if not run_ids and create:
            tags = {"bench.config_hash": cfg_hash, "mlflow.parentRunId": parent_run_id}
            run_ids = [self.create_run(experiment_id, run_name(cfg), tags)]
        for failed in run_ids:
            if status == FAILED or self.ended_status(experiment_id, failed) is None:  # a stopped run's own word stands
                self.end(failed, status, {"bench.outcome": status.lower(), "bench.reason": reason})

    # --- runs: reading ----------------------------------------------------------------------------------------

    def get_run(self, run_id: str):
        """The MLflow run as stored (its metrics under their stored names: :meth:`metrics` gives the harness's)."""
        with self.errors():
            return self.client.get_run(run_id)

    def ended_status(self, experiment_id: str, run_id: str) -> str | None:
        """The status of run ``run_id`` of the experiment if it is no longer RUNNING, else None: a query that finds
        nothing for a running run, about half the time of reading the whole run (:meth:`get_run`)."""
        with self.errors():
            found = self.client.search_runs([experiment_id], f"attributes.run_id = '{run_id}' and "
                                                             f"attributes.status != '{RUNNING}'", max_results=1)
        return found[0].info.status if found else None

    def metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric of the run, under the harness's names (:func:`code_key`)."""
        return {code_key(k): v for k, v in self.get_run(run_id).data.metrics.items()}

    def search(self, experiment_id: str | list[str], filter_string: str = "") -> list:
        """Every run of the experiment (or experiments: one query) that matches ``filter_string`` (all pages)."""
        runs, token = [], None
        ids = [experiment_id] if isinstance(experiment_id, str) else experiment_id
        with self.errors():
            while True:
                page = self.client.search_runs(ids, filter_string, max_results=1000, page_token=token)
                runs += list(page)
                token = page.token
                if not token:
                    return runs

    def finished_hashes(self, experiment_id: str) -> dict[str, str]:
        """Config hash -> run id of every run in the experiment that ended with a result (:func:`has_result`)."""
        found: dict[str, str] = {}
        diverged = "attributes.status = 'FAILED' and tags.`bench.outcome` = 'diverged'"
        finished = self.search(experiment_id, "attributes.status = 'FINISHED'")
        for run in [*finished, *self.search(experiment_id, diverged)]:
            h = run.data.tags.get("bench.config_hash")
            if h:
                found.setdefault(h, run.info.run_id)
        return found

    def finished_results(self, experiment_id: str, started_after_ms: int = 0) -> dict[str, tuple[str, dict]]:
        """Config hash -> (outcome: finished or diverged, metrics under the harness's names) of the latest run of
        each configuration that ended with a result (FINISHED, or FAILED as diverged) started at or after
        ``started_after_ms``."""
        found: dict[str, tuple[str, dict]] = {}
        since = f"attributes.start_time >= {started_after_ms}"
        runs = [*self.search(experiment_id, f"attributes.status = 'FINISHED' and {since}"),
                *self.search(experiment_id, f"attributes.status = 'FAILED' and tags.`bench.outcome` = 'diverged' "
                                            f"and {since}")]
        for run in sorted(runs, key=lambda r: -r.info.start_time):
            h = run.data.tags.get("bench.config_hash")
            if h and h not in found:
                found[h] = (run.data.tags.get("bench.outcome", "finished"),
                            {code_key(k): v for k, v in run.data.metrics.items()})
        return found

    def runs_frame(self, experiment: str):
        """Every run of the experiment as :func:`mlflow.search_runs` gives them, metric columns under the harness's
        names (``metrics.test/ce``); empty if there is none."""
        import mlflow  # mlflow and pandas: only when results are read
        import pandas as pd

        experiment_id = self.find_experiment(experiment)
        runs = pd.DataFrame(columns=["run_id", "status", "start_time"])
        if experiment_id is not None:
            previous = mlflow.get_tracking_uri()
            mlflow.set_tracking_uri(self.uri)  # search_runs reads the store from the global setting only
            try:
                with self.errors():
                    runs = mlflow.search_runs([experiment_id], max_results=1_000_000)
            finally:
                mlflow.set_tracking_uri(previous)
        for column in [c for c in runs.columns if c.startswith("metrics.")]:
            named = "metrics." + code_key(column.removeprefix("metrics."))
            if named != column:  # as an earlier commit stored it
                runs[named] = runs.pop(column) if named not in runs else runs[named].combine_first(runs.pop(column))
        for column in ("tags.bench.config_hash", "tags.bench.role", "tags.bench.suite"):
            if column not in runs:
                runs[column] = None
        return runs

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of metric ``key`` (the harness's name; a run written by an earlier commit may hold it
        under :func:`dotted_key`)."""
        with self.errors():
            found = self.client.get_metric_history(run_id, key)
            if not found and dotted_key(key) != key:
                found = self.client.get_metric_history(run_id, dotted_key(key))
            return [(m.step, m.value) for m in found]

    def metric_histories(self, run_ids: list[str], keys: list[str]) -> dict[str, dict[str, list]]:
        """run id -> metric key -> [(step, value), …], fetched a few runs at a time."""
        self.client  # noqa: B018 - open the store once, before the threads share the client

        def fetch(run_id: str) -> dict[str, list]:
            return {key: self.metric_history(run_id, key) for key in keys}

        with ThreadPoolExecutor(max_workers=4) as pool:
            return dict(zip(run_ids, pool.map(fetch, run_ids)))
