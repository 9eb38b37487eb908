"""SIGINT and SIGTERM as one exception, :class:`Interrupted`, that ends the runs a process holds before it exits.

Python turns Ctrl-C into ``KeyboardInterrupt`` and lets SIGTERM kill the process outright; Lightning turns the
first into ``sys.exit(1)`` and the second into a ``SystemExit`` (exit 0) at the next step. Neither says why the
run stopped, and both bypass ``except Exception``. With :func:`catch_signals` installed, either signal raises
:class:`Interrupted` in the main thread (Lightning passes any exception other than ``KeyboardInterrupt`` through
after its own teardown), whose handlers end the runs KILLED with :attr:`Interrupted.reason` and exit with
:attr:`Interrupted.exit_code` (128 + the signal, as a shell reports a process the signal killed).

Only the first signal raises: later ones (a second Ctrl-C) are noted and ignored, so the cleanup that ends the
runs is never itself interrupted; :func:`shielded` defers the first too while a run's ending is being written.
"""

from __future__ import annotations

import contextlib
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The process was asked to stop by signal ``signum``. A ``BaseException``, as ``KeyboardInterrupt`` is: no
    ``except Exception`` of a run's failure path may take it for the run failing."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.run_id: str | None = None  # the run it ended, when one was held
        self.result = None  # a suite's result so far (bench.running.runner.run_suite)
        self.index: int | None = None  # in a worker: the suite's run it was on

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def reason(self) -> str:
        return f"interrupted by {self.name}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return self.reason


class _State:
    raised: int | None = None  # the signal that raised Interrupted in this process
    shield_depth = 0
    pending: int | None = None  # a first signal that came while shielded
    cause = None  # a multiprocessing Value: the signal that stopped the runner, for a worker's reason


def _handler(signum, frame) -> None:
    if _State.raised is not None:
        return  # the cleanup of the first one is under way
    if _State.shield_depth:
        _State.pending = _State.pending or signum
        return
    cause = _State.cause.value if _State.cause is not None else 0
    _State.raised = cause or signum
    raise Interrupted(_State.raised)


@contextlib.contextmanager
def catch_signals(cause=None):
    """While the block runs, SIGINT and SIGTERM raise :class:`Interrupted` in this process's main thread (once);
    the handlers before are restored after it, unless it was interrupted: then a second Ctrl-C that comes after
    the cleanup, while the process exits, is ignored too (not a KeyboardInterrupt traceback).

    ``cause``: in a worker, a shared integer the runner sets to the signal it got before it passes SIGTERM on, so
    that the worker's runs give the user's signal as their reason, not the runner's SIGTERM."""
    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _State.raised, _State.pending, _State.cause = None, None, cause
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in before.items():  # once interrupted, later ones are ignored until the process exits
            signal.signal(signum, handler if _State.raised is None else signal.SIG_IGN)  # (SIG_IGN holds through the
            # interpreter's exit, which resets Python-level handlers to the default: a late Ctrl-C killed it then)


def interrupted() -> Interrupted | None:
    """The interruption this process is stopping for, if any."""
    return Interrupted(_State.raised) if _State.raised is not None else None


@contextlib.contextmanager
def shielded():
    """Defer SIGINT and SIGTERM while the block runs (a run's ending being written); raise on leaving it."""
    _State.shield_depth += 1
    try:
        yield
    finally:
        _State.shield_depth -= 1
        if not _State.shield_depth and _State.pending is not None and _State.raised is None:
            signum, _State.pending = _State.pending, None
            _handler(signum, None)
