"""`resywatch discover`: the 14-day drops pipeline and what it found."""

from __future__ import annotations

import time as wall
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli import discover_boards
from resywatch.cli.context import use
from resywatch.cli.options import (
    DropFilterArgs,
    JsonFlag,
    board_filter,
    with_drop_filters,
)
from resywatch.cli.params import parse_day, parse_hhmm, parse_since

if TYPE_CHECKING:
    from resywatch.cli.output import Output
    from resywatch.db.engine import Database
    from resywatch.services.discovery.feed import Drop, FeedFilter

app = typer.Typer(
    help="Discover drops: slots the moment they open.", no_args_is_help=True, rich_markup_mode=None
)


def _now() -> datetime:
    return datetime.now(UTC)


@app.command()
def scan(
    ctx: typer.Context,
    bucket: Annotated[
        list[str] | None,
        typer.Option("--bucket", help="Scan only this bucket (DATE_HH:MM); repeatable."),
    ] = None,
    due_only: Annotated[
        bool, typer.Option("--due-only", help="Skip buckets scanned in the current cycle.")
    ] = False,
    rebaseline: Annotated[
        bool, typer.Option("--rebaseline", help="Take this scan as the new baseline.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Scan every bucket of the window once (or the named ones) and record drops; buckets
    another worker is scanning right now are left to it.

    Example: resywatch discover scan --bucket 2026-12-01_19:00
    """
    run = use(ctx, json_output=json_output)
    from resywatch.runtime import Runtime
    from resywatch.services.discovery.scan import run_pass

    settings, db = run.settings(), run.database()
    progress = _progress(run.output, settings.discovery_days * len(settings.discovery_time_slots))
    with progress as advance:
        summary = run.with_resy(
            lambda resy: run_pass(
                Runtime(settings, db, resy),
                only=bucket or (),
                due_only=due_only,
                rebaseline=rebaseline,
                on_bucket=lambda _: advance(),
            )
        )
    if run.output.json_mode:
        run.output.json(summary)
    else:
        run.output.fields(
            [
                ("buckets scanned", summary.buckets_scanned),
                ("buckets baselined", summary.buckets_baselined),
                ("buckets failed", summary.buckets_failed),
                ("buckets skipped", summary.buckets_skipped),
                ("slots seen", summary.slots_seen),
                ("drops opened", summary.drops_opened),
                ("drops reopened", summary.drops_reopened),
                ("drops closed", summary.drops_closed),
                ("requests", summary.requests),
                ("duration", f"{summary.duration_s:.2f} s"),
            ]
        )
        for bucket_id, error in summary.errors.items():
            run.output.warn(f"{bucket_id}: {error}")
    if summary.buckets_failed and not summary.buckets_scanned:
        raise typer.Exit(1)


@app.command("feed")
@with_drop_filters
def feed_command(
    ctx: typer.Context,
    given: DropFilterArgs,
    since: Annotated[
        str | None, typer.Option(help="Only drops opened since: 1h, 30m, 2d or an ISO time.")
    ] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only drops still open.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=5000, help="At most this many.")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", help="Stream new drops as NDJSON until interrupted.")
    ] = False,
    follow_for: Annotated[
        float | None, typer.Option(min=0, help="With --follow: stop after this many seconds.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Drop events, newest first, with open/closed state and duration.

    Example: resywatch discover feed --since 1h --hotspots --after 18:00
    """
    run = use(ctx, json_output=json_output)
    where = board_filter(run.settings(), given)
    from resywatch.services.discovery import feed

    now = _now()
    filters = feed.FeedFilter(
        since=parse_since(since, now) if since else None,
        open_only=open_only,
        where=where,
        limit=limit,
    )
    db = run.database()
    if follow:
        _follow(run.output, db, filters, follow_for)
        return
    with db.read() as session:
        drops = feed.feed(session, filters, now)
    if run.output.json_mode:
        run.output.json({"drops": drops})
    elif drops:
        _drop_table(run.output, drops, now, title=None, with_date=True)
    else:
        run.output.note("no drops match")


def _follow(output: Output, db: Database, filters: FeedFilter, seconds: float | None) -> None:
    """Print each new drop as one JSON line, polling the database every second."""
    from dataclasses import replace

    from resywatch.services.discovery import feed

    with db.read() as session:
        newest = feed.feed(session, replace(filters, limit=1, since=None), _now())
    last_id = newest[0].id if newest else 0
    deadline = None if seconds is None else wall.monotonic() + seconds
    try:
        while deadline is None or wall.monotonic() < deadline:
            with db.read() as session:
                new = feed.feed(session, replace(filters, after_id=last_id, limit=500), _now())
            for drop in reversed(new):  # oldest first in a stream
                output.json(drop)
                last_id = max(last_id, drop.id)
            output.stdout.file.flush()
            wall.sleep(1.0)
    except KeyboardInterrupt:
        pass  # the normal way to stop following


@app.command()
def buckets(
    ctx: typer.Context,
    show: Annotated[
        str | None,
        typer.Option(
            "--show", metavar="BUCKET", help="List this bucket's baseline and last-scan slots."
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Each bucket's date, anchor, baseline size, last scan, how often it is scanned (more
    often while hot: drops opened in it lately), last error and staleness; with
    --show DATE_HH:MM, one bucket's slots: in its baseline (B), in its last scan (P).

    Example: resywatch discover buckets --show 2026-12-01_19:00
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services.discovery.states import bucket_states

    now = _now()
    if show is not None:
        _show_bucket(run.output, run.database(), show, now)
        return
    with run.database().read() as session:
        states = bucket_states(session, now, run.settings())
    if run.output.json_mode:
        run.output.json({"buckets": states})
        return
    run.output.table(
        ["bucket", "baseline", "slots", "last scan", "every", "failures", "stale", "last error"],
        [
            (
                s.id,
                s.baseline_size if s.baselined else "-",
                s.slot_count,
                run.output.when(s.last_scan_at, now),
                f"{s.interval_s:g}s" + (f" (hot: {s.recent_drops} drops)" if s.hot else ""),
                s.consecutive_failures,
                s.stale,
                s.last_error,
            )
            for s in states
        ],
    )


def _show_bucket(output: Output, db: Database, bucket_id: str, now: datetime) -> None:
    from resywatch.services.discovery.explain import bucket_contents

    with db.read() as session:
        found = bucket_contents(session, bucket_id, now)
    if output.json_mode:
        output.json(found)
        return
    state = found.bucket
    output.fields(
        [
            ("bucket", state.id),
            ("baselined", state.baselined),
            ("last scan", output.when(state.last_scan_at, now)),
            ("stale", state.stale),
            ("in baseline (B)", len(found.baseline)),
            ("in last scan (P)", len(found.last_scan)),
        ]
    )
    slots = {s.slot_id: s for s in [*found.baseline, *found.last_scan]}.values()
    output.table(
        ["slot", "venue", "time", "offered", "baseline", "last scan", "first seen"],
        [
            (s.slot_id, s.venue_name or s.venue_id, f"{s.starts_at:%H:%M}", s.offered,
             s.in_baseline, s.in_last_scan, output.when(s.first_seen_at, now))
            for s in sorted(slots, key=lambda s: (s.starts_at, s.venue_id))
        ],
        title=f"Slots of {state.id}",
    )  # fmt: skip


@app.command()
def explain(
    ctx: typer.Context,
    slot: Annotated[
        str | None,
        typer.Argument(help="The slot id (32 hex digits).", metavar="[SLOT_ID]"),
    ] = None,
    venue: Annotated[
        str | None, typer.Option(help="Venue name or Resy id (with --date, --time).")
    ] = None,
    day: Annotated[str | None, typer.Option("--date", help="Slot date, YYYY-MM-DD.")] = None,
    at: Annotated[
        str | None, typer.Option("--time", help="Slot time, HH:MM (venue-local).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Why a slot is or is not in the feed: first seen in which scan, in a baseline or not,
    which buckets hold it, when its drop opened, closed or reopened.

    Example: resywatch discover explain --venue "Don Angie" --date 2026-12-04 --time 19:30
    """
    run = use(ctx, json_output=json_output)
    from resywatch.errors import InvalidInput
    from resywatch.services.discovery import explain as why

    parts = (venue, day, at)
    if (slot is None) == all(p is None for p in parts) or (
        slot is None and any(p is None for p in parts)
    ):
        raise InvalidInput("give a SLOT_ID, or all of --venue, --date and --time")
    now = _now()
    with run.database().read() as session:
        if slot is not None:
            found = why.explain(session, run.settings(), now, why.parse_slot_id(slot))
        else:
            assert venue is not None and day is not None and at is not None
            when_day, when_at = parse_day(day), parse_hhmm(at, what="--time")
            slot_id, known, starts = why.slot_of(session, venue, when_day, when_at)
            found = why.explain(
                session, run.settings(), now, slot_id, venue=known, starts_at=starts
            )
    if run.output.json_mode:
        run.output.json(found)
        return
    run.output.fields(
        [
            ("slot", found.slot_id),
            ("venue", f"{found.venue_name} ({found.venue_id})" if found.venue_id else "-"),
            ("starts", f"{found.starts_at:%Y-%m-%d %H:%M}" if found.starts_at else "-"),
            ("in the feed", found.in_feed),
            ("verdict", found.verdict),
            ("first seen", run.output.when(found.first_seen_at, now)
             + (f" by {found.first_seen_by}" if found.first_seen_by else "")
             + (" (baseline scan)" if found.first_seen_in_baseline else "")),
            ("buckets covering it", ", ".join(found.covering_buckets) or "none"),
        ]
    )  # fmt: skip
    run.output.line(found.reason)
    if found.history:
        run.output.table(
            ["when", "what"], [line.split("  ", 1) for line in found.history], title="History"
        )


@app.command()
def patterns(
    ctx: typer.Context,
    venue: Annotated[str | None, typer.Option(help="Only venues whose name contains this.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Each venue's release habits learned from observed drops: days ahead, local time,
    how long drops last, drops per day, with sample counts and a confidence; its metrics
    (drops per week, median open time, rarity, trend) and a chart of drops by local hour."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.discovery.patterns import patterns as learn

    with run.database().read() as session:
        found = learn(
            session, default_timezone=run.settings().timezone, venue=venue, metrics_at=_now()
        )
    if run.output.json_mode:
        run.output.json({"venues": found})
        return
    if not found:
        run.output.note("no drops observed yet: run `resywatch discover scan` for a while")
    for p in found:
        release = (
            f"{p.lead_days} days ahead at {p.release_time}" if p.lead_days is not None else "-"
        )
        run.output.line(f"{p.venue_name} (venue {p.venue_id}, {p.time_zone})")
        run.output.fields(
            [
                ("  releases", f"{release} ({p.release_share:.0%} of drops)"),
                ("  confidence", f"{p.confidence:.2f} from {p.samples} drops"),
                ("  drops per day", p.drops_per_day),
                *discover_boards.metric_fields(p.metrics, indent="  "),
                ("  by local hour", "drops opened in each hour:"),
            ]
        )
        discover_boards.hour_chart(run.output, p.hourly, indent="    ")


# The boards live in their own module; they are commands of this group all the same.
app.command("just-opened")(discover_boards.just_opened)
app.command("top")(discover_boards.top)
app.command("hot")(discover_boards.hot)
app.command("calendar")(discover_boards.calendar)


def _drop_table(
    output: Output, drops: list[Drop], now: datetime, *, title: str | None, with_date: bool
) -> None:
    columns = ["opened", "venue", "neighborhood", *(["date"] if with_date else []), "time"]
    columns += ["party", "seating", "state"]
    rows = []
    for d in drops:
        state = "open" if d.open else f"closed after {(d.duration_s or 0) // 60} min"
        name = f"★ {d.venue_name}" if d.is_hotspot and output.is_terminal else d.venue_name
        rows.append(
            (
                output.when(d.opened_at, now),
                name,
                d.neighborhood,
                *([d.slot_date] if with_date else []),
                f"{d.starts_at:%H:%M}",
                "/".join(map(str, d.party_sizes)),
                d.seating_types,
                state,
            )
        )
    output.table(columns, rows, title=title)


@contextmanager
def _progress(output: Output, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr when it is a terminal; a no-op otherwise."""
    if output.json_mode or not output.stderr.is_terminal:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(console=output.stderr, transient=True) as bar:
        task = bar.add_task("scanning buckets", total=total)
        yield lambda: bar.advance(task)
