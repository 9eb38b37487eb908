"""Run configurations and suites, resolved and validated once against the task they name. Imports bench.tasks and
bench.core only."""
