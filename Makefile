# `make` runs everything CI runs after installing: lint, types, tests.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist workers: 0 (one process) by default, because on 2 cores the reliability
# suite's wall-clock tests fail beside 4 busy workers (measured: 7 of 1,329 on a quiet box).
# `make test TEST_WORKERS=5` runs it in about 5 minutes where timing failures are tolerable:
# three workers take the wall-clock tests one at a time, the rest run every other test at a
# lower CPU priority (tests/conftest.py).
TEST_WORKERS ?= 0

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
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The reliability suite in its long form (issue 8); `make test` runs its short form.
reliability:
	RESYWATCH_RELIABILITY=full $(BIN)/pytest tests/e2e/reliability $(PYTEST_ARGS)

bench:
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
