"""The root command: global options, the command groups, and the one place where
exceptions become exit codes and messages."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import typer.main
from typer.core import TyperGroup
from typer.models import CommandInfo

from resywatch import __version__
from resywatch.cli import (
    admin,
    auth,
    book,
    demo,
    discover,
    health,
    notify,
    reservations,
    run,
    sandbox,
    venues,
    watch,
)
from resywatch.cli.context import AppContext
from resywatch.cli.output import Output
from resywatch.errors import ExitCode, ResywatchError
from resywatch.redact import redact_text

if TYPE_CHECKING:
    # Typer vendors Click; its groups are handed these classes, not typer.Context.
    from typer._click.core import Command, Context
    from typer._click.formatting import HelpFormatter

_JSON_META = "resywatch.json_requested"


class ResywatchGroup(TyperGroup):
    """Builds each command when it is used (see _SUBCOMMANDS), and maps every failure
    to a documented exit code and a message (and, with --json, an
    error envelope on stdout). `--traceback` prints the stack (masked) before them."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        json_requested = "--json" in args
        try:
            ctx = super().make_context(info_name, args, parent, **extra)
        except typer.TyperException as exc:  # usage errors: unknown option, bad value...
            if json_requested:
                _report(None, exc.format_message(), "usage", ExitCode(exc.exit_code))
            raise
        ctx.meta[_JSON_META] = json_requested
        return ctx

    def list_commands(self, ctx: Context) -> list[str]:
        return list(_SUBCOMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        target = _SUBCOMMANDS.get(cmd_name)
        return None if target is None else _build(cmd_name, target)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = [(name, _summary(target)) for name, target in _SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:
            if not ctx.meta.get(_JSON_META):
                raise
            _report(ctx, exc.format_message(), "usage", ExitCode(exc.exit_code))
        except KeyboardInterrupt:
            _report(ctx, "interrupted", "interrupted", ExitCode.INTERRUPTED)
        except BrokenPipeError:
            _reader_gone()
        except ResywatchError as exc:
            _traceback(ctx, exc)
            _report(ctx, exc.message, exc.code, exc.exit_code)
        except Exception as exc:
            hint = "" if _traceback(ctx, exc) else " (run with --traceback for details)"
            _report(ctx, f"{type(exc).__name__}: {exc}{hint}", "internal", ExitCode.FAILED)


@cache
def _build(name: str, target: typer.Typer | Callable[..., None]) -> Command:
    if isinstance(target, typer.Typer):
        command: Command = typer.main.get_group(target)
    else:
        command = typer.main.get_command_from_info(
            CommandInfo(name=name, callback=target),
            pretty_exceptions_short=True,
            rich_markup_mode=None,
        )
    command.name = name
    return command


def _summary(target: typer.Typer | Callable[..., None]) -> str:
    """The first sentence of a command's help, without building the command."""
    text = target.info.help if isinstance(target, typer.Typer) else inspect.getdoc(target)
    paragraph = " ".join(str(text or "").strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].removesuffix(".")


def _traceback(ctx: Context, exc: BaseException) -> bool:
    """With --traceback, print the stack on stderr, masked like every other message (an
    exception's text may quote a key, a token or a password); whether it was printed."""
    app = ctx.find_object(AppContext)
    if app is None or not app.traceback:
        return False
    import traceback

    sys.stderr.write(app.redact("".join(traceback.format_exception(exc))))
    sys.stderr.flush()
    return True


def _reader_gone() -> NoReturn:
    """stdout's reader went away (`| head`): end quietly, with the status a Unix tool killed
    by SIGPIPE has (see `_silence_stdout`)."""
    _silence_stdout()
    raise typer.Exit(int(ExitCode.BROKEN_PIPE))


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that nothing written later (an error, the interpreter's
    last flush) fails on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (tests capture stdout)
        pass


def _report(ctx: Context | None, message: str, code: str, exit_code: int) -> None:
    """Print the failure (secrets masked) and end the invocation with its exit code."""
    app = ctx.find_object(AppContext) if ctx else None
    json_mode = bool(ctx is None or ctx.meta.get(_JSON_META))
    output = app.output if app is not None else Output(json_mode=json_mode)
    output.json_mode = output.json_mode or json_mode
    output.error(code, redact_text(message, app.secrets() if app else []), int(exit_code))
    raise typer.Exit(int(exit_code))


app = typer.Typer(
    name="resywatch",
    cls=ResywatchGroup,
    no_args_is_help=True,
    # Plain help: Rich-formatted help alone would double the start-up time of --help.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Every command, in the order --help lists them. They are turned into Click commands only
# when used: building all of them up front cost `--help` as much as importing Typer.
_SUBCOMMANDS: dict[str, typer.Typer | Callable[..., None]] = {
    "demo": demo.demo,
    "search": venues.search,
    "venue": venues.app,
    "discover": discover.app,
    "watch": watch.app,
    "notify": notify.app,
    "book": book.app,
    "reservations": reservations.app,
    "auth": auth.app,
    "run": run.run,
    "run-forever": run.run_forever,
    "health": health.health,
    "admin": admin.app,
    "sandbox": sandbox.app,
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"resywatch {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="RESYWATCH_CONFIG",
            help="TOML config file [default: config.toml in the platform config dir].",
            dir_okay=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database URL, beats RESYWATCH_DATABASE_URL "
            "[default: SQLite in the platform data dir].",
            show_default=False,
        ),
    ] = None,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full stack on errors (secrets masked).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Find, watch and book hard-to-get Resy reservations from the terminal.

    Settings come from defaults < config file < RESYWATCH_* environment < flags.
    Every command takes --json. Exit codes: 0 ok, 1 failed, 2 bad usage or input,
    3 not found, 130 interrupted, 141 stdout closed early (`| head`: nothing is printed).
    """
    context = AppContext(
        config_path=config, flags={"database_url": database_url}, traceback=traceback
    )
    ctx.obj = context
    ctx.call_on_close(context.close)


def main() -> None:
    # httpx imports its own command-line client when rich is installed (typer installs it):
    # rich, pygments and click's parts, 86 modules and 4 MB resident in every process that
    # talks to Resy, run-forever included, for a tool resywatch never runs. None here makes
    # that import fail, and httpx falls back to a stub `httpx.main`.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        app()
    finally:
        # What is still buffered is flushed here rather than at interpreter exit, where a
        # reader gone by then would get "Exception ignored ... BrokenPipeError" and exit 120.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            raise SystemExit(int(ExitCode.BROKEN_PIPE)) from None
