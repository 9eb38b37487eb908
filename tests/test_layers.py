"""The harness's layers, enforced: ``lint-imports`` checks the contracts in pyproject.toml (no upward import between
bench's subpackages; the model code imports no harness), and no module of bench imports itself back through others,
inside a layer too, which a layers contract does not see."""

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a test dependency (pip install -e .[test])"
    proc = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def import_cycles(package: str) -> list[tuple[str, ...]]:
    """Every import of ``package`` that another module of it imports back: (importer, imported, …back)."""
    graph = grimp.build_graph(package)
    found = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported.startswith(package) and imported != module:
                back = graph.find_shortest_chain(importer=imported, imported=module)
                if back:
                    found.append((module, *back))
    return found


def test_bench_has_no_import_cycles():
    assert import_cycles("bench") == []


def test_the_cycle_check_sees_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: a planted two-module package with a circle is found."""
    (tmp_path / "circle").mkdir()
    (tmp_path / "circle" / "__init__.py").write_text("")
    (tmp_path / "circle" / "a.py").write_text("from circle import b\n")
    (tmp_path / "circle" / "b.py").write_text("def f():\n    from circle import a  # inside a function still counts\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert ("circle.a", "circle.b", "circle.a") in import_cycles("circle")
