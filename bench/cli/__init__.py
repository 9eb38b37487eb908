"""The command line (``rnn-bench``, ``python -m bench``) and ``make perf``: the top layer, the only one that wires
the others together."""
