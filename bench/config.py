"""The resolved configuration of one training run: fields, per-task defaults, validation and identity hash.

Every field is checked before anything runs; a bad value raises :class:`ConfigError` listing every problem
as ``field: value; allowed: …``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from lightning_modules.choices import CELLS, LR_SCHEDULES, OPTIMIZER_NAMES

TASKS = ("dependency", "sine")


class ConfigError(ValueError):
    """One or more invalid settings; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Field:
    name: str
    kind: type  # int, float, bool, str, or tuple (a comma-separated list of numbers)
    help: str
    check: Callable[[Any], bool] = lambda v: True
    allowed: str = "any value"
    tasks: tuple[str, ...] = TASKS
    item: type = float  # element type when kind is tuple


def _positive(v) -> bool:
    return v >= 1


def _int_range(low: int, high: int, or_also: int | None = None) -> tuple[Callable[[int], bool], str]:
    """The check and the allowed text of an integer field bounded on both sides (and maybe one special value)."""
    text = f"an integer >= {low}, at most {high}" + (f", or {or_also}" if or_also is not None else "")
    return (lambda v: low <= v <= high or v == or_also), text


# Upper bounds "within reason": far beyond any benchmark here, low enough that a slip (an extra digit, a pasted
# number) is refused before it reaches torch, where it would overflow or exhaust memory in the middle of a run.
MAX_HIDDEN = 4096
MAX_LAYERS = 64
MAX_TRUNCATION = 100_000
MAX_BATCH_SIZE = 65_536
MAX_STEPS = 100_000_000  # optimizer steps; also bounds val_every and log_every
MAX_EPOCHS = 100_000
MAX_STEPS_PER_BATCH = 10_000
MAX_SEED = 2**32 - 1  # numpy's legacy seeding and Lightning's seed_everything accept 0 .. 2**32 - 1

FIELDS = [
    Field("task", str, "which task", lambda v: v in TASKS, "one of " + ", ".join(TASKS)),
    Field("cell", str, "recurrent cell", lambda v: v in CELLS, "one of " + ", ".join(CELLS)),
    Field("hidden", int, "hidden units per layer and direction", *_int_range(1, MAX_HIDDEN)),
    Field("layers", int, "stacked recurrent layers", *_int_range(1, MAX_LAYERS)),
    Field("bidirectional", bool, "read each window both ways", allowed="true or false"),
    Field("dropout", float, "dropout between stacked layers (never on the recurrent state)",
          lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
    Field("truncation", int, "dependency: TBPTT window length; sine: input window length",
          *_int_range(1, MAX_TRUNCATION)),
    Field("seed", int, "seeds every random source of the run", *_int_range(0, MAX_SEED)),
    Field("optimizer", str, "optimizer", lambda v: v in OPTIMIZER_NAMES, "one of " + ", ".join(OPTIMIZER_NAMES)),
    Field("lr", float, "learning rate", lambda v: v > 0, "a finite number > 0"),
    Field("lr_schedule", str, "learning-rate schedule (cosine: down to 0 at max_steps)",
          lambda v: v in LR_SCHEDULES, "one of " + ", ".join(LR_SCHEDULES)),
    Field("grad_clip", float, "gradient-norm clipping threshold, 0 = off", lambda v: v >= 0,
          "a finite number >= 0"),
    Field("batch_size", int, "dependency: parallel streams; sine: minibatch size", *_int_range(1, MAX_BATCH_SIZE)),
    Field("epochs", int, "training epochs (-1: until max_steps)", *_int_range(1, MAX_EPOCHS, or_also=-1)),
    Field("max_steps", int, "optimizer steps at most (-1: until epochs)", *_int_range(1, MAX_STEPS, or_also=-1)),
    Field("val_every", int, "validate every this many optimizer steps (0: once per epoch)", *_int_range(0, MAX_STEPS)),
    Field("log_every", int, "log the training loss every this many optimizer steps", *_int_range(1, MAX_STEPS)),
    Field("steps_per_batch", int, "optimizer steps bundled in one Lightning batch (amortizes Trainer cost)",
          *_int_range(1, MAX_STEPS_PER_BATCH)),
    # dependency task
    Field("series_length", int, "training series length in steps", _positive, "an integer >= 1",
          tasks=("dependency",)),
    Field("eval_length", int, "validation and test series length in steps", _positive, "an integer >= 1",
          tasks=("dependency",)),
    Field("lags", tuple, "lags of the inputs Y depends on", lambda v: len(v) >= 1 and all(x >= 1 for x in v),
          "a comma-separated list of integers >= 1", tasks=("dependency",), item=int),
    Field("weights", tuple, "weight of each lagged input on P(Y=1)", lambda v: len(v) >= 1,
          "a comma-separated list of numbers, one per lag", tasks=("dependency",)),
    Field("base", float, "P(Y=1) when every lagged input is 0", lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]",
          tasks=("dependency",)),
    # sine task
    Field("train_examples", int, "windows in the training range (validation is carved from it)", _positive,
          "an integer >= 1", tasks=("sine",)),
    Field("val_examples", int, "validation windows", _positive, "an integer >= 1", tasks=("sine",)),
    Field("test_examples", int, "test windows", _positive, "an integer >= 1", tasks=("sine",)),
    Field("frequency", float, "angular frequency (radians per unit time; samples are 0.01 apart)",
          lambda v: v > 0, "a number > 0", tasks=("sine",)),
    Field("amplitude", float, "amplitude", lambda v: v > 0, "a number > 0", tasks=("sine",)),
    Field("noise", float, "std of additive Gaussian noise", lambda v: v >= 0, "a number >= 0", tasks=("sine",)),
]
FIELDS_BY_NAME = {f.name: f for f in FIELDS}

COMMON_DEFAULTS = dict(cell="lstm", bidirectional=False, dropout=0.0, seed=0, optimizer="adagrad", lr=0.1,
                       lr_schedule="constant",
                       grad_clip=0.0, val_every=0, log_every=50, steps_per_batch=50)
TASK_DEFAULTS = {
    # Seed 004: one series of 1,000,000 steps in 200 streams, one epoch.
    "dependency": dict(hidden=16, layers=1, truncation=10, batch_size=200, epochs=1, max_steps=-1,
                       series_length=1_000_000, eval_length=100_000, lags=(3, 8), weights=(0.5, -0.25), base=0.5),
    # Seed 003: LSTM 2x30, window 10, batch 32, 10,000 steps.
    "sine": dict(hidden=30, layers=2, truncation=10, batch_size=32, epochs=-1, max_steps=10_000,
                 train_examples=10_000, val_examples=1_000, test_examples=1_000, frequency=1.0, amplitude=1.0,
                 noise=0.0),
}


def _convert(field: Field, value: Any) -> Any:
    """Turn a YAML or command-line value into the field's type; raise ValueError (or ArithmeticError) if it is
    not one. Floats, alone or in a list, must be finite."""
    if field.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError
    if field.kind is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            value = value.strip()
            return int(value)  # "1.5" and "abc" raise
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        if isinstance(value, (int, float)):
            return int(value)
        raise ValueError
    if field.kind is float:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)  # a huge integer raises OverflowError, an ArithmeticError
        if not math.isfinite(number):  # "inf", "nan", YAML's .inf: accepted by float(), fatal in training
            raise ValueError
        return number
    if field.kind is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError
        item = FIELDS_BY_NAME[field.name].item
        return tuple(_convert(Field(field.name, item, ""), v) for v in items)
    if not isinstance(value, str):
        raise ValueError
    return value


def check_value(name: str, value: Any) -> str | None:
    """The problem with one setting on its own (``name: value; allowed: …``), or None if it is fine.

    >>> check_value("dropout", 1.0)
    'dropout: 1.0; allowed: a number in [0, 1)'
    """
    field = FIELDS_BY_NAME.get(name)
    if field is None:
        return f"{name}: unknown setting; allowed: {', '.join(FIELDS_BY_NAME)}"
    try:
        if field.check(_convert(field, value)):
            return None
    except (ValueError, TypeError, ArithmeticError):
        pass
    return f"{name}: {shown(value)}; allowed: {field.allowed}"


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error message stays one readable line.

    >>> shown("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (102 characters)"
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def resolve(overrides: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Defaults of the task plus ``overrides``, converted and checked; every problem raised at once.

    >>> cfg = resolve({"task": "dependency", "cell": "gru", "truncation": "5"})
    >>> cfg["cell"], cfg["truncation"], cfg["lags"]
    ('gru', 5, (3, 8))
    >>> resolve({"task": "dependency", "layers": 0})
    Traceback (most recent call last):
    ...
    bench.config.ConfigError: layers: 0; allowed: an integer >= 1, at most 64
    """
    prefix = f"{where}: " if where else ""
    problems = []
    task = overrides.get("task", "dependency")
    if task not in TASKS:
        raise ConfigError([f"{prefix}task: {task!r}; allowed: one of {', '.join(TASKS)}"])
    raw = {"task": task, **COMMON_DEFAULTS, **TASK_DEFAULTS[task], **overrides}
    resolved = {}
    for name, value in raw.items():
        problem = check_value(name, value)
        if problem is None and task not in FIELDS_BY_NAME[name].tasks:
            problem = (f"{name}: {value!r} does not apply to task {task!r}; "
                       f"allowed for it: {', '.join(f.name for f in FIELDS if task in f.tasks)}")
        if problem:
            problems.append(prefix + problem)
        else:
            resolved[name] = _convert(FIELDS_BY_NAME[name], value)
    if not problems:
        problems += _cross_checks(resolved, prefix)
    if problems:
        raise ConfigError(problems)
    return {f.name: resolved[f.name] for f in FIELDS if f.name in resolved}


def _cross_checks(cfg: dict[str, Any], prefix: str) -> list[str]:
    from datamodules.dependency import check_dependency_spec

    problems = []
    if cfg["epochs"] == -1 and cfg["max_steps"] == -1:
        problems.append(f"{prefix}epochs/max_steps: both -1; allowed: at least one of them bounds training")
    if cfg["lr_schedule"] != "constant" and cfg["max_steps"] == -1:
        problems.append(f"{prefix}lr_schedule: {cfg['lr_schedule']!r} with max_steps -1; "
                        "allowed: constant, or set max_steps (the schedule ends there)")
    if cfg["task"] == "dependency":
        try:
            check_dependency_spec(cfg["lags"], cfg["weights"], cfg["base"])
        except ValueError as e:
            problems.append(f"{prefix}{e}")
        for name in ("series_length", "eval_length"):
            if cfg[name] < cfg["batch_size"] * cfg["truncation"]:
                problems.append(f"{prefix}{name}: {cfg[name]}; allowed: at least batch_size x truncation "
                                f"({cfg['batch_size'] * cfg['truncation']}) so every stream holds one window")
    else:
        needed = cfg["val_examples"] + cfg["truncation"] + cfg["batch_size"]
        if cfg["train_examples"] < needed:
            problems.append(f"{prefix}train_examples: {cfg['train_examples']}; allowed: at least val_examples + "
                            f"truncation + batch_size ({needed})")
    return problems


def config_hash(cfg: dict[str, Any]) -> str:
    """Identity of a run: a short hash of its resolved config (same config, same hash, on any machine)."""
    canonical = json.dumps(cfg, sort_keys=True, default=list)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run_name(cfg: dict[str, Any]) -> str:
    """Readable run name, e.g. ``dependency/lstm-L2-bi-T10-s0``."""
    direction = "bi" if cfg["bidirectional"] else "uni"
    return f"{cfg['task']}/{cfg['cell']}-L{cfg['layers']}-{direction}-T{cfg['truncation']}-s{cfg['seed']}"
