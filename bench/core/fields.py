"""Settings as typed fields: what a value must be, and how YAML or command-line text becomes one.

Shared by the common run settings (:mod:`bench.config.settings`) and each task's own (:mod:`bench.tasks`), so that a
task's fields are checked, converted and reported exactly like the built-in ones.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any, Callable

NO_NEUTRAL = object()


class ConfigError(ValueError):
    """One or more invalid settings; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Field:
    """One setting. ``check`` gets the converted value and returns True when it is allowed, or False or a short
    reason when it is not; ``allowed`` says what is allowed, for error messages and ``--help``."""

    name: str
    kind: type  # int, float, bool, str, or tuple (a comma-separated list)
    help: str
    check: Callable[[Any], bool | str] = lambda v: True
    allowed: str = "any value"
    item: type = float  # element type when kind is tuple
    # A value meaning "not used": a config holding it hashes as if the field did not exist, so runs recorded
    # before the field was added keep their identity (see bench.config.settings.config_hash).
    neutral: Any = NO_NEUTRAL
    # Name of the field whose value this one takes when unset; left out of the identity hash while equal to it,
    # for the same reason. In a suite it may be written relative to that field (``T``, ``T/k``: bench.config.suite).
    follows: str = ""


def positive(v) -> bool:
    return v >= 1


def int_range(low: int, high: int, or_also: int | None = None) -> tuple[Callable[[int], bool], str]:
    """The check and the allowed text of an integer field bounded on both sides (and maybe one special value).

    >>> check, text = int_range(1, 64)
    >>> check(65), text
    (False, 'an integer >= 1, at most 64')
    """
    text = f"an integer >= {low}, at most {high}" + (f", or {or_also}" if or_also is not None else "")
    return (lambda v: low <= v <= high or v == or_also), text


def convert(field: Field, value: Any) -> Any:
    """Turn a YAML or command-line value into the field's type; raise ValueError if it is not one.

    >>> convert(Field("lags", tuple, "", item=int), "3,8"), convert(Field("on", bool, ""), "yes")
    ((3, 8), True)
    """
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
        return tuple(convert(Field(field.name, field.item, ""), v) for v in items)
    if not isinstance(value, str):
        raise ValueError
    return value


def problem(field: Field, value: Any) -> str | None:
    """The problem with one value of ``field`` (``name: value; allowed: …``), or None if it is fine.

    >>> problem(Field("dropout", float, "", lambda v: 0 <= v < 1, "a number in [0, 1)"), 1.0)
    'dropout: 1.0; allowed: a number in [0, 1)'
    """
    try:
        verdict = field.check(convert(field, value))
    except (ValueError, TypeError, ArithmeticError):
        verdict = False
    if verdict is True:
        return None
    if isinstance(verdict, str):
        return verdict
    return f"{field.name}: {shown(value)}{did_you_mean(value, choices(field.allowed))}; allowed: {field.allowed}"


def choices(allowed: str) -> list[str]:
    """The names an ``allowed`` text of the form ``one of a, b, c[, or …]`` lists; none for any other text.

    >>> choices("one of adam, sgd, or a dotted path"), choices("an integer >= 1")
    (['adam', 'sgd'], [])
    """
    found = re.match(r"one of (.*)", allowed)
    return [] if not found else [n for n in found.group(1).split(", ") if re.fullmatch(r"[\w.-]+", n)]


def did_you_mean(value: Any, options: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the option closest to ``value`` (difflib), or an empty string.

    >>> did_you_mean("sien", ["dependency", "sine"]), did_you_mean("--hiden", ["--hidden", "--layers"])
    (" (did you mean 'sine'?)", " (did you mean '--hidden'?)")
    """
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6) if isinstance(value, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error message stays one readable line. Never builds the
    whole ``repr`` of a large value first (a YAML alias bomb's is gigabytes; a huge integer's is refused by
    Python): strings are cut before, and containers and numbers go through :mod:`reprlib`'s bounded repr.

    >>> shown("x" * 100, limit=10)
    "'xxxxxxxxx... (a string of 100 characters)"
    >>> shown([[0] * 1000] * 1000, limit=30)
    '[[0, 0, 0, 0, 0, 0, ...], [0, ... (a list of 1000 items)'
    """
    if isinstance(value, str):
        text, size = repr(value[: limit + 1]), f"a string of {len(value)} characters"
    elif isinstance(value, (list, tuple, dict, set, frozenset)):
        text, size = _BOUNDED.repr(value), f"a {type(value).__name__} of {len(value)} items"
    else:
        text, size = _BOUNDED.repr(value), ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}..." + (f" ({size})" if size else "")


_BOUNDED = reprlib.Repr()
_BOUNDED.maxlevel, _BOUNDED.maxstring, _BOUNDED.maxother, _BOUNDED.maxlong = 3, 80, 80, 80
