# rnn-bench: `make bench` runs the default suite, `make test` the tests. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SUITE ?= default
ARGS ?=
PORT ?= 5000

.PHONY: setup test test-all bench smoke reproduce compile regress baseline perf ui clean

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
ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/results/mlflow.db \
		--artifacts-destination $(CURDIR)/results/mlartifacts --host 127.0.0.1 --port $(PORT)

clean:
	rm -rf $(VENV) results/mlflow.db results/mlartifacts
