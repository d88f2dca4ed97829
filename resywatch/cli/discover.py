"""`resywatch discover`: the 14-day drops pipeline and what it found."""

from __future__ import annotations

import time as wall
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import JsonFlag
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


@app.command("just-opened")
def just_opened(
    ctx: typer.Context,
    minutes: Annotated[int, typer.Option(min=1, max=1440, help="How far back to look.")] = 10,
    json_output: JsonFlag = False,
) -> None:
    """Drops of the last minutes that are still open: by date, hotspots first (one table
    per date on a terminal; in a pipe, one table with a date column)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.discovery import feed

    now = _now()
    with run.database().read() as session:
        drops = feed.just_opened(session, now, minutes)
    if run.output.json_mode:
        run.output.json({"minutes": minutes, "drops": drops})
        return
    if not drops:
        run.output.note(f"nothing opened in the last {minutes} minutes that is still open")
    elif not run.output.is_terminal:  # a pipe shows no titles: the date becomes a column
        by_date = sorted(drops, key=lambda d: d.slot_date)  # stable: hotspots first per date
        _drop_table(run.output, by_date, now, title=None, with_date=True)
        return
    for day in sorted({d.slot_date for d in drops}):
        rows = [d for d in drops if d.slot_date == day]
        _drop_table(run.output, rows, now, title=f"{day:%a %b} {day.day}", with_date=False)


@app.command("feed")
def feed_command(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="Only drops opened since: 1h, 30m, 2d or an ISO time.")
    ] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only drops still open.")] = False,
    venue: Annotated[str | None, typer.Option(help="Venue name contains this.")] = None,
    party: Annotated[
        int | None, typer.Option(min=1, max=20, help="Offered for this party.")
    ] = None,
    day: Annotated[str | None, typer.Option("--date", help="Slot date, YYYY-MM-DD.")] = None,
    after: Annotated[str | None, typer.Option(help="Slot time at or after HH:MM.")] = None,
    before: Annotated[str | None, typer.Option(help="Slot time at or before HH:MM.")] = None,
    hotspots: Annotated[bool, typer.Option("--hotspots", help="Only hotspot venues.")] = False,
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
    from resywatch.services.discovery import feed

    now = _now()
    filters = feed.FeedFilter(
        since=parse_since(since, now) if since else None,
        open_only=open_only,
        venue=venue,
        party_size=party,
        day=parse_day(day) if day else None,
        after=parse_hhmm(after, what="--after") if after else None,
        before=parse_hhmm(before, what="--before") if before else None,
        hotspots_only=hotspots,
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
def buckets(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Each bucket's date, anchor, baseline size, last scan, how often it is scanned (more
    often while hot: drops opened in it lately), last error and staleness."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.discovery import feed

    now = _now()
    with run.database().read() as session:
        states = feed.bucket_states(session, now, run.settings())
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


@app.command()
def patterns(
    ctx: typer.Context,
    venue: Annotated[str | None, typer.Option(help="Only venues whose name contains this.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Each venue's release habits learned from observed drops: days ahead, local time,
    how long drops last, drops per day, with sample counts and a confidence."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.discovery.patterns import patterns as learn

    with run.database().read() as session:
        found = learn(session, default_timezone=run.settings().timezone, venue=venue)
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
                (
                    "  median open",
                    f"{p.median_duration_s / 60:.1f} min ({p.closed_samples} closed)"
                    if p.median_duration_s is not None
                    else "-",
                ),
                ("  by local hour", _sparkline(p.hourly)),
            ]
        )


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


def _sparkline(counts: list[int]) -> str:
    bars = " ▁▂▃▄▅▆▇█"
    top = max(counts) or 1
    return "".join(bars[round(c / top * (len(bars) - 1))] for c in counts) + "  (00h → 23h)"


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
