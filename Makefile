# rnn-bench: `make bench` runs the default suite, `make test` the tests. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SUITE ?= default
ARGS ?=

.PHONY: setup test test-all bench smoke compile regress baseline perf ui clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,ray]'
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest $(ARGS)

test-all: setup
	$(PY) -m pytest -m "" $(ARGS)

bench: setup
	$(PY) -m bench run --suite $(SUITE) $(ARGS)

smoke:
	$(MAKE) bench SUITE=smoke

perf: setup
	$(PY) -m bench.perf $(ARGS)

ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/results/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf $(VENV) results/mlflow.db results/mlartifacts
