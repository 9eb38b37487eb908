"""The compiled page: cell colours from the task's references, one self-contained HTML file whose tables scroll in
their own box, sort by a click and keep the page within 1280 px, checked in headless Chromium where installed."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from bench.reporting.task_reports import report_for
from bench.reporting import tables
from bench.tasks import BUILTIN
from bench.reporting.pages import (Bullets, Heading, Image, Table, Text, score_colour, to_html, to_markdown,
                                    unbroken)
from bench.tasks import sine

FLOORS = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545}
ENTRY = "[2] 0.4561 [0.4540, 0.4582] (n=3), 1 diverged"


def summary_of(task: str, means: dict[tuple[str, int], list[float]], references: dict[str, float]) -> pd.DataFrame:
    """:func:`bench.reporting.tables.summarize` of finished runs whose metrics are ``means`` ((cell, truncation) -> one metric
    per seed; an empty list: one diverged run), every run carrying ``references``."""
    rows = []
    for (cell, truncation), metrics in means.items():
        for seed, metric in enumerate(metrics or [math.nan]):
            rows.append({"task": task, "configuration": f"{task}/{cell}-T{truncation}", "cell": cell, "layers": 1,
                         "direction": "uni", "variant": "", "truncation": truncation, "seed": seed,
                         "outcome": "finished" if metrics else "diverged", "metric": metric, "reached": 0.0,
                         "steps_to_target": math.nan, "time_to_target_s": math.nan, **references})
    return tables.summarize(pd.DataFrame(rows), BUILTIN)


def scored(task, means, references):
    summary = summary_of(task, means, references)
    spec = BUILTIN[task]
    table = tables.comparison_table(summary, task, spec, report_for(spec).reference_rows)
    return table, tables.comparison_scores(summary, task, spec, table, report_for(spec).reference_rows)


def test_dependency_scores_run_from_the_target_to_learned_nothing():
    target = FLOORS["floor_all"] + 0.01
    means = {("lstm", 2): [0.6616, 0.6716], ("lstm", 10): [target, target], ("gru", 2): [],
             ("gru", 10): [0.5, 0.5630]}
    table, scores = scored("dependency", means, FLOORS)
    assert scores.frame.shape == table.shape and list(scores.frame.columns) == list(table.columns)
    frame = scores.frame.set_axis(table["configuration"]).drop(columns="configuration")
    assert frame.loc["lstm L1 uni"].tolist() == [1.0, 0.0]  # above the none floor: clipped to 1
    assert math.isnan(frame.loc["gru L1 uni", "T=2"])  # diverged only: no number, no colour
    assert frame.loc["gru L1 uni", "T=10"] == pytest.approx((0.5315 - target) / (0.6616 - target))
    # Reference rows are coloured like entries: the Bayes floor is past the target, the none floor the worst.
    assert frame.loc["floor: knows every lag (Bayes floor)"].tolist() == [0.0, 0.0]
    assert frame.loc["floor: knows no lag"].tolist() == [1.0, 1.0]
    assert scores.legend == ("Colour: blue at 0.4645 (the target) or better, orange at 0.6616 (the worst reference) "
                             "or worse, linear in between.")


def test_sine_scores_are_log_ratios_between_the_target_and_the_last_value_baseline():
    last_value = 0.0076
    references = {"baseline_last_value_rmse": last_value, "baseline_linear_ar_rmse": 2e-8}
    middle = math.sqrt(sine.SOURCE_RMSE * last_value)  # halfway on a log scale
    table, scores = scored("sine", {("gru", 10): [middle, middle], ("gru", 20): [1e-4, 1e-4]}, references)
    frame = scores.frame.set_axis(table["configuration"]).drop(columns="configuration")
    assert frame.loc["gru L1 uni", "T=10"] == pytest.approx(0.5)
    assert frame.loc["gru L1 uni", "T=20"] == 0.0  # better than the target
    assert frame.loc[sine.BASELINES["baseline_last_value_rmse"]].tolist() == [1.0, 1.0]
    assert frame.loc[sine.BASELINES["baseline_linear_ar_rmse"]].tolist() == [0.0, 0.0]
    assert "log scale" in scores.legend


def test_a_task_without_references_gets_no_colours():
    table, scores = scored("sine", {("gru", 10): [0.01]}, {})
    assert scores.frame.isna().all().all() and scores.legend == ""


def page_blocks(columns: int = 12, rows: int = 6, image: str | None = None) -> list:
    """A report with one wide table: ``rows`` configurations × ``columns`` truncations of long entries, scored."""
    frame = pd.DataFrame({"configuration": [f"lstm L{i} bi hidden=32" for i in range(rows)],
                          **{f"T={t}": [ENTRY] * rows for t in range(columns)}})
    scores = pd.DataFrame(np.linspace(0, 1, rows * (columns + 1)).reshape(rows, columns + 1), columns=frame.columns)
    scores.iloc[:, 0], scores.iloc[0, 1] = math.nan, math.nan
    blocks = [Heading("Results", 1), Text("A `code` span and a long store path: `sqlite:///" + "x" * 300 + "`"),
              Bullets(["one", "two"]), Table(frame, scores, "Colour: blue at the target, orange at the worst.")]
    return blocks + ([Image(image, "a plot")] if image else [])


def test_markdown_ignores_colours():
    blocks = page_blocks()
    plain = [Table(b.frame) if isinstance(b, Table) else b for b in blocks]
    assert to_markdown(blocks) == to_markdown(plain)
    assert "hsl(" not in to_markdown(blocks) and "Colour:" not in to_markdown(blocks)


def test_html_is_one_self_contained_file_with_coloured_sortable_scrolling_tables(tmp_path):
    from PIL import Image as Picture

    Picture.new("RGB", (8, 8), "teal").save(tmp_path / "plot.png")
    page = to_html(page_blocks(image="plot.png"), "results", tmp_path)
    # Nothing is fetched from elsewhere: no links, no external script, style, font or image.
    assert not re.search(r"<link|@import|url\(|src=['\"](?!data:)|https?://", page)
    assert page.count("<script>") == 1 and "src='data:image/png;base64," in page
    assert "<div class='scroll'><table class='sortable'>" in page
    assert page.count("<th scope='col'>") == 13 and page.count("<th scope='row'>") == 6
    # Every scored cell is coloured, from blue (the best) to orange (the worst), never green or red; unscored
    # ones are not.
    colours = re.findall(r"<td style='background:rgb\((\d+),(\d+),(\d+)\)", page)
    assert len(colours) == 6 * 12 - 1 and ("244", "165", "130") in colours
    assert not any(int(g) > max(int(r), int(b)) for r, g, b in colours)  # nothing green: blue, white, orange
    assert f"<td>{unbroken(html.escape(ENTRY))}</td>" in page
    assert "Colour: blue at the target, orange at the worst." in page


# --- in a real browser -------------------------------------------------------------------------------------------

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
WIDTH = 1280

# Appended to a copy of the page: after it has loaded, measures it, optionally clicks headers, and writes what it
# found into the DOM as JSON, for --dump-dom to print.
PROBE = """<script>window.addEventListener("load", function () {
  var root = document.documentElement, box = document.querySelector(".scroll"), found = {
    pageWidth: root.scrollWidth, viewWidth: root.clientWidth, innerWidth: window.innerWidth,
    boxScrolls: box ? box.scrollWidth > box.clientWidth : null,
    sticky: box ? [getComputedStyle(box.querySelector("thead th")).position,
                   getComputedStyle(box.querySelector("tbody th")).position] : null, orders: []};
  CLICKS.forEach(function (column) {
    var table = document.querySelector("table.sortable");
    table.querySelectorAll("thead th")[column].click();
    found.orders.push(Array.from(table.tBodies[0].rows, function (r) { return r.cells[0].textContent; }));
  });
  var out = document.createElement("pre"); out.id = "probe"; out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});</script></body>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},900",
                           *args], capture_output=True, text=True, timeout=120)


def probe(page_path, tmp_path, clicks: tuple[int, ...] = ()) -> dict:
    """What :data:`PROBE` finds on the page at 1280 px."""
    probed = tmp_path / "probed.html"
    probed.write_text(page_path.read_text().replace("</body>", PROBE.replace("CLICKS", json.dumps(list(clicks)))))
    dom = chromium("--dump-dom", probed.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run: {dom[-500:]}"
    return json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))


def screenshot(page_path, tmp_path) -> np.ndarray:
    """The page's first screen at 1280 × 900, grey levels 0..1."""
    from PIL import Image as Picture

    shot = tmp_path / "screen.png"
    chromium(f"--screenshot={shot}", page_path.as_uri())
    grey = np.asarray(Picture.open(shot).convert("L"), dtype=float) / 255
    assert grey.shape == (900, WIDTH)
    return grey


def assert_readable_at_1280(found: dict) -> None:
    assert found["innerWidth"] == WIDTH
    assert found["pageWidth"] <= found["viewWidth"], f"the page is wider than the window: {found}"


@needs_chromium
@pytest.mark.slow  # two browser starts, ~3 s each
def test_compiled_page_renders_without_horizontal_overflow(tiny_suite_store, tmp_path):
    _, _, results_dir = tiny_suite_store
    page = results_dir / "tiny" / "results.html"
    grey = screenshot(page, tmp_path)
    assert grey.std() > 0.05 and (grey < 0.5).mean() > 0.005, "the screenshot is blank"
    found = probe(page, tmp_path)
    assert_readable_at_1280(found)
    assert found["sticky"] == ["sticky", "sticky"]


@needs_chromium
def test_seven_truncation_columns_fit_at_1280_px(tmp_path):
    """The default suite's dependency table, 7 T columns of entries as long as they come, needs no scrolling."""
    long = "[1+?] 0.4657 [0.4602, 0.4713] (n=3), 2 not converged"
    frame = pd.DataFrame({"configuration": [f"rnn_tanh L{n} uni" for n in range(1, 17)],
                          **{f"T={t}": [long] * 16 for t in (1, 2, 3, 5, 8, 10, 20)}})
    page = tmp_path / "results.html"
    page.write_text(to_html([Heading("Seven"), Table(frame)], "seven", tmp_path))
    found = probe(page, tmp_path)
    assert_readable_at_1280(found)
    assert not found["boxScrolls"], "a T column is hidden behind a horizontal scroll"


@needs_chromium
def test_a_wide_table_scrolls_in_its_box_and_sorts_by_number(tmp_path):
    frame = pd.DataFrame({"configuration": ["a", "b", "c", "d", "e", "f"],
                          "T=2": ["[–] 0.6616 [0.6600, 0.6632] (n=3)", "no result (n=0), 2 diverged",
                                  "[2] 0.4561 (n=1)", "", "[1+] 0.5 [0.4, 0.6] (n=2), 1 diverged", "1.2e-01 (n=1)"],
                          "samples/s": ["12,346", "9,999", "100", "1,000,000", "5", "0"],
                          **{f"T={t}": [ENTRY] * 6 for t in range(3, 15)}})
    page = tmp_path / "results.html"
    page.write_text(to_html([Heading("Wide"), Table(frame)], "wide", tmp_path))
    found = probe(page, tmp_path, clicks=(1, 1, 2))
    assert_readable_at_1280(found)
    assert found["boxScrolls"], "the table is wider than the window: its box should scroll"
    ascending, descending, by_speed = found["orders"]
    # By the number after the mark; rows without one after those with one, empty last, in either direction.
    assert ascending == ["f", "c", "e", "a", "b", "d"]
    assert descending == ["a", "e", "c", "f", "b", "d"]
    assert by_speed == ["f", "e", "c", "b", "a", "d"]  # thousands separators read as such


def test_the_reproduction_verdict_comes_first_and_coloured(tmp_path):
    from bench.reporting import reproduce

    found = pd.DataFrame([dict(source="R2RT", configuration="dependency/rnn_tanh-L1-uni-T5", published="[1]",
                               ours="[1] 0.5192", verdict="reproduced", why="same mark [1]"),
                          dict(source="R2RT", configuration="dependency/rnn_tanh-L1-uni-T8", published="[1]",
                               ours="[2] 0.4566", verdict="not reproduced", why="ours [2], published [1]")],
                         columns=reproduce.COLUMNS)
    page = to_html([Table(found, reproduce.verdict_scores(found), "Verdict colours.")], "reproduce", tmp_path)
    assert re.search(r"<thead><tr><th scope='col'>verdict</th>", page)
    assert f"<th scope='row' style='background:{score_colour(0.0)}'>reproduced</th>" in page
    assert f"<th scope='row' style='background:{score_colour(1.0)}'>not reproduced</th>" in page
    assert page.count("<td style=") == 0  # only the verdict is coloured
