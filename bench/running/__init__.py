"""Running: training one run, the MLflow store, leases and claims, the suite runner and its executors. Imports
bench.config, bench.tasks and bench.core; never bench.reporting or bench.cli."""
