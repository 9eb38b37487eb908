"""The resolved configuration of one training run: fields, per-task defaults, validation and identity hash.

Every field is checked before anything runs; a bad value raises :class:`ConfigError` listing every problem
as ``field: value; allowed: …``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bench import tasks
from bench.config.run_config import RunConfig
from bench.core.fields import NO_NEUTRAL, ConfigError, Field, convert, did_you_mean, int_range, problem, shown
from bench.tasks.base import Task
from lightning_modules import cell_registry
from lightning_modules.choices import LR_SCHEDULES, OPTIMIZER_NAMES


def cell_problem(name) -> str | None:
    """Why ``name`` is no usable cell (:func:`lightning_modules.cell_registry.problem`), with the closest known
    name for a near miss."""
    found = cell_registry.problem(name)
    if found and isinstance(name, str) and cell_registry.target_of(name) is None:
        hint = did_you_mean(name, [*cell_registry.BUILTIN, *cell_registry.installed()])
        found = found.replace(f"{name!r};", f"{name!r}{hint};", 1)
    return found


__all__ = ["ConfigError", "Field", "FIELDS", "fields_for", "check_value", "resolve", "config_hash", "run_name",
           "shown", "RunConfig"]


# Upper bounds "within reason": far beyond any benchmark here, low enough that a slip (an extra digit, a pasted
# number) is refused before it reaches torch, where it would overflow or exhaust memory in the middle of a run.
MAX_HIDDEN = 4096
MAX_LAYERS = 64
MAX_TRUNCATION = 100_000
MAX_BATCH_SIZE = 65_536
MAX_STEPS = 100_000_000  # optimizer steps; also bounds val_every and log_every
MAX_SAMPLES = 10**12
MAX_EPOCHS = 100_000
MAX_STEPS_PER_BATCH = 10_000
MAX_SEED = 2**32 - 1  # numpy's legacy seeding and Lightning's seed_everything accept 0 .. 2**32 - 1

STOPS = ("budget", "plateau")  # when training ends: the whole budget, or a validation plateau within it
FIELDS = [
    Field("task", str, "which task", lambda v: tasks.problem(v) or True, "a registered task"),
    Field("cell", str, "recurrent cell", lambda v: cell_problem(v) or True, cell_registry.ALLOWED),
    Field("hidden", int, "hidden units per layer and direction", *int_range(1, MAX_HIDDEN)),
    Field("layers", int, "stacked recurrent layers", *int_range(1, MAX_LAYERS)),
    Field("bidirectional", bool, "read each window both ways", allowed="true or false"),
    Field("dropout", float, "dropout between stacked layers (never on the recurrent state)",
          lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
    Field("truncation", int, "dependency: TBPTT window length; sine: input window length",
          *int_range(1, MAX_TRUNCATION)),
    Field("seed", int, "seeds every random source of the run", *int_range(0, MAX_SEED)),
    Field("optimizer", str, "optimizer", lambda v: v in OPTIMIZER_NAMES, "one of " + ", ".join(OPTIMIZER_NAMES)),
    Field("lr", float, "learning rate", lambda v: v > 0, "a finite number > 0"),
    Field("lr_schedule", str, "learning-rate schedule (cosine: down to 0 at max_steps)",
          lambda v: v in LR_SCHEDULES, "one of " + ", ".join(LR_SCHEDULES)),
    Field("grad_clip", float, "gradient-norm clipping threshold, 0 = off", lambda v: v >= 0,
          "a finite number >= 0"),
    Field("batch_size", int, "dependency: parallel streams; sine: minibatch size", *int_range(1, MAX_BATCH_SIZE)),
    Field("epochs", int, "training epochs (-1: until max_steps)", *int_range(1, MAX_EPOCHS, or_also=-1)),
    Field("max_steps", int, "optimizer steps at most (-1: until epochs)", *int_range(1, MAX_STEPS, or_also=-1)),
    Field("max_samples", int, "training budget in samples (timesteps or examples the task counts); sets max_steps "
          "(-1: budget given by max_steps or epochs)", *int_range(1, MAX_SAMPLES, or_also=-1), neutral=-1),
    Field("val_every", int, "validate every this many optimizer steps (0: once per epoch)", *int_range(0, MAX_STEPS)),
    Field("val_count", int, "validate this many times, evenly over the step budget (0: as val_every says); "
          "needs max_steps or max_samples", *int_range(0, 10_000), neutral=0),
    Field("log_every", int, "log the training loss every this many optimizer steps", *int_range(1, MAX_STEPS)),
    Field("steps_per_batch", int, "optimizer steps bundled in one Lightning batch (amortizes Trainer cost)",
          *int_range(1, MAX_STEPS_PER_BATCH)),
    Field("stop", str, "when training ends: budget (the whole step budget: equal data for every run) or plateau "
          "(once validation has not improved by plateau_tolerance for patience validations; the budget is then a "
          "cap; tested with the best validation's weights)", lambda v: v in STOPS, "one of " + ", ".join(STOPS), neutral="budget"),
    Field("patience", int, "stop plateau: validations without improvement before training ends (0: the task's "
          "default)", *int_range(0, 10_000), neutral=0),
    Field("plateau_tolerance", float, "stop plateau: an improvement on the best validation by at most this does "
          "not count, on the metric's log: a relative change, 0.002 = 0.2 % (-1: the task's default)",
          lambda v: v >= 0 or v == -1, "a finite number >= 0, or -1", neutral=-1.0),
]
COMMON_DEFAULTS = dict(cell="lstm", bidirectional=False, dropout=0.0, seed=0, optimizer="adagrad", lr=0.1,
                       lr_schedule="constant", grad_clip=0.0, val_every=0, log_every=50, steps_per_batch=50,
                       max_samples=-1, val_count=0, stop="budget", patience=0, plateau_tolerance=-1.0)


FIELDS_BY_NAME = {f.name: f for f in FIELDS}


def fields_for(task_names=None) -> dict[str, Field]:
    """Name -> field of the common settings and those of the given tasks, named or :class:`Task` objects
    (default: the built-in ones)."""
    names = tasks.BUILTIN if task_names is None else task_names
    found = {f.name: f for f in FIELDS}
    for name in names:
        try:
            task = name if isinstance(name, Task) else tasks.get(name)
        except ConfigError:
            continue  # reported where the task itself is checked
        found.update({f.name: f for f in task.fields if f.name not in found})
    return found


def task_of(cfg: Mapping[str, Any]) -> Task | None:
    """The Task of a config: the one a :class:`RunConfig` carries; a plain mapping's (settings read back, a
    docstring's example) looked up by its name, None where that names no usable task."""
    if isinstance(cfg, RunConfig):
        return cfg.task
    return None if tasks.problem(cfg.get("task")) else tasks.get(cfg["task"])


def check_value(name: str, value: Any, task_names=None) -> str | None:
    """The problem with one setting on its own (``name: value; allowed: …``), or None if it is fine.
    ``task_names``: the tasks whose settings count as known (default: the built-in ones).

    >>> check_value("dropout", 1.0)
    'dropout: 1.0; allowed: a number in [0, 1)'
    """
    known = fields_for(task_names)
    field = known.get(name)
    if field is None:
        return f"{name}: unknown setting; allowed: {', '.join(known)}"
    return problem(field, value)


def resolve(overrides: Mapping[str, Any], where: str = "", task: Task | None = None) -> RunConfig:
    """Defaults of the task plus ``overrides``, converted and checked; every problem raised at once. The one
    place a task is looked up by its name (``overrides["task"]``), unless ``task`` hands the object over (a task
    no registry lists: its name is then ``overrides["task"]``, or the task's own).

    >>> cfg = resolve({"task": "dependency", "cell": "gru", "truncation": "5"})
    >>> cfg["cell"], cfg["truncation"], cfg["lags"]
    ('gru', 5, (3, 8))
    >>> resolve({"task": "dependency", "layers": 0})
    Traceback (most recent call last):
    ...
    bench.core.fields.ConfigError: layers: 0; allowed: an integer >= 1, at most 64
    """
    prefix = f"{where}: " if where else ""
    handed = task is not None
    name = overrides.get("task", task.name if handed else tasks.DEFAULT)
    try:
        task = task if handed else tasks.get(name)
    except ConfigError as e:
        raise ConfigError([prefix + p for p in e.problems]) from None
    own = {f.name: f for f in (*FIELDS, *task.fields)}
    raw = {"task": name, **COMMON_DEFAULTS, **task.defaults, **overrides}
    problems, resolved = [], {}
    for key, value in raw.items():
        if key not in own:
            known = check_value(key, value)
            problems.append(prefix + (known or f"{key}: {value!r} does not apply to task {name!r}; allowed for it: "
                                               f"{', '.join(own)}"))
        elif key == "task" and handed:
            resolved[key] = value  # the name it goes by: no registry need know it
        elif found := problem(own[key], value):
            problems.append(prefix + found)
        else:
            resolved[key] = convert(own[key], value)
    for field in own.values():
        if field.follows and field.follows in resolved:
            resolved.setdefault(field.name, resolved[field.follows])
    if not problems:
        problems += [prefix + p for p in _budget_in_samples(resolved, overrides, task)]
        problems += [prefix + p for p in _validation_count(resolved)]
        problems += [prefix + p for p in _plateau(resolved, task)]
    if not problems:
        problems += [prefix + p for p in _cross_checks(resolved) + task.cross_checks(resolved)]
    if problems:
        raise ConfigError(problems)
    return RunConfig({key: resolved[key] for key in own if key in resolved}, task)


def _budget_in_samples(cfg: dict[str, Any], overrides: dict[str, Any], task) -> list[str]:
    """Turn a budget in samples into optimizer steps (in place): equal ``max_samples`` means equal training data
    whatever the truncation or batch size. Given together with an explicit step or epoch budget it is an error.

    >>> cfg = resolve({"task": "dependency", "truncation": 5, "batch_size": 50, "max_samples": 400000})
    >>> cfg["max_steps"], cfg["epochs"]
    (1600, -1)
    """
    if cfg["max_samples"] == -1:
        return []
    steps = -(-cfg["max_samples"] // task.samples_per_step(cfg))
    # A rerun's config.yaml holds the steps this budget resolved to: that agrees, anything else clashes.
    clash = [k for k, agree in (("max_steps", steps), ("epochs", -1))
             if k in overrides and convert(FIELDS_BY_NAME[k], overrides[k]) not in (-1, agree)]
    if clash:
        return [f"max_samples/{clash[0]}: both set; allowed: one training budget (max_samples, or max_steps "
                "and/or epochs)"]
    cfg["max_steps"], cfg["epochs"] = steps, -1
    return []


def _validation_count(cfg: dict[str, Any]) -> list[str]:
    """Turn ``val_count`` into ``val_every`` (in place): a fixed number of validations per run, whatever its
    step budget — runs with equal data but different truncations take very different numbers of steps.

    >>> cfg = resolve({"task": "dependency", "max_steps": 8000, "val_count": 10})
    >>> cfg["val_every"]
    800
    """
    if cfg["val_count"] == 0:
        return []
    if cfg["max_steps"] == -1:
        return [f"val_count: {cfg['val_count']} with max_steps -1; allowed: 0, or set max_steps or max_samples"]
    cfg["val_every"] = max(1, cfg["max_steps"] // cfg["val_count"])
    return []


def _plateau(cfg: dict[str, Any], task) -> list[str]:
    """Fill plateau stopping's patience and tolerance from the task's defaults (in place), so that a run's config
    states them; with budget stopping they must stay unset (at their neutral values, out of the identity hash).

    >>> cfg = resolve({"task": "dependency", "stop": "plateau", "val_every": 100})
    >>> cfg["patience"], cfg["plateau_tolerance"]
    (3, 0.002)
    >>> resolve({"task": "dependency", "patience": 4})
    Traceback (most recent call last):
    ...
    bench.core.fields.ConfigError: patience: 4 with stop budget; allowed: 0, or set stop to plateau
    """
    if cfg["stop"] == "budget":
        return [f"{name}: {cfg[name]} with stop budget; allowed: {FIELDS_BY_NAME[name].neutral}, or set stop to "
                "plateau" for name in ("patience", "plateau_tolerance") if cfg[name] != FIELDS_BY_NAME[name].neutral]
    if cfg["patience"] == 0:
        cfg["patience"] = task.plateau_patience
    if cfg["plateau_tolerance"] == -1:
        cfg["plateau_tolerance"] = task.converge_tolerance
    if cfg["val_every"] == 0 and 0 < cfg["epochs"] <= cfg["patience"]:
        return [f"stop: plateau with {cfg['epochs']} epoch(s) validated once each; allowed: budget, or set val_every "
                f"or val_count so that training validates more than patience ({cfg['patience']}) times"]
    return []


def _cross_checks(cfg: dict[str, Any]) -> list[str]:
    """Problems between the common settings."""
    problems = []
    if cfg["epochs"] == -1 and cfg["max_steps"] == -1:
        problems.append("epochs/max_steps: both -1; allowed: at least one of them bounds training")
    if cfg["lr_schedule"] != "constant" and cfg["max_steps"] == -1:
        problems.append(f"lr_schedule: {cfg['lr_schedule']!r} with max_steps -1; "
                        "allowed: constant, or set max_steps (the schedule ends there)")
    return problems


def config_hash(cfg: dict[str, Any]) -> str:
    """Identity of a run: a short hash of its resolved config (same config, same hash, on any machine). A field
    at its ``neutral`` value is left out, so adding a field never changes the identity of existing runs."""
    fields = fields_for([task_of(cfg) or cfg["task"]]) if "task" in cfg else {}
    kept = {k: v for k, v in cfg.items()
            if k not in fields or ((fields[k].neutral is NO_NEUTRAL or v != fields[k].neutral)
                                   and not (fields[k].follows and v == cfg.get(fields[k].follows)))}
    canonical = json.dumps(kept, sort_keys=True, default=list)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# Settings that name a configuration's place in the comparison tables (a task labels its own in the row, see
# Task.variant); anything else that varies within a task joins the configuration key, and seeds are what a
# configuration is averaged over.
PLACED_FIELDS = ("task", "cell", "layers", "bidirectional", "truncation", "seed")


DERIVED_BY = {"max_samples": ("max_steps", "epochs"), "val_count": ("val_every",)}


def varying_fields(configs: list[dict]) -> dict[str, list[str]]:
    """Per task, the settings outside :data:`PLACED_FIELDS` whose value differs between its configs.

    A setting derived from another (``max_steps`` and ``epochs`` from ``max_samples``, ``val_every`` from
    ``val_count``) varies with what it is derived from and is not counted.

    >>> varying_fields([{"task": "sine", "cell": "gru", "hidden": 8, "lr": 0.1},
    ...                 {"task": "sine", "cell": "lstm", "hidden": 16, "lr": 0.1}])
    {'sine': ['hidden']}
    """
    values: dict[str, dict[str, set]] = {}
    for cfg in configs:
        derived = {name for source, names in DERIVED_BY.items()
                   if cfg.get(source, FIELDS_BY_NAME[source].neutral) != FIELDS_BY_NAME[source].neutral
                   for name in names}  # a source set away from its neutral value derives these
        for name, value in cfg.items():
            if name not in derived:
                values.setdefault(cfg["task"], {}).setdefault(name, set()).add(value)
    named = list({cfg["task"]: task_of(cfg) for cfg in configs}.values())
    labelled = {f for task in named for f in task.labelled_fields}
    order = [name for name in fields_for(named) if name not in PLACED_FIELDS and name not in labelled]
    return {task: [n for n in order if len(seen.get(n, ())) > 1] for task, seen in values.items()}


SHORT = {"hidden": "h", "dropout": "drop", "batch_size": "b", "grad_clip": "clip", "max_samples": "n",
         "max_steps": "steps", "series_length": "len", "test_frequencies": "test_f"}


TASK_SHORT = {"dependency": "dep", "sine_extrapolation": "sinex"}  # a run's name starts with its task
CELL_SHORT = {"rnn_tanh": "tanh", "rnn_relu": "relu"}  # PyTorch's nn.RNN modes, named by their nonlinearity


def display_name(cfg: dict[str, Any], varying: list[str] = ()) -> str:
    """A run's name in the MLflow UI, what tells runs apart first: the runs table's name column (190 px) shows
    about 20 characters, a suite's child runs about 18. The task, the cell, depth and direction in one part
    (``L2bi``; a unidirectional run says nothing more), the truncation, the seed: within 18-20 characters for
    every built-in task and cell. Then every setting that varies in its suite, and the first 4 characters of its
    :func:`config_hash`, so that two configurations never share a name in one store (a run of the smoke suite
    and a standalone run differ in settings no name shows).

    >>> display_name({"task": "dependency", "cell": "lstm", "layers": 2, "bidirectional": True, "truncation": 10,
    ...               "tbptt_stride": 10, "hidden": 32, "seed": 0}, ["hidden"])
    'dep·lstm·L2bi·T10·s0·h32·d5ce'
    >>> display_name({"task": "sine", "cell": "rnn_tanh", "layers": 1, "bidirectional": False, "truncation": 2,
    ...               "tbptt_stride": 2, "seed": 1})
    'sine·tanh·L1·T2·s1·8ecd'
    """
    variant = task.variant(cfg) if (task := task_of(cfg)) is not None else ""
    parts = [TASK_SHORT.get(cfg["task"], cfg["task"]), CELL_SHORT.get(cfg["cell"], cfg["cell"]),
             f"L{cfg['layers']}" + ("bi" if cfg["bidirectional"] else ""), f"T{cfg['truncation']}",
             variant.replace("=", ""), f"s{cfg['seed']}",
             *(f"{SHORT.get(n, n + '=')}{setting_text(cfg[n])}" for n in varying), config_hash(cfg)[:4]]
    return "·".join(p for p in parts if p)


def setting_text(value) -> str:
    """A setting's value as a command line writes it: run names, result keys, rerun lines, help texts and
    descriptions, and comparisons as text (``4`` from YAML matches ``4`` from the store, a list a tuple).

    >>> setting_text((3, 8)), setting_text([3, 8]), setting_text(False), setting_text(0.1)
    ('3,8', '3,8', 'false', '0.1')
    """
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def run_name(cfg: dict[str, Any]) -> str:
    """Readable run name, e.g. ``dependency/lstm-L2-bi-T10-s0``; a TBPTT stride other than the truncation
    follows the T: ``dependency/lstm-L1-uni-T10-stride1-s0``."""
    direction = "bi" if cfg["bidirectional"] else "uni"
    stride = cfg.get("tbptt_stride", cfg["truncation"])
    window = f"T{cfg['truncation']}" + (f"-stride{stride}" if stride != cfg["truncation"] else "")
    return f"{cfg['task']}/{cfg['cell']}-L{cfg['layers']}-{direction}-{window}-s{cfg['seed']}"
