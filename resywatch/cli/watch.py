"""`resywatch watch`: standing questions checked every N minutes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import AppContext, use
from resywatch.cli.options import AccountOption, JsonFlag
from resywatch.cli.params import id_parser, parse_day, parse_duration, parse_times, parse_window

if TYPE_CHECKING:
    from resywatch.cli.output import Output
    from resywatch.services.vocabulary import Want
    from resywatch.services.watches import CheckResult, WatchSpec, WatchView

app = typer.Typer(
    help="Watch venues or searches and get told when tables appear.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
add_app = typer.Typer(help="Add a watch.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(add_app, name="add")

DateOption = Annotated[str, typer.Option("--date", help="First date, YYYY-MM-DD.")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Last date (default: --date).")]
PartyOption = Annotated[int, typer.Option("--party", help="Party size (1-20).")]
WindowOption = Annotated[
    str | None, typer.Option("--window", help="Only times between, HH:MM-HH:MM (local).")
]
EveryOption = Annotated[str, typer.Option("--every", help="How often to check: 5m, 1h...")]
WatchId = Annotated[
    int, typer.Argument(help="Watch id.", metavar="WATCH_ID", parser=id_parser("watch id"))
]
AutoBookOption = Annotated[
    bool,
    typer.Option(
        "--auto-book",
        help="On a hit, book the best slot (fee ceilings: the [book] settings); the outcome "
        "is a notification. A booked watch ends.",
    ),
]


def _now() -> datetime:
    return datetime.now(UTC)


TimesOption = Annotated[
    str | None,
    typer.Option(
        "--time",
        help="Time HH:MM or a ranked list 19:30,19:00: what --auto-book books first (the "
        "first listed time open wins, then the others by nearness to it); alone, only "
        "slots within 30 min of the listed times.",
    ),
]


def _want(
    day: str,
    until: str | None,
    party: int,
    window: str | None,
    types: list[str],
    times: str | None = None,
) -> Want:
    from resywatch.services.vocabulary import Want, with_times

    start, end = parse_window(window) if window else (None, None)
    first = parse_day(day, what="--date")
    want = Want(
        date_from=first,
        date_to=parse_day(until, what="--until") if until else first,
        party_size=party,
        time_from=start,
        time_to=end,
        seating_types=tuple(types),
    )
    return with_times(want, parse_times(times)) if times is not None else want


@add_app.command("venues")
def add_venues(
    ctx: typer.Context,
    venue: Annotated[
        list[str],
        typer.Option("--venue", help="Venue name, id or resy.com venue page URL; repeatable."),
    ],
    day: DateOption,
    party: PartyOption,
    until: UntilOption = None,
    window: WindowOption = None,
    at: TimesOption = None,
    seating: Annotated[
        list[str] | None, typer.Option("--type", help='Seating type, e.g. "Dining Room".')
    ] = None,
    every: EveryOption = "5m",
    auto_book: AutoBookOption = False,
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Tell me when any of these venues has a table (with --auto-book, book the best one).

    Example: resywatch watch add venues --venue "Don Angie" --date 2026-12-04 --party 2
    --window 18:00-21:00
    """
    run = use(ctx, json_output=json_output)
    from resywatch.db.models import WatchKind
    from resywatch.services import watches

    spec = watches.WatchSpec(
        kind=WatchKind.VENUES,
        want=_want(day, until, party, window, seating or [], at),
        interval=parse_duration(every, what="--every"),
        venues=tuple(venue),
        auto_book=auto_book,
    )
    run.choose_account(account)  # the account --auto-book books for
    _added(run.output, _add(run, spec))


@add_app.command("new-venues")
def add_new_venues(
    ctx: typer.Context,
    day: DateOption,
    party: PartyOption,
    query: Annotated[str | None, typer.Option(help="Search words (name, cuisine...).")] = None,
    cuisine: Annotated[str | None, typer.Option(help="Cuisine contains this.")] = None,
    neighborhood: Annotated[str | None, typer.Option(help="Neighbourhood contains this.")] = None,
    until: UntilOption = None,
    window: WindowOption = None,
    every: EveryOption = "5m",
    json_output: JsonFlag = False,
) -> None:
    """Tell me when a venue with tables appears in this search (the first check is the
    baseline). Example: resywatch watch add new-venues --cuisine Italian --date 2026-12-04
    --party 4"""
    run = use(ctx, json_output=json_output)
    from resywatch.db.models import WatchKind
    from resywatch.services import watches

    spec = watches.WatchSpec(
        kind=WatchKind.NEW_VENUES,
        want=_want(day, until, party, window, []),
        interval=parse_duration(every, what="--every"),
        query=query,
        cuisine=cuisine,
        neighborhood=neighborhood,
    )
    _added(run.output, _add(run, spec))


def _add(run: AppContext, spec: WatchSpec) -> WatchView:
    from resywatch.services import watches

    return run.with_runtime(lambda rt: watches.add_watch(rt, spec))


def _added(output: Output, watch: WatchView) -> None:
    if output.json_mode:
        output.json(watch)
    else:
        output.note(f"watch {watch.id} added: checked every {watch.interval_s // 60} min")


@app.command("list")
def list_command(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Every watch, newest first, with when it was last checked and last found something."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import watches

    found = watches.list_watches(run.database())
    if run.output.json_mode:
        run.output.json({"watches": found})
    elif found:
        _table(run.output, found, _now())
    else:
        run.output.note("no watches: add one with `resywatch watch add venues|new-venues`")


@app.command()
def show(
    ctx: typer.Context,
    watch_id: WatchId,
    json_output: JsonFlag = False,
) -> None:
    """One watch in full: what it asks, when it was last checked, and the newest hits it
    found (up to 10; `last_hits` in JSON)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import watches

    watch = watches.get_watch(run.database(), watch_id)
    now = _now()
    if run.output.json_mode:
        run.output.json(watch)
    else:
        run.output.fields(
            [
                ("watch", f"{watch.id} ({watch.kind}, {watch.status})"),
                ("venues", ", ".join(str(v["name"] or v["id"]) for v in watch.venues) or None),
                (
                    "search",
                    " ".join(filter(None, [watch.query, watch.cuisine, watch.neighborhood]))
                    or None,
                ),
                ("dates", f"{watch.date_from} to {watch.date_to}"),
                ("party", watch.party_size),
                ("window", watch.window),
                ("times", " > ".join(watch.preferred_times) or None),
                ("seating", watch.seating_types),
                ("every", f"{watch.interval_s // 60} min"),
                ("last checked", run.output.when(watch.last_checked_at, now)),
                ("next check", run.output.when(watch.next_check_at, now)),
                ("last error", watch.last_error),
                ("last hit", run.output.when(watch.last_hit_at, now)),
            ]
        )
        if watch.last_hits:
            run.output.table(
                ["found", "venue", "date", "times", "seating"],
                [
                    (
                        run.output.when(h.found_at, now),
                        h.venue_name,
                        h.day,
                        h.times,
                        h.seating_types,
                    )
                    for h in watch.last_hits
                ],
                title="Last hits",
            )


@app.command()
def remove(
    ctx: typer.Context,
    watch_id: WatchId,
    json_output: JsonFlag = False,
) -> None:
    """Delete a watch."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import watches

    removed = watches.remove_watch(run.database(), watch_id)
    if run.output.json_mode:
        run.output.json({"removed": removed})
    else:
        run.output.note(f"watch {watch_id} removed")


@app.command()
def pause(
    ctx: typer.Context,
    watch_id: WatchId,
    json_output: JsonFlag = False,
) -> None:
    """Stop checking a watch until it is resumed."""
    _set_paused(ctx, watch_id, paused=True, json_output=json_output)


@app.command()
def resume(
    ctx: typer.Context,
    watch_id: WatchId,
    json_output: JsonFlag = False,
) -> None:
    """Check a paused watch again."""
    _set_paused(ctx, watch_id, paused=False, json_output=json_output)


def _set_paused(ctx: typer.Context, watch_id: int, *, paused: bool, json_output: bool) -> None:
    run = use(ctx, json_output=json_output)
    from resywatch.services import watches

    watch = watches.set_paused(run.database(), watch_id, paused=paused, now=_now())
    if run.output.json_mode:
        run.output.json(watch)
    else:
        run.output.note(f"watch {watch_id} is {watch.status}")


@app.command()
def check(
    ctx: typer.Context,
    watch_id: Annotated[
        int | None,
        typer.Argument(help="Only this watch.", metavar="[WATCH_ID]", parser=id_parser("watch id")),
    ] = None,
    check_all: Annotated[bool, typer.Option("--all", help="Every active watch.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Check watches now and print what they found. With an id or --all, whatever their
    interval; with neither, only the watches that are due (what the scheduled job runs)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import watches

    results = run.with_runtime(
        lambda rt: watches.check_watches(
            rt,
            ids=[watch_id] if watch_id is not None else [],
            due_only=watch_id is None and not check_all,
        )
    )
    if run.output.json_mode:
        run.output.json({"checked": results, "hits": [h for r in results for h in r.hits]})
        return
    _report(run.output, results)


def _report(output: Output, results: list[CheckResult]) -> None:
    if not results:
        output.note("no watch was due")
    for result in results:
        if result.error:
            output.warn(f"watch {result.watch_id}: {result.error}")
        elif result.baseline:
            output.note(f"watch {result.watch_id}: baseline taken")
        elif not result.hits:
            output.note(f"watch {result.watch_id}: nothing new ({result.status})")
        for hit in result.hits:
            times = " ".join(hit.times)
            output.line(f"watch {hit.watch_id}: {hit.venue_name} {hit.day} {times}".rstrip())


_COLUMNS = [
    "id",
    "kind",
    "status",
    "what",
    "dates",
    "party",
    "window",
    "every",
    "last checked",
    "last hit",
]


def _table(output: Output, found: list[WatchView], now: datetime) -> None:
    output.table(
        _COLUMNS,
        [
            (
                w.id,
                w.kind,
                w.status,
                ", ".join(str(v["name"] or v["id"]) for v in w.venues)
                or " ".join(filter(None, [w.query, w.cuisine, w.neighborhood]))
                or "any venue",
                f"{w.date_from}..{w.date_to}" if w.date_to != w.date_from else w.date_from,
                w.party_size,
                w.window,
                f"{w.interval_s // 60}m",
                output.when(w.last_checked_at, now),
                output.when(w.last_hit_at, now),
            )
            for w in found
        ],
    )
