"""Published figures beside ours, with a verdict: did this suite reproduce its source?

A suite lists what a source reports under ``published:`` (see :func:`bench.config.suite._published`): either a floor
mark (which dependencies the source's model learned) or a value (a test metric). Each is compared with the
configurations it applies to, seed by seed, since a source reports one run:

- a mark: how many of our seeds sit in the published class (each seed classed against its floors with its own
  test noise, :meth:`bench.tasks.base.Task.outcome`), with the Wilson interval of that share. **Reproduced** when
  the interval lies wholly above half the seeds (most runs of this set-up do what the source reported), **not
  reproduced** when wholly below, **inconclusive** otherwise (more seeds would decide: :func:`bench.tasks.outcomes.
  decided`);
- a value: **reproduced** when it lies within the 95% prediction interval of one more of our runs
  (:func:`bench.core.stats.prediction_interval`, on the log scale for a metric spanning decades), **not
  reproduced** otherwise: a model whose runs all lie far from the published figure fails, however few they are.
"""

from __future__ import annotations

import pandas as pd

from bench.core import stats
from bench.reporting import tables
from bench.config.settings import setting_text
from bench.config.suite import Suite

COLUMNS = ["verdict", "source", "configuration", "published", "ours", "why"]  # the verdict first: what a reader wants
# A verdict's colour on the HTML page, as a score of pages.score_colour: blue reproduced, orange not.
VERDICT_SCORES = {"reproduced": 0.0, "inconclusive": 0.5, "not reproduced": 1.0}
RULES = ("A published mark is reproduced when the share of our seeds in that class (each seed against its own "
         "floors and test noise) has a 95% Wilson interval wholly above one half, not reproduced when wholly below, "
         "inconclusive otherwise. A published value is reproduced when it lies within the 95% prediction interval "
         "of one more of our runs (a source reports one run), not reproduced otherwise.")
MAJORITY = 0.5


def _matches(run: dict, where: dict) -> bool:
    return all(setting_text(run.get(k)) == setting_text(v) for k, v in where.items())


def mark_verdict(row: dict, mark: str) -> tuple[str, str]:
    """(verdict, why) of a published mark against a summary row's seed classes.

    >>> mark_verdict({"classes": ("–",) * 10}, "–")
    ('reproduced', '10 of 10 seeds at [–] [72%, 100%]')
    >>> mark_verdict({"classes": ("0+",) * 9 + ("–",)}, "–")
    ('not reproduced', '1 of 10 seeds at [–] [2%, 40%]; ours: 9 at [0+]')
    >>> mark_verdict({"classes": ("–", "–", "–")}, "–")[0]
    'inconclusive'
    """
    classes = list(row.get("classes", ()))
    k, n = sum(c == mark for c in classes), len(classes)
    low, high = stats.proportion_interval(k, n)
    others = pd.Series([c for c in classes if c != mark]).value_counts()
    why = f"{k} of {n} seeds at [{mark}] [{low:.0%}, {high:.0%}]" + (
        "; ours: " + ", ".join(f"{count} at [{c}]" for c, count in others.items()) if len(others) else "")
    if low > MAJORITY:
        return "reproduced", why
    if high < MAJORITY:
        return "not reproduced", why
    return "inconclusive", why + f": the interval includes {MAJORITY:.0%}, more seeds would decide"


def value_verdict(row: dict, value: float, log: bool, spec: str) -> tuple[str, str]:
    """(verdict, why) of a published value against the prediction interval of one more of our runs.

    >>> value_verdict({"values": (0.0021, 0.0018, 0.0025)}, 0.001863, True, ".4g")[0]
    'reproduced'
    >>> value_verdict({"values": (0.011, 0.014, 0.012)}, 0.001863, True, ".4g")
    ('not reproduced', '0.001863 outside the 95% prediction interval of one more run [0.006689, 0.02251]')
    """
    low, high = stats.prediction_interval(row["values"], log=log)
    if pd.isna(low):
        return "inconclusive", "fewer than two seeds: no prediction interval"
    inside = low <= value <= high
    return ("reproduced" if inside else "not reproduced",
            f"{value:{spec}} {'within' if inside else 'outside'} the 95% prediction interval of one more run "
            f"[{low:{spec}}, {high:{spec}}]")


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
            task = suite.tasks[row["task"]]
            spec = task.number_format
            ours = tables.entry_text(row, spec)
            if row["n"] == 0:
                verdict, why = "not reproduced", "no finished run"
            elif "mark" in entry:
                verdict, why = mark_verdict(row, str(entry["mark"]))
            else:
                verdict, why = value_verdict(row, float(entry["value"]), task.log_scale, spec)
            published = entry.get("claim", "") + (f" ({entry['value']:{spec}})" if "value" in entry else
                                                  f" [{entry['mark']}]")
            rows.append(dict(source=entry["source"], configuration=key, published=published.strip(), ours=ours,
                             verdict=verdict, why=why))
    return pd.DataFrame(rows, columns=COLUMNS)


def verdict_scores(found: pd.DataFrame) -> pd.DataFrame:
    """The colours of a :func:`verdicts` table: its verdict column by :data:`VERDICT_SCORES`, nothing else."""
    scores = pd.DataFrame(float("nan"), index=found.index, columns=found.columns)
    scores["verdict"] = found["verdict"].map(VERDICT_SCORES).astype(float)
    return scores
