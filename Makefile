# wsrelay: `make run` serves the embedded default, `make test` runs the whole suite.
# Both create .venv on first use; they need only python3 (>= 3.11) on the PATH.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint typecheck unit install install-test system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# A stamp per extra set: reinstall only when pyproject.toml changes.
$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.stamp-run
install-test: $(VENV)/.stamp-test

# Debian packages the tests use as real peers (redis-server, ...): installed when missing and root.
system-deps:
	@bash scripts/system-deps.sh

run: install
	$(BIN)/wsrelay serve

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check service tests

typecheck: install-test
	$(BIN)/mypy

test: install-test system-deps lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Targets of the deploy, bench and conformance parts live beside this file.
-include mk/*.mk
