"""`resywatch notify`: one-off notify requests, "my watches", delivery and channels."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.notify_delivery import channels_app, deliver
from resywatch.cli.options import AccountOption, JsonFlag
from resywatch.cli.params import id_parser
from resywatch.cli.watch import (
    DateOption,
    PartyOption,
    TimesOption,
    UntilOption,
    WindowOption,
    _want,
)

if TYPE_CHECKING:
    from resywatch.cli.output import Output
    from resywatch.services.hard_to_get import BulkRequests
    from resywatch.services.notify_requests import RequestView
    from resywatch.services.vocabulary import Want

app = typer.Typer(
    help="Notify requests and notification delivery.", no_args_is_help=True, rich_markup_mode=None
)
app.command("deliver")(deliver)
app.add_typer(channels_app, name="channels")


@app.command()
def add(
    ctx: typer.Context,
    day: DateOption,
    party: PartyOption,
    until: UntilOption = None,
    window: WindowOption = None,
    at: TimesOption = None,
    auto_book: Annotated[
        bool,
        typer.Option(
            "--auto-book",
            help="Book the best slot when one opens (fee ceilings: the [book] settings); the "
            "request ends once booked.",
        ),
    ] = False,
    title: Annotated[
        str | None,
        typer.Option(
            help="A label for the request (default: party - date(s) - window); with "
            "--hard-to-get, the prefix of each request's title."
        ),
    ] = None,
    venue: Annotated[
        str | None, typer.Option("--venue", help="Venue name, id or resy.com venue page URL.")
    ] = None,
    hard_to_get: Annotated[
        bool,
        typer.Option(
            "--hard-to-get",
            help="One request per venue of `venue hard-to-get` instead of --venue; running "
            "it again files no request twice.",
        ),
    ] = False,
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Tell me once when the venue has a table on the date (or range), then stop.

    Example: resywatch notify add --venue Carbone --date 2026-12-04 --party 2
    --window 19:00-21:00 --title "Anniversary"

    Every hard-to-get venue at once: notify add --hard-to-get --date D --party 2
    """
    run = use(ctx, json_output=json_output)
    from resywatch.errors import InvalidInput
    from resywatch.services import notify_requests

    run.choose_account(account)  # the account --auto-book books for
    if (venue is None) == (not hard_to_get):
        raise InvalidInput("give --venue, or --hard-to-get for every venue of the curated list")
    want = _want(day, until, party, window, [], at)
    if hard_to_get:
        if auto_book:  # one table is wanted; a booking at each of them is not
            raise InvalidInput("--auto-book books one venue: it does not go with --hard-to-get")
        _add_hard_to_get(run.output, run.with_runtime, want, title)
        return
    assert venue is not None
    request = run.with_runtime(
        lambda rt: notify_requests.add_request(rt, venue, want, auto_book=auto_book, title=title)
    )
    if run.output.json_mode:
        run.output.json(request)
    else:
        run.output.note(
            f"notify request {request.id} added for {request.venue_name} ({request.title})"
        )


def _add_hard_to_get(
    output: Output, with_runtime: Callable[..., BulkRequests], want: Want, title: str | None
) -> None:
    from resywatch.services.hard_to_get import notify_all

    done = with_runtime(lambda rt: notify_all(rt, want, prefix=title))
    if output.json_mode:
        output.json(done)
        return
    if done.created:
        _requests_table(output, done.created, datetime.now(UTC))
    output.note(
        f"{len(done.created)} notify requests added, {len(done.already_pending)} already "
        f"pending, {len(done.skipped)} venues not found on Resy"
    )
    for skipped in done.skipped:
        output.warn(f"{skipped.name}: {skipped.reason}")


@app.command("list")
def list_command(
    ctx: typer.Context,
    active: Annotated[
        bool,
        typer.Option(
            "--active", help="Only what is still checked: pending requests, watches not ended."
        ),
    ] = False,
    unread: Annotated[
        bool,
        typer.Option(
            "--unread", help="Only satisfied requests whose found result is not read yet."
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """My watches: interval watches, notify requests (satisfied ones with what was found and
    when, and whether it was read) and the latest notifications."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import notify_requests

    mine = notify_requests.my_watches(run.database(), active_only=active, unread_only=unread)
    now = datetime.now(UTC)
    if run.output.json_mode:
        run.output.json(mine)
        return
    if mine.interval_watches:
        run.output.table(
            ["watch", "kind", "status", "dates", "party", "every"],
            [
                (
                    w.id,
                    w.kind,
                    w.status,
                    f"{w.date_from}..{w.date_to}",
                    w.party_size,
                    f"{w.interval_s // 60}m",
                )
                for w in mine.interval_watches
            ],
            title="Interval watches",
        )
    if mine.notify_requests:
        _requests_table(run.output, mine.notify_requests, now)
    if mine.notifications:
        run.output.table(
            ["when", "kind", "status", "message"],
            [(n["created_at"], n["kind"], n["status"], n["title"]) for n in mine.notifications],
            title="Latest notifications",
        )
    if unread and not mine.notify_requests:
        run.output.note("nothing unread")
    elif not (mine.interval_watches or mine.notify_requests or mine.notifications):
        run.output.note("nothing yet: `resywatch watch add ...` or `resywatch notify add ...`")


def _requests_table(output: Output, requests: list[RequestView], now: datetime) -> None:
    output.table(
        ["request", "title", "venue", "dates", "party", "window", "status", "found",
         "found at", "read"],
        [
            (
                r.id, r.title, r.venue_name, f"{r.date_from}..{r.date_to}", r.party_size,
                r.window, r.status, _found(r.found), output.when(r.satisfied_at, now),
                ("unread" if r.unread else "read") if r.status == "satisfied" else None,
            )
            for r in requests
        ],
        title="Notify requests",
    )  # fmt: skip


def _found(found: dict[str, object] | None) -> str | None:
    """What a satisfied request found: its times, e.g. "2026-12-04 19:00 2026-12-04 19:30"."""
    times = (found or {}).get("times")
    return " ".join(str(t) for t in times) if isinstance(times, list) and times else None


@app.command()
def remove(
    ctx: typer.Context,
    request_id: Annotated[
        int,
        typer.Argument(
            help="Notify request id.", metavar="REQUEST_ID", parser=id_parser("notify request id")
        ),
    ],
    json_output: JsonFlag = False,
) -> None:
    """Delete a notify request."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import notify_requests

    removed = notify_requests.remove_request(run.database(), request_id)
    if run.output.json_mode:
        run.output.json({"removed": removed})
    else:
        run.output.note(f"notify request {request_id} removed")


@app.command()
def rename(
    ctx: typer.Context,
    request_id: Annotated[
        int,
        typer.Argument(
            help="Notify request id.", metavar="REQUEST_ID", parser=id_parser("notify request id")
        ),
    ],
    title: Annotated[str, typer.Argument(help="The new title.", metavar="TITLE")],
    json_output: JsonFlag = False,
) -> None:
    """Give a notify request a new title.

    Example: resywatch notify rename 4 "Anniversary dinner"
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services import notify_requests

    request = notify_requests.rename_request(run.database(), request_id, title)
    if run.output.json_mode:
        run.output.json(request)
    else:
        run.output.note(f"notify request {request.id} is now titled {request.title!r}")


@app.command()
def read(
    ctx: typer.Context,
    request_id: Annotated[
        int | None,
        typer.Argument(
            help="The satisfied request whose result you have read.",
            metavar="[REQUEST_ID]",
            parser=id_parser("notify request id"),
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Mark every unread found result read.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Mark what a satisfied request found as read (`notify list --unread` stops showing it).

    Example: resywatch notify read 4    or    resywatch notify read --all
    """
    run = use(ctx, json_output=json_output)
    from resywatch.errors import InvalidInput
    from resywatch.services import notify_requests

    if (request_id is None) == (not every):
        raise InvalidInput("give one REQUEST_ID or --all")
    marked = notify_requests.mark_read(run.database(), datetime.now(UTC), request_id=request_id)
    if run.output.json_mode:
        run.output.json({"marked_read": marked})
    elif request_id is not None and not marked:
        run.output.note(f"notify request {request_id} was already read")
    else:
        run.output.note(f"marked {len(marked)} found result(s) read")


@app.command()
def check(
    ctx: typer.Context,
    request_id: Annotated[
        int | None,
        typer.Argument(
            help="Only this request.", metavar="[REQUEST_ID]", parser=id_parser("notify request id")
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Check the open notify requests now (what the scheduled job runs)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import notify_requests

    results = run.with_runtime(
        lambda rt: notify_requests.check_requests(
            rt, ids=[request_id] if request_id is not None else []
        )
    )
    if run.output.json_mode:
        run.output.json({"checked": results})
        return
    if not results:
        run.output.note("no open notify request")
    for result in results:
        if result.error:
            run.output.warn(f"request {result.id}: {result.error}")
        elif result.found:
            run.output.line(f"request {result.id}: {result.found}")
        else:
            run.output.note(f"request {result.id}: {result.status}")
