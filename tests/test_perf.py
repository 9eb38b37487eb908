"""The perf benchmark runs end to end on a tiny setting and writes a well-formed table (timings are not asserted)."""

import re

from bench import perf


def test_perf_tiny_writes_table(tmp_path):
    out = perf.run("tiny", tmp_path / "perf.md", f"sqlite:///{tmp_path / 'mlflow.db'}")
    lines = out.read_text().splitlines()
    header = "| figure | ours | reference | ratio (median, min–max) | target | result | note |"
    assert header in lines
    rows = [line for line in lines[lines.index(header) + 2:] if line.startswith("|")]
    names = [row.split("|")[1].strip() for row in rows]
    assert any(n.startswith("training-step overhead, dependency") for n in names)
    assert any(n.startswith("training-step overhead, sine") for n in names)
    assert any(n.startswith("MLflow logging") for n in names)
    assert any(n.startswith("dependency series generation") for n in names)
    assert any(n.startswith("per-run fixed cost") for n in names)
    assert any(n.startswith("suite throughput") for n in names)
    assert any(n.startswith("sine: steps until") for n in names)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7
        assert cells[5] in ("pass", "miss")
        assert re.match(r"^[\d.e+-]+ |^inf ", cells[1]), cells
