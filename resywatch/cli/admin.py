"""`resywatch admin`: the database and its upkeep."""

from __future__ import annotations

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag

app = typer.Typer(help="Database administration.", no_args_is_help=True, rich_markup_mode=None)


@app.command()
def migrate(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Upgrade the database to the current schema (safe to run again).

    Example: RESYWATCH_DATABASE_URL=postgresql+psycopg://u:p@host/db resywatch admin migrate
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services import admin

    result = admin.migrate(run.database(require_current=False))
    if run.output.json_mode:
        run.output.json(result)
    elif result.changed:
        run.output.note(f"migrated {result.url} from {result.revision_before} to {result.revision}")
    else:
        run.output.note(f"{result.url} is already at {result.revision}")


@app.command("db-info")
def db_info(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Show the database backend, URL (password hidden), schema revisions and row counts."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import admin

    info = admin.db_info(run.database(require_current=False))
    if run.output.json_mode:
        run.output.json(info)
        return
    run.output.fields(
        [
            ("backend", info.backend),
            ("url", info.url),
            ("revision", info.current_revision or "none (run `resywatch admin migrate`)"),
            ("head", info.head_revision),
            ("up to date", info.up_to_date),
        ]
    )
    if info.row_counts:
        run.output.table(["table", "rows"], sorted(info.row_counts.items()))
