"""The reliability suite (issue 8): real processes, real databases, the sandbox's faults.

Each test reports its figure through the `figures` fixture; they are printed together at the
end of the run. `make reliability` sets RESYWATCH_RELIABILITY=full for the long versions (a
5-minute SQLite soak, 20 discovery cycles); the default, short versions run in CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FULL = os.environ.get("RESYWATCH_RELIABILITY", "").lower() == "full"
_REPORTED: list[dict[str, Any]] = []


class Figures:
    """Collects a test's measured figures (`figures.report("kill -9", rescanned_after_s=3.1)`)."""

    def __init__(self, test: str) -> None:
        self.test = test

    def report(self, goal: str, **values: Any) -> None:
        _REPORTED.append({"test": self.test, "goal": goal, **values})


@pytest.fixture
def full_run() -> bool:
    """Whether to run the long version of a test (`make reliability`)."""
    return FULL


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    yield Figures(request.node.nodeid.rsplit("::", 1)[-1])


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _REPORTED:
        return
    terminalreporter.section("reliability figures")
    for row in _REPORTED:
        terminalreporter.write_line(json.dumps(row, default=str))
    target = os.environ.get("RESYWATCH_RELIABILITY_REPORT")
    if target:
        Path(target).write_text("".join(json.dumps(r, default=str) + "\n" for r in _REPORTED))
