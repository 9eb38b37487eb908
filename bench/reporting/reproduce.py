"""Published figures beside ours, with a verdict: did this suite reproduce its source?

A suite lists what a source reports under ``published:`` (see :func:`bench.config.suite._published`): either a floor
mark (which dependencies the source's model learned) or a value (a test metric). Each is compared with the
configurations it applies to:

- a mark is **reproduced** when our configuration's interval mark is the same, **not reproduced** when it is a
  different one, **inconclusive** when our interval is too wide to say (a mark with ``?``);
- a value is **reproduced** when it lies within the range our seeds span or within our 95% interval (a
  source usually reports one run: our seeds show how far single runs scatter), **not reproduced** otherwise.
"""

from __future__ import annotations

import pandas as pd

from bench.reporting import tables
from bench import tasks
from bench.config.settings import setting_text
from bench.config.suite import Suite

COLUMNS = ["source", "configuration", "published", "ours", "verdict", "why"]
RULES = ("A published mark is reproduced when our interval's mark is the same, not reproduced when it is another, "
         "inconclusive when our interval is too wide to read one (a mark with ?). A published value is reproduced "
         "when it lies within the range of our seeds or our 95% interval (a source reports one run; our seeds show "
         "how far single runs scatter).")


def _matches(run: dict, where: dict) -> bool:
    return all(setting_text(run.get(k)) == setting_text(v) for k, v in where.items())


def verdicts(suite: Suite, runs: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per published figure and configuration it applies to; ``COLUMNS``."""
    rows = []
    by_key = summary.set_index("configuration")
    for entry in suite.published:
        keys = list(dict.fromkeys(r["configuration"] for r in runs.to_dict("records") if _matches(r, entry["where"])))
        if not keys:
            rows.append(dict(source=entry["source"], configuration="—", published=entry.get("claim", ""), ours="",
                             verdict="not run", why="no configuration of the suite matches"))
            continue
        for key in keys:
            row = by_key.loc[key].to_dict()
            spec = tasks.get(row["task"]).number_format
            ours = tables.entry_text(row, spec)
            if row["n"] == 0:
                verdict, why = "not reproduced", "no finished run"
            elif "mark" in entry:
                mark = str(row["mark"])
                if mark.endswith("?"):
                    verdict, why = "inconclusive", f"our interval is too wide to read a mark ({mark})"
                elif mark == str(entry["mark"]):
                    verdict, why = "reproduced", f"same mark [{mark}]"
                else:
                    verdict, why = "not reproduced", f"ours [{mark}], published [{entry['mark']}]"
            else:
                value = float(entry["value"])
                values = row["values"]
                lo, hi = min(values), max(values)
                inside = lo <= value <= hi or (row["low"] <= value <= row["high"])
                verdict = "reproduced" if inside else "not reproduced"
                why = (f"{value:{spec}} {'within' if inside else 'outside'} our seeds' range "
                       f"[{lo:{spec}}, {hi:{spec}}] and interval")
            published = entry.get("claim", "") + (f" ({entry['value']:{spec}})" if "value" in entry else
                                                  f" [{entry['mark']}]")
            rows.append(dict(source=entry["source"], configuration=key, published=published.strip(), ours=ours,
                             verdict=verdict, why=why))
    return pd.DataFrame(rows, columns=COLUMNS)
