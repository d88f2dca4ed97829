# `make` runs everything CI runs after installing: lint, types, tests.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: check install lint format typecheck test reliability bench clean

check: lint typecheck test

install:
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck:
	$(BIN)/mypy

test:
	$(BIN)/pytest $(PYTEST_ARGS)

# The reliability suite in its long form (issue 8); `make test` runs its short form.
reliability:
	RESYWATCH_RELIABILITY=full $(BIN)/pytest tests/e2e/reliability $(PYTEST_ARGS)

bench:
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
