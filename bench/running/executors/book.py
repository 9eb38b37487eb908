"""The bookkeeping every executor shares: what to run, the suite's parent run, progress, outcomes and the summary.

Opening the book first reaps the experiment (:func:`bench.running.leases.reap`): runs and suite parents left RUNNING by
processes that are gone are marked, so they are neither mistaken for work in progress nor left RUNNING forever.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from tqdm import tqdm

from bench.running import leases, provenance
from bench.running.claims import Claim
from bench.running.store import FAILED, FINISHED, KILLED, Store, StoreError
from bench.config.suite import Suite

# libyaml's emitter where PyYAML was built with it: the default suite's matrix takes ~1.5 s in pure Python.
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


TAIL_RUNS_PER_SLOT = 4  # how many of the last runs, per worker, go longest first
CLAIM_RETRY_S = 2.0  # how soon a run another runner holds is looked at again


def estimated_cost(cfg: dict) -> float:
    """A run's training cost in arbitrary units, only to order runs: optimizer steps × layer-directions × (a fixed
    part per step + the recurrent work, truncation × hidden). Within a factor of ~2 of the measured seconds of the
    default suite's runs (the per-step part dominates short windows).

    >>> estimated_cost({"max_steps": 8000, "epochs": -1, "layers": 1, "bidirectional": False, "truncation": 1,
    ...                 "hidden": 16})
    40000.0
    """
    steps = cfg["max_steps"] if cfg["max_steps"] > 0 else 1000 * max(1, cfg["epochs"])
    directions = 2 if cfg["bidirectional"] else 1
    return float(steps * cfg["layers"] * directions * (4 + cfg["truncation"] * cfg["hidden"] / 16))


def longest_last_first(todo: list[int], configs: list[dict], slots: int = 2) -> list[int]:
    """``todo`` in suite order (tasks interleaved: the progress bar's rate, and so its ETA, holds steady), except
    its last runs, ``TAIL_RUNS_PER_SLOT`` per worker, which go longest first: a long run handed out last would
    leave the other workers idle until it ends. ``slots``: how many runs train at once.

    >>> longest_last_first([0, 1, 2], [{"max_steps": s, "epochs": -1, "layers": 1, "bidirectional": False,
    ...                                 "truncation": 1, "hidden": 16} for s in (10, 20, 30)], slots=1)
    [2, 1, 0]
    """
    tail = max(0, len(todo) - TAIL_RUNS_PER_SLOT * slots)
    return todo[:tail] + sorted(todo[tail:], key=lambda i: -estimated_cost(configs[i]))


class WorkList:
    """The runs still to hand out, for either executor: fresh ones in order, then those held (another runner
    on the same store had claimed them) once their retry time has come: should that runner die, this one trains
    them; once it finishes them, they count as done elsewhere."""

    def __init__(self, todo: list[int]):
        self.fresh = list(todo)
        self.held: list[tuple[float, int]] = []  # (when to look again, index)

    def __bool__(self) -> bool:
        return bool(self.fresh or self.held)

    def add(self, todo: list[int]) -> None:
        self.fresh += todo

    def hold(self, index: int) -> None:
        self.held.append((time.monotonic() + CLAIM_RETRY_S, index))

    def next(self) -> int | None:
        if self.fresh:
            return self.fresh.pop(0)
        ready = [item for item in self.held if item[0] <= time.monotonic()]
        if not ready:
            return None
        self.held.remove(ready[0])
        return ready[0][1]

    def clear(self) -> None:
        self.fresh.clear()
        self.held.clear()


@dataclass
class SuiteResult:
    parent_run_id: str
    outcomes: dict[int, tuple[str, str, dict]]  # index -> (status, reason, metrics)
    skipped: list[int]
    wall_time_s: float

    def count(self, status: str) -> int:
        return sum(1 for s, _, _ in self.outcomes.values() if s == status)


class SuiteBook:
    """What a suite invocation does and how it went, recorded in the store under one parent run.

    Outcome statuses: ``finished``, ``diverged``, ``failed``, and ``elsewhere`` (another runner on the same store
    trained it meanwhile). A store that fails mid-suite is noted in ``store_error``: executors stop handing out
    runs, and :meth:`close` raises it.
    """

    def __init__(self, suite: Suite, tracking_uri: str, experiment: str, force: bool, progress: bool,
                 workers: int = 1):
        self.suite, self.tracking_uri, self.experiment = suite, tracking_uri, experiment
        self.start = time.monotonic()
        self.store = Store(tracking_uri)
        self.experiment_id = leases.results_experiment(self.store, experiment)
        for run_id, reason in leases.reap(self.store, self.experiment_id):
            print(f"marked run {run_id} as ended: {reason}")
        done = {} if force else self.store.finished_hashes(self.experiment_id)
        self.hashes = suite.hashes()
        self.todo = longest_last_first([i for i, h in enumerate(self.hashes) if h not in done], suite.configs, workers)
        self.skipped = [i for i, h in enumerate(self.hashes) if h in done]
        # Claims: with --force, runs finished before this suite started do not count as done.
        self.claim = Claim(int(time.time() * 1000) if force else 0)
        self.outcomes: dict[int, tuple[str, str, dict]] = {}
        self.parent: leases.RunLease | None = None
        self.store_error: StoreError | None = None
        self.bar = tqdm(total=len(suite.configs), initial=len(self.skipped), disable=not progress, unit="run",
                        desc=f"suite {suite.name}", dynamic_ncols=True)

    @property
    def parent_id(self) -> str:
        return self.parent.run_id if self.parent else ""

    def open_parent(self, device: str, workers: int, executor: str) -> str:
        tags = {**provenance.environment_tags(device), "bench.role": "suite", "bench.suite": self.suite.name,
                "bench.executor": executor}
        overrides = " ".join(self.suite.overrides)
        tags["mlflow.note.content"] = (f"Suite {self.suite.name} ({self.suite.path})"
                                       + (f", overridden by {overrides}" if overrides else "") + ". "
                                       + self.suite.description)
        params = {"suite_file": self.suite.path, "overrides": overrides or "none", "runs": len(self.suite.configs),
                  "workers": workers, "executor": executor}
        self.parent = leases.RunLease.start(self.store, self.experiment_id, f"suite/{self.suite.name}", tags, params)
        with tempfile.TemporaryDirectory() as tmp:  # the resolved matrix: every configuration and its run name
            matrix = Path(tmp) / "matrix.yaml"
            matrix.write_text(yaml.dump(
                [{"name": self.suite.name_of(i), "config_hash": self.hashes[i],
                  "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}}
                 for i, cfg in enumerate(self.suite.configs)], Dumper=SAFE_DUMPER, sort_keys=False,
                width=2**31 - 1))  # never wrapped (libyaml takes no infinite width)
            self.store.log_artifacts(self.parent.run_id, [matrix])
        return self.parent.run_id

    def more(self) -> list[int]:
        """Once every run handed out has ended: with a tuning stage, the reported runs at their tuned rates once
        it is complete (:meth:`bench.config.suite.Suite.apply_tuning`); with adaptive seeds
        (:meth:`bench.config.suite.Suite.add_seeds`), the next seeds of the entries still open, read from what the store holds (so several runners on one store
        add the same runs, and their claims keep each from being trained twice); those the store already holds
        are skipped, as at the start. [] when nothing is left to add."""
        while self.store_error is None:
            try:
                stored = self.store.finished_results(self.experiment_id, self.claim.finished_after_ms)
            except StoreError as e:
                self.store_error = e
                break
            # every run handed out has ended: a tuning run the store has no FINISHED run of failed (counts as worst)
            new = self.suite.apply_tuning(lambda h: stored.get(h, ("failed", {})))
            if new:
                self._log_tuned_rates()
            else:
                new = self.suite.add_seeds(stored.get)
            if not new:
                break
            self.hashes = self.suite.hashes()
            fresh = [i for i in new if self.hashes[i] not in stored]
            self.skipped += [i for i in new if i not in fresh]
            self.bar.total += len(new)
            self.bar.update(len(new) - len(fresh))
            if fresh:
                return fresh
        return []

    def _log_tuned_rates(self) -> None:
        """The tuning stage's choice, as params ``tuned_lr.<task>.<cell>`` of the suite's parent run."""
        params = {f"tuned_lr.{task}.{cell}": rate for (task, cell), rate in self.suite.tuning.chosen.items()}
        if self.parent is not None:
            try:
                self.store.log(self.parent_id, params=params)
            except StoreError as e:
                self.store_error = self.store_error or e

    def settle(self, work: WorkList, index: int, outcome) -> None:
        """A run's outcome (:class:`bench.running.outcome.RunOutcome`) as either executor hands it back: a run
        another runner holds is looked at again later; any other outcome is recorded."""
        if outcome.status == "claimed":
            work.hold(index)
        else:
            self.record(index, outcome.status, outcome.reason, outcome.metrics, outcome.store_error)

    def refill(self, work: WorkList, idle: bool) -> None:
        """After each round of either executor: on a failing store, nothing more is handed out (what runs
        finishes); once the work is out and every run has ended (``idle``), the runs :meth:`more` adds."""
        if self.store_error is not None:
            work.clear()
        elif idle and not work:
            work.add(self.more())

    def record(self, index: int, status: str, reason: str = "", metrics: dict | None = None,
               store_error: StoreError | None = None) -> None:
        self.outcomes[index] = (status, reason, metrics or {})
        if store_error is not None and self.store_error is None:
            self.store_error = store_error
        self.bar.update(1)
        counts = {s: sum(1 for o in self.outcomes.values() if o[0] == s) for s in ("failed", "diverged")}
        self.bar.set_postfix(**counts, skipped=len(self.skipped), refresh=False)

    def fail(self, index: int, run_id: str | None, reason: str, status: str = FAILED) -> None:
        """Record run ``index`` as failed (``status`` KILLED: stopped) and mark its run so in the store, should the
        store allow it; a run its worker never created is recorded only when it failed."""
        error = None
        try:
            self.store.mark_failed(self.experiment_id, run_id, self.suite.configs[index], self.parent_id, reason,
                                   create=status == FAILED, status=status)
        except StoreError as e:
            error = e
        self.record(index, status.lower(), reason, store_error=error)

    def close(self, interrupted: str | None = None) -> SuiteResult:
        """End the parent run with the summary: KILLED with the reason ``interrupted`` ("interrupted by SIGINT")
        when the suite was stopped, FAILED when a run failed or the store did (its cause the reason), else
        FINISHED. Raises :class:`StoreError` if the store failed during the suite."""
        self.bar.close()
        result = SuiteResult(self.parent_id, self.outcomes, self.skipped, time.monotonic() - self.start)
        summary = {"runs_finished": result.count("finished"), "runs_failed": result.count("failed"),
                   "runs_diverged": result.count("diverged"), "runs_elsewhere": result.count("elsewhere"),
                   "runs_killed": result.count("killed"), "runs_skipped": len(self.skipped),
                   "wall_time_s": result.wall_time_s}
        unreachable = self.store_error is not None and self.store_error.cause.startswith("unreachable")
        if self.parent is not None and unreachable:  # each call would wait for it again: the next run reaps it
            self.parent.abandon()
        elif self.parent is not None:
            try:
                self.store.log_metrics(self.parent_id, summary)
            except StoreError as e:
                self.store_error = self.store_error or e
            if interrupted:
                status, tags = KILLED, {"bench.reason": interrupted}
            elif self.store_error is not None:
                status, tags = FAILED, {"bench.reason": f"the store failed: {self.store_error.cause}"}
            else:
                status, tags = (FAILED if result.count("failed") else FINISHED), {}
            self.parent.end(status, tags)  # never raises; a failing store failed just above already
        if self.store_error is not None:  # exit 1 once runs were trained, else 2: nothing was
            raise StoreError(self.store_error.uri, self.store_error.cause, partial=bool(self.outcomes))
        return result
