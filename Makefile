# rnn-bench: `make first` trains one run and opens it in the UI (a minute), `make bench` runs the default suite,
# `make test` the tests. All set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RAY_STAMP := $(VENV)/.ray-stamp
SUITE ?= default
ARGS ?=
PORT ?= 5000

.PHONY: setup setup-ray first test test-all bench smoke reproduce compile regress baseline perf ui clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Ray is an optional extra (--executor ray); its tests are skipped without it.
$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,ray]'
	touch $(RAY_STAMP)

setup-ray: $(RAY_STAMP)

# One minute from a set-up clone to a result: one sine run (an LSTM, 3,000 steps, about 30 s in all) into
# results/, then the MLflow UI on it.
first: setup
	$(PY) -m bench train --task sine --max-steps 3000
	$(MAKE) ui

test: setup
	$(PY) -m pytest $(ARGS)

test-all: setup-ray
	$(PY) -m pytest -m "" $(ARGS)

bench: setup
	$(PY) -m bench run --suite $(SUITE) $(ARGS)

smoke:
	$(MAKE) bench SUITE=smoke

# The two source experiments as published (R2RT's dependency task, the TensorFlow sine example), beside ours with
# a verdict each: results/reproduce/README.md.
reproduce:
	$(MAKE) bench SUITE=reproduce

compile: setup
	$(PY) -m bench compile --suite $(SUITE) $(ARGS)

# Rerun the smoke suite (--force: fresh results, not the store's old ones) and check it against the committed
# baseline results/baseline/smoke.json; exits 1 on a regression. The check runs even when some runs failed.
regress: setup
	$(PY) -m bench run --suite smoke --force $(ARGS); $(PY) -m bench regress --suite smoke

# Rewrite results/baseline/smoke.json from the store's smoke results: review its diff before committing it.
baseline: setup
	$(PY) -m bench baseline --suite smoke $(ARGS)

perf: setup
	$(PY) -m bench.cli.perf $(ARGS)

# Artifacts are recorded as mlflow-artifacts:/<experiment>/… and served from results/mlartifacts, so a copied or
# moved results/ folder shows them too.
# On an empty store it says which command fills it instead.
ui: setup
	$(PY) -m bench ui --port $(PORT)

clean:
	rm -rf $(VENV) results/mlflow.db results/mlartifacts
