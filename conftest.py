"""Collection for the whole tree. Ray is an optional extra (`make setup` leaves it out, `make test-all` installs it):
without it, the Ray executor module cannot even be imported, so its doctest collection is skipped; its behaviour is
tested by tests/test_ray_executor.py, which skips with a reason where Ray is absent."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("ray") else ["bench/running/executors/ray_cluster.py"]
