"""Exit codes and the domain errors that carry them.

Services raise these; the CLI maps them to an exit code and a message in one place
(`resywatch.cli.app.ResywatchGroup`). Each class's docstring is its default message.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a Unix tool whose reader left


class ResywatchError(Exception):
    """The operation failed."""

    exit_code: int = ExitCode.FAILED  # an ExitCode, or a command's documented own code
    code: str = "failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or self.code).strip())

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(ResywatchError):
    """The configuration is invalid."""

    exit_code = ExitCode.USAGE
    code = "bad_config"


class ConfigNotWritable(ResywatchError):
    """The config file cannot be written."""

    code = "config_not_writable"


class InvalidInput(ResywatchError):
    """The input is invalid."""

    exit_code = ExitCode.USAGE
    code = "bad_input"


class NotFound(ResywatchError):
    """Not found."""

    exit_code = ExitCode.NOT_FOUND
    code = "not_found"


class DatabaseNotReady(ResywatchError):
    """The database is not at the current schema: run `resywatch admin migrate`."""

    code = "database_not_ready"


class DatabaseUnavailable(ResywatchError):
    """The database cannot be reached."""

    code = "database_unavailable"
