# `make` runs everything CI runs after installing: lint, types, tests.
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# pytest-xdist workers, each with databases of its own (0: one process). The tests judged
# against the wall clock (marked `timed`) take turns in two lanes (workers) at normal
# priority while the other workers run the rest at a lower one, PostgreSQL's server
# processes for them included (tests/conftest.py).
TEST_WORKERS ?= 4

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
