"""What a task is to the harness: its specification, one object that owns everything task-specific about a run.

A task says which settings it adds (and the defaults of the common ones), how its data module and LightningModule
are built, how many samples an optimizer step consumes, which metric judges it and in which direction, what it is
compared against (analytic floors, baselines), what target a run should reach, and what a run's own plot shows.
How a suite's results of the task are presented (table notes, reference rows, figures) is its report part,
:class:`bench.reporting.task_reports.base.TaskReport`, which only the reporting layer sees. The Lightning classes
live in ``datamodules/`` and ``lightning_modules/``; the task imports them only when it builds a run, so that
validating a config stays free of torch.

Hooks a task implements (see :class:`Task`): ``build``, ``samples_per_step``, ``references``, ``target``; and,
where it has something to say, ``cross_checks``, ``dataset_spec``, ``mark``, ``variant``, ``run_plot``, and the
judgements of one seed against the known answers: ``noise``, ``outcome``, ``outcome_names``, ``known_span``,
``metric_range`` (see :mod:`bench.tasks.outcomes`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from bench.core.fields import Field

History = dict[str, list[tuple[int, float]]]  # metric key -> [(optimizer step, value), …]


class Task:
    """Base class of a task. Class attributes describe it; methods are its hooks."""

    name: str = ""
    title: str = ""  # heading of its section in the compiled results
    fields: tuple[Field, ...] = ()  # settings only this task has
    defaults: dict[str, Any] = {}  # defaults of its own fields and, where they differ, of common ones
    metric: str = ""  # the test metric that judges a run, e.g. "test/ce"
    val_metric: str = ""  # the same metric on validation, for time-to-target
    metric_label: str = ""  # how tables and plots name the metric
    lower_is_better: bool = True
    number_format: str = ".4g"  # table entries
    min_delta: float = 0.0  # regression check: a change smaller than this never counts as worse
    history_keys: tuple[str, ...] = ()  # metric histories the compiled figures need (val_metric first)
    log_scale: bool = False  # heatmap colours on a log scale (metrics spanning decades)
    mark_meaning: str = ""  # what the marks of :meth:`mark` say, for figure titles
    converge_tolerance: float = 0.0  # improvement over the last fifth of training that still counts as converging
    # (also plateau stopping's default tolerance: an improvement on the best validation by at most this, which
    # plateau stopping reads on the metric's log, a relative change: bench.running.train.Plateau)
    plateau_patience: int = 3  # plateau stopping: validations without improvement before training ends
    labelled_fields: tuple[str, ...] = ()  # own settings that :meth:`variant` names in row labels
    data_fields: tuple[str, ...] | None = None  # settings that define the generated data (None: own fields + seed)

    def cross_checks(self, cfg: dict) -> list[str]:
        """Problems between settings of one resolved config (one line each); none by default."""
        return []

    def build(self, cfg: dict) -> tuple:
        """The LightningDataModule and LightningModule of a resolved config."""
        raise NotImplementedError

    def dataset_spec(self, cfg: dict) -> dict[str, Any]:
        """The settings that define a run's data, which are generated rather than read: they name and digest the
        run's dataset input in MLflow. By default :attr:`data_fields`, or the task's own settings and the seed
        (every split is generated from seeds derived from the run's)."""
        names = self.data_fields if self.data_fields is not None else (*(f.name for f in self.fields), "seed")
        return {name: cfg[name] for name in names}

    def samples_per_step(self, cfg: dict) -> int:
        """Training samples (timesteps or examples) one optimizer step consumes: gives samples/s."""
        raise NotImplementedError

    def references(self, cfg: dict, data) -> dict[str, float]:
        """Metrics logged on every run beside the neural result: ``floor_*`` (analytic) or ``baseline_*``. They
        must depend on the data alone, as :meth:`dataset_spec` defines it: a worker computes them once per dataset
        and reuses them for every run on the same data."""
        return {}

    def converged(self, history: list[tuple[int, float]]) -> bool | None:
        """Whether a run had stopped improving: its best validation metric in the last fifth of training beats
        the last one before it by at most :attr:`converge_tolerance` (on the log scale for a ``log_scale``
        metric). A run still improving ran out of budget; it may not be unable to learn. Without a validation on
        each side of that line there is nothing to compare: None.

        >>> Task().converged([(200, 0.60), (400, 0.50), (800, 0.47), (1000, 0.46)])
        False
        >>> Task().converged([(200, 0.60), (800, 0.46), (1000, 0.46)])
        True
        """
        cut = 0.8 * history[-1][0] if history else 0
        before = [v for step, v in history if step <= cut]
        after = [v for step, v in history if step > cut]
        if not before or not after:
            return None
        return self.oriented(before[-1]) - min(map(self.oriented, after)) <= self.converge_tolerance

    def oriented(self, value: float) -> float:
        """``value`` on the task's scale (its log for a ``log_scale`` metric), signed so that lower is better: what
        convergence and tuning compare.

        >>> Task().oriented(0.5)
        0.5
        """
        return (math.log(max(value, 1e-300)) if self.log_scale else value) * (1 if self.lower_is_better else -1)

    def target(self, row: dict) -> float:
        """The validation metric a run should reach, given a row holding the run's reference metrics."""
        raise NotImplementedError

    def mark(self, row: dict) -> str:
        """A short mark for a summary row, judged against the task's known answers (e.g. which dependencies its
        seeds' classes and interval over seeds show learned); '' for none. A mark ending in ``?`` is undecided:
        more seeds would decide it (:mod:`bench.tasks.decision`)."""
        return ""

    def noise(self, cfg: dict) -> float:
        """The standard error of one run's test metric from its test length (NaN where unknown): it decides
        borderline outcome classes (:meth:`outcome`)."""
        return math.nan

    def outcome(self, row: dict, value: float) -> tuple[int, str] | None:
        """(rank, mark) of one seed's metric ``value`` against the task's known answers in ``row`` (a summary row:
        its references and ``noise``); higher ranks are better. None for a task without outcome classes."""
        return None

    def outcome_names(self, cfg: dict) -> list[tuple[int, str]]:
        """(rank, name) of each thing a seed can learn: a seed whose :meth:`outcome` rank is at least ``rank``
        learned ``name`` (e.g. "lag 3"); a rank one below learned part of it."""
        return []

    def known_span(self, row: dict) -> tuple[float, float]:
        """(best, worst): the known answers a score runs between (score 1 at ``best``, 0 at ``worst``), on the
        metric's scale; NaNs when the row holds none."""
        return math.nan, math.nan

    def metric_range(self, row: dict) -> tuple[float, float]:
        """The values the metric can take for this row (an interval of a mean is clipped to it)."""
        return (0.0, math.inf) if self.log_scale else (-math.inf, math.inf)

    def score(self, row: dict, value: float) -> float:
        """0 at the worst known answer, 1 at the best (:meth:`known_span`), clipped; on the log scale for a
        ``log_scale`` metric. NaN without known answers."""
        best, worst = self.known_span(row)
        if any(v is None or math.isnan(v) for v in (best, worst, value)) or best == worst:
            return math.nan
        if self.log_scale:
            if min(best, worst, value) <= 0:
                return math.nan
            best, worst, value = math.log(best), math.log(worst), math.log(value)
        return min(1.0, max(0.0, (worst - value) / (worst - best)))

    def run_plot(self, cfg: dict, data, model, history: Callable[[list[str]], History], path: Path,
                 title: str) -> None:
        """Draw one finished run's plot to ``path`` (SVG, with :mod:`bench.tasks.run_plots`), titled ``title``.
        ``history(keys)`` gives its logged series."""

    def variant(self, cfg: dict) -> str:
        """What a config's :attr:`labelled_fields` add to its row label ('' when they are at their usual value)."""
        return ""


def model_args(cfg: dict) -> dict:
    """The LightningModule arguments every task shares, from a resolved config."""
    return dict(cell=cfg["cell"], hidden_size=cfg["hidden"], num_layers=cfg["layers"],
                bidirectional=cfg["bidirectional"], dropout=cfg["dropout"], optimizer=cfg["optimizer"], lr=cfg["lr"],
                grad_clip=cfg["grad_clip"], lr_schedule=cfg["lr_schedule"], log_every=cfg["log_every"])
