"""Every malformed input, at every entry point: exit 2, at most three ``error: …`` lines naming the setting and
the value and saying what is allowed, no traceback, nothing written (the store's folder and every file beside it
unchanged, no results folder).

One table of command lines; each runs the real entry point (:func:`bench.cli.main.main`, :func:`bench.cli.perf.main`)
in-process against a fresh SQLite store in the test's folder. A few also run as real ``python -m`` processes,
to show that no traceback reaches stderr there either.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cli import main as cli, perf
from bench.running import locations
from bench.config.settings import ConfigError
from bench.reporting.regress import load_baseline
from bench.running.store import EXPERIMENT_IDS

REPO = Path(__file__).resolve().parents[1]

FIXED = "fixed: {task: dependency, hidden: 4, series_length: 20000, eval_length: 4000, batch_size: 20}\n"
GOOD_SUITE = "axes: {seed: [0, 1]}\n" + FIXED
DIR = object()  # a folder, where a file is expected


def _baseline(mean: str) -> str:
    entry = (f'{{"metric": "test/ce", "values": [0.5], "target": 0.4645, "mean": {mean}, "std": 0.0, "n": 1, '
             '"runs": 1, "diverged": 0, "failed": 0, "reached_target": false, "samples_per_s": 100.0}')
    return ('{"suite": "good", "suite_hash": "x", "commit": "x", "date": "x", '
            f'"configurations": {{"dependency/lstm-L1-uni-T10": {entry}}}}}')


# A "billion laughs": nine levels of nine aliases each, 10**9 values expanded from 350 bytes.
BOMB = "axes: {seed: [0]}\nfixed: {hidden: 4}\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))


# The files a case may name, created afresh in every test's folder: {name} in a command line is its path.
FILES = {
    "good.yaml": GOOD_SUITE,
    "...yaml": GOOD_SUITE,  # its name, "..", would become results/..
    "dir.yaml": DIR,
    "latin1.yaml": "axes: {seed: [0]}\n# café\n".encode("latin-1"),
    "deep.yaml": "axes: " + "[" * 1000 + "]" * 1000 + "\n",  # PyYAML recurses per level: RecursionError
    "broken.yaml": "axes: {seed: [0, 1]\nfixed: [\n",
    "list.yaml": "- seed\n- 0\n",
    "inf_seed.yaml": "axes: {seed: [.inf]}\n" + FIXED,
    "nan_lr.yaml": "axes: {seed: [0], lr: [.nan]}\n" + FIXED,
    "big_seed.yaml": "axes: {seed: [0, 4294967296]}\n" + FIXED,
    "huge_hidden.yaml": "axes: {seed: [0]}\nfixed: {hidden: 100000000000000000000}\n",
    "inf_weights.yaml": "axes: {seed: [0]}\n" + FIXED + "tasks: {dependency: {weights: [0.5, -.inf]}}\n",
    "matrix.yaml": f"axes: {{seed: {list(range(1000))}, hidden: {list(range(1, 201))}}}\n" + FIXED,
    "semi;colon.yaml": GOOD_SUITE,
    "notes.txt": "not a database\n",
    "file": "a file where a folder is expected\n",
    "dir.json": DIR,
    "latin1.json": '{"suite": "café"}'.encode("latin-1"),
    "deep.json": "[" * 100_000 + "]" * 100_000,
    "nan.json": _baseline("NaN"),
    "inf.json": _baseline("Infinity"),
    "broken.json": '{"suite": ',
    "huge_model.yaml": "axes: {seed: [0, 1], layers: [1, 64]}\nfixed: {hidden: 4096, bidirectional: true}\n",
    "bomb.yaml": BOMB,
    "bomb_config.yaml": "config:\n" + "".join("  " + line + "\n" for line in BOMB.splitlines()),
    # Config files received from someone else: code they would run, and a plug-in module that says if it ran.
    "pwn_config.yaml": "config: {task: dependency, cell: 'pwn_plugin:cell'}\n",
    "exit_config.yaml": "config: {task: 'sys:exit'}\n",
    "pwn_plugin.py": "open(__file__ + '.ran', 'w').close()\ndef cell(*args):\n    raise SystemExit(0)\n",
}


@dataclass
class Case:
    id: str
    argv: str  # split on spaces; {name} is the path of FILES[name], {store} the fresh store's URI, {tmp} the folder
    mentions: tuple[str, ...]  # what stderr must name: the setting and the value

    @property
    def command(self) -> str:
        return self.argv.partition(" ")[0]


C = Case
CASES = [
    # --- train: every common field, non-finite and out-of-range values, names, stores, flags -----------
    C("lr inf", "train --lr inf", ("lr", "'inf'")),
    C("lr nan", "train --lr nan", ("lr", "'nan'")),
    C("lr -inf", "train --lr=-inf", ("lr", "'-inf'")),
    C("lr 0", "train --lr 0", ("lr", "'0'")),
    C("lr text", "train --lr fast", ("lr", "'fast'")),
    C("lr huge", "train --lr 1e999", ("lr", "'1e999'")),
    C("seed 2**32", "train --seed 4294967296", ("seed", "'4294967296'")),
    C("seed -1", "train --seed -1", ("seed", "'-1'")),
    C("seed 1.5", "train --seed 1.5", ("seed", "'1.5'")),
    C("hidden 1e20", "train --hidden 100000000000000000000", ("hidden", "'100000000000000000000'")),
    C("hidden 0", "train --hidden 0", ("hidden", "'0'")),
    C("hidden 4097", "train --hidden 4097", ("hidden", "'4097'")),
    C("layers 65", "train --layers 65", ("layers", "'65'")),
    C("batch_size 10**6", "train --batch-size 1000000", ("batch_size", "'1000000'")),
    C("truncation 10**5+1", "train --truncation 100001", ("truncation", "'100001'")),
    C("dropout nan", "train --dropout nan", ("dropout", "'nan'")),
    C("dropout 1", "train --dropout 1", ("dropout", "'1'")),
    C("grad_clip inf", "train --grad-clip inf", ("grad_clip", "'inf'")),
    C("grad_clip -1", "train --grad-clip -1", ("grad_clip", "'-1'")),
    C("epochs 0", "train --epochs 0", ("epochs", "'0'")),
    C("max_steps 10**9", "train --max-steps 1000000000", ("max_steps", "'1000000000'")),
    C("both unbounded", "train --epochs -1 --max-steps -1", ("epochs/max_steps",)),
    C("val_every -1", "train --val-every -1", ("val_every", "'-1'")),
    C("log_every 0", "train --log-every 0", ("log_every", "'0'")),
    C("steps_per_batch 0", "train --steps-per-batch 0", ("steps_per_batch", "'0'")),
    C("cell", "train --cell transformer", ("cell", "'transformer'")),
    C("optimizer", "train --optimizer lbfgs", ("optimizer", "'lbfgs'")),
    C("lr_schedule", "train --lr-schedule step", ("lr_schedule", "'step'")),
    C("task", "train --task speech", ("task", "'speech'")),
    C("bidirectional", "train --bidirectional maybe", ("bidirectional", "'maybe'")),
    C("weights nan", "train --weights 0.5,nan", ("weights", "'0.5,nan'")),
    C("base inf", "train --base inf", ("base", "'inf'")),
    C("frequency inf", "train --task sine --frequency inf", ("frequency", "'inf'")),
    C("amplitude nan", "train --task sine --amplitude nan", ("amplitude", "'nan'")),
    C("noise -inf", "train --task sine --noise=-inf", ("noise", "'-inf'")),
    C("threads -1", "train --threads -1", ("--threads", "'-1'")),
    C("threads 0", "train --threads 0", ("--threads", "'0'")),
    C("system metrics with a value", "train --system-metrics=yes", ("--system-metrics", "'yes'")),
    C("threads text", "train --threads x", ("--threads", "'x'")),
    C("device", "train --device tpu", ("device", "'tpu'")),
    C("device cuda:x", "train --device cuda:x", ("device", "'cuda:x'")),
    C("experiment empty", "train --experiment=", ("experiment", "''")),
    C("experiment ../../y", "train --experiment ../../y", ("experiment", "'../../y'")),
    C("experiment absolute", "train --experiment {tmp}/elsewhere", ("experiment", "elsewhere'")),
    C("experiment ..", "train --experiment ..", ("experiment", "'..'")),
    C("experiment with separator", "train --experiment a/b", ("experiment", "'a/b'")),
    C("store is a folder", "train --tracking-uri sqlite:///{tmp}", ("tracking_uri", "is a folder")),
    C("store is a text file", "train --tracking-uri sqlite:///{notes.txt}", ("tracking_uri", "not a SQLite")),
    C("store is another database", "train --tracking-uri sqlite:///{other.db}", ("tracking_uri", "not an MLflow")),
    C("store folder missing", "train --tracking-uri sqlite:///{tmp}/no/mlflow.db", ("tracking_uri", "/no")),
    C("store under a file", "train --tracking-uri sqlite:///{file}/mlflow.db", ("tracking_uri", "file/mlflow.db")),
    C("store scheme", "train --tracking-uri file:///tmp/x", ("tracking_uri", "'file:///tmp/x'")),
    C("store bad host", "train --tracking-uri http://[::1", ("tracking_uri", "'http://[::1'")),
    C("store unreachable", "train --tracking-uri http://127.0.0.1:9", ("tracking_uri", "unreachable")),
    C("config names code", "train --config {pwn_config.yaml}", ("--config", "cell", "'pwn_plugin:cell'",
                                                                  "--trust-config")),
    C("config names sys:exit", "train --config {exit_config.yaml}", ("--config", "task", "'sys:exit'")),
    C("trusted config's plug-in exits", "train --config {exit_config.yaml} --trust-config",
      ("task", "'sys:exit'", "SystemExit")),
    C("plug-in task exits", "train --task sys:exit", ("task", "'sys:exit'", "SystemExit")),
    C("model too big for memory", "train --hidden 4096 --layers 64 --bidirectional",
      ("hidden/layers", "lstm hidden 4096 × layers 64 × bidirectional", "GiB to train", "GiB free")),
    C("unknown flag", "train --colour red", ("--colour",)),
    C("flag without value", "train --layers", ("--layers",)),
    C("no command", "", ("command",)),
    C("unknown command", "fly", ("'fly'",)),
    # --- run: suite files and names, matrix values, runner flags --------------------------------------
    C("suite named ..", "run --suite {...yaml}", ("suite", "'..'")),
    C("suite name with separator", "run --suite ../x", ("suite", "'../x'")),
    C("suite name empty", "run --suite=", ("suite", "''")),
    C("suite name unsafe", "run --suite {semi;colon.yaml}", ("suite", "'semi;colon'")),
    C("suite missing", "run --suite no-such-suite", ("suite", "'no-such-suite'")),
    C("run system metrics with a value", "run --system-metrics=1", ("--system-metrics", "'1'")),
    C("suite is a folder", "run --suite {dir.yaml}", ("suite", "dir.yaml")),
    C("suite not utf-8", "run --suite {latin1.yaml}", ("latin1.yaml", "UTF-8")),
    C("suite nested too deeply", "run --suite {deep.yaml}", ("deep.yaml", "nested")),
    C("suite not yaml", "run --suite {broken.yaml}", ("broken.yaml", "YAML")),
    C("suite not a mapping", "run --suite {list.yaml}", ("list.yaml", "list")),
    C("suite model too big for memory", "run --suite {huge_model.yaml}", ("hidden/layers", "GiB free", "1 more")),
    C("suite alias bomb", "run --suite {bomb.yaml}", ("bomb.yaml", "aliases expand to more than 100,000")),
    C("config alias bomb", "train --config {bomb_config.yaml}", ("--config", "aliases expand")),
    C("compile suite alias bomb", "compile --suite {bomb.yaml}", ("bomb.yaml", "aliases expand")),
    C("suite seed .inf", "run --suite {inf_seed.yaml}", ("axes.seed", "inf")),
    C("suite lr .nan", "run --suite {nan_lr.yaml}", ("axes.lr", "nan")),
    C("suite seed 2**32", "run --suite {big_seed.yaml}", ("axes.seed", "4294967296")),
    C("suite hidden 1e20", "run --suite {huge_hidden.yaml}", ("fixed.hidden", "100000000000000000000")),
    C("suite weights -inf", "run --suite {inf_weights.yaml}", ("weights", "inf")),
    C("suite too many runs", "run --suite {matrix.yaml}", ("axes", "200000 combinations")),
    C("axis seed 2**32", "run --suite {good.yaml} --axis seed=0,4294967296", ("--axis seed=", "'4294967296'")),
    C("axis lr inf", "run --suite {good.yaml} --axis lr=0.1,inf", ("--axis lr=", "'inf'")),
    C("axis without values", "run --suite {good.yaml} --axis seed", ("--axis", "'seed'")),
    C("set hidden 1e20", "run --suite {good.yaml} --set hidden=100000000000000000000", ("--set hidden=",)),
    C("set dropout nan", "run --suite {good.yaml} --set dropout=nan", ("--set dropout=", "'nan'")),
    C("workers text", "run --suite {good.yaml} --workers x", ("--workers", "'x'")),
    C("workers -1", "run --suite {good.yaml} --workers -1", ("--workers", "'-1'")),
    C("per-device 0", "run --suite {good.yaml} --per-device 0", ("--per-device", "'0'")),
    C("executor", "run --suite {good.yaml} --executor spark", ("--executor", "'spark'")),
    C("run device", "run --suite {good.yaml} --device gpu", ("device", "'gpu'")),
    C("ray address", "run --suite {good.yaml} --executor ray --address head", ("--address", "'head'")),
    C("address without ray", "run --suite {good.yaml} --address auto", ("--address", "--executor ray")),
    C("run experiment", "run --suite {good.yaml} --experiment ../../y", ("experiment", "'../../y'")),
    C("run store is a folder", "run --suite {good.yaml} --tracking-uri sqlite:///{tmp}", ("tracking_uri",)),
    # --- compile ---------------------------------------------------------------------------------------
    C("compile suite named ..", "compile --suite {...yaml}", ("suite", "'..'")),
    C("compile suite path as name", "compile --suite ../../README", ("suite", "'../../README'")),
    C("compile suite folder", "compile --suite {dir.yaml}", ("suite", "dir.yaml")),
    C("compile suite not utf-8", "compile --suite {latin1.yaml}", ("latin1.yaml", "UTF-8")),
    C("compile experiment empty", "compile --suite {good.yaml} --experiment=", ("experiment", "''")),
    C("compile store text file", "compile --suite {good.yaml} --tracking-uri sqlite:///{notes.txt}",
      ("tracking_uri",)),
    # --- baseline --------------------------------------------------------------------------------------
    C("baseline out is a folder", "baseline --suite {good.yaml} --out {tmp}", ("--out", "is a folder")),
    C("baseline out under a file", "baseline --suite {good.yaml} --out {file}/b.json", ("--out", "file/b.json")),
    C("baseline suite named ..", "baseline --suite {...yaml}", ("suite", "'..'")),
    C("baseline suite nested", "baseline --suite {deep.yaml}", ("deep.yaml", "nested")),
    C("baseline experiment", "baseline --suite {good.yaml} --experiment /abs", ("experiment", "'/abs'")),
    C("baseline store folder", "baseline --suite {good.yaml} --tracking-uri sqlite:///{tmp}", ("tracking_uri",)),
    # --- regress: baseline files and thresholds --------------------------------------------------------
    C("baseline file is a folder", "regress --suite {good.yaml} --baseline {dir.json}", ("baseline", "dir.json")),
    C("baseline file not utf-8", "regress --suite {good.yaml} --baseline {latin1.json}", ("baseline", "UTF-8")),
    C("baseline file nested", "regress --suite {good.yaml} --baseline {deep.json}", ("baseline", "nested")),
    C("baseline file not json", "regress --suite {good.yaml} --baseline {broken.json}", ("baseline", "JSON")),
    C("compare alpha 0", "compare a b --alpha 0", ("--alpha", "'0'")),
    C("compare one side", "compare a", ("B",)),
    C("history alpha 2", "history --alpha 2", ("--alpha", "'2'")),
    C("history suite outside", "history --suite ../x", ("suite", "'../x'")),
    C("baseline file missing", "regress --suite {good.yaml} --baseline {tmp}/none.json", ("baseline", "none.json")),
    C("baseline mean NaN", "regress --suite {good.yaml} --baseline {nan.json}", ("mean", "nan")),
    C("baseline mean Infinity", "regress --suite {good.yaml} --baseline {inf.json}", ("mean", "inf")),
    C("alpha nan", "regress --suite {good.yaml} --alpha nan", ("--alpha", "'nan'")),
    C("alpha 1", "regress --suite {good.yaml} --alpha 1", ("--alpha", "'1'")),
    C("slow-ratio 0", "regress --suite {good.yaml} --slow-ratio 0", ("--slow-ratio", "'0'")),
    C("slow-ratio inf", "regress --suite {good.yaml} --slow-ratio inf", ("--slow-ratio", "'inf'")),
    C("min-delta nan", "regress --suite {good.yaml} --min-delta sine=nan", ("--min-delta", "sine=nan")),
    C("min-delta inf", "regress --suite {good.yaml} --min-delta sine=inf", ("--min-delta", "sine=inf")),
    C("min-delta task", "regress --suite {good.yaml} --min-delta speech=0.1", ("--min-delta", "speech=0.1")),
    C("regress experiment", "regress --suite {good.yaml} --experiment ../x", ("experiment", "'../x'")),
    C("regress suite named ..", "regress --suite {...yaml}", ("suite", "'..'")),
    # --- ui --------------------------------------------------------------------------------------------------
    C("ui empty store", "ui", ("ui", "holds no run", "make first")),
    C("ui port word", "ui --port web", ("--port", "'web'")),
    C("ui server store", "ui --tracking-uri http://127.0.0.1:5000", ("tracking_uri", "sqlite:///")),
    # --- python -m bench.cli.perf --------------------------------------------------------------------------
    C("perf scale", "perf --scale huge", ("--scale", "'huge'")),
    C("perf out is a folder", "perf --out {tmp}", ("--out", "is a folder")),
    C("perf out under a file", "perf --out {file}/perf.md", ("--out", "file/perf.md")),
    C("perf store is a folder", "perf --tracking-uri sqlite:///{tmp}", ("tracking_uri", "is a folder")),
    C("perf store scheme", "perf --tracking-uri ftp://host/x", ("tracking_uri", "'ftp://host/x'")),
    C("perf unknown flag", "perf --fast", ("--fast",)),
]


def make_folder(root: Path) -> Path:
    """Every file of :data:`FILES`, a SQLite database that is not an MLflow store and an empty ``store/`` for
    the fresh store, in ``root``."""
    for name, content in FILES.items():
        path = root / name
        if content is DIR:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    with closing(sqlite3.connect(root / "other.db")) as db:
        db.execute("create table users (name text)")
    (root / "store").mkdir()
    return root


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The test's folder (:func:`make_folder`), with the default results folder pointed inside, not created."""
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return make_folder(tmp_path)


def command_line(case: Case, folder: Path) -> list[str]:
    """The case's arguments with {name} replaced by paths in ``folder``, and the fresh store unless it names one."""
    argv = case.argv.split()
    for name in ["tmp", "other.db", *FILES]:
        argv = [a.replace("{" + name + "}", str(folder if name == "tmp" else folder / name)) for a in argv]
    if case.command and not any(a.startswith("--tracking-uri") for a in argv):
        argv += ["--tracking-uri", f"sqlite:///{folder / 'store' / 'mlflow.db'}"]
    return argv


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under ``folder`` with its size and modification time: any write shows."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def assert_refused(code: int, out: str, err: str, case: Case) -> None:
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert 1 <= len(lines) <= 3 and all(line.startswith("error: ") for line in lines), err
    assert "allowed" in err, err
    for mention in case.mentions:
        assert mention in err, (mention, err)
    assert out == ""  # nothing started


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, folder, capsys):
    argv = command_line(case, folder)
    before = snapshot(folder)
    code = perf.main(argv[1:]) if case.command == "perf" else cli.main(argv)
    out, err = capsys.readouterr()
    assert_refused(code, out, err, case)
    assert snapshot(folder) == before  # no store, no artifacts, no results, no file touched
    assert not (folder / "results").exists()


def test_the_table_covers_every_entry_point(capsys):
    """Every command the CLI has (read from its own ``--help``), and ``make perf``'s, has cases in the table,
    beside a missing and an unknown command: a command added without any is a failure here."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    usage = capsys.readouterr().out
    commands = set(usage[usage.index("{") + 1 : usage.index("}")].split(","))
    assert len(commands) >= 5, usage
    assert {c.command for c in CASES} == commands | {"perf", "", "fly"}
    assert len({c.id for c in CASES}) == len(CASES)


def test_the_nan_baseline_is_refused_for_its_nan_alone(folder):
    """The same baseline document with null for NaN loads: the NaN cases fail for the NaN, not the shape."""
    path = folder / "null.json"
    path.write_text(_baseline("null"))
    assert list(load_baseline(path)["configurations"]) == ["dependency/lstm-L1-uni-T10"]
    with pytest.raises(ConfigError, match="mean: nan; allowed: a number or null"):
        load_baseline(folder / "nan.json")


# ------------------------------------------------------------------------------- the bounds themselves are fine

def test_the_largest_allowed_values_are_accepted():
    from bench.config import settings

    cfg = settings.resolve({"task": "sine", "hidden": settings.MAX_HIDDEN, "layers": settings.MAX_LAYERS,
                            "seed": settings.MAX_SEED, "max_steps": settings.MAX_STEPS,
                            "val_every": settings.MAX_STEPS, "log_every": settings.MAX_STEPS,
                            "steps_per_batch": settings.MAX_STEPS_PER_BATCH, "lr": 1e6})
    assert (cfg["hidden"], cfg["layers"], cfg["seed"]) == (4096, 64, 2**32 - 1)


@pytest.mark.slow
def test_the_largest_seed_trains(tiny_cfg, tracking_uri):
    """2**32 - 1 is the last seed numpy and Lightning's seed_everything take: a run with it finishes."""
    from bench.running.train import train_run

    outcome = train_run(tiny_cfg("sine", seed=2**32 - 1, max_steps=10), tracking_uri, progress_bar=False)
    assert outcome.status == "finished", outcome.reason


# ------------------------------------------------------------------------------- a server behind a login

@pytest.fixture
def guarded_server():
    """A real HTTP server on 127.0.0.1 that answers /health only to user ``bench`` with password ``s3cret``, as a
    reverse proxy with basic authentication in front of an MLflow server does."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            expected = "Basic " + base64.b64encode(b"bench:s3cret").decode()
            ok = self.path == "/health" and self.headers.get("Authorization") == expected
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(b"OK" if ok else b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_server_behind_a_login_wants_the_credentials_mlflow_sends(guarded_server, folder, capsys, monkeypatch):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(folder))  # no ~/.mlflow/credentials either
    before = snapshot(folder)
    code = cli.main(["train", "--tracking-uri", guarded_server])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, Case("login", "train", ("tracking_uri", "HTTP 401", "MLFLOW_TRACKING_PASSWORD")))
    assert snapshot(folder) == before
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bench")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    locations.check_tracking_uri(guarded_server)  # the credentials MLflow's client would send: accepted


# ------------------------------------------------------------------------------- real processes

# A fresh interpreter each; those that get as far as importing torch take seconds, and are marked slow.
IN_PROCESSES = ["lr inf", "threads text", "suite nested too deeply", "suite named ..",
                pytest.param("store is a text file", marks=pytest.mark.slow),
                pytest.param("baseline file nested", marks=pytest.mark.slow),
                pytest.param("perf out is a folder", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", IN_PROCESSES)
def test_no_traceback_reaches_stderr_of_a_real_process(tmp_path, name):
    (case,) = [c for c in CASES if c.id == name]
    folder = make_folder(tmp_path)
    argv = command_line(case, folder)
    module = ["bench.cli.perf", *argv[1:]] if case.command == "perf" else ["bench", *argv]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["RNN_BENCH_RESULTS"] = str(folder / "results")
    before = snapshot(folder)
    proc = subprocess.run([sys.executable, "-m", *module], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=180)
    assert_refused(proc.returncode, proc.stdout, proc.stderr, case)
    assert snapshot(folder) == before and not (folder / "results").exists()


def test_a_list_of_numbers_starting_with_a_minus_is_a_value_not_a_flag():
    from bench.cli.main import main
    from bench.cli.args import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--weights")
    assert parser.parse_args(["--weights", "-0.5,0.4"]).weights == "-0.5,0.4"
    with pytest.raises(ConfigError, match="--weights: expected one argument"):
        parser.parse_args(["--weights", "--lr"])
    assert main(["train", "--weights", "-0.5,0.4", "--lags", "3,8", "--base", "1.5"]) == 2  # read, then refused


@pytest.mark.slow
def test_a_config_file_never_runs_code_from_the_folder_it_is_used_in(tmp_path):
    """``train --config config.yaml`` run beside a module the file names: refused in one line (exit 2), the module
    never imported; trusted, the current folder is still not searched implicitly (the console script's way), and
    the line says how to use it."""
    folder = make_folder(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}
    env["RNN_BENCH_RESULTS"] = str(folder / "results")
    store = ["--tracking-uri", f"sqlite:///{folder / 'store' / 'mlflow.db'}"]
    script = str(Path(sys.executable).with_name("rnn-bench"))
    before = snapshot(folder)
    for extra, mentions in [((), ("--config", "'pwn_plugin:cell'", "--trust-config")),
                            (("--trust-config",), ("cell", "'pwn_plugin:cell'", "PYTHONPATH=."))]:
        proc = subprocess.run([script, "train", "--config", "pwn_config.yaml", *extra, *store], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=180)
        assert_refused(proc.returncode, proc.stdout, proc.stderr, Case("pwn", "train", mentions))
    assert snapshot(folder) == before and not (folder / "pwn_plugin.py.ran").exists()


@pytest.mark.slow
def test_a_plugin_that_exits_while_training_fails_its_run(folder, capsys, monkeypatch):
    """A cell whose factory raises ``SystemExit(0)`` passes no ``except Exception``: its run ends FAILED with the
    reason and the command exits 1, never 0."""
    monkeypatch.syspath_prepend(str(folder))  # named on the command line, from its folder
    uri = f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    code = cli.main(["train", "--cell", "pwn_plugin:cell", "--hidden", "4", "--series-length", "20000", "--no-progress",
                     "--tracking-uri", uri])
    out, err = capsys.readouterr()
    assert code == 1 and "failed (SystemExit: " in out, (out, err)
    from bench.running.store import Store

    (run,) = Store(uri).search(Store(uri).experiment_id("rnn-bench"))
    assert run.info.status == "FAILED" and run.data.tags["bench.reason"].startswith("SystemExit")


def test_an_alias_bomb_is_refused_before_it_is_expanded(folder, capsys):
    """The 10**9-value alias bomb costs well under a second and a few MB to refuse (it took a minute and 3 GB when
    its values were expanded to be shown)."""
    import resource
    import time

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for argv in (["run", "--suite", str(folder / "bomb.yaml")], ["train", "--config", str(folder / "bomb_config.yaml")]):
        began = time.process_time()
        assert cli.main([*argv, "--tracking-uri", f"sqlite:///{folder / 'store' / 'mlflow.db'}"]) == 2
        assert time.process_time() - began < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 50_000  # kB
    assert "aliases expand" in capsys.readouterr().err


# ------------------------------------------------------------------------------- a store received from someone else

ESCAPE = "mlflow-artifacts:/../../../../../../../../../../{tmp}/ESCAPED"


def tampered_store(folder: Path, table: str, column: str) -> str:
    """A real store in ``folder/store`` with the experiment and a suite parent of ``good.yaml``, then one artifact
    location (``table.column``) pointed outside the store, as an altered copy could hold it."""
    from bench.running.store import Store

    uri = f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    store = Store(uri)
    store.create_run(store.experiment_id("rnn-bench"), "suite/good", {"bench.role": "suite", "bench.suite": "good"})
    with closing(sqlite3.connect(folder / "store" / "mlflow.db")) as db, db:
        db.execute(f"update {table} set {column} = ?", (ESCAPE.format(tmp=folder),))
    return uri


@pytest.mark.slow
@pytest.mark.parametrize("table, column, argv, whose", [
    ("experiments", "artifact_location", "train", "experiment 'rnn-bench'"),
    ("experiments", "artifact_location", "run --suite {good.yaml}", "experiment 'rnn-bench'"),
    ("runs", "artifact_uri", "compile --suite {good.yaml}", "run "),
])
def test_an_artifact_location_outside_the_store_is_refused(folder, capsys, table, column, argv, whose):
    """An experiment's or a suite parent's artifact location that resolves outside the store's folder: one line
    naming whose location and where it leads, exit 2, nothing written (there or anywhere in the folder)."""
    uri = tampered_store(folder, table, column)
    EXPERIMENT_IDS.clear()  # a new command: nothing known of the store yet
    before = snapshot(folder)
    code = cli.main(command_line(Case(argv, argv, ()), folder) + ["--tracking-uri", uri])
    out, err = capsys.readouterr()
    assert_refused(code, "", err, Case("escape", argv, (whose, "outside the store's folder", "ESCAPED")))
    assert snapshot(folder) == before and not (folder / "ESCAPED").exists()


@pytest.mark.slow
def test_a_store_from_a_newer_mlflow_says_so(tmp_path):
    """A store whose schema revision this MLflow does not know was written by a newer one: one line saying that
    (not "older, run mlflow db upgrade", which cannot help), exit 2, nothing written. A real process: MLflow
    checks a store's schema once per process."""
    folder = make_folder(tmp_path)
    uri = f"sqlite:///{folder / 'store' / 'mlflow.db'}"
    from bench.running.store import Store

    Store(uri).experiment_id("rnn-bench")  # a real store, then marked as a newer MLflow's
    with closing(sqlite3.connect(folder / "store" / "mlflow.db")) as db, db:
        db.execute("update alembic_version set version_num = 'ffffffffffff'")
    before = snapshot(folder)
    proc = subprocess.run([sys.executable, "-m", "bench", "train", "--tracking-uri", uri], cwd=REPO,
                          capture_output=True, text=True, timeout=180,
                          env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert "written by a newer MLflow (schema revision ffffffffffff" in proc.stderr and "upgrade MLflow" in proc.stderr
    assert snapshot(folder) == before
