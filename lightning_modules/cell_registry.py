"""Where a cell name leads: a built-in, an installed plug-in (entry-point group ``rnn_bench.cells``), or a dotted
path ``package.module:factory``.

Kept free of torch imports: validating a config that names a built-in or installed cell answers instantly.
Only a dotted path (or loading an entry point to build a model) imports the cell's module, which is also the
only way to tell, before anything runs, that it is importable.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Callable

ENTRY_POINT_GROUP = "rnn_bench.cells"
BUILTIN = {name: f"lightning_modules.cells:{name}" for name in ("rnn_tanh", "rnn_relu", "lstm", "gru")}
ALLOWED = (f"a built-in cell ({', '.join(BUILTIN)}), a cell installed under the entry-point group "
           f"{ENTRY_POINT_GROUP}, or a dotted path package.module:factory")


def installed() -> dict[str, str]:
    """Cells other packages register: name -> ``module:attr``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def target_of(name: str) -> str | None:
    """The ``module:attr`` a cell name stands for, or None if the name is neither known nor a dotted path.

    >>> target_of("gru"), target_of("mypackage.cells:MinGRU"), target_of("nosuchcell")
    ('lightning_modules.cells:gru', 'mypackage.cells:MinGRU', None)
    """
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        return name
    return installed().get(name)


def is_signal(e: BaseException) -> bool:
    """Whether ``e`` is a signal to stop (``KeyboardInterrupt``, or the harness's ``Interrupted``, which carries the
    signal's number), not a plug-in's failure.

    >>> is_signal(KeyboardInterrupt()), is_signal(SystemExit(0)), is_signal(ValueError())
    (True, False, False)
    """
    return isinstance(e, KeyboardInterrupt) or isinstance(getattr(e, "signum", None), int)


def load(name: str) -> Callable:
    """The factory of cell ``name``; raises ``ValueError`` (one line: why) if it cannot be had."""
    target = target_of(name)
    if target is None:
        raise ValueError(f"cell: {name!r}; allowed: {ALLOWED}")
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"cell: {name!r}; allowed: {ALLOWED}")
    try:
        module = import_plugin(module_name)
    except BaseException as e:  # any import-time error of a user's module (sys.exit too) is a bad setting ...
        if is_signal(e):  # ... but Ctrl-C or SIGTERM while it imports is the user stopping us
            raise
        raise ValueError(f"cell: {name!r} cannot be imported ({type(e).__name__}: {e}); allowed: {ALLOWED}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"cell: {name!r}: module {module_name!r} has no callable {attr!r}; allowed: {ALLOWED}")
    return factory


def import_plugin(module_name: str):
    """Import a plug-in's module from the installed packages and the path Python was given, never implicitly
    from the current folder: a file there named like the module (a ``config.yaml`` received from someone else
    may name one) must not run because of where the command was started. ``python -m bench`` has the current
    folder on its path, as Python does for any ``-m``; with ``rnn-bench``, ``PYTHONPATH=.`` says so. A missing
    module found in the current folder says that, so the user knows how to name it."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        top = module_name.partition(".")[0]
        if e.name == top and (os.path.exists(f"{top}.py") or os.path.isdir(top)):
            raise ModuleNotFoundError(f"{e}; the current folder holds it but is not searched: run with "
                                      "PYTHONPATH=. to use it") from None
        raise


def is_unlisted_code(name) -> bool:
    """Whether cell ``name`` is a dotted path to code that is neither built in nor installed under the entry-point
    group (by name or by the same path): what a config file may not name without being trusted.

    >>> is_unlisted_code("gru"), is_unlisted_code("lightning_modules.cells:gru"), is_unlisted_code("pwn:cell")
    (False, False, True)
    """
    return (isinstance(name, str) and ":" in name and name not in BUILTIN.values()
            and name not in installed().values())


def problem(name: str) -> str | None:
    """Why ``name`` is not a usable cell, or None. Built-in names are accepted without importing torch."""
    if not isinstance(name, str):
        return f"cell: {name!r}; allowed: {ALLOWED}"
    if name in BUILTIN:
        return None
    try:
        load(name)
    except ValueError as e:
        return str(e)
    return None
