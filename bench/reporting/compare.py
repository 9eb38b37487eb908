"""``bench compare A B``: two sets of runs side by side, configuration by configuration, judged by the regression
check's own seed-aware tests (:func:`bench.reporting.regress.seed_change`) with A as the reference.

A side is one of
- a **store**: a SQLite file, a folder holding ``mlflow.db``, or a tracking URI: every run in it;
- a **suite run**: a suite's parent run, by run id or by name (``suite/smoke`` or ``smoke``: the latest of that
  name), in the store of ``--tracking-uri``: the runs it started (a rerun suite starts only what was not done yet);
- a **commit**: a hash or its prefix (at least 4 characters), or a name git resolves here (``HEAD~1``, a branch),
  in the store of ``--tracking-uri``: the runs recorded at that commit (tag ``mlflow.source.git.commit``); with
  ``-dirty`` appended (``HEAD-dirty``), those made from its work tree with uncommitted changes instead.

Configurations are matched by their settings less the seed: the run parameters both sides record (a setting one
side's code did not have yet is left out of the match). Per seed the latest finished run counts, else the latest
failed one. A configuration is **worse** when the regression check would fail it (a seed beyond a prediction
interval of A's seeds, or its mean shifted; A's sd moderated toward its task's typical spread; 1% false alarms per
configuration; changes below the task's smallest that counts never count), or when more of its seeds fail or
diverge in B; **better** when its mean moved past the same threshold the other way, or it has a result only in B.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.config.settings import ConfigError, shown
from bench.reporting import regress
from bench.reporting.pages import Block, Bullets, Heading, Table, Text
from bench.running import locations
from bench.running.store import Store, has_result
from bench.tasks.base import Task

COMMIT_TAG = "tags.mlflow.source.git.commit"
RUN_ID = re.compile(r"[0-9a-f]{32}")
HEX = re.compile(r"[0-9a-f]{4,40}")
DIRTY = "-dirty"  # the commit tag of a run made from a work tree with uncommitted changes
# Parameters that never tell configurations apart: the seed is the replicate (the harness's own bookkeeping
# parameters, named bench.*, are left out too).
NOT_IDENTITY = {"seed"}


@dataclass
class Side:
    spec: str  # as given on the command line
    what: str  # what it resolved to, in words
    runs: pd.DataFrame  # one row per configuration and seed (:func:`seed_runs`)


def as_store_uri(spec: str) -> str | None:
    """The tracking URI ``spec`` names when it names a store: a URI, a ``.db`` file or a folder with mlflow.db."""
    if "://" in spec:
        return spec
    path = Path(spec)
    if path.is_dir() and (path / "mlflow.db").is_file():
        return f"sqlite:///{(path / 'mlflow.db').resolve()}"
    if path.is_file() and path.suffix == ".db":
        return f"sqlite:///{path.resolve()}"
    return None


def git_commit_of(name: str) -> str | None:
    """The full hash git gives ``name`` in this repository, or None."""
    try:
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
                               cwd=locations.REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def child_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The configuration runs of a store's frame (:meth:`bench.running.store.Store.runs_frame`): not suite parents."""
    return frame[frame["tags.bench.config_hash"].notna() & (frame["tags.bench.role"] != "suite")]


def resolve_side(spec: str, uri: str, experiment: str) -> Side:
    """The runs ``spec`` names (see the module docstring); :class:`ConfigError` naming it when it names none."""
    store_uri = as_store_uri(spec)
    if store_uri is not None:
        locations.check_tracking_uri(store_uri, write=False)
        frame = child_runs(Store(store_uri).runs_frame(experiment))
        return Side(spec, f"every run in store `{locations.shown_uri(store_uri)}`", frame)
    frame = Store(uri).runs_frame(experiment)
    parents = frame[frame["tags.bench.role"] == "suite"]
    names = parents.get("tags.mlflow.runName", pd.Series(index=parents.index, dtype=object))
    chosen = parents[(parents["run_id"] == spec) | names.isin([spec, f"suite/{spec}"])].sort_values("start_time")
    if len(chosen):
        parent = chosen.iloc[-1]
        runs = frame[frame.get("tags.mlflow.parentRunId", pd.Series(index=frame.index, dtype=object))
                     == parent["run_id"]]
        return Side(spec, f"the runs of suite run `{names.get(parent.name, spec)}` ({parent['run_id']})",
                    child_runs(runs))
    dirty = spec.lower().endswith(DIRTY)
    name = spec[:-len(DIRTY)] if dirty else spec
    runs = child_runs(frame)
    tags = runs.get(COMMIT_TAG, pd.Series(index=runs.index, dtype=object)).fillna("")
    commit = name.lower() if HEX.fullmatch(name.lower()) else None
    if commit is None or not tags.str.startswith(commit).any():
        commit = git_commit_of(name) or commit
    hint = ""
    if commit is not None:
        of_commit = tags.str.startswith(commit)
        at = runs[of_commit & (tags.str.endswith(DIRTY) == dirty)]
        if len(at):
            found = sorted(set(at[COMMIT_TAG]))
            return Side(spec, f"the runs of commit {', '.join(found)} in `{locations.shown_uri(uri)}`", at)
        if (of_commit & tags.str.endswith(DIRTY)).any():
            hint = f" (its runs from a work tree with changes: {commit[:7]}{DIRTY})"
    raise ConfigError([f"compare: {shown(spec)}: names no runs in {locations.shown_uri(uri)}{hint}; allowed: a "
                       "commit with runs in the store (a hash, its prefix or a name git resolves), a suite parent run's id or "
                       "name (suite/<name> or <name>), or a store (a SQLite file, a folder holding mlflow.db, a "
                       "tracking URI)"])


def named_task(record: dict) -> str | None:
    """The task a stored run (a row of :meth:`bench.running.store.Store.runs_frame`) names."""
    found = record.get("params.task") or record.get("tags.bench.task")
    return found if isinstance(found, str) else None


def seed_runs(runs: pd.DataFrame, specs: Mapping[str, Task]) -> pd.DataFrame:
    """One row per (settings less seed, seed): ``task``, ``seed``, ``settings`` (parameter -> text), ``outcome``
    (finished | diverged | failed), ``metric`` (the task's, finished runs only), ``run_id``, ``commit``. The latest
    finished run of each counts, else the latest one. ``specs``: task name -> Task (a run of a task it lacks is
    left out: nothing says which metric is its)."""
    params = [c for c in runs.columns if c.startswith("params.") and "." not in c.removeprefix("params.")]
    rows = []
    for record in runs.to_dict("records"):
        task_name = named_task(record)
        if task_name not in specs:
            continue  # a task this installation cannot load: nothing says which metric is its
        status, outcome = record["status"], record.get("tags.bench.outcome")
        done = has_result(status, outcome)  # FINISHED, or FAILED as diverged
        state = ("diverged" if outcome == "diverged" else "finished") if done else "failed"
        metric = record.get(f"metrics.{specs[task_name].metric}", math.nan)
        rows.append({"task": task_name, "seed": record.get("params.seed"), "outcome": state,
                     "metric": float(metric) if state == "finished" and pd.notna(metric) else math.nan,
                     "settings": {c.removeprefix("params."): record[c] for c in params
                                  if pd.notna(record[c]) and c.removeprefix("params.") not in NOT_IDENTITY},
                     "run_id": record["run_id"], "commit": record.get(COMMIT_TAG), "start_time": record["start_time"],
                     "is_finished": done})
    columns = ["task", "seed", "outcome", "metric", "settings", "run_id", "commit", "start_time", "is_finished"]
    return pd.DataFrame(rows, columns=columns)


def label(settings: dict, varying: list[str]) -> str:
    """A configuration's name as the compiled tables give it, from its parameters' text.

    >>> label({"task": "dependency", "cell": "lstm", "layers": "2", "bidirectional": "True", "truncation": "10",
    ...        "tbptt_stride": "10", "lr": "0.02"}, ["lr"])
    'dependency/lstm-L2-bi-T10-lr=0.02'
    """
    get = settings.get
    direction = "bi" if str(get("bidirectional", "")).lower() == "true" else "uni"
    stride = get("tbptt_stride", get("truncation"))
    window = f"T{get('truncation')}" + (f"-stride{stride}" if stride != get("truncation") else "")
    extras = "".join(f"-{name}={settings[name]}" for name in varying if name in settings)
    return f"{get('task')}/{get('cell')}-L{get('layers')}-{direction}-{window}{extras}"


NAMED = {"task", "cell", "layers", "bidirectional", "truncation", "tbptt_stride"}


def matched(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Both sides' seed runs in one frame with ``side`` (A | B) and ``configuration`` (a label unique per identity),
    the latest (finished first) run per configuration, seed and side; and the parameters left out of the match
    because only one side records them."""
    def names(frame):
        return set().union(*frame["settings"]) if len(frame) else set()

    common = names(a) & names(b) if len(a) and len(b) else names(a) | names(b)
    one_sided = sorted((names(a) | names(b)) - common)
    both = pd.concat([a.assign(side="A"), b.assign(side="B")], ignore_index=True)
    both["identity"] = [tuple(sorted((k, str(v)) for k, v in s.items() if k in common)) for s in both["settings"]]
    both = (both.sort_values(["is_finished", "start_time"], ascending=False)
            .drop_duplicates(["side", "identity", "seed"]).sort_values(["task", "identity", "seed"]))
    labels = {}
    for task_name, part in both.groupby("task"):
        identities = [dict(i) for i in dict.fromkeys(part["identity"])]
        varying = sorted(k for k in common - NAMED if len({i.get(k) for i in identities}) > 1)
        labels.update({tuple(sorted(i.items())): label(i, varying) for i in identities})
    both["configuration"] = both["identity"].map(labels)
    return both, one_sided


def seed_text(rows: pd.DataFrame, spec: str) -> str:
    """Every seed's value (or outcome), in seed order: ``s0 0.4561, s1 diverged``."""
    def one(row):
        return f"{row['metric']:{spec}}" if row["outcome"] == "finished" else row["outcome"]

    ordered = rows.assign(order=pd.to_numeric(rows["seed"], errors="coerce")).sort_values(["order", "seed"])
    return ", ".join(f"s{row['seed']} {one(row)}" for row in ordered.to_dict("records"))


def effect_text(task: Task, shift: float, low: float, high: float) -> str:
    """B − A in the metric's own terms: a difference, or for a metric compared on logs a ratio."""
    if task.log_scale:
        sign = 1 if task.lower_is_better else -1
        low, high = sorted((math.exp(sign * low), math.exp(sign * high)))
        return f"× {math.exp(sign * shift):.3g} [{low:.3g}, {high:.3g}]"
    sign = 1 if task.lower_is_better else -1
    low, high = sorted((sign * low, sign * high))
    return f"{sign * shift:+.4g} [{low:+.4g}, {high:+.4g}]"


@dataclass
class Comparison:
    a: Side
    b: Side
    table: pd.DataFrame  # configuration, task, class, A (seeds), B (seeds), effect, detail
    only: pd.DataFrame  # configuration, task, side: configurations only one side holds
    one_sided: list[str]  # parameters only one side records, left out of the match
    alpha: float

    @property
    def worse(self) -> int:
        return int((self.table["class"] == "worse").sum())


def compare(a: Side, b: Side, specs: Mapping[str, Task], alpha: float = regress.ALPHA,
            min_delta: dict[str, float] | None = None) -> Comparison:
    """Every configuration both sides hold, classed worse / better / no detectable change (module docstring).
    ``specs``: the Task of each task name the sides' runs give (:func:`named_task`) that this installation knows;
    the runs of the others are left out."""
    both, one_sided = matched(seed_runs(a.runs, specs), seed_runs(b.runs, specs))
    sides = {key: dict(list(part.groupby("side"))) for key, part in both.groupby("configuration", sort=False)}
    prior = regress.prior_variances(
        ((part["task"].iloc[0], list(part["metric"].dropna())) for by_side in sides.values()
         for side, part in by_side.items() if side == "A"), specs)
    rows, only = [], []
    for key, by_side in sides.items():
        task_name = next(iter(by_side.values()))["task"].iloc[0]
        if len(by_side) == 1:
            only.append({"configuration": key, "task": task_name, "only in": next(iter(by_side))})
            continue
        old, new = by_side["A"], by_side["B"]
        task = specs[task_name]
        delta = (min_delta or {}).get(task_name, task.min_delta)
        moved = regress.seed_change(task, list(old["metric"].dropna()), list(new["metric"].dropna()),
                                    prior.get(task_name, math.nan), alpha, delta)
        lost = {o: int((new["outcome"] == o).sum()) - int((old["outcome"] == o).sum()) for o in ("failed", "diverged")}
        more = [f"{n} more {o}" for o, n in lost.items() if n > 0]
        if moved is None:
            verdict = "worse" if old["metric"].notna().any() else (
                "better" if new["metric"].notna().any() else "no detectable change")
            effect, detail = "", "a result on one side only" if verdict != "no detectable change" else "no result"
        else:
            verdict = {"worse": "worse", "better": "better", "": "no detectable change"}[moved.change]
            effect = effect_text(task, moved.shift, moved.low, moved.high)
            detail = f"{moved.reason}: {moved.detail}" if moved.reason else moved.detail
        if more:
            verdict, detail = "worse", "; ".join([*more, detail])
        spec = regress.number_format(task)
        rows.append({"configuration": key, "task": task_name, "class": verdict, "A": seed_text(old, spec),
                     "B": seed_text(new, spec), "effect (B − A)": effect, "detail": detail})
    order = {"worse": 0, "better": 1, "no detectable change": 2}
    table = pd.DataFrame(rows, columns=["configuration", "task", "class", "A", "B", "effect (B − A)", "detail"])
    table = table.sort_values(["class", "configuration"], key=lambda c: c.map(order) if c.name == "class" else c,
                              kind="stable").reset_index(drop=True)
    return Comparison(a, b, table, pd.DataFrame(only, columns=["configuration", "task", "only in"]), one_sided, alpha)


def verdict(comparison: Comparison) -> str:
    counts = comparison.table["class"].value_counts()
    return (f"{'FAIL' if comparison.worse else 'PASS'}: {len(comparison.table)} configurations compared: "
            f"{counts.get('worse', 0)} worse, {counts.get('better', 0)} better, "
            f"{counts.get('no detectable change', 0)} no detectable change; {len(comparison.only)} on one side only")


def class_colours(table: pd.DataFrame) -> pd.DataFrame:
    """The report's cell colours (:class:`bench.reporting.pages.Table` scores): the class column orange where worse,
    blue where better (:func:`bench.reporting.pages.score_colour`)."""
    scores = pd.DataFrame(math.nan, index=table.index, columns=table.columns)
    scores["class"] = table["class"].map({"worse": 1.0, "better": 0.0})
    return scores


def blocks(comparison: Comparison) -> list[Block]:
    """The comparison as report blocks (:mod:`bench.reporting.pages`), for Markdown and HTML alike."""
    c = comparison
    found: list[Block] = [
        Heading("Comparison: A → B", 1),
        Bullets([f"A (the reference) `{c.a.spec}`: {c.a.what}.", f"B `{c.b.spec}`: {c.b.what}."]),
        Text(f"Each configuration both hold is judged by the regression check's tests (`bench regress`), A's seeds "
             f"as the baseline: worse when B's worst seed lies beyond a prediction interval of A's seeds or B's "
             f"mean shifted, by one-sided t tests with a false-alarm rate of {c.alpha:g} per configuration and by "
             f"more than the task's smallest change that counts, A's sd moderated toward its task's typical "
             f"spread; or when more of its seeds fail or diverge. Better when the mean moved past the mean "
             f"test's threshold the other way. Effect: B − A with its 95% interval (the mean test's sd and df); for "
             f"a metric compared on logs (RMSE) the ratio B / A. Seeds listed as s<seed> <value>."),
        Text(verdict(c)),
        Table(c.table, class_colours(c.table), "Colour: orange worse, blue better."),
    ]
    if len(c.only):
        found += [Heading("Configurations on one side only"), Table(c.only)]
    if c.one_sided:
        found += [Text("Parameters only one side records, left out of the match: "
                       + ", ".join(f"`{p}`" for p in c.one_sided) + ".")]
    return found
