"""How a suite's runs get trained: a shared book (:mod:`.book`), slot planning (:mod:`.slots`), and the executors
that train them, worker processes on this machine (:mod:`.local`, each running :mod:`.worker`) or tasks on a Ray
cluster (:mod:`.ray_cluster`). :func:`bench.running.runner.run_suite` picks one; dependencies point from the executors to
the book, never back."""
