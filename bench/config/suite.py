"""Suites: YAML matrices of run configurations, validated whole before anything runs.

A suite file (``bench/suites/<name>.yaml`` or any path)::

    description: what the suite is for
    axes:                 # the matrix: every combination of these values
      task: [dependency, sine]
      truncation: [1, 5, 10]
      seed: [0, 1]
    fixed: {hidden: 8}    # settings shared by every run
    tasks:                # per-task settings (training budgets), applied over ``fixed``
      dependency: {series_length: 100000}
      sine: {max_steps: 300}
    points:               # optional: explicit settings, each combined with every combination of the axes
      - {task: dependency, truncation: 5, epochs: 1}
      - {task: dependency, truncation: 10, hidden: 16, epochs: 10}
    exclude:              # drop combinations matching every key given (a list means any of)
      - {task: sine, truncation: 1}
    published:            # optional: what a source reports, set beside ours with a verdict (bench.reporting.reproduce)
      - {source: "R2RT", where: {truncation: 5}, claim: learns the first dependency, mark: "1"}
    seeds: {min: 3, max: 10}  # optional, instead of a seed axis: seeds where the answer is open (below)
    tune: {lr: [0.005, 0.01, 0.02, 0.05], seeds: [1000, 1001], at: {layers: 1}}  # optional (see Tuning)

``seeds: {min: m, max: M}`` runs seeds 0 … m−1 of every entry (a configuration pooled over its seeds), then adds
seeds m, m+1, … one at a time to each entry whose answer is still open under :func:`bench.tasks.decision.open_reason`
(the dependency task: its mark ends in ``?``), until it is decided or has M seeds. Which seeds an entry gets
depends only on what the store holds, so a rerun, a resumed suite and several runners on one store add the same
runs (:meth:`Suite.add_seeds`). A seed axis (in the file or ``--axis seed=…``) replaces it.

A setting that follows another (``tbptt_stride`` follows ``truncation``) may be written relative to it:
``T`` (equal to it: the same as leaving it unset, so also fine for tasks without the setting) or ``T/k`` (a
k-th of it), e.g. ``tbptt_stride: [T, T/2, 1]``; exclude rules match the relative value as written. ``T/k``
must come out a whole number in every combination: exclude the others (``- {tbptt_stride: T/2, truncation:
[3, 5]}``), so that nothing is dropped silently.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from bench import tasks as task_registry
from bench.core import bounded_yaml
from bench.core.metric_names import is_reference
from bench.tasks import decision
from bench.tasks.base import Task
from bench.config.run_config import tasks_of
from bench.config.settings import (COMMON_DEFAULTS, ConfigError, RunConfig, check_value, config_hash, display_name,
                                   fields_for, resolve, varying_fields)
from bench.core.fields import convert, did_you_mean
from bench.core.names import NAME_ALLOWED, is_safe_name
SUITES_DIR = Path(__file__).parents[1] / "suites"  # bench/suites: data, beside the layers
RELATIVE = re.compile(r"T(?:/([1-9][0-9]*))?")  # a value relative to the followed setting: T, T/2, …
TOP_LEVEL = ("description", "axes", "fixed", "tasks", "points", "exclude", "published", "seeds", "tune")
MAX_SEEDS = 1000  # seeds: {max: …} beyond this is a typo
MAX_RUNS = 100_000  # combinations of one suite's axes: beyond this a typo, not a benchmark (and a long hang)


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    configs: list[RunConfig]  # resolved, in matrix order
    published: list[dict[str, Any]] = field(default_factory=list)  # figures of a source to reproduce (see below)
    overrides: list[str] = field(default_factory=list)  # the command line's --axis/--set, as given
    seeds: tuple[int, int] | None = None  # (min, max): seeds added where the answer is open (see the module doc)
    tuning: Tuning | None = None  # a learning rate tuned per (task, cell) before the reported runs (module doc)
    _varying: tuple[int, dict] | None = field(default=None, repr=False)
    _tasks: tuple[int, dict] | None = field(default=None, repr=False)

    @property
    def varying(self) -> dict[str, list[str]]:
        """Per task, the settings that vary between its configurations (:func:`bench.config.settings.varying_fields`),
        computed again once configurations were added (tuned rates, adaptive seeds)."""
        if self._varying is None or self._varying[0] != len(self.configs):
            self._varying = (len(self.configs), varying_fields(self.configs))
        return self._varying[1]

    @property
    def tasks(self) -> dict[str, Task]:
        """Each task its configurations name (as they name it) -> its :class:`Task`: what the layers above work
        from instead of looking a task up by name; built again only once configurations were added."""
        if self._tasks is None or self._tasks[0] != len(self.configs):
            self._tasks = (len(self.configs), tasks_of(self.configs))
        return self._tasks[1]

    def matrix(self) -> list[RunConfig]:
        """The suite's reported configurations as its file writes them (its own rates, the first seeds), before a
        tuning stage chooses rates or seeds are added."""
        return list(self.tuning.shared if self.tuning else self.configs)

    def reported(self) -> list[RunConfig]:
        """The configurations whose results the tables report: all but the tuning runs."""
        return self.configs[self.tuning.runs if self.tuning else 0:]

    def apply_tuning(self, results: Callable[[str], tuple[str, dict] | None]) -> list[int]:
        """Once every tuning run has ended (``results`` as for :meth:`add_seeds`), append the reported
        configurations, each at its (task, cell)'s tuned rate (:meth:`Tuning.choose`); return their indices. []
        while a tuning run has no result, once applied, or without tuning."""
        if self.tuning is None or self.tuning.chosen:
            return []
        got = [results(config_hash(cfg)) for cfg in self.configs[: self.tuning.runs]]
        if any(g is None for g in got):
            return []
        self.tuning.choose(self.configs[: self.tuning.runs], got)
        start = len(self.configs)
        self.configs += [cfg.replace(lr=self.tuning.rate(cfg["task"], cfg["cell"])) for cfg in self.tuning.shared]
        return list(range(start, len(self.configs)))

    def name_of(self, index: int) -> str:
        """Run ``index``'s name, unique within the suite: every setting that varies in it is in the name."""
        cfg = self.configs[index]
        return display_name(cfg, self.varying.get(cfg["task"], []))

    def hashes(self) -> list[str]:
        return [config_hash(c) for c in self.configs]

    def entries(self) -> dict[str, list[int]]:
        """Each entry (a configuration less its seed) -> the indices of its runs, in suite order."""
        found: dict[str, list[int]] = {}
        start = self.tuning.runs if self.tuning else 0
        for index, cfg in enumerate(self.configs[start:], start):
            found.setdefault(config_hash(cfg.replace(seed=-1)), []).append(index)
        return found

    def add_seeds(self, results: Callable[[str], tuple[str, dict] | None]) -> list[int]:
        """With ``seeds: {min, max}``: for every entry whose runs have all ended and whose answer is still open
        (:func:`bench.tasks.decision.open_reason`), append its next seed (one past its largest) to
        :attr:`configs`, while it has fewer than max; return the new indices. ``results(config_hash)``: the
        store's (outcome, metrics) of a FINISHED run (outcome finished or diverged), None if it has none. Depends
        on nothing else, so every runner on one store adds the same seeds in the same order."""
        if self.seeds is None:
            return []
        new = []
        for indices in self.entries().values():
            got = [results(config_hash(self.configs[i])) for i in indices]
            if len(indices) >= self.seeds[1] or any(g is None for g in got):
                continue  # complete, or a run still to finish (a failed one holds its entry where it is)
            task = self.configs[indices[0]].task
            finished = [metrics for outcome, metrics in got if outcome == "finished"]
            values = [metrics.get(task.metric, math.nan) for metrics in finished]
            references = {k: v for k, v in (finished[0] if finished else {}).items()
                          if is_reference(k)}
            if decision.open_reason(decision.judge(task, values, references, self.configs[indices[0]])):
                last = max(self.configs[i]["seed"] for i in indices)
                self.configs.append(self.configs[indices[-1]].replace(seed=last + 1))
                new.append(len(self.configs) - 1)
        return new

    def possible_seed_configs(self) -> list[RunConfig]:
        """Every configuration the suite may add (seeds min … max−1 of each entry): what compiling reads."""
        if self.seeds is None:
            return []
        have = set(self.hashes())
        extra = [self.configs[indices[0]].replace(seed=seed) for indices in self.entries().values()
                 for seed in range(self.seeds[1])]
        return [cfg for cfg in extra if config_hash(cfg) not in have]


@dataclass
class Tuning:
    """``tune: {lr: [grid], seeds: [tuning seeds], at: {settings}}``: before the reported runs, each (task, cell)
    trains at every rate of the grid on the tuning seeds, at the suite's own budget, on its configurations that
    match ``at`` (e.g. ``{layers: 1, bidirectional: false, truncation: 10}``); the rate with the best mean metric
    (on the task's scale; a diverged run counts as worst) is then used for every reported run of that (task,
    cell). Tuning seeds are never reported seeds. The suite's own rate (its ``lr``) must be in the grid: the
    tuning runs at it give the sensitivity view (the ranking of cells under the shared rate). ``same_as: {task:
    other}`` (optional): ``task`` is not tuned but trains at ``other``'s tuned rates, for a task whose data and
    model are ``other``'s and only its test split differs (sine_extrapolation and sine)."""

    grid: tuple[float, ...]
    seeds: tuple[int, ...]
    at: dict[str, Any]
    shared: list[RunConfig]  # the reported configurations at the suite's own rate, before tuning
    runs: int = 0  # how many tuning configurations lead :attr:`Suite.configs`
    chosen: dict[tuple[str, str], float] = field(default_factory=dict)  # (task, cell) -> tuned rate
    scores: dict[tuple[str, str, float], float] = field(default_factory=dict)  # (task, cell, rate) -> mean metric
    same_as: dict[str, str] = field(default_factory=dict)  # untuned task -> the task whose rates it trains at

    def rate(self, task: str, cell: str) -> float:
        """The rate a reported run of (``task``, ``cell``) trains at, once :meth:`choose` has run."""
        return self.chosen[(self.same_as.get(task, task), cell)]

    def choose(self, configs: list[dict], got: list[tuple[str, dict]]) -> None:
        """Fill :attr:`scores` (the mean metric per rate) and :attr:`chosen` (the best rate; the smaller on a tie)
        from the tuning runs' (outcome, metrics)."""
        scaled: dict[tuple[str, str, float], list[float]] = {}
        named = tasks_of(configs)
        for cfg, (outcome, metrics) in zip(configs, got):
            task = cfg.task
            value = metrics.get(task.metric, math.nan) if outcome == "finished" else math.nan
            score = task.oriented(value)
            scaled.setdefault((cfg["task"], cfg["cell"], cfg["lr"]), []).append(math.inf if math.isnan(score) else score)
        means = {key: sum(v) / len(v) for key, v in scaled.items()}
        for (name, cell, rate), mean in sorted(means.items(), key=lambda item: (item[1], item[0][2])):
            self.chosen.setdefault((name, cell), rate)
            task = named[name]
            value = (mean if task.lower_is_better else -mean) if math.isfinite(mean) else math.nan
            self.scores[(name, cell, rate)] = math.exp(value) if task.log_scale else value


def _tuning(value: Any, configs: list[dict], seeds_used: set[int], where: str, problems: list[str]) -> Tuning | None:
    """The ``tune:`` mapping as a :class:`Tuning` whose tuning configurations are built from ``configs``."""
    if value is None:
        return None
    allowed = ("a mapping {lr: [rates > 0], seeds: [whole numbers no reported run uses], at: {setting: value}, "
               "optionally same_as: {task: tuned task}} whose at matches configurations of every tuned (task, cell) "
               "and whose lr list holds the suite's own rate")
    names = {cfg["task"] for cfg in configs}
    same_as = value.get("same_as", {}) if isinstance(value, dict) else {}
    ok = (isinstance(value, dict) and {"lr", "seeds", "at"} <= set(value) <= {"lr", "seeds", "at", "same_as"}
          and isinstance(value["at"], dict) and isinstance(same_as, dict)
          and all(k in names and v in names - set(same_as) for k, v in same_as.items())
          and isinstance(value["lr"], list) and value["lr"]
          and all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0 for r in value["lr"])
          and isinstance(value["seeds"], list) and value["seeds"]
          and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**32 - 1 for v in value["seeds"])
          and not set(value["seeds"]) & seeds_used)
    if ok:
        grid, first = tuple(float(r) for r in value["lr"]), min(cfg["seed"] for cfg in configs)
        tuning = Tuning(grid, tuple(value["seeds"]), dict(value["at"]), list(configs), same_as=dict(same_as))
        tuned = [cfg.replace(lr=rate, seed=seed) for cfg in configs
                 if cfg["seed"] == first and cfg["task"] not in same_as and _matches(cfg, tuning.at)
                 for rate in grid for seed in tuning.seeds]
        pairs = {(cfg["task"], cfg["cell"]) for cfg in configs if cfg["task"] not in same_as}
        if {(cfg["task"], cfg["cell"]) for cfg in tuned} == pairs and all(cfg["lr"] in grid for cfg in configs):
            configs[:] = list({config_hash(c): c for c in tuned}.values())
            tuning.runs = len(configs)
            return tuning
    problems.append(f"{where}: tune: {value!r}; allowed: {allowed}")
    return None


def suite_path(name_or_path: str) -> Path:
    """A path ending in .yaml or .yml, else a bundled suite's name (a safe name, never a path)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    if not is_safe_name(name_or_path):
        raise ConfigError([f"suite: {name_or_path!r}; allowed: a path ending in .yaml or .yml, or the name of a "
                           f"bundled suite ({', '.join(available_suites())})"])
    return SUITES_DIR / f"{name_or_path}.yaml"


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def parse_overrides(items: list[str], flag: str) -> dict[str, Any]:
    """``key=value`` strings from the command line; for ``--axis`` the value is a comma-separated list."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError([f"{flag}: {item!r}; allowed: key=value"])
        out[key.strip().replace("-", "_")] = value.split(",") if flag == "--axis" else value
    return out


def load_suite(name_or_path: str, axis_overrides: dict[str, list] | None = None,
               fixed_overrides: dict[str, Any] | None = None) -> Suite:
    """Read, validate and expand a suite; raise :class:`ConfigError` listing every problem at once."""
    path = suite_path(name_or_path)
    where = str(path)
    doc = _read(path, name_or_path)
    if not isinstance(doc, dict):
        raise ConfigError([f"{where}: {type(doc).__name__}; allowed: a mapping with keys {', '.join(TOP_LEVEL)}"])
    problems = [f"{where}: {key}: unknown key; allowed: {', '.join(TOP_LEVEL)}" for key in doc if key not in TOP_LEVEL]
    axes = _mapping(doc, "axes", where, problems)
    fixed = _mapping(doc, "fixed", where, problems)
    tasks = _mapping(doc, "tasks", where, problems)
    if not axes and "axes" in doc and isinstance(doc["axes"] or {}, dict) and not axis_overrides:
        problems.append(f"{where}: axes: empty; allowed: a mapping of setting -> list of values")
    # Settings of every task the suite names are known settings (a plug-in task brings its own).
    named = {*task_registry.BUILTIN, *(v for v in [*_as_list(axes.get("task")), *_as_list((axis_overrides or {}).get("task")),
                                                   (fixed_overrides or {}).get("task"), fixed.get("task")]
                                       if isinstance(v, str))}
    known = [n for n in named if task_registry.problem(n) is None]
    flagged = [f"--axis {key}={','.join(map(str, values))}: {p}" for key, values in (axis_overrides or {}).items()
               for v in values if (p := _check(key, v, known))]
    flagged += [f"--set {key}={value}: {p}" for key, value in (fixed_overrides or {}).items()
                if (p := _check(key, value, known))]
    if flagged:  # a mistake on the command line is the command line's, not the suite file's
        raise ConfigError(list(dict.fromkeys(flagged)))
    set_overrides = dict(fixed_overrides or {})
    for key in set_overrides:  # --set fixes a setting for every run: it replaces the file's axis of it
        axes.pop(key, None)
    axes.update(axis_overrides or {})
    fixed.update(set_overrides)
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            problems.append(f"{where}: axes.{key}: {values!r}; allowed: a non-empty list of values")
            continue
        problems += [f"{where}: axes.{key}: {p}" for v in values if (p := _check(key, v, known))]
    problems += [f"{where}: fixed.{key}: {p}" for key, v in fixed.items() if (p := _check(key, v, known))]
    for task, settings in tasks.items():
        if (reason := task_registry.problem(task)) is not None:
            problems.append(f"{where}: tasks.{task}: {reason}")
        elif not isinstance(settings, dict):
            problems.append(f"{where}: tasks.{task}: {settings!r}; allowed: a mapping of setting -> value")
        else:
            problems += [f"{where}: tasks.{task}.{k}: {p}" for k, v in settings.items() if (p := _check(k, v, known))]
    published = _published(doc.get("published"), where, problems)
    seeds = _seeds(doc.get("seeds"), where, problems)
    if seeds is not None and "seed" in axes and "seed" not in (axis_overrides or {}):
        problems.append(f"{where}: seeds: given with a seed axis; allowed: one of them")
    if seeds is not None and ("seed" in (axis_overrides or {}) or "seed" in set_overrides or "seed" in fixed):
        seeds = None  # seeds chosen on the command line (or fixed) replace the adaptive ones
    elif seeds is not None:
        axes["seed"] = list(range(seeds[0]))
    excludes = doc.get("exclude") or []
    if not isinstance(excludes, list) or not all(isinstance(e, dict) for e in excludes):
        problems.append(f"{where}: exclude: {excludes!r}; allowed: a list of mappings setting -> value(s)")
        excludes = []
    for n, rule in enumerate(excludes):  # a misspelt rule would silently exclude nothing
        for key, wanted in rule.items():
            options = wanted if isinstance(wanted, list) else [wanted]
            problems += [f"{where}: exclude[{n}].{key}: {p}" for v in options if (p := _check(key, v, known))]
    points = doc.get("points") or [{}]
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        problems.append(f"{where}: points: {points!r}; allowed: a list of mappings setting -> value")
        points = [{}]
    for n, extra in enumerate(points):
        problems += [f"{where}: points[{n}].{key}: {p}" for key, v in extra.items() if (p := _check(key, v, known))]
    problems = list(dict.fromkeys(problems))  # an unknown axis is reported once, not once per value
    if problems:
        raise ConfigError(problems)
    combinations = len(points) * math.prod(len(values) for values in axes.values())
    if combinations > MAX_RUNS:
        raise ConfigError([f"{where}: axes: {combinations} combinations; allowed: at most {MAX_RUNS}"])

    configs, seen = [], set()
    names = list(axes)
    for extra, combo in itertools.product(points, itertools.product(*(axes[n] for n in names))):
        point = {**extra, **dict(zip(names, combo))}
        task = point.get("task", fixed.get("task", task_registry.DEFAULT))
        settings = {**fixed, **(tasks.get(task) or {}), **set_overrides, **point}  # --set beats tasks:
        if any(_matches(settings, rule) for rule in excludes):
            continue
        try:
            cfg = resolve(_absolute(settings, task))
        except ConfigError as e:
            problems += [f"{where}: {_describe(point)}: {p}" for p in e.problems if p not in seen]
            seen.update(e.problems)
            continue
        configs.append(cfg)
    if problems:
        raise ConfigError(problems)
    if not configs:
        raise ConfigError([f"{where}: exclude: removes every combination; allowed: rules that leave some runs"])
    unique = interleave_tasks(list({config_hash(c): c for c in configs}.values()))
    used = set(range(seeds[1])) if seeds else {cfg["seed"] for cfg in unique}
    tuning = _tuning(doc.get("tune"), unique, used, where, problems)  # unique becomes the tuning runs
    if problems:
        raise ConfigError(problems)
    overrides = [f"--axis {k}={','.join(map(str, v))}" for k, v in (axis_overrides or {}).items()]
    overrides += [f"--set {k}={v}" for k, v in (fixed_overrides or {}).items()]
    return Suite(path.stem, path, str(doc.get("description", "")), unique, published, overrides, seeds, tuning)


def _seeds(value: Any, where: str, problems: list[str]) -> tuple[int, int] | None:
    """The ``seeds: {min, max}`` mapping as (min, max), or None when absent; a problem noted when malformed."""
    if value is None:
        return None
    ok = (isinstance(value, dict) and set(value) == {"min", "max"}
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
          and 2 <= value["min"] <= value["max"] <= MAX_SEEDS)
    if not ok:
        problems.append(f"{where}: seeds: {value!r}; allowed: a mapping {{min: m, max: M}} of whole numbers, "
                        f"2 <= m <= M <= {MAX_SEEDS}")
        return None
    return value["min"], value["max"]


PUBLISHED_KEYS = ("source", "where", "claim", "mark", "value")


def _published(entries: Any, where: str, problems: list[str]) -> list[dict]:
    """The ``published:`` list: figures a source reports, each to be set beside ours with a verdict
    (:mod:`bench.reporting.reproduce`). An entry names its ``source``, the settings it applies to (``where``), what the
    source says (``claim``), and either the floor ``mark`` it claims or the ``value`` it reports."""
    if entries is None:
        return []
    allowed = ("a list of mappings with source (text), where (settings), claim (text) and a mark (text) or a "
               "value (number)")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.append(f"{where}: published: {entries!r}; allowed: {allowed}")
        return []
    for n, entry in enumerate(entries):
        bad = [k for k in entry if k not in PUBLISHED_KEYS]
        if bad or not isinstance(entry.get("source"), str) or not isinstance(entry.get("where"), dict) \
                or ("mark" in entry) == ("value" in entry) \
                or ("value" in entry and not isinstance(entry["value"], (int, float))):
            problems.append(f"{where}: published[{n}]: {entry!r}; allowed: {allowed}")
            continue
        problems += [f"{where}: published[{n}].where.{k}: {p}" for k, v in entry["where"].items()
                     if (p := check_value(k, v))]
    return entries


def _read(path: Path, name_or_path: str) -> Any:
    """The parsed YAML document of a suite file; :class:`ConfigError` with one line for whatever is wrong."""
    where = str(path)
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        raise ConfigError([f"suite: {name_or_path!r}: {e}; allowed: a YAML file"]) from None
    if not exists:
        raise ConfigError([f"suite: {name_or_path!r} not found{did_you_mean(name_or_path, available_suites())}; "
                           "allowed: a YAML file or one of "
                           f"{', '.join(available_suites())}"])
    if not is_file:
        raise ConfigError([f"suite: {where!r} is not a file; allowed: a YAML file"])
    if not is_safe_name(path.stem):  # it becomes results/<name>/: "...yaml" would write into results/..
        raise ConfigError([f"suite: {where!r}: name {path.stem!r}; allowed: a YAML file whose name without "
                           f".yaml is {NAME_ALLOWED}"])
    try:
        return bounded_yaml.safe_load(path.read_text(encoding="utf-8"))
    except bounded_yaml.TooLarge as e:
        raise ConfigError([f"{where}: {e}; allowed: at most {e.limit:,} values with every alias expanded"]) from None
    except yaml.YAMLError as e:
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = getattr(e, "context", None)
        what = f"{problem} ({context})" if problem and context else problem or str(e).splitlines()[0]
        raise ConfigError([f"{where}: not valid YAML{at}: {what}; allowed: a YAML mapping (see bench/config/suite.py)"]) \
            from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"{where}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                           "allowed: a UTF-8 YAML file"]) from None
    except RecursionError:
        raise ConfigError([f"{where}: nested too deeply to read; allowed: a few levels of mappings and lists"]) \
            from None
    except OSError as e:
        raise ConfigError([f"{where}: cannot be read ({e.strerror or e}); allowed: a readable YAML file"]) from None


def _mapping(doc: dict, key: str, where: str, problems: list[str]) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        problems.append(f"{where}: {key}: {value!r}; allowed: a mapping")
        return {}
    return dict(value)


def interleave_tasks(configs: list[dict]) -> list[dict]:
    """The configs with their tasks taken in turn (each task's own order kept), so that a suite's runs, and its
    progress bar's ETA, do not do all of one task's runs first.

    >>> [c["task"] for c in interleave_tasks([{"task": "a"}, {"task": "a"}, {"task": "a"}, {"task": "b"}])]
    ['a', 'b', 'a', 'a']
    """
    by_task: dict[str, list[dict]] = {}
    for cfg in configs:
        by_task.setdefault(cfg["task"], []).append(cfg)
    queues = [iter(q) for q in by_task.values()]
    out = []
    while len(out) < len(configs):
        out += [cfg for q in queues if (cfg := next(q, None)) is not None]
    return out


def _relative(key: str, value: Any) -> re.Match | None:
    field = fields_for().get(key)
    return RELATIVE.fullmatch(value.strip()) if field and field.follows and isinstance(value, str) else None


def _check(key: str, value: Any, task_names) -> str | None:
    """:func:`check_value`, which also takes a value relative to the followed setting (``T``, ``T/k``)."""
    return None if _relative(key, value) else check_value(key, value, task_names)


def _absolute(settings: dict[str, Any], task: str) -> dict[str, Any]:
    """``settings`` with relative values in steps (``T/2`` at truncation 10: 5) and ``T`` left unset; raise
    :class:`ConfigError` when one is not a whole number of steps.

    >>> _absolute({"truncation": 10, "tbptt_stride": "T/2"}, "dependency")
    {'truncation': 10, 'tbptt_stride': 5}
    >>> _absolute({"tbptt_stride": "T/5"}, "dependency")  # the task's default truncation, 10
    {'tbptt_stride': 2}
    >>> _absolute({"truncation": 10, "tbptt_stride": "T"}, "sine")
    {'truncation': 10}
    """
    out = dict(settings)
    for key, value in settings.items():
        if (match := _relative(key, value)) and match.group(1) is None:
            del out[key]
        elif match:
            follows = fields_for()[key].follows
            defaults = {**COMMON_DEFAULTS, **(task_registry.get(task).defaults if not task_registry.problem(task) else {})}
            base = _typed(follows, {**defaults, **settings}.get(follows))
            parts = int(match.group(1))
            if not isinstance(base, int) or base % parts:
                raise ConfigError([f"{key}: {value!r} at {follows} {base!r}; allowed: T/k only where k divides "
                                   f"{follows} (exclude the other combinations)"])
            out[key] = base // parts
    return out


def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def _typed(key: str, value: Any) -> Any:
    """A setting as its field's type, so that ``"3"`` from ``--axis`` matches ``3`` in an exclude rule."""
    try:
        return convert(fields_for()[key], value)
    except (KeyError, ValueError, TypeError, ArithmeticError):
        return value


def _matches(point: dict, rule: dict) -> bool:
    def hit(key, wanted):
        options = wanted if isinstance(wanted, list) else [wanted]
        return key in point and _typed(key, point[key]) in [_typed(key, o) for o in options]

    return all(hit(k, v) for k, v in rule.items())


def _describe(point: dict) -> str:
    return "combination " + ", ".join(f"{k}={v}" for k, v in point.items())
