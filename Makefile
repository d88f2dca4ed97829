# `make` runs everything CI runs after installing: lint, types, tests.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist workers, each with databases of its own: 2, one per core of CI's 2-core box.
# The wall-clock tests run in lanes of their own (tests/conftest.py), one test at a time
# each, and judge what a pass did by its own clock, not by the interpreter's start-up.
# `make test TEST_WORKERS=0` runs the suite in one process.
TEST_WORKERS ?= 2

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
