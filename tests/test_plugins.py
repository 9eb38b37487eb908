"""Plug-ins: cells and tasks found by built-in name, dotted path or entry point; a bad one rejected before
anything runs; the example cells (examples/) keep the batch-first contract, carry state like torch's cells and,
for MGU, learn the dependency task through a real suite into the compiled tables."""

from __future__ import annotations

import itertools
import re
import sqlite3
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import tasks
from bench.cli.main import main
from bench.config.settings import ConfigError, resolve
from bench.running.train import fit_and_test
from lightning_modules import cell_registry
from lightning_modules.backbone import RecurrentBackbone
from lightning_modules.dependency_module import DependencyModule

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = ["examples.mgu:mgu", "examples.min_gru:min_gru"]
T = 5


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path holding a cell module, a task module and an installed distribution's metadata that
    registers the cell under the entry-point group (what ``pip install`` of a plug-in package leaves behind)."""
    (tmp_path / "my_cells.py").write_text(textwrap.dedent("""
        from torch import nn
        def elman(input_size, hidden_size, num_layers, bidirectional, dropout):
            return nn.RNN(input_size, hidden_size, num_layers, batch_first=True, bidirectional=bidirectional)
        def broken(*args):
            raise RuntimeError("never built")
        not_callable = 3
        """))
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent("""
        from bench.tasks.sine import SineTask
        class Cosine(SineTask):
            name = "cosine"
            title = "A sine task under another name"
        class Nameless(SineTask):
            name = "Bad/Name"
        """))
    (tmp_path / "bad_module.py").write_text("raise ImportError('this plug-in is broken')\n")
    dist = tmp_path / "my_cells-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-cells\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[rnn_bench.cells]\nelman = my_cells:elman\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtin_cells_are_registered_like_plugins():
    assert set(cell_registry.BUILTIN) == {"rnn_tanh", "rnn_relu", "lstm", "gru"}
    for name in cell_registry.BUILTIN:
        module = cell_registry.load(name)(1, 4, 1, False, 0.0)
        out, _ = module(torch.zeros(2, 3, 1))
        assert out.shape == (2, 3, 4)


def test_cell_by_dotted_path_and_by_entry_point(plugin_dir):
    assert cell_registry.problem("my_cells:elman") is None
    assert cell_registry.installed() == {"elman": "my_cells:elman"}
    assert cell_registry.problem("elman") is None
    cfg = resolve({"task": "dependency", "cell": "elman", "hidden": 4, "truncation": 5, "batch_size": 10,
                   "series_length": 2000, "eval_length": 500, "max_steps": 5, "epochs": -1, "steps_per_batch": 5})
    _, _, metrics = fit_and_test(cfg)
    assert metrics["train/steps"] == 5 and metrics["test/ce"] == pytest.approx(metrics["test/ce"])  # finite


@pytest.mark.parametrize("name, reason", [
    ("transformer", "cell: 'transformer'; allowed: a built-in cell"),
    ("no_such_module:cell", "cannot be imported (ModuleNotFoundError"),
    ("bad_module:cell", "cannot be imported (ImportError: this plug-in is broken)"),
    ("my_cells:missing", "has no callable 'missing'"),
    ("my_cells:not_callable", "has no callable 'not_callable'"),
])
def test_unknown_or_unimportable_cells_are_one_line_errors(plugin_dir, name, reason):
    with pytest.raises(ConfigError) as caught:
        resolve({"task": "dependency", "cell": name})
    assert len(caught.value.problems) == 1 and reason in caught.value.problems[0]


def test_task_by_dotted_path(plugin_dir):
    cfg = resolve({"task": "my_tasks:Cosine", "max_steps": 3, "train_examples": 200, "val_examples": 20,
                   "test_examples": 20, "hidden": 4, "layers": 1, "steps_per_batch": 3})
    assert tasks.get(cfg["task"]).name == "cosine" and cfg["frequency"] == 1.0  # the base task's fields
    _, _, metrics = fit_and_test(cfg)
    assert "test/rmse" in metrics and "baseline_linear_ar_rmse" in metrics


@pytest.mark.parametrize("name, reason", [
    ("speech", "task: 'speech'; allowed: one of dependency, sine"),
    ("my_tasks:Missing", "cannot be loaded (AttributeError"),
    ("my_tasks:Nameless", "is not a Task with a name matching"),
])
def test_unknown_or_broken_tasks_are_one_line_errors(plugin_dir, name, reason):
    with pytest.raises(ConfigError) as caught:
        resolve({"task": name})
    assert len(caught.value.problems) == 1 and reason in caught.value.problems[0]


@pytest.mark.parametrize("argv", [
    ["train", "--cell", "no_such_module:cell"],
    ["train", "--task", "speech"],
    ["run", "--suite", "smoke", "--axis", "cell=lstm,no_such_module:cell"],
    ["run", "--suite", "smoke", "--set", "task=speech"],
])
def test_cli_rejects_bad_plugins_with_exit_2_and_an_untouched_store(tmp_path, capsys, argv):
    store = tmp_path / "mlflow.db"
    code = main([*argv, "--tracking-uri", f"sqlite:///{store}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and "allowed" in err[0]
    assert not store.exists()


@pytest.mark.parametrize("cell, layers, bidirectional", list(itertools.product(EXAMPLES, (1, 2), (False, True))))
def test_example_cells_keep_the_batch_first_contract(cell, layers, bidirectional):
    torch.manual_seed(0)
    net = RecurrentBackbone(cell, 3, 6, layers, bidirectional)
    directions = 2 if bidirectional else 1
    x = torch.randn(5, 7, 3)
    out, (h,) = net(x)
    assert out.shape == (5, 7, 6 * directions) and h.shape == (layers * directions, 5, 6)
    last = h.view(layers, directions, 5, 6)[-1]
    assert torch.allclose(out[:, -1, :6], last[0])  # forward: final state = last output
    if bidirectional:
        assert torch.allclose(out[:, 0, 6:], last[1])  # backward: final state = first output
    out2, _ = net(x, (h,))
    assert not torch.allclose(out2, out)  # the initial state is used


@pytest.mark.parametrize("cell, bidirectional", list(itertools.product(EXAMPLES, (False, True))))
def test_example_cells_carry_state_across_windows_and_cut_the_gradient(cell, bidirectional):
    torch.manual_seed(0)
    m = DependencyModule(cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional, truncation=T)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (4, 2 * T, 1), generator=g).float()
    y = torch.randint(0, 2, (4, 2 * T), generator=g).float()
    first = x[:, :T].clone().requires_grad_(True)
    _, _, final = m.model_step(first, y[:, :T], None)
    carried = m.backbone.carry(final)
    assert all(not c.requires_grad for c in carried)
    if bidirectional:
        assert all(torch.count_nonzero(c[1::2]) == 0 for c in carried)  # backward rows start from zeros
    else:  # the carried state continues exactly where one uninterrupted pass would be
        _, logits_all, _ = m.model_step(x, y, None)
        _, logits2, _ = m.model_step(x[:, T:], y[:, T:], carried)
        assert torch.allclose(logits2, logits_all[:, T:], atol=1e-6)
    loss2, _, _ = m.model_step(x[:, T:], y[:, T:], carried)
    loss2.backward()
    assert first.grad is None or torch.count_nonzero(first.grad) == 0  # no gradient crosses the window edge
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.backbone.parameters())


@pytest.mark.slow
def test_mgu_learns_the_dependency_task_below_the_first_lag_floor():
    cfg = resolve({"task": "dependency", "cell": "examples.mgu:mgu", "hidden": 16, "truncation": 10,
                   "batch_size": 50, "optimizer": "adam", "lr": 0.02, "lr_schedule": "cosine", "max_steps": 1200,
                   "epochs": -1, "series_length": 500_000, "eval_length": 20_000, "seed": 0})
    _, _, metrics = fit_and_test(cfg)
    assert metrics["test/ce"] < metrics["floor_first1"] - 0.02, metrics


@pytest.mark.slow
def test_example_cell_runs_through_a_suite_into_the_compiled_tables(tmp_path, monkeypatch):
    suite = tmp_path / "plugins.yaml"
    suite.write_text(textwrap.dedent("""
        axes:
          task: [dependency, sine]
          cell: [examples.mgu:mgu, lstm]
          seed: [0, 1]
        fixed: {hidden: 8, layers: 1, truncation: 5, optimizer: adam, steps_per_batch: 10, log_every: 10,
                val_every: 20}
        tasks:
          dependency: {batch_size: 20, series_length: 20000, eval_length: 2000, epochs: -1, max_steps: 40}
          sine: {max_steps: 30, train_examples: 400, val_examples: 50, test_examples: 50, batch_size: 16}
        """))
    results = tmp_path / "results"
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(results))
    monkeypatch.chdir(REPO)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["run", "--suite", str(suite), "--workers", "2", "--tracking-uri", uri, "--no-progress"]) == 0
    for task in ("dependency", "sine"):
        table = pd.read_csv(results / "plugins" / f"comparison_{task}.csv").set_index("configuration")
        entry = table.loc["examples.mgu:mgu L1 uni", "T=5"]
        assert "(n=2)" in entry, entry
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        names = {n for (n,) in db.execute("select name from runs where status = 'FINISHED'")}
    assert any(re.fullmatch(r"dep·examples\.mgu:mgu·L1·T5·s0·[0-9a-f]{4}", n) for n in names), names


def test_a_plugin_raising_its_own_base_exception_is_a_one_line_error(tmp_path, monkeypatch):
    """Not only SystemExit: any BaseException a plug-in raises while it loads is a bad setting in one line (the
    command exits 2), never a traceback; a signal while it loads still stops the command."""
    (tmp_path / "boom_plugin.py").write_text("class Boom(BaseException):\n    pass\n\nraise Boom('at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as found:
        tasks.get("boom_plugin:Task")
    assert found.value.problems == [found.value.problems[0]] and "Boom: at import" in found.value.problems[0]
    with pytest.raises(ValueError, match="Boom: at import"):
        cell_registry.load("boom_plugin:cell")
    (tmp_path / "stop_plugin.py").write_text("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        tasks.get("stop_plugin:Task")
