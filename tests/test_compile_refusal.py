"""`bench compile` never replaces compiled pages with emptier ones: a store without the suite's runs is refused,
a partial suite compiles only with --partial and its page says so; `make ui` on an empty store says what fills it."""

from __future__ import annotations

import shutil

import pytest

from bench.cli.main import main


def test_a_store_without_the_suites_runs_is_refused_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "pages"
    code = main(["compile", "--suite", "smoke", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "none of the" in err and "suite 'smoke'" in err and "mlflow.db" in err
    assert "rnn-bench run --suite smoke" in err
    assert not out.exists() and not (tmp_path / "mlflow.db").exists()


def test_an_existing_store_without_the_suites_runs_is_refused(tiny_suite_store, tmp_path, capsys):
    _, uri, _ = tiny_suite_store
    out = tmp_path / "pages"
    code = main(["compile", "--suite", "smoke", "--tracking-uri", uri, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "none of the" in err and "rnn-bench run --suite smoke" in err
    assert not out.exists()


@pytest.fixture
def partial_suite(tiny_suite_store, tmp_path):
    """A copy of the tiny suite's store, and the suite file with a third seed none of whose runs are in it."""
    suite_file, uri, _ = tiny_suite_store
    store = tmp_path / "store"
    shutil.copytree(suite_file.parent, store, ignore=shutil.ignore_patterns("results"))
    bigger = store / "tiny.yaml"
    bigger.write_text(suite_file.read_text().replace("seed: [0, 1]", "seed: [0, 1, 2]"))
    return bigger, f"sqlite:///{store / 'mlflow.db'}"


def test_a_partial_suite_compiles_only_with_partial_and_says_so(partial_suite, tmp_path, capsys):
    suite_file, uri = partial_suite
    out = tmp_path / "pages"
    code = main(["compile", "--suite", str(suite_file), "--tracking-uri", uri, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "missing" in err and "--partial" in err
    assert not out.exists()

    assert main(["compile", "--suite", str(suite_file), "--tracking-uri", uri, "--out", str(out), "--partial"]) == 0
    page = (out / "README.md").read_text()
    assert "**Partial results:**" in page and "missing of the" in page
    assert "Partial results:" in (out / "results.html").read_text()


def test_ui_on_an_empty_store_says_what_fills_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(tmp_path / "results"))
    assert main(["ui"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no run" in err
    assert "make first" in err and "make smoke" in err and "make bench" in err
    assert not (tmp_path / "results").exists()
