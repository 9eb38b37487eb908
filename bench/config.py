"""The resolved configuration of one training run: fields, per-task defaults, validation and identity hash.

Every field is checked before anything runs; a bad value raises :class:`ConfigError` listing every problem
as ``field: value; allowed: …``.
"""

from __future__ import annotations

import hashlib
import json
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
    # Name of the field whose value this one takes when unset. Left out of the identity hash while equal to
    # it, so that runs made before the field existed keep their identity.
    follows: str = ""


def _positive(v) -> bool:
    return v >= 1


FIELDS = [
    Field("task", str, "which task", lambda v: v in TASKS, "one of " + ", ".join(TASKS)),
    Field("cell", str, "recurrent cell", lambda v: v in CELLS, "one of " + ", ".join(CELLS)),
    Field("hidden", int, "hidden units per layer and direction", _positive, "an integer >= 1"),
    Field("layers", int, "stacked recurrent layers", _positive, "an integer >= 1"),
    Field("bidirectional", bool, "read each window both ways", allowed="true or false"),
    Field("dropout", float, "dropout between stacked layers (never on the recurrent state)",
          lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"),
    Field("truncation", int, "dependency: TBPTT window length; sine: input window length", _positive,
          "an integer >= 1"),
    Field("tbptt_stride", int, "dependency: TBPTT step h': windows of truncation h steps advance by h' steps and "
          "count only their last h' outputs (Williams & Peng's BPTT(h; h'); h' = h: TF-style, 1: true "
          "truncation)", _positive, "an integer in [1, truncation]; unset: = truncation; in a suite also T or T/k",
          tasks=("dependency",), follows="truncation"),
    Field("seed", int, "seeds every random source of the run", lambda v: v >= 0, "an integer >= 0"),
    Field("optimizer", str, "optimizer", lambda v: v in OPTIMIZER_NAMES, "one of " + ", ".join(OPTIMIZER_NAMES)),
    Field("lr", float, "learning rate", lambda v: v > 0, "a number > 0"),
    Field("lr_schedule", str, "learning-rate schedule (cosine: down to 0 at max_steps)",
          lambda v: v in LR_SCHEDULES, "one of " + ", ".join(LR_SCHEDULES)),
    Field("grad_clip", float, "gradient-norm clipping threshold, 0 = off", lambda v: v >= 0, "a number >= 0"),
    Field("batch_size", int, "dependency: parallel streams; sine: minibatch size", _positive, "an integer >= 1"),
    Field("epochs", int, "training epochs (-1: until max_steps)", lambda v: v >= 1 or v == -1,
          "an integer >= 1, or -1"),
    Field("max_steps", int, "optimizer steps at most (-1: until epochs)", lambda v: v >= 1 or v == -1,
          "an integer >= 1, or -1"),
    Field("val_every", int, "validate every this many optimizer steps (0: once per epoch)", lambda v: v >= 0,
          "an integer >= 0"),
    Field("log_every", int, "log the training loss every this many optimizer steps", _positive,
          "an integer >= 1"),
    Field("steps_per_batch", int, "optimizer steps bundled in one Lightning batch (amortizes Trainer cost)",
          _positive, "an integer >= 1"),
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
    """Turn a YAML or command-line value into the field's type; raise ValueError if it is not one."""
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
        return float(value)
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
    except (ValueError, TypeError):
        pass
    return f"{name}: {value!r}; allowed: {field.allowed}"


def resolve(overrides: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Defaults of the task plus ``overrides``, converted and checked; every problem raised at once.

    >>> cfg = resolve({"task": "dependency", "cell": "gru", "truncation": "5"})
    >>> cfg["cell"], cfg["truncation"], cfg["lags"]
    ('gru', 5, (3, 8))
    >>> resolve({"task": "dependency", "layers": 0})
    Traceback (most recent call last):
    ...
    bench.config.ConfigError: layers: 0; allowed: an integer >= 1
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
    for field in FIELDS:
        if field.follows and task in field.tasks:
            resolved.setdefault(field.name, resolved.get(field.follows))
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
        if cfg["tbptt_stride"] > cfg["truncation"]:
            problems.append(f"{prefix}tbptt_stride: {cfg['tbptt_stride']}; allowed: an integer in [1, truncation "
                            f"({cfg['truncation']})]")
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
    identity = {k: v for k, v in cfg.items()
                if not (k in FIELDS_BY_NAME and FIELDS_BY_NAME[k].follows and v == cfg.get(FIELDS_BY_NAME[k].follows))}
    canonical = json.dumps(identity, sort_keys=True, default=list)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run_name(cfg: dict[str, Any]) -> str:
    """Readable run name, e.g. ``dependency/lstm-L2-bi-T10-s0``; a TBPTT stride other than the truncation
    follows the T: ``dependency/lstm-L1-uni-T10-stride1-s0``."""
    direction = "bi" if cfg["bidirectional"] else "uni"
    stride = cfg.get("tbptt_stride", cfg["truncation"])
    window = f"T{cfg['truncation']}" + (f"-stride{stride}" if stride != cfg["truncation"] else "")
    return f"{cfg['task']}/{cfg['cell']}-L{cfg['layers']}-{direction}-{window}-s{cfg['seed']}"
