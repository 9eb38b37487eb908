"""Regression check: a suite's results in the store against a reviewed baseline (``results/baseline/<suite>.json``).

Configurations are matched by key (``task/cell-L<layers>-<direction>-T<truncation>``, seeds pooled; see
:func:`bench.results.configuration_key`). A configuration **fails** the check when

- it is *missing*: in the baseline but not in the suite, or some of its runs are not in the store;
- its mean metric is *worse* by more than ``sigmas`` pooled standard deviations of the seeds **and** by more
  than its task's ``min_delta`` (the spread test keeps seed noise out, the absolute floor trivial shifts);
- it *no longer reaches its target* (at least half of its finished seeds reached it in the baseline);
- more of its runs *fail* or *diverge* than in the baseline.

A configuration whose training samples/s fell below ``slow_ratio`` of the baseline's is flagged *slower*:
a warning, since CI machines are noisy, and a failure only with ``fail_on_slow``. Better means, targets
newly reached, faster and new configurations are reported as information.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import targets, tracking
from bench.config import ConfigError, config_hash, shown
from bench.report import markdown_table
from bench.suite import Suite

SIGMAS = 3.0
MIN_DELTA = {"dependency": 0.01, "sine": 0.002}  # nats (the floor margin); RMSE (about the seed's whole error)
SLOW_RATIO = 0.5
MAX_COUNT = 10**9  # runs of one configuration in a baseline: a bound that keeps the arithmetic in floats


def baseline_path(suite_name: str) -> Path:
    return tracking.results_dir() / "baseline" / f"{suite_name}.json"


def suite_hash(suite: Suite) -> str:
    """Identity of a suite's set of run configurations (order-independent)."""
    return config_hash({"configs": sorted(suite.hashes())})


def reached_target(reached: int, n: int) -> bool:
    """A configuration reaches its target when at least half of its finished seeds did.

    >>> reached_target(1, 2), reached_target(1, 3), reached_target(0, 0)
    (True, False, False)
    """
    return n > 0 and 2 * reached >= n


def _json_number(value: float) -> float | None:
    """NaN as null, else six significant digits (reviewable diffs)."""
    return None if value is None or math.isnan(value) else float(f"{value:.6g}")


def make_baseline(suite: Suite, summary: pd.DataFrame, commits: list[str]) -> dict:
    """The baseline document: metadata and, per configuration key, the metric's mean, std and n over seeds."""
    configurations = {}
    for row in summary.to_dict("records"):
        configurations[row["configuration"]] = {
            "metric": targets.METRIC[row["task"]], "mean": _json_number(row["mean"]),
            "std": _json_number(row["std"]), "n": int(row["n"]), "runs": int(row["runs"]),
            "diverged": int(row["diverged"]), "failed": int(row["failed"]),
            "reached_target": reached_target(row["reached"], row["n"]),
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
ENTRY_FIELDS = {"metric": (lambda v: v in targets.METRIC.values(), "one of " + ", ".join(targets.METRIC.values())),
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


def pooled_std(std_a: float | None, n_a: int, std_b: float | None, n_b: int) -> float:
    """Pooled standard deviation of two groups of seeds; 0 when neither has two runs.

    >>> round(pooled_std(0.01, 3, 0.02, 3), 4), pooled_std(None, 1, float("nan"), 1)
    (0.0158, 0.0)
    """
    dof = max(0, n_a - 1) + max(0, n_b - 1)
    if dof == 0:
        return 0.0
    squares = sum((n - 1) * s**2 for s, n in ((std_a, n_a), (std_b, n_b))
                  if n > 1 and s is not None and not math.isnan(s))
    return math.sqrt(squares / dof)


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


def compare(baseline: dict, baseline_file: Path, suite: Suite, summary: pd.DataFrame, sigmas: float = SIGMAS,
            min_delta: dict[str, float] | None = None, slow_ratio: float = SLOW_RATIO,
            fail_on_slow: bool = False) -> Comparison:
    """Every change between the baseline and the current summary (:func:`bench.tables.summarize`)."""
    min_delta = {**MIN_DELTA, **(min_delta or {})}
    current = {row["configuration"]: row for row in summary.to_dict("records")}
    findings = []

    def note(key, change, severity, base="", now="", detail=""):
        findings.append(dict(configuration=key, change=change, severity=severity, baseline=base, current=now,
                             detail=detail))

    for key, base in baseline["configurations"].items():
        task = key.split("/", 1)[0]
        spec = targets.NUMBER_FORMAT.get(task, ".4g")
        base_text = _text(base["mean"], base["std"], base["n"], spec)
        now = current.get(key)
        if now is None:
            note(key, "missing", "fail", base_text, "not in the suite", "the suite no longer has this configuration")
            continue
        now_text = _text(now["mean"], now["std"], now["n"], spec)
        if now["missing"]:
            note(key, "missing", "fail", base_text, now_text,
                 f"{now['missing']} of {now['runs']} runs not in the store (run the suite first)")
        for outcome in ("failed", "diverged"):
            if now[outcome] > base[outcome]:
                note(key, f"more {outcome}", "fail", f"{base[outcome]} {outcome}", f"{now[outcome]} {outcome}",
                     f"{now[outcome]} of {now['runs']} runs {outcome}")
        if base["mean"] is not None and now["n"] > 0:
            delta = now["mean"] - base["mean"]
            spread = pooled_std(base["std"], base["n"], now["std"], now["n"])
            threshold = max(sigmas * spread, min_delta.get(task, 0.0))
            detail = (f"Δ {delta:+.3g}; threshold {threshold:.3g} = max({sigmas:g} × pooled std {spread:.3g}, "
                      f"{min_delta.get(task, 0.0):g})")
            if delta > threshold:
                note(key, "worse", "fail", base_text, now_text, detail)
            elif delta < -threshold:
                note(key, "better", "info", base_text, now_text, detail)
        elif base["mean"] is None and now["n"] > 0:
            note(key, "better", "info", base_text, now_text, "has a result now")
        reached_now = reached_target(now["reached"], now["n"])
        if base["reached_target"] and not reached_now:
            note(key, "no longer reaches target", "fail", "reached", f"{now['reached']}/{now['n']} seeds reached")
        elif reached_now and not base["reached_target"]:
            note(key, "reaches target now", "info", "not reached", f"{now['reached']}/{now['n']} seeds reached")
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
                                           targets.NUMBER_FORMAT[current[key]["task"]]), "not in the baseline")
    columns = ["configuration", "change", "severity", "baseline", "current", "detail"]
    order = {"fail": 0, "warn": 1, "info": 2}
    frame = pd.DataFrame(findings, columns=columns)
    frame = frame.sort_values(["severity", "configuration"], key=lambda c: c.map(order) if c.name == "severity" else c,
                              kind="stable").reset_index(drop=True)
    settings = dict(sigmas=sigmas, min_delta=min_delta, slow_ratio=slow_ratio, fail_on_slow=fail_on_slow)
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
             f"Baseline `{comparison.baseline_file}`: suite `{base['suite']}`, commit {base['commit']}, "
             f"{base['date']}.", ""]
    if base["suite_hash"] != suite_hash(comparison.suite):
        lines += ["The suite's settings changed since the baseline (suite hash "
                  f"{base['suite_hash']} → {suite_hash(comparison.suite)}): configurations are matched by key.", ""]
    deltas = ", ".join(f"{task} {value:g}" for task, value in s["min_delta"].items())
    lines += [f"Worse = mean worse by more than {s['sigmas']:g} pooled standard deviations and by more than "
              f"the absolute floor ({deltas}); slower = samples/s below × {s['slow_ratio']:g} of the baseline "
              f"({'fails' if s['fail_on_slow'] else 'a warning'}).", "", f"**{verdict(comparison)}**", ""]
    if len(comparison.findings):
        lines.append(markdown_table(comparison.findings))
    else:
        lines.append("No changes.")
    return "\n".join(lines) + "\n"
