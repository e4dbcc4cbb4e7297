# Lastmile: `make run` serves the demo agency, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export LASTMILE_HOST ?= 127.0.0.1
export LASTMILE_PORT ?= 8080
export LASTMILE_DATA_DIR ?= var

.PHONY: run test lint bench env clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

env: $(STAMP)

run: $(STAMP)
	LASTMILE_DEMO=$${LASTMILE_DEMO:-1} $(BIN)/lastmile migrate
	LASTMILE_DEMO=$${LASTMILE_DEMO:-1} $(BIN)/lastmile seed-demo
	LASTMILE_DEMO=$${LASTMILE_DEMO:-1} $(BIN)/lastmile serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
