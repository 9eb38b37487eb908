"""``rnn-bench ui`` (``make ui``): the MLflow UI on the embedded store, or a line on how to fill an empty one.

An empty store would open on an empty experiment with nothing to say what to do; the command says instead which
command fills it, and exits 2. It reads the SQLite file directly (no MLflow import) so that the answer is instant.

The link it prints opens the experiment on its training runs. MLflow 3's UI picks an experiment's view from its
"workflow type" (the sidebar's GenAI / Machine learning switch, remembered by the browser, GenAI until switched)
and not from the experiment's ``mlflow.experimentKind`` tag; the URL parameter ``workflowType=machine_learning``
sets it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from pathlib import Path

from bench.cli.args import integer
from bench.core.fields import ConfigError, shown

FILL = "`make first` (one sine run, under a minute), `make smoke` (a few minutes) or `make bench` (the default suite)"


def add_command(commands) -> None:
    ui = commands.add_parser("ui", help="browse the store's runs in the MLflow UI (make ui)",
                             description="Start the MLflow UI on the embedded store (results/mlflow.db of the "
                                         "working directory, or $RNN_BENCH_RESULTS), serving its artifacts; "
                                         "refuses with a hint when the store holds no run yet.")
    ui.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)")
    ui.add_argument("--port", type=integer(1, 65535), default=5000, help="port to serve on (default: 5000)")
    ui.add_argument("--tracking-uri", default=None, metavar="sqlite:///FILE",
                    help="another SQLite store to browse (default: the embedded one; an MLflow server is its own UI)")
    ui.set_defaults(handler=cmd_ui)


TRAINING_VIEW = "workflowType=machine_learning"


def experiment_with_runs(db: Path, experiment: str) -> str | None:
    """The id of ``experiment`` in the MLflow SQLite store ``db`` if it holds a run (None when the file, its
    tables, the experiment or its runs are missing)."""
    if not db.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            found = conn.execute("select e.experiment_id from experiments e join runs r on "
                                 "r.experiment_id = e.experiment_id where e.name = ? and "
                                 "r.lifecycle_stage = 'active' limit 1", (experiment,)).fetchone()
    except sqlite3.Error:
        return None
    return None if found is None else str(found[0])


def cmd_ui(args: argparse.Namespace) -> int:
    from bench.running import locations

    uri = args.tracking_uri or locations.default_tracking_uri()
    if not uri.startswith("sqlite:///"):
        raise ConfigError([f"tracking_uri: {shown(uri)}; allowed: sqlite:///<MLflow SQLite file> (a tracking server "
                           "serves its own UI: open its address)"])
    db = Path(uri.removeprefix("sqlite:///")).absolute()
    folder = db.parent
    experiment_id = experiment_with_runs(db, locations.EXPERIMENT)
    if experiment_id is None:
        raise ConfigError([f"ui: the store {locations.shown_path(db)} holds no run yet; allowed: a store with runs: "
                           f"{FILL} fills it"])
    print(f"MLflow UI of {locations.shown_path(db)}: http://{args.host}:{args.port}/#/experiments/{experiment_id}"
          f"?{TRAINING_VIEW} (Ctrl-C stops it)", flush=True)
    mlflow = Path(sys.executable).with_name("mlflow")
    os.execv(mlflow, [str(mlflow), "ui", "--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination",
                      str(folder / "mlartifacts"), "--host", args.host, "--port", str(args.port)])
