"""Argument parsing shared by ``python -m bench`` and ``python -m bench.cli.perf``: one line per bad argument.

argparse answers a bad flag with its whole usage block and its own wording (``invalid int value``); here every
parse error is a :class:`ConfigError` of one line, ``--flag: 'value'; allowed: …``, which the entry points print
and exit 2 on, like every other bad input. The typed flags check ranges (finite numbers, bounded integers) and
writable output paths while parsing, before anything runs.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Callable

from bench.config.settings import ConfigError, shown
from bench.core.fields import did_you_mean


NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
NEGATIVE_NUMBERS = re.compile(rf"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:,{NUMBER})*$")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, raising :class:`ConfigError` (one line naming the flag) instead of printing usage and exiting,
    and taking a list of numbers that starts with a minus (``--weights -0.5,0.4``) as a value, not a flag."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBERS

    def error(self, message: str):
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        choice = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message)
        if choice:
            options = re.findall(r"'([^']*)'|([^\s,']+)", choice.group(2))
            hint = did_you_mean(choice.group(1), [a or b for a, b in options])
            message = message[:choice.start()] + f"{choice.group(1)!r}{hint}; allowed: one of {choice.group(2)}"
        if "allowed: " not in message:  # a flag without its value, a missing command
            message += f"; allowed: what {self.prog} --help lists"
        raise ConfigError([message])

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but a flag the chosen command does not know is answered with the closest one it does
        and that command's ``--help`` (argparse would point to the top-level help, which lists no flag of it)."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self._command(parsed)
            flags = [f for action in command._actions for f in action.option_strings]
            unknown = next((a for a in extra if a.startswith("-")), extra[0])
            hint = did_you_mean(unknown.split("=", 1)[0], flags)
            raise ConfigError([f"unrecognized arguments: {' '.join(extra)}{hint}; allowed: what "
                               f"{command.prog} --help lists"])
        return parsed

    def _command(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The subcommand's parser ``parsed`` went through (this parser when there is none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices.get(getattr(parsed, action.dest, None), self)
        return self


def module_text(module: str, name: str = "__doc__") -> str:
    """A module's docstring, or a string constant it defines, read from its source without importing it: a help
    text must not bring the module's imports (pandas, scipy) to a command that only prints help or an error.

    >>> module_text("bench.cli.args").splitlines()[0]
    'Argument parsing shared by ``python -m bench`` and ``python -m bench.cli.perf``: one line per bad argument.'
    """
    import ast
    import importlib.util

    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8"))
    if name == "__doc__":
        return ast.get_docstring(tree, clean=False) or ""
    return next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in node.targets))


def report(error: ConfigError) -> int:
    """Print each problem as ``error: …`` on stderr; the exit code of bad input."""
    for problem in error.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2


def integer(low: int, high: int, note: str = "") -> Callable[[str], int]:
    """An argparse ``type``: an integer in [low, high]."""
    allowed = f"an integer >= {low}, at most {high}{note}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{shown(text)}; allowed: {allowed}")
        return value

    return parse


def number(check: Callable[[float], bool], allowed: str) -> Callable[[str], float]:
    """An argparse ``type``: a finite number passing ``check`` (``allowed`` says which)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not check(value):
            raise argparse.ArgumentTypeError(f"{shown(text)}; allowed: {allowed}")
        return value

    return parse


def output_dir(text: str) -> Path:
    """An argparse ``type``: a folder that exists or can be created, writable.

    >>> output_dir("/tmp/new/folder")
    PosixPath('/tmp/new/folder')
    """
    path = Path(text)
    try:
        if path.exists() and not path.is_dir():
            problem = "is a file"
        else:
            folder = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
            problem = None if folder.is_dir() and os.access(folder, os.W_OK) else f"{str(folder)!r} is not writable"
    except (OSError, ValueError) as e:
        problem = str(e)
    if problem:
        raise argparse.ArgumentTypeError(f"{shown(text)}: {problem}; allowed: a folder that can be written")
    return path


def output_file(text: str) -> Path:
    """An argparse ``type``: a file path that can be written (its folder exists or can be created)."""
    path = Path(text)
    try:
        if path.is_dir():
            problem = "is a folder"
        else:
            folder = next(p for p in path.absolute().parents if p.exists())
            writable = folder.is_dir() and os.access(folder, os.W_OK)
            problem = None if writable else f"{str(folder)!r} is not a writable folder"
    except (OSError, ValueError) as e:
        problem = str(e)
    if problem:
        raise argparse.ArgumentTypeError(f"{shown(text)}: {problem}; allowed: a file path in a writable folder")
    return path
