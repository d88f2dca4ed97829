"""`resywatch notify`: one-off notify requests, "my watches", delivery and channels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.notify_delivery import channels_app, deliver
from resywatch.cli.options import AccountOption, JsonFlag
from resywatch.cli.params import id_parser
from resywatch.cli.watch import DateOption, PartyOption, UntilOption, WindowOption, _want

app = typer.Typer(
    help="Notify requests and notification delivery.", no_args_is_help=True, rich_markup_mode=None
)
app.command("deliver")(deliver)
app.add_typer(channels_app, name="channels")


@app.command()
def add(
    ctx: typer.Context,
    venue: Annotated[
        str, typer.Option("--venue", help="Venue name, id or resy.com venue page URL.")
    ],
    day: DateOption,
    party: PartyOption,
    until: UntilOption = None,
    window: WindowOption = None,
    auto_book: Annotated[
        bool,
        typer.Option(
            "--auto-book",
            help="Book the best slot when one opens (fee ceilings: the [book] settings); the "
            "request ends once booked.",
        ),
    ] = False,
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Tell me once when the venue has a table on the date (or range), then stop.

    Example: resywatch notify add --venue Carbone --date 2026-12-04 --party 2
    --window 19:00-21:00
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services import notify_requests

    want = _want(day, until, party, window, [])
    run.choose_account(account)  # the account --auto-book books for
    request = run.with_runtime(
        lambda rt: notify_requests.add_request(rt, venue, want, auto_book=auto_book)
    )
    if run.output.json_mode:
        run.output.json(request)
    else:
        run.output.note(f"notify request {request.id} added for {request.venue_name}")


@app.command("list")
def list_command(
    ctx: typer.Context,
    active: Annotated[
        bool,
        typer.Option(
            "--active", help="Only what is still checked: pending requests, watches not ended."
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """My watches: interval watches, notify requests (satisfied ones with what was found and
    when) and the latest notifications."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import notify_requests

    mine = notify_requests.my_watches(run.database(), active_only=active)
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
        run.output.table(
            ["request", "venue", "dates", "party", "window", "status", "found", "found at"],
            [
                (
                    r.id,
                    r.venue_name,
                    f"{r.date_from}..{r.date_to}",
                    r.party_size,
                    r.window,
                    r.status,
                    _found(r.found),
                    run.output.when(r.satisfied_at, now),
                )
                for r in mine.notify_requests
            ],
            title="Notify requests",
        )
    if mine.notifications:
        run.output.table(
            ["when", "kind", "status", "message"],
            [(n["created_at"], n["kind"], n["status"], n["title"]) for n in mine.notifications],
            title="Latest notifications",
        )
    if not (mine.interval_watches or mine.notify_requests or mine.notifications):
        run.output.note("nothing yet: `resywatch watch add ...` or `resywatch notify add ...`")


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
