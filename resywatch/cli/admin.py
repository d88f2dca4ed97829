"""`resywatch admin`: the database and its upkeep."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag
from resywatch.cli.params import parse_since
from resywatch.errors import InvalidInput

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
    """Show the database backend, URL (password hidden), schema revisions, row counts and
    the state of discovery: next scan, the job's heartbeat, buckets, fast checks, hints."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import admin

    now = datetime.now(UTC)
    db = run.database(require_current=False)
    info = admin.with_discovery(db, admin.db_info(db), run.settings(), now)
    if run.output.json_mode:
        run.output.json(info)
        return
    out = run.output
    beat, buckets = info.job_heartbeat, info.bucket_summary
    out.fields(
        [
            ("backend", info.backend),
            ("url", info.url),
            ("revision", info.current_revision or "none (run `resywatch admin migrate`)"),
            ("head", info.head_revision),
            ("up to date", info.up_to_date),
        ]
    )
    out.fields(  # a block of its own: the schema lines above keep their alignment
        [
            ("next scan", out.when(info.next_scan_at, now)),
            ("discovery job", f"{beat.last_status}, started {out.when(beat.last_started_at, now)}"
             if beat else "never run"),
            *[(name.replace("_", " "), value) for name, value in info.fast_checks.items()],
        ]
    )  # fmt: skip
    if buckets is not None:
        out.table(
            ["buckets", "baselined", "stale", "failing", "last scan", "slots", "venues",
             "open drops"],
            [(buckets.total, buckets.baselined, len(buckets.stale), len(buckets.failing),
              out.when(buckets.last_scan_at, now), buckets.slots_in_last_scans,
              buckets.venues_in_last_scans, buckets.open_drops)],
            title="Discovery buckets",
        )  # fmt: skip
    if info.row_counts:
        out.table(["table", "rows"], sorted(info.row_counts.items()), title="Rows")
    for hint in info.hints:
        out.note(f"hint: {hint}")


@app.command()
def clear(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Forget every drop event, bucket and snapshot, and the drop notifications not yet
    delivered (the next scan starts a new baseline)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import admin

    db = run.database()
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput("refusing to clear without --yes (no terminal to ask on)")
        typer.confirm(
            "Delete every drop event, bucket, snapshot and undelivered drop notification?",
            abort=True,
            err=True,
        )
    cleared = admin.clear_discovery(db)
    if run.output.json_mode:
        run.output.json(cleared)
    else:
        run.output.note(
            f"deleted {cleared.drop_events} drop events, {cleared.buckets} buckets, "
            f"{cleared.snapshots} snapshot rows and {cleared.notifications} undelivered "
            "drop notifications"
        )


@app.command()
def logs(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Since: 1h, 30m, 2d or an ISO time.")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Endpoint contains this, e.g. /3/book.")] = (
        None
    ),
    errors: Annotated[bool, typer.Option("--errors", help="Only failed calls.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    json_output: JsonFlag = False,
) -> None:
    """The Resy call log (no secrets in it), newest first."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import admin

    now = datetime.now(UTC)
    entries = admin.api_calls(
        run.database(),
        since=parse_since(since, now) if since else None,
        endpoint=endpoint,
        errors_only=errors,
        limit=limit,
    )
    if run.output.json_mode:
        run.output.json({"calls": entries})
    else:
        run.output.table(
            ["at", "method", "endpoint", "status", "ms", "error", "try"],
            [
                (run.output.when(e.at, now), e.method, e.endpoint, e.status,
                 f"{e.latency_ms:.0f}", e.error_kind, e.attempt)
                for e in entries
            ],
        )  # fmt: skip


@app.command("booking-errors")
def booking_errors(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Since: 1h, 30m, 2d or an ISO time.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    json_output: JsonFlag = False,
) -> None:
    """Failed booking attempts (not booked, and neither a dry run, still under way nor
    declined), newest first."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import admin

    now = datetime.now(UTC)
    found = admin.booking_errors(
        run.database(), since=parse_since(since, now) if since else None, limit=limit
    )
    if run.output.json_mode:
        run.output.json({"booking_errors": found})
    else:
        run.output.table(
            ["at", "venue", "date", "party", "outcome", "resy", "message"],
            [
                (run.output.when(b.at, now), b.venue_name or b.venue_id, b.slot_date,
                 b.party_size, b.outcome, b.resy_status, b.message)
                for b in found
            ],
        )  # fmt: skip


@app.command()
def prune(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Delete what retention no longer keeps (closed drops, delivered notifications, API log
    and job runs older than the `[retention]` settings), in small batches."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.retention import prune as prune_rows

    deleted = prune_rows(run.database(), run.settings(), datetime.now(UTC))
    if run.output.json_mode:
        run.output.json({"deleted": deleted})
    else:
        run.output.fields(sorted(deleted.items()))
