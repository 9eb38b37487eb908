"""rnn-bench: suites, runner, MLflow tracking, tables and benchmarks. Entry point: ``python -m bench``."""
