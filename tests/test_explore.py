"""The interactive page ``explore.html`` that ``bench compile`` writes, on the real tiny suite
(``tiny_suite_store``), loaded in headless Chromium without network."""

from __future__ import annotations

import html
import re
import shutil

import pandas as pd
import pytest

from bench.reporting import explore
from bench.cli.main import main
from bench.running.store import Store
from browser import body_data, dump_dom, needs_chromium
from mlflow_server import server_process, wait_healthy


@pytest.fixture(scope="module")
def page(tiny_suite_store):
    """The tiny suite's compiled folder, its explore.html and its runs."""
    _, uri, results = tiny_suite_store
    folder = results / "tiny"
    return folder, folder / explore.PAGE, pd.read_csv(folder / "runs.csv"), uri


def test_plotly_js_is_written_once_beside_the_page_not_inlined(page, tiny_suite_store, monkeypatch):
    folder, path, _, uri = page
    script = folder / explore.PLOTLY_JS
    text = path.read_text()
    assert f'<script src="{explore.PLOTLY_JS}"></script>' in text and script.stat().st_size > 1_000_000
    assert path.stat().st_size < 200_000  # the data and the page's own script only
    assert not re.search(r"""(src|href)=["']?https?:""", text)  # nothing fetched from the network
    before = script.stat().st_mtime_ns
    suite_file, _, results = tiny_suite_store
    monkeypatch.setenv("RNN_BENCH_RESULTS", str(results))
    assert main(["compile", "--suite", str(suite_file), "--tracking-uri", uri]) == 0
    assert script.stat().st_mtime_ns == before  # compiled again: the script is already there


@needs_chromium
def test_page_loads_offline_draws_every_seed_and_links_runs(page):
    folder, path, runs, uri = page
    dom = dump_dom(path.as_uri())
    drawn = body_data(dom)
    dependency = runs[runs["task"] == "dependency"]
    finished = dependency[dependency["outcome"] == "finished"]
    assert drawn["points"] == str(len(finished)) == "4"  # every seed of the first task, diverged ones not drawn
    assert drawn["configurations"] == str(dependency["configuration"].nunique())
    assert drawn["curves"] == "4" and drawn["heatmapCells"] == "2"  # lstm × T=2, T=10
    assert 'class="main-svg"' in dom  # plotly drew
    link = html.unescape(re.search(r'<a id="run-link" href="([^"]+)"', dom).group(1))
    experiment = Store(uri).find_experiment("rnn-bench")
    run_ids = set(finished["run_id"])
    assert any(link == explore.run_url(experiment, run_id) for run_id in run_ids), link


@needs_chromium
@pytest.mark.parametrize("view, points, curves", [
    ("task=dependency&truncation=10", 2, 2),
    pytest.param("task=sine", 4, 4, marks=pytest.mark.slow),
    pytest.param("task=dependency&cell=rnn_relu", 0, 0, marks=pytest.mark.slow),  # every run diverged
])
def test_filters_change_what_is_drawn(page, view, points, curves):
    _, path, _, _ = page
    drawn = body_data(dump_dom(f"{path.as_uri()}#{view}"))
    assert (drawn["points"], drawn["curves"]) == (str(points), str(curves))


@needs_chromium
@pytest.mark.slow
def test_the_run_link_opens_the_run_in_the_mlflow_ui(page, tmp_path):
    """The page's run link, pointed at a real ``mlflow server`` over (a copy of) the store, shows that run."""
    _, path, runs, uri = page
    link = html.unescape(re.search(r'<a id="run-link" href="([^"]+)"', dump_dom(path.as_uri())).group(1))
    run_id = link.rsplit("/", 1)[1]
    shutil.copy(uri.removeprefix("sqlite:///"), tmp_path / "mlflow.db")
    log = tmp_path / "server.log"
    with server_process(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", log) as (proc, server):
        wait_healthy(proc, server, log)
        dom = dump_dom(link.replace(explore.UI_ADDRESS, server), budget_ms=30_000)
    name = Store(uri).get_run(run_id).info.run_name
    assert name in html.unescape(dom) and run_id in dom


def test_the_page_is_drawn_from_data_frames_alone():
    """No store, no runner: plain frames in, a page out, with every run, summary, curve and reference in its data."""
    import json

    runs = pd.DataFrame({
        "task": "dependency", "cell": ["lstm", "gru"], "layers": 1, "direction": "uni", "truncation": 5, "style": "T",
        "configuration": ["dependency/lstm-L1-uni-T5", "dependency/gru-L1-uni-T5"], "seed": 0,
        "outcome": ["finished", "diverged"], "metric": [0.49, float("nan")], "run_id": ["r1", "r2"],
        "url": [explore.run_url("1", "r1"), explore.run_url("1", "r2")], "settings": "cell=lstm",
        "metric_label": "test cross-entropy (nats)", "log_scale": False, "lower_is_better": True})
    summary = pd.DataFrame({"configuration": runs["configuration"], "mean": [0.49, float("nan")],
                            "low": float("nan"), "high": float("nan"), "n": [1, 0]})
    curves = pd.DataFrame({"run_id": ["r1", "r1"], "step": [100, 200], "value": [0.6, 0.5]})
    references = pd.DataFrame({"task": ["dependency"], "reference": ["no lag"], "value": [0.6616]})
    text = explore.page(runs, summary, curves, references, "a </script> title")
    data = json.loads(re.search(r"var DATA = (.*);\n", text).group(1).replace("<\\/", "</"))
    assert [r["run_id"] for r in data["runs"]] == ["r1", "r2"] and data["runs"][1]["metric"] is None
    assert data["curves"] == {"r1": [[100, 200], [0.6, 0.5]]} and data["references"][0]["value"] == 0.6616
    assert "<title>a &lt;/script&gt; title</title>" in text
