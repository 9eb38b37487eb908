"""The command line answers at once: bad input and ``--help`` import none of the heavy libraries, a mistyped
flag or choice gets the closest right one, and the help lists every suite and task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import tasks
from bench.cli.main import main
from bench.config.suite import available_suites

HEAVY = ["torch", "pandas", "scipy", "mlflow", "matplotlib", "lightning", "pytorch_lightning", "sqlalchemy", "ray"]
REPO = Path(__file__).resolve().parents[1]


def heavy_imports(argv: list[str]) -> tuple[int, list[str]]:
    """(exit code, heavy modules imported) of ``bench`` given ``argv``, in a fresh interpreter."""
    probe = ("import json, sys\nfrom bench.cli.main import main\ntry:\n    code = main(sys.argv[1:])\n"
             "except SystemExit as e:\n    code = e.code\n"
             f"print(json.dumps([code, [m for m in {HEAVY!r} if m in sys.modules]]))")
    done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["train", "--task", "sine", "--hidden", "0"], ["train", "--hiden", "8"],
                                  ["run", "--suite", "smok"], ["compile", "--suit", "x"], ["train", "--help"],
                                  ["--help"]])
def test_bad_input_and_help_import_no_heavy_library(argv):
    code, heavy = heavy_imports(argv)
    assert code in (0, 2) and heavy == []


@pytest.mark.parametrize("argv, hint", [
    (["train", "--hiden", "8"], "(did you mean '--hidden'?); allowed: what python -m bench train --help lists"),
    (["train", "--task", "sien"], "(did you mean 'sine'?)"),
    (["train", "--cell", "lstn"], "(did you mean 'lstm'?)"),
    (["run", "--suite", "smok"], "(did you mean 'smoke'?)"),
    (["run", "--executor", "rya"], "(did you mean 'ray'?)"),
    (["trian"], "(did you mean 'train'?)"),
])
def test_a_near_miss_gets_the_closest_right_name(argv, hint, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and hint in err


def test_the_help_lists_every_suite_and_task(capsys):
    for command in ("run", "compile", "regress"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(name in text for name in available_suites()), command
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in tasks.BUILTIN)


def test_the_store_is_where_the_user_is(tmp_path):
    """Run from another folder, the embedded store is that folder's results/, not the installed checkout's."""
    env = {k: v for k, v in os.environ.items() if k not in ("RNN_BENCH_RESULTS", "MLFLOW_TRACKING_URI")}
    probe = "from bench.running import locations; print(locations.default_tracking_uri())"
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == f"sqlite:///{tmp_path.resolve() / 'results' / 'mlflow.db'}"
    env["RNN_BENCH_RESULTS"] = str(tmp_path / "elsewhere")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
