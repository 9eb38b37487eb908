"""``python -m bench``: the same command as ``rnn-bench`` (:mod:`bench.cli.main`)."""

import sys

from bench.cli.main import main

sys.exit(main())
