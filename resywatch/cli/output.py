"""Rendering: one JSON document with --json, rich tables on a terminal, plain text in a pipe.

Data goes to stdout; notes, warnings and errors go to stderr. Rich honours NO_COLOR,
FORCE_COLOR and TERM=dumb by itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: timestamps as ISO-8601 UTC with a Z, dates and times as ISO."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()  # venue-local wall-clock time: no zone to show
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if hasattr(value, "model_dump"):
        return to_jsonable(value.model_dump())
    return value


def _unmasked(text: str) -> str:
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    jsonable = to_jsonable(value)
    if isinstance(jsonable, list):
        return ", ".join(str(v) for v in jsonable)
    return str(jsonable)


class Output:
    """Where a command's results and messages go, for one invocation."""

    def __init__(self, *, json_mode: bool, stdout: Console | None = None) -> None:
        self.json_mode = json_mode
        self._stdout = stdout
        self._stderr: Console | None = None
        # Masks the invocation's secrets in messages (set by the AppContext).
        self.mask: Callable[[str], str] = _unmasked

    # Rich is loaded on first use only: a command that prints plain lines or one JSON
    # document (a monitor's `health --json`, a cron pass) never pays for it.
    @property
    def stdout(self) -> Console:
        if self._stdout is None:
            from rich.console import Console

            self._stdout = Console(highlight=False, soft_wrap=True)
        return self._stdout

    @property
    def stderr(self) -> Console:
        if self._stderr is None:
            from rich.console import Console

            self._stderr = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._stderr

    @property
    def is_terminal(self) -> bool:
        return self._stdout.is_terminal if self._stdout is not None else sys.stdout.isatty()

    def json(self, document: Any) -> None:
        """Exactly one JSON document on stdout."""
        self.line(json.dumps(to_jsonable(document), indent=2 if self.is_terminal else None))

    def line(self, text: str) -> None:
        """One line of plain text on stdout, exactly as given (no wrapping, tabs kept)."""
        (self._stdout.file if self._stdout is not None else sys.stdout).write(text + "\n")

    def table(
        self, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
    ) -> None:
        """A rich table on a terminal; tab-separated lines with a header row in a pipe."""
        cells = [[_cell(v) for v in row] for row in rows]
        if self.is_terminal:
            from rich.table import Table

            table = Table(*columns, title=title, title_justify="left")
            for row in cells:
                table.add_row(*row)
            self.stdout.print(table)
        else:
            for line in [list(columns), *cells]:
                self.line("\t".join(line))

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """Aligned `name: value` lines."""
        items = [(name, _cell(value)) for name, value in pairs]
        width = max((len(name) for name, _ in items), default=0)
        for name, value in items:
            self.line(f"{name + ':':<{width + 1}} {value}")

    def when(self, moment: datetime | None, now: datetime) -> str:
        """A timestamp for people: "3m ago" on a terminal, ISO-8601 UTC in a pipe."""
        if moment is None:
            return "-"
        if not self.is_terminal:
            return str(to_jsonable(moment))
        seconds = int((now - moment).total_seconds())
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if abs(seconds) >= size:
                return (
                    f"{seconds // size}{unit} ago"
                    if seconds > 0
                    else f"in {-seconds // size}{unit}"
                )
        return "just now" if seconds >= 0 else "in a moment"

    def note(self, message: str) -> None:
        self.stderr.print(self.mask(message), markup=False)

    def warn(self, message: str) -> None:
        self.stderr.print(f"warning: {self.mask(message)}", style="yellow", markup=False)

    def error(self, code: str, message: str, exit_code: int) -> None:
        """A failure: the message on stderr, and with --json the error envelope on stdout."""
        message = self.mask(message)
        self.stderr.print(f"error: {message}", style="red", markup=False)
        if self.json_mode:
            self.json({"error": {"code": code, "message": message, "exit_code": exit_code}})
