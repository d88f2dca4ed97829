"""The root command: global options, the command groups, and the one place where
exceptions become exit codes and messages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from resywatch import __version__
from resywatch.cli import admin, auth, discover, health, notify, run, sandbox, venues, watch
from resywatch.cli.context import AppContext
from resywatch.cli.output import Output
from resywatch.errors import ExitCode, ResywatchError
from resywatch.redact import redact_text

if TYPE_CHECKING:
    # Typer vendors Click; its groups are handed this context class, not typer.Context.
    from typer._click.core import Context

_JSON_META = "resywatch.json_requested"


class ResywatchGroup(TyperGroup):
    """Maps every failure to a documented exit code and a message (and, with --json, an
    error envelope on stdout). `--traceback` lets the exception through instead."""

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
        except ResywatchError as exc:
            if _wants_traceback(ctx):
                raise
            _report(ctx, exc.message, exc.code, exc.exit_code)
        except Exception as exc:
            if _wants_traceback(ctx):
                raise
            message = f"{type(exc).__name__}: {exc} (run with --traceback for details)"
            _report(ctx, message, "internal", ExitCode.FAILED)


def _wants_traceback(ctx: Context) -> bool:
    app = ctx.find_object(AppContext)
    return app is not None and app.traceback


def _report(ctx: Context | None, message: str, code: str, exit_code: ExitCode) -> None:
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
app.add_typer(admin.app, name="admin")
app.add_typer(auth.app, name="auth")
app.add_typer(discover.app, name="discover")
app.command("search")(venues.search)
app.add_typer(venues.app, name="venue")
app.add_typer(watch.app, name="watch")
app.add_typer(notify.app, name="notify")
app.command("run")(run.run)
app.command("run-forever")(run.run_forever)
app.command("health")(health.health)
app.add_typer(sandbox.app, name="sandbox")


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
        bool, typer.Option("--traceback", help="Show the full stack on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Find, watch and book hard-to-get Resy reservations from the terminal.

    Settings come from defaults < config file < RESYWATCH_* environment < flags.
    Every command takes --json. Exit codes: 0 ok, 1 failed, 2 bad usage or input,
    3 not found, 130 interrupted.
    """
    context = AppContext(
        config_path=config, flags={"database_url": database_url}, traceback=traceback
    )
    ctx.obj = context
    ctx.call_on_close(context.close)


def main() -> None:
    app()
