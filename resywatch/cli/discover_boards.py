"""`resywatch discover just-opened|top|hot|calendar`: the seed's drop boards.

Registered on the `discover` group by resywatch.cli.discover. On a terminal each board is
a Rich table (one per date where the board is by date) or a calendar; in a pipe, one plain
table whose titles became columns; with --json, one document with the same fields.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resywatch.cli.context import use
from resywatch.cli.options import (
    DropFilterArgs,
    HotspotsOption,
    JsonFlag,
    VenueFilterOption,
    board_filter,
    with_drop_filters,
)

if TYPE_CHECKING:
    from resywatch.cli.output import Output
    from resywatch.services.discovery.board import Board, Calendar, DayBoard
    from resywatch.services.discovery.metrics import VenueMetrics

MinutesOption = Annotated[
    int, typer.Option(min=1, max=1440, help="How far back 'just opened' looks, in minutes.")
]


def _now() -> datetime:
    return datetime.now(UTC)


@with_drop_filters
def just_opened(
    ctx: typer.Context,
    given: DropFilterArgs,
    minutes: MinutesOption = 10,
    still_open: Annotated[
        bool,
        typer.Option("--still-open", help="Also list the drops still open from before that."),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Drops of the last minutes still open: one entry per venue per date with its times,
    hotspots first; with the last and next scan and the venues scanned. Buckets not scanned
    for 4 hours are left out and named.

    Example: resywatch discover just-opened --minutes 30 --still-open --anchor 19:00
    """
    run = use(ctx, json_output=json_output)
    where = board_filter(run.settings(), given)
    from resywatch.services.discovery import board

    now = _now()
    with run.database().read() as session:
        found = board.just_opened(session, where, now, minutes=minutes, still_open=still_open)
    if run.output.json_mode:
        run.output.json(found)
        return
    _header(run.output, found, now)
    sections = [("just opened", found.just_opened)]
    if found.still_open is not None:
        sections.append(("still open", found.still_open))
    if not any(days for _, days in sections):
        run.output.note(f"nothing opened in the last {minutes} minutes that is still open")
        return
    if not run.output.is_terminal:  # a pipe shows no titles: they become columns
        rows = [(state, d) for state, days in sections for d in days]
        _venue_table(run.output, rows, now, title=None)
        return
    for state, days in sections:
        for day in days:
            title = f"{state}: {day.date:%a %b} {day.date.day}"
            _venue_table(run.output, [(state, day)], now, title=title)


def top(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many venues.")] = 20,
    hotspots: HotspotsOption = False,
    venue: VenueFilterOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Top opportunities: venues ranked by how rarely they open and how fast their drops
    close, from the last 30 days of drops (score = 100 × rarity × speed, where speed halves
    at a 10-minute median open time).

    Example: resywatch discover top --limit 10
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services.discovery.metrics import top as ranked

    now = _now()
    with run.database().read() as session:
        found = ranked(session, now, limit=limit, hotspots_only=hotspots, venue=venue)
    if run.output.json_mode:
        run.output.json({"venues": found})
        return
    if not found:
        run.output.note("no drops in the last 30 days: run `resywatch discover scan` for a while")
        return
    run.output.table(
        [
            *("rank", "venue", "neighborhood", "score", "rarity", "drops/week"),
            *("median open", "trend", "last drop"),
        ],
        [
            (
                n,
                _star(run.output, m.venue_name, m.is_hotspot),
                m.neighborhood,
                f"{m.score:.1f}",
                f"{m.rarity:.1%}",
                f"{m.drops_per_week:g}",
                _minutes(m.median_open_s),
                _trend(m),
                run.output.when(m.last_drop_at, now),
            )
            for n, m in enumerate(found, 1)
        ],
        title="top opportunities (last 30 days)",
    )


@with_drop_filters
def hot(
    ctx: typer.Context,
    given: DropFilterArgs,
    minutes: Annotated[
        int, typer.Option(min=1, max=1440, help="Opened in the last this many minutes.")
    ] = 60,
    min_rarity: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Only venues at least this rare (1 − share of time open)."
        ),
    ] = 0.9,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """Hot right now: what opened in the last minutes and is still open, at venues that
    rarely open; one entry per venue per date, the highest score first.

    Example: resywatch discover hot --minutes 30 --party 2
    """
    run = use(ctx, json_output=json_output)
    where = board_filter(run.settings(), given)
    from resywatch.services.discovery.metrics import hot as hot_entries

    now = _now()
    with run.database().read() as session:
        found = hot_entries(
            session, where, now, minutes=minutes, min_rarity=min_rarity, limit=limit
        )
    if run.output.json_mode:
        run.output.json({"minutes": minutes, "min_rarity": min_rarity, "drops": found})
        return
    if not found:
        run.output.note(f"nothing rare opened in the last {minutes} minutes that is still open")
        return
    run.output.table(
        ["venue", "neighborhood", "date", "times", "party", "opened", "rarity", "score"],
        [
            (
                _star(run.output, e.venue_name, e.is_hotspot),
                e.neighborhood,
                e.date,
                ", ".join(e.times),
                "/".join(map(str, e.party_sizes)),
                run.output.when(e.opened_at, now),
                f"{e.rarity:.1%}",
                f"{e.score:.1f}",
            )
            for e in found
        ],
        title=f"hot right now (opened in the last {minutes} min)",
    )


@with_drop_filters
def calendar(
    ctx: typer.Context,
    given: DropFilterArgs,
    json_output: JsonFlag = False,
) -> None:
    """Per date of the discovery window (or the dates given): how many venues and drops are
    open now. A month-style calendar on a terminal; date, venues, drops in a pipe.

    Example: resywatch discover calendar --anchor 19:00 --party 2
    """
    run = use(ctx, json_output=json_output)
    settings = run.settings()
    where = board_filter(settings, given)
    from resywatch.services.discovery import board
    from resywatch.services.vocabulary import local_today

    now = _now()
    days = board.calendar_days(where, local_today(now, settings.timezone), settings.discovery_days)
    with run.database().read() as session:
        found = board.calendar(session, where, now, days=days)
    if run.output.json_mode:
        run.output.json(found)
        return
    if found.stale_buckets:
        run.output.warn(f"left out, not scanned for 4 hours: {', '.join(found.stale_buckets)}")
    if run.output.is_terminal:
        _calendar_grid(run.output, found)
    else:
        run.output.table(
            ["date", "weekday", "venues", "drops", "hotspot venues"],
            [(d.date, f"{d.date:%a}", d.venues, d.drops, d.hotspot_venues) for d in found.days],
        )


def _header(output: Output, found: Board, now: datetime) -> None:
    """The scan header: on stdout on a terminal, on stderr in a pipe (not a table row)."""
    upcoming = output.when(found.next_scan_at, now) if found.next_scan_at else "not scheduled"
    text = (
        f"last scan {output.when(found.last_scan_at, now)}, next scan {upcoming}, "
        f"{found.venues_scanned} venues scanned in {found.buckets_fresh} fresh buckets"
    )
    if output.is_terminal:
        output.line(text)
    else:
        output.note(text)
    if found.stale_buckets:
        output.warn(f"left out, not scanned for 4 hours: {', '.join(found.stale_buckets)}")


def _venue_table(
    output: Output, sections: list[tuple[str, DayBoard]], now: datetime, *, title: str | None
) -> None:
    piped = title is None
    columns = ["state", "date"] if piped else []
    columns += ["venue", "neighborhood", "times", "party", "seating", "opened"]
    rows: list[tuple[Any, ...]] = []
    for state, day in sections:
        for v in day.venues:
            rows.append(
                (
                    *((state, v.date) if piped else ()),
                    _star(output, v.venue_name, v.is_hotspot),
                    v.neighborhood,
                    ", ".join(v.times),
                    "/".join(map(str, v.party_sizes)),
                    v.seating_types,
                    output.when(v.opened_at, now),
                )
            )
    output.table(columns, rows, title=title)


def _calendar_grid(output: Output, found: Calendar) -> None:
    """Weeks as rows, Monday first; each day shows its venue count, shaded by it."""
    from rich.table import Table
    from rich.text import Text

    if not found.days:
        return
    top = max((d.venues for d in found.days), default=0) or 1
    by_day = {d.date: d for d in found.days}
    first = found.days[0].date - timedelta(days=found.days[0].date.weekday())
    last = found.days[-1].date
    table = Table(
        *("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        title="open drops by date (venues)",
        title_justify="left",
        show_lines=True,
    )
    week_start = first
    while week_start <= last:
        cells: list[Text] = []
        for offset in range(7):
            day = week_start + timedelta(days=offset)
            cells.append(_calendar_cell(by_day.get(day), day, top))
        table.add_row(*cells)
        week_start += timedelta(days=7)
    output.stdout.print(table)


def _calendar_cell(entry: Any, day: date, top: int) -> Any:
    from rich.text import Text

    if entry is None:
        return Text(f"{day:%b} {day.day}", style="dim")
    shade = ["dim", "green", "bold green", "bold bright_green"]
    level = 0 if entry.venues == 0 else 1 + min(2, (entry.venues * 3 - 1) // top)
    text = Text(f"{day:%b} {day.day}\n", style="bold" if entry.venues else "")
    text.append(f"{entry.venues} venues" if entry.venues != 1 else "1 venue", style=shade[level])
    return text


def _star(output: Output, name: str, hotspot: bool) -> str:
    return f"★ {name}" if hotspot and output.is_terminal else name


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _trend(m: VenueMetrics) -> str:
    if m.trend is None:
        return m.trend_label
    return f"{m.trend_label} ({m.trend:+.0%})"


def metric_fields(m: VenueMetrics | None, indent: str = "") -> list[tuple[str, Any]]:
    """A venue's metrics as `name: value` lines (`venue show`, `discover patterns`)."""
    if m is None:
        return [(f"{indent}drops per week", "no drops in the last 30 days")]
    return [
        (
            f"{indent}drops per week",
            f"{m.drops_per_week:g} ({m.drops_30d} in {m.observed_days:g} days, "
            f"{m.drops_7d} in the last 7)",
        ),
        (f"{indent}median open", f"{_minutes(m.median_open_s)} ({m.closed_drops} closed)"),
        (f"{indent}rarity", f"{m.rarity:.1%} (open {m.open_share:.1%} of the watched time)"),
        (f"{indent}trend", f"{_trend(m)}, last 7 days against the last 30"),
        (f"{indent}score", f"{m.score:.1f} of 100"),
    ]


def hour_chart(output: Output, hourly: list[int], indent: str = "  ") -> None:
    """Drops by local hour as bars, from the first hour with a drop to the last; in a pipe,
    `HHh<TAB>count` lines."""
    busy = [h for h, count in enumerate(hourly) if count]
    if not busy:
        return
    top = max(hourly)
    width = 30
    for hour in range(busy[0], busy[-1] + 1):
        count = hourly[hour]
        if output.is_terminal:
            bar = "█" * max(1 if count else 0, round(count / top * width))
            output.line(f"{indent}{hour:02d}h {bar} {count}")
        else:
            output.line(f"{indent}{hour:02d}h\t{count}")
