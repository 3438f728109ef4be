# Two entry points: `make demo` and `make test`. Both build .venv from nothing but python3.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
HOST    ?= 127.0.0.1
PORT    ?= 8000
STORE   ?= chdb://$(CURDIR)/var/consent-mw.chdb
SEED_EVENTS ?= 20000

.PHONY: demo test lint typecheck venv install install-test clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[collector]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Serve the demo clinic site (middleware + embedded collector + dashboards) on http://$(HOST):$(PORT)
demo: install
	mkdir -p var
	$(BIN)/consent-mw demo --host $(HOST) --port $(PORT) --store $(STORE) --seed $(SEED_EVENTS)

lint: install-test
	$(BIN)/ruff check consent_mw collector dashboards clinic consent_mw_cli tests bench

typecheck: install-test
	$(BIN)/mypy

## Lint, type-check, then run the whole test suite against the real chDB engine and chromium.
test: lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
