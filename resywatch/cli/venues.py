"""`resywatch search` and `resywatch venue`: availability, ids, calendars, release habits."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated

import typer

from resywatch.cli import discover_boards
from resywatch.cli.context import use
from resywatch.cli.hard_to_get import hard_to_get
from resywatch.cli.options import JsonFlag
from resywatch.cli.params import parse_day, parse_hhmm, parse_window
from resywatch.errors import InvalidInput

app = typer.Typer(
    help="Find venues, their ids, calendars and release habits.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

app.command("hard-to-get")(hard_to_get)

PartyOption = Annotated[int, typer.Option("--party", min=1, max=20, help="Party size.")]


def search(
    ctx: typer.Context,
    day: Annotated[str, typer.Option("--date", help="Date, YYYY-MM-DD.")],
    query: Annotated[str, typer.Argument(help="Part of a venue name or cuisine.")] = "",
    party: PartyOption = 2,
    at: Annotated[
        str | None, typer.Option("--time", help="Around this time (HH:MM, ± 1 hour).")
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="Between these times, HH:MM-HH:MM.")
    ] = None,
    neighborhood: Annotated[str | None, typer.Option(help="Neighbourhood contains this.")] = None,
    cuisine: Annotated[str | None, typer.Option(help="Cuisine contains this.")] = None,
    hotspots: Annotated[bool, typer.Option("--hotspots", help="Only hotspot venues.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=200, help="At most this many venues.")] = 20,
    json_output: JsonFlag = False,
) -> None:
    """Venues in the search area with open tables for a date and party size.

    Example: resywatch search --date 2026-12-01 --party 2 --window 18:00-21:00 --hotspots
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services import venues

    if at and window:
        raise InvalidInput("give --time or --window, not both")
    span = (
        parse_window(window) if window else _around(parse_hhmm(at, what="--time")) if at else None
    )
    request = venues.SearchQuery(
        day=parse_day(day, what="--date"),
        party_size=party,
        query=query,
        window=span,
        neighborhood=neighborhood,
        cuisine=cuisine,
        hotspots_only=hotspots,
        limit=limit,
    )
    found = run.with_runtime(lambda rt: venues.search(rt, request))
    if run.output.json_mode:
        run.output.json({"date": request.day, "party_size": party, "venues": found})
    elif found:
        run.output.table(
            ["venue", "neighborhood", "cuisine", "times"],
            [
                (
                    f"★ {v.name}" if v.is_hotspot and run.output.is_terminal else v.name,
                    v.neighborhood,
                    v.cuisine,
                    # A restricted time (not bookable by this account) is marked with *.
                    " ".join(f"{t}*" if t in v.restricted_times else t for t in v.times),
                )
                for v in found
            ],
        )
        if any(v.restricted_times for v in found):
            run.output.note("* only for Global Dining Access or an exclusive: not bookable here")
    else:
        run.output.note("no open tables match")


def _around(moment: time) -> tuple[time, time]:
    anchor = datetime.combine(datetime(2000, 1, 1).date(), moment)
    start = max(anchor - timedelta(hours=1), anchor.replace(hour=0, minute=0))
    end = min(anchor + timedelta(hours=1), anchor.replace(hour=23, minute=59))
    return start.time(), end.time()


@app.command("search")
def venue_search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Part of the venue's name.")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many.")] = 20,
    json_output: JsonFlag = False,
) -> None:
    """Find venues by name, with their Resy ids. Example: resywatch venue search carbone"""
    run = use(ctx, json_output=json_output)
    from resywatch.services import venues

    found = run.with_runtime(lambda rt: venues.find_venues(rt, query, limit=limit))
    if run.output.json_mode:
        run.output.json({"venues": found})
    elif found:
        run.output.table(
            ["id", "venue", "neighborhood", "cuisine", "rating", "price"],
            [
                (v.venue_id, v.name, v.neighborhood, v.cuisine, v.rating, v.price_range)
                for v in found
            ],
        )
    else:
        run.output.note(f"no venue matches {query!r}")


@app.command("show")
def venue_show(
    ctx: typer.Context,
    venue: Annotated[str, typer.Argument(help="Venue name, Resy id or resy.com venue page URL.")],
    party: PartyOption = 2,
    days: Annotated[int, typer.Option(min=1, max=60, help="Calendar days to show.")] = 14,
    json_output: JsonFlag = False,
) -> None:
    """A venue's id, neighbourhood, booking horizon, the next days' calendar, its learned
    release pattern and drop metrics (drops per week, median open time, rarity, trend).

    Example: resywatch venue show "Don Angie"
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services import venues

    report = run.with_runtime(lambda rt: venues.show_venue(rt, venue, party_size=party, days=days))
    if run.output.json_mode:
        run.output.json(report)
        return
    pattern = report.pattern
    run.output.fields(
        [
            ("venue", f"{report.name} (id {report.venue_id})"),
            ("neighborhood", report.neighborhood),
            ("cuisine", report.cuisine),
            ("time zone", report.time_zone),
            ("books ahead", f"{report.lead_time_days} days" if report.lead_time_days else None),
            ("booking horizon", report.last_calendar_day),
            (
                "releases",
                f"{pattern.lead_days} days ahead at {pattern.release_time} "
                f"(confidence {pattern.confidence:.2f}, {pattern.samples} drops)"
                if pattern
                else "not learned yet",
            ),
            ("page", report.url),
            *discover_boards.metric_fields(report.metrics),
        ]
    )
    if pattern is not None and any(pattern.hourly):
        run.output.line("drops by local hour:")
        discover_boards.hour_chart(run.output, pattern.hourly)
    run.output.table(
        ["date", "day", f"party of {party}"],
        [(d.date, f"{d.date:%a}", d.status) for d in report.calendar],
    )
