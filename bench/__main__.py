"""``python -m bench``: the same command as ``rnn-bench`` (:mod:`bench.cli.main`)."""

from bench.cli.main import console_script

console_script(prog="python -m bench")
