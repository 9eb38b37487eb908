"""Regression check: a suite's results in the store against a reviewed baseline (``results/baseline/<suite>.json``).

Configurations are matched by key (``task/cell-L<layers>-<direction>-T<truncation>``, seeds pooled; see
:func:`bench.reporting.results.configuration_key`); the baseline keeps every seed's value. A configuration **fails** when

- it is *missing*: in the baseline but not in the suite, or some of its runs are not in the store;
- it is *worse* (:func:`judge`): its seeds lost what every baseline seed had learned (their outcome classes
  against the task's known answers, :meth:`bench.tasks.base.Task.outcome`), whatever the baseline's spread; or
  more of its seeds sit a whole level lower than chance allows (Fisher's exact test); or, by either of two
  one-sided t tests against the baseline's spread (never pooled with the candidate's, which a collapsed seed
  would inflate), its *worst seed* lies beyond a prediction interval of the baseline (so one seed of three
  collapsing fails) or its *mean* shifted. The baseline's sd is moderated toward the typical spread of its task's
  configurations (:mod:`bench.core.stats`), yet with three or more seeds no threshold lies below what the
  configuration's own seeds support (so a configuration whose seeds spread wider than its task's typical one
  does not fail on its own noise), and every threshold is bounded by half the span of the task's known answers;
  the tests share a false-alarm rate of ``alpha`` per configuration (the tests on a configuration's own spread
  run at :data:`OWN_SHARE` of it, leaving the rest to the outcome classes and the bound), and a change smaller
  than the task's ``min_delta`` never counts.
  Metrics spanning decades (the sine task's RMSE) are compared on a log scale;
- it *no longer reaches its target*: the baseline's 95% interval lay at or below the target and the current
  one lies entirely above it;
- more of its runs *fail* or *diverge* than in the baseline.

A configuration whose baseline already holds a seed as bad as its new worst one is *undecided* when more of its
seeds are that bad but n cannot tell it from chance: a warning naming how many seeds would decide, given where
every new seed is that bad or the counts say at least :data:`WARN_ALPHA` (not for two such seeds of three against
one, which a configuration losing a seed in three shows by chance one time in four).
A configuration whose training samples/s fell below ``slow_ratio`` of the baseline's is flagged *slower*:
a warning, since CI machines are noisy, and a failure only with ``fail_on_slow``. Better means, targets
newly reached, faster and new configurations are reported as information.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.core import stats
from bench.running import locations
from bench.config.settings import ConfigError, config_hash, shown
from bench.reporting.pages import literal, markdown_table
from bench.config.suite import Suite
from bench.tasks.base import Task

ALPHA = 0.01  # false-alarm rate per configuration under pure seed noise (tests/test_regress_power.py)
# an "undecided" warning needs every new seed that bad, or counts that chance gives at most this often (one-sided
# Fisher p): two collapsed seeds of three against a baseline holding one (p = 0.5) are what such a configuration
# does one time in four
WARN_ALPHA = 0.25
# With the known answers, a configuration's tests on its own seeds' spread (exact, whatever that spread) run at
# this share of alpha: the outcome classes and the bound, which fail a configuration whatever its spread, get the rest
OWN_SHARE = 0.5
PRIOR_DF = 1.0  # weight, in seeds' worth of degrees of freedom, of the task's typical spread
SLOW_RATIO = 0.5
MAX_COUNT = 10**9  # runs of one configuration in a baseline: a bound that keeps the arithmetic in floats


def baseline_path(suite_name: str) -> Path:
    return locations.results_dir() / "baseline" / f"{suite_name}.json"


def suite_hash(suite: Suite) -> str:
    """Identity of a suite's set of run configurations (order-independent)."""
    return config_hash({"configs": sorted(suite.hashes())})


def target_verdict(low: float, high: float, mean: float, target: float, lower_is_better: bool = True) -> str:
    """``reached`` when the whole interval is at or past the target, ``not reached`` when none of it is, else
    ``undecided``; with a single seed (no interval) the mean decides.

    >>> target_verdict(0.455, 0.462, 0.458, 0.4645), target_verdict(0.46, 0.47, 0.465, 0.4645)
    ('reached', 'undecided')
    >>> target_verdict(float("nan"), float("nan"), 0.50, 0.4645)
    'not reached'
    """
    if target is None or math.isnan(target) or math.isnan(mean):
        return "undecided"
    sign = 1 if lower_is_better else -1
    if math.isnan(low):
        low = high = mean
    best, worst = (low, high) if lower_is_better else (high, low)
    if sign * (worst - target) <= 0:
        return "reached"
    if sign * (best - target) > 0:
        return "not reached"
    return "undecided"


def _json_number(value: float) -> float | None:
    """NaN as null, else six significant digits (reviewable diffs)."""
    return None if value is None or math.isnan(value) else float(f"{value:.6g}")


def make_baseline(suite: Suite, summary: pd.DataFrame, commits: list[str]) -> dict:
    """The baseline document: metadata and, per configuration key, every seed's metric with their mean, std and
    n, whether the configuration reached its target (by interval) and its samples/s."""
    configurations = {}
    for row in summary.to_dict("records"):
        task = suite.tasks[row["task"]]
        configurations[row["configuration"]] = {
            "metric": task.metric, "values": [_json_number(v) for v in row["values"]],
            "mean": _json_number(row["mean"]), "std": _json_number(row["std"]), "n": int(row["n"]),
            "runs": int(row["runs"]), "diverged": int(row["diverged"]), "failed": int(row["failed"]),
            "target": _json_number(row["target"]),
            "reached_target": target_verdict(row["low"], row["high"], row["mean"], row["target"],
                                             task.lower_is_better) == "reached",
            "samples_per_s": _json_number(row["train/samples_per_s"])}
    return {"suite": suite.name, "suite_hash": suite_hash(suite), "commit": ", ".join(sorted(set(commits))),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "configurations": configurations}


def _is_number(v) -> bool:
    """A finite JSON number: Python's json also reads NaN, Infinity and integers too large for a float, which
    no comparison can use."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT


TOP_FIELDS = {"suite": (lambda v: isinstance(v, str), "a string"),
              "suite_hash": (lambda v: isinstance(v, str), "a string"),
              "commit": (lambda v: isinstance(v, str), "a string"),
              "date": (lambda v: isinstance(v, str), "a string"),
              "configurations": (lambda v: isinstance(v, dict), "a mapping of configuration key -> entry")}
ENTRY_FIELDS = {"metric": (lambda v: isinstance(v, str), "a metric name"),
                "values": (lambda v: isinstance(v, list) and all(_is_number(x) for x in v), "a list of numbers"),
                "target": (lambda v: v is None or _is_number(v), "a number or null"),
                "mean": (lambda v: v is None or _is_number(v), "a number or null"),
                "std": (lambda v: v is None or _is_number(v), "a number or null"),
                **dict.fromkeys(("n", "runs", "diverged", "failed"),
                                (_is_count, f"an integer >= 0, at most {MAX_COUNT}")),
                "reached_target": (lambda v: isinstance(v, bool), "true or false"),
                "samples_per_s": (lambda v: v is None or _is_number(v), "a number or null")}


def load_baseline(path: Path) -> dict:
    """Read and check a baseline file; raise :class:`ConfigError` naming the file and every bad field."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"baseline: {path}: no such file; allowed: a file written by `bench baseline`"]) from None
    except json.JSONDecodeError as e:
        raise ConfigError([f"baseline: {path}: not valid JSON ({e}); allowed: a file written by `bench baseline`"]) \
            from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"baseline: {path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                           "allowed: a file written by `bench baseline`"]) from None
    except RecursionError:
        raise ConfigError([f"baseline: {path}: nested too deeply to read; allowed: a file written by "
                           "`bench baseline`"]) from None
    except (OSError, ValueError) as e:  # a folder, no permission; ValueError: a NUL byte in the path
        raise ConfigError([f"baseline: {path}: cannot be read ({getattr(e, 'strerror', None) or e}); allowed: a "
                           "file written by `bench baseline`"]) from None
    if not isinstance(doc, dict):
        raise ConfigError([f"baseline: {path}: {type(doc).__name__}; allowed: a JSON object with "
                           f"{', '.join(TOP_FIELDS)}"])
    problems = [_problem(path, name, doc, check, allowed) for name, (check, allowed) in TOP_FIELDS.items()]
    for key, entry in (doc.get("configurations") if isinstance(doc.get("configurations"), dict) else {}).items():
        if not isinstance(entry, dict):
            problems.append(f"baseline: {path}: configurations.{key}: {shown(entry)}; allowed: a mapping of "
                            f"{', '.join(ENTRY_FIELDS)}")
            continue
        problems += [_problem(path, f"configurations.{key}.{name}", entry, check, allowed, name)
                     for name, (check, allowed) in ENTRY_FIELDS.items()]
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError(problems)
    return doc


def _problem(path, where: str, mapping: dict, check, allowed: str, name: str | None = None) -> str | None:
    name = name or where
    if name not in mapping:
        return f"baseline: {path}: {where}: missing; allowed: {allowed}"
    if not check(mapping[name]):
        return f"baseline: {path}: {where}: {shown(mapping[name])}; allowed: {allowed}"
    return None


def number_format(task: Task | None) -> str:
    """The task's number format; a generic one for a task this installation does not know (None)."""
    return ".4g" if task is None else task.number_format


def _text(mean, std, n, spec: str) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return f"no result (n={n})"
    spread = "" if std is None or (isinstance(std, float) and math.isnan(std)) else f" ± {std:{spec}}"
    return f"{mean:{spec}}{spread} (n={n})"


@dataclass
class Comparison:
    baseline_file: Path
    baseline: dict
    suite: Suite
    findings: pd.DataFrame  # configuration, change, severity (fail | warn | info), baseline, current, detail
    compared: int
    settings: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return bool((self.findings["severity"] == "fail").any())


def scale(task: Task | None, values) -> list[float]:
    """Values as the check compares them: worse is higher; logs for metrics spanning decades (as they are for a
    task this installation does not know, None)."""
    sign = -1 if task is not None and not task.lower_is_better else 1
    log = task is not None and task.log_scale
    return [sign * (math.log(v) if log else v) for v in values if v is not None and not math.isnan(v)]


def prior_variances(entries, specs: Mapping[str, Task]) -> dict[str, float]:
    """task -> the typical variance of a configuration's seeds, on the check's scale (:func:`stats.prior_variance`),
    from ``entries``: (task, the seeds' values) of every configuration of the reference; ``specs``: the Task of
    each task name (those it lacks: tasks this installation does not know)."""
    spreads: dict[str, list[float]] = {}
    for task, values in entries:
        values = scale(specs.get(task), values)
        if len(values) > 1:
            spreads.setdefault(task, []).append(float(pd.Series(values).var(ddof=1)))
    return {task: stats.prior_variance(v) for task, v in spreads.items()}


def bound(task: Task | None, row: dict) -> float:
    """Half the span between the task's known answers on the check's scale (for the dependency task, the Bayes
    and no-lag floors; for the sine task, the target and the last-value baseline); no bound without them."""
    if task is None:
        return math.inf
    span = scale(task, task.known_span(row))
    return abs(span[0] - span[1]) / 2 if len(span) == 2 else math.inf


@dataclass
class SeedChange:
    """How a configuration's seeds moved from a reference (``old``) to ``new``, on the check's scale (worse is
    higher; logs for a metric spanning decades)."""
    change: str  # "worse", "better", "undecided" (the classes fell, too few seeds to tell) or "" (no change)
    reason: str  # what made it worse (or undecided): seeds that lost what every reference seed had, a seed beyond
    # the reference's range, the mean shifted
    shift: float  # new mean - old mean
    low: float  # the shift's 95% interval, from the mean test's moderated sd and degrees of freedom
    high: float
    tests: dict[str, float]  # stats.worse_tests
    detail: str


def seed_change(task: Task | None, old_values, new_values, prior_var: float, alpha: float = ALPHA,
                min_delta: float = 0.0, row: dict | None = None) -> SeedChange | None:
    """The regression check's verdict on one configuration. The reference's sd is moderated toward ``prior_var``
    (:func:`prior_variances`). None when a side has no value. Worse when

    - with ``row`` (the configuration's summary row: its known answers and test noise), its seeds *lost what
      every reference seed had* (:func:`outcome_change`): every new seed's outcome class
      (:meth:`bench.tasks.base.Task.outcome`) lies below every reference seed's, or one seed's a whole level (a
      lag) below, beyond the worst reference seed by more than the task's typical seed scatter (one seed: the
      configuration's own scatter, bounded by :func:`bound`): no spread of the reference can hide it; or more
      seeds sit a whole level below the reference's typical class than chance allows (Fisher's exact test);
    - :func:`stats.worse_tests` says so (its worst seed beyond a prediction interval of the reference's seeds, or
      its mean shifted), with ``row`` every threshold bounded by :func:`bound` (half the span of the known
      answers) unless the reference holds seeds as bad as the new worst one, or no better than the worst known
      answer.

    *Undecided* where seeds fell a level but too few were run to tell it from chance (a reference that already
    holds such a seed), naming how many seeds would; better when its mean moved the other way past the mean
    test's threshold, else no detectable change.

    >>> from bench.tasks.dependency import DependencyTask
    >>> dependency = DependencyTask()
    >>> seed_change(dependency, [0.460, 0.461, 0.459], [0.460, 0.461, 0.6616], math.nan, min_delta=0.005).change
    'worse'
    >>> seed_change(dependency, [0.460, 0.461, 0.459], [0.460, 0.461, 0.459], math.nan, min_delta=0.005).change
    ''
    >>> floors = {"floor_none": 0.6616, "floor_first1": 0.5192, "floor_all": 0.4545, "noise": 0.0031}
    >>> seed_change(dependency, [0.469, 0.499, 0.539], [0.6616] * 3, 0.0035 ** 2, min_delta=0.005, row=floors).reason
    "3 of 3 seeds lost what every baseline seed had learned (seeds –, –, – against the baseline's 1+, 1+, 0+)"
    """
    old, new = scale(task, old_values), scale(task, new_values)
    if not old or not new:
        return None
    base_sd = float(pd.Series(old).std(ddof=1)) if len(old) > 1 else math.nan
    sd, df = stats.moderated_sd(base_sd, len(old), prior_var, PRIOR_DF)
    if math.isnan(sd) or df == 0:
        sd, df = 0.0, 1.0  # one seed and no other configuration: only min_delta can judge
    most, classes, own = math.inf, None, (0.0, 0.0)
    if row is not None:
        span_half = bound(task, row)
        typical = math.sqrt(prior_var) if not math.isnan(prior_var) else sd
        per_sd = stats.thresholds(len(old), len(new), 1.0, df, alpha)[0]  # the worst seed's threshold per unit sd
        own = stats.own_thresholds(old, len(new), alpha * OWN_SHARE)  # what the configuration's seeds support
        scatter = max(min_delta, min(per_sd * typical, span_half / 2))
        # a reference seed no better than the worst known answer learned nothing to lose: no bound from the answers
        if task is not None and all(task.score(row, v) > 0 for v in old_values):
            most = span_half
        spread = max(scatter, min(max(per_sd * sd, own[0]), most))
        classes = outcome_change(task, row, old_values, new_values, old, new, (scatter, spread), alpha)
        if classes and classes[0] != "fail":  # the reference holds seeds as bad: chance may explain them
            most = math.inf
    tests = stats.worse_tests(old, new, sd, df, alpha, min_delta, most=most, at_least=own)
    shift = sum(new) / len(new) - sum(old) / len(old)
    half = stats.shift_half_width(len(old), len(new), sd, df)
    units = " (log scale)" if scale(task, [math.e]) == [1.0] else ""
    detail = (f"worst seed {max(new) - sum(old) / len(old):+.3g} vs threshold {tests['seed_threshold']:.3g}; "
              f"mean {shift:+.3g} vs {tests['mean_threshold']:.3g}{units}; baseline sd {sd:.3g} ({df:g} df)")
    if classes and classes[0] == "fail":
        return SeedChange("worse", classes[1], shift, shift - half, shift + half, tests, detail)
    if tests["seed"] > 0 or tests["mean"] > 0:
        reason = "a seed beyond the baseline's range" if tests["seed"] > 0 else "the mean shifted"
        return SeedChange("worse", reason, shift, shift - half, shift + half, tests, detail)
    if classes and classes[0] == "undecided":
        return SeedChange("undecided", classes[1], shift, shift - half, shift + half, tests, detail)
    change = "better" if shift < -tests["mean_threshold"] else ""
    return SeedChange(change, "", shift, shift - half, shift + half, tests, detail)


def outcome_change(task: Task | None, row: dict, base_values, new_values, old, new, margins: tuple[float, float],
                   alpha: float) -> tuple[str, str] | None:
    """What the seeds' outcome classes say (:meth:`bench.tasks.base.Task.outcome`, judged against the current
    row's known answers; ranks 2 apart are a whole level, a lag, apart):

    - ``("fail", why)`` when every new seed lost what every baseline seed had, by more than the first of
      ``margins`` (the task's typical seed scatter), or one seed a whole level of it, by more than the second (the
      configuration's own, bounded by the known answers) (:func:`bench.core.stats.lost_seeds`), or when more seeds sit a whole level below
      the baseline's typical class than chance allows at ``alpha`` (Fisher's exact test);
    - ``("undecided", why)`` when more seeds sit there but too few were run to tell, with how many would;
    - ``("held", why)`` when the baseline holds seeds as bad as the new worst one and the counts show no change;
    - None otherwise, or for a task without outcome classes (or one this installation does not know, None)."""
    if task is None:
        return None
    judged = [[task.outcome(row, v) for v in values] for values in (base_values, new_values)]
    if not all(judged) or any(c is None for side in judged for c in side):
        return None
    (base_ranks, base_marks), (new_ranks, new_marks) = ([[c[i] for c in side] for i in (0, 1)] for side in judged)
    seen = f"seeds {', '.join(new_marks)} against the baseline's {', '.join(base_marks)}"
    n, m = len(base_ranks), len(new_ranks)
    every = stats.lost_seeds(base_ranks, old, new_ranks, new, margins[0])
    whole = stats.lost_seeds(base_ranks, old, new_ranks, new, margins[1], drop=2)
    if every == m or whole:
        lost = m if every == m else whole
        return "fail", f"{lost} of {m} seeds lost what every baseline seed had learned ({seen})"
    worst = min(new_ranks)
    # as bad as the new worst seed: its class or below, or within the task's typical scatter of its value (a
    # nearly collapsed seed counts)
    bad = max(v for r, v in zip(new_ranks, new) if r == worst) - margins[0]
    k_new = sum(r <= worst or v >= bad for r, v in zip(new_ranks, new))
    k_base = sum(r <= worst or v >= bad for r, v in zip(base_ranks, old))
    typical = sorted(base_ranks)[n // 2]
    if k_base == 0:
        return None
    if not (worst <= typical - 2 or worst < typical and worst == 0) or k_new / m <= k_base / n:
        return "held", seen
    p = stats.more_often(k_base, n, k_new, m)
    counted = (f"{k_new} of {m} seeds at `{new_marks[new_ranks.index(worst)]}` or near it, {k_base} of {n} in the "
               f"baseline ({seen}): Fisher p = {p:.2g}")
    if p < alpha:
        return "fail", counted
    if k_new < m and p > WARN_ALPHA:  # what chance often gives at these n: nothing to warn of
        return "held", seen
    needed = stats.seeds_to_decide(k_base, n, k_new, m, alpha)
    more = f"{needed} seeds on each side would decide it" if needed else "no number of seeds up to 100 would decide it"
    return "undecided", (f"{counted}, which {n} and {m} seeds cannot tell from chance at a false-alarm rate of "
                         f"{alpha:g}; {more}")


def compare(baseline: dict, baseline_file: Path, suite: Suite, summary: pd.DataFrame, alpha: float = ALPHA,
            min_delta: dict[str, float] | None = None, slow_ratio: float = SLOW_RATIO,
            fail_on_slow: bool = False) -> Comparison:
    """Every change between the baseline and the current summary (:func:`bench.reporting.tables.summarize`)."""
    specs = suite.tasks  # a baseline's task the suite does not run: not known here (None below)
    min_delta = {**{name: specs[name].min_delta for name in sorted(set(summary["task"]))}, **(min_delta or {})}
    current = {row["configuration"]: row for row in summary.to_dict("records")}
    findings = []
    entries = baseline["configurations"]
    prior = prior_variances(((key.split("/", 1)[0], base["values"]) for key, base in entries.items()), specs)

    def note(key, change, severity, base="", now="", detail=""):
        findings.append(dict(configuration=key, change=change, severity=severity, baseline=base, current=now,
                             detail=detail))

    for key, base in entries.items():
        task = key.split("/", 1)[0]
        spec = number_format(specs.get(task))
        base_text = _text(base["mean"], base["std"], base["n"], spec)
        now = current.get(key)
        if now is None:
            note(key, "missing", "fail", base_text, "not in the suite", "the suite no longer has this configuration")
            continue
        now_text = _text(now["mean"], now["std"], now["n"], spec)
        if now["missing"] or now.get("running"):
            note(key, "missing", "fail", base_text, now_text,
                 f"{now['missing'] + now.get('running', 0)} of {now['runs']} runs not in the store or still running "
                 "(run the suite first)")
        for outcome in ("failed", "diverged"):
            if now[outcome] > base[outcome]:
                note(key, f"more {outcome}", "fail", f"{base[outcome]} {outcome}", f"{now[outcome]} {outcome}",
                     f"{now[outcome]} of {now['runs']} runs {outcome}")
        moved = seed_change(specs.get(task), base["values"], now["values"], prior.get(task, math.nan), alpha,
                            min_delta.get(task, 0.0), row=now)
        if moved is not None and moved.change == "worse":
            note(key, "worse", "fail", base_text, now_text, f"{moved.reason}: {moved.detail}")
        elif moved is not None and moved.change == "undecided":
            note(key, "undecided", "warn", base_text, now_text, moved.reason)
        elif moved is not None and moved.change == "better":
            note(key, "better", "info", base_text, now_text, moved.detail)
        elif moved is None and not scale(specs.get(task), base["values"]) and scale(specs.get(task), now["values"]):
            note(key, "better", "info", base_text, now_text, "has a result now")
        t = specs.get(task)
        verdict_now = target_verdict(now["low"], now["high"], now["mean"], now["target"],
                                     t.lower_is_better if t else True)
        if base["reached_target"] and verdict_now == "not reached":
            note(key, "no longer reaches target", "fail", "reached", f"interval {now_text} beyond {now['target']:{spec}}")
        elif verdict_now == "reached" and not base["reached_target"]:
            note(key, "reaches target now", "info", "not reached", f"interval {now_text} within {now['target']:{spec}}")
        speed, base_speed = now["train/samples_per_s"], base["samples_per_s"]
        if base_speed and not math.isnan(speed):
            ratio = speed / base_speed
            if ratio < slow_ratio:
                note(key, "slower", "fail" if fail_on_slow else "warn", f"{base_speed:,.0f} samples/s",
                     f"{speed:,.0f} samples/s", f"× {ratio:.2f} (threshold × {slow_ratio:g})")
            elif ratio > 1 / slow_ratio:
                note(key, "faster", "info", f"{base_speed:,.0f} samples/s", f"{speed:,.0f} samples/s", f"× {ratio:.2f}")
    for key in current.keys() - baseline["configurations"].keys():
        note(key, "new", "info", "", _text(current[key]["mean"], current[key]["std"], current[key]["n"],
                                           number_format(specs.get(current[key]["task"]))), "not in the baseline")
    columns = ["configuration", "change", "severity", "baseline", "current", "detail"]
    order = {"fail": 0, "warn": 1, "info": 2}
    frame = pd.DataFrame(findings, columns=columns)
    frame = frame.sort_values(["severity", "configuration"], key=lambda c: c.map(order) if c.name == "severity" else c,
                              kind="stable").reset_index(drop=True)
    settings = dict(alpha=alpha, min_delta=min_delta, slow_ratio=slow_ratio, fail_on_slow=fail_on_slow)
    return Comparison(Path(baseline_file), baseline, suite, frame, len(baseline["configurations"]), settings)


def verdict(comparison: Comparison) -> str:
    counts = comparison.findings["severity"].value_counts()
    state = "FAIL" if comparison.failed else "PASS"
    return (f"{state}: {comparison.compared} configurations of the baseline compared; {counts.get('fail', 0)} "
            f"failing, {counts.get('warn', 0)} warnings, {counts.get('info', 0)} other changes")


def regress_markdown(comparison: Comparison) -> str:
    """The report written to ``results/<suite>/regress.md``."""
    base, s = comparison.baseline, comparison.settings
    lines = [f"# Regression check: suite `{comparison.suite.name}`", "",
             f"Baseline `{locations.shown_path(comparison.baseline_file)}`: suite {literal(base['suite'])}, "  # the file's
             f"commit {literal(base['commit'])}, {literal(base['date'])}.", ""]
    if base["suite_hash"] != suite_hash(comparison.suite):
        lines += ["The suite's settings changed since the baseline (suite hash "
                  f"{literal(base['suite_hash'])} → {suite_hash(comparison.suite)}): configurations are matched by key.",
                  ""]
    deltas = ", ".join(f"{task} {value:g}" for task, value in s["min_delta"].items())
    lines += [f"Worse = seeds that lost what every baseline seed had learned (their outcome classes against the "
              f"task's known answers), or the worst seed beyond a prediction interval of the baseline's seeds, or the "
              f"mean shifted, by one-sided t tests with a false-alarm rate of {s['alpha']:g} per configuration, and "
              f"by more than the task's smallest change that counts ({deltas}; log units for RMSE); the baseline's "
              f"sd is moderated toward its task's typical spread (with three or more seeds, never below what its own "
              f"seeds support, read at {OWN_SHARE:g} of that rate) and bounded by half the span of the known answers. "
              f"Undecided = more seeds that learned "
              f"nothing than in the baseline, which already had one (every new seed, or a margin chance gives at most "
              f"{WARN_ALPHA:g} of the time by Fisher's exact test), yet too few seeds to decide. Slower = samples/s below × {s['slow_ratio']:g} of the baseline "
              f"({'fails' if s['fail_on_slow'] else 'a warning'}).", "", f"**{verdict(comparison)}**", ""]
    if len(comparison.findings):
        lines.append(markdown_table(comparison.findings))
    else:
        lines.append("No changes.")
    return "\n".join(lines) + "\n"
