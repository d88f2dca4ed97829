"""`resywatch reservations`: the account's reservations on Resy; list, show, cancel."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from resywatch.cli.context import use
from resywatch.cli.options import AccountOption, JsonFlag
from resywatch.cli.params import id_parser
from resywatch.errors import InvalidInput

if TYPE_CHECKING:
    from resywatch.services.reservations import CancelQuote, ReservationView

app = typer.Typer(
    help="Your reservations on Resy: list, show, cancel.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ReservationId = Annotated[
    int,
    typer.Argument(
        help="Reservation id (from `reservations list`).",
        metavar="RESERVATION_ID",
        parser=id_parser("reservation id"),
    ),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    past: Annotated[bool, typer.Option("--past", help="Past reservations, newest first.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Upcoming, then past.")] = False,
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Upcoming reservations, soonest first: venue, date, time, party, seating, and what a
    cancel costs (free until the cut-off, the fee after)."""
    run = use(ctx, json_output=json_output)
    if past and all_:
        raise InvalidInput("--past and --all: choose one")
    from resywatch.services import reservations

    run.choose_account(account)
    which = (
        reservations.Which.ALL
        if all_
        else reservations.Which.PAST
        if past
        else reservations.Which.UPCOMING
    )
    found = run.with_runtime(lambda rt: reservations.list_reservations(rt, which))
    if run.output.json_mode:
        run.output.json({"reservations": [_document(r) for r in found]})
        return
    if not found:
        kind = "" if which is reservations.Which.ALL else f"{which.value} "
        run.output.note(f"no {kind}reservations")
        return
    run.output.table(
        ["id", "venue", "date", "time", "party", "seating", "cancel"],
        [
            (
                r.reservation_id,
                r.venue_name or r.venue_id,
                r.day,
                f"{r.time:%H:%M}" if r.time else None,
                r.party_size,
                r.seating_type,
                _cancel_terms(r),
            )
            for r in found
        ],
    )


@app.command()
def show(
    ctx: typer.Context,
    reservation_id: ReservationId,
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """One reservation, upcoming or past (exit 3 when the account has none by that id)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services import reservations

    run.choose_account(account)
    found = run.with_runtime(lambda rt: reservations.show_reservation(rt, reservation_id))
    if run.output.json_mode:
        run.output.json(_document(found))
        return
    run.output.fields(
        [
            ("id", found.reservation_id),
            ("venue", f"{found.venue_name or '-'} ({found.venue_id})"),
            ("date", found.day),
            ("time", f"{found.time:%H:%M}" if found.time else None),
            ("party", found.party_size),
            ("seating", found.seating_type),
            ("status", "upcoming" if found.upcoming else "past"),
            ("cancel", _cancel_terms(found)),
        ]
    )


@app.command()
def cancel(
    ctx: typer.Context,
    reservation_id: ReservationId,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask; also cancel when it costs a fee.")
    ] = False,
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Cancel an upcoming reservation, confirmed through your reservations afterwards.

    It first says what the cancel costs (free until the venue's cut-off, its fee after) and
    asks on a terminal. Without a terminal, a free cancel goes ahead, and one that costs a
    fee is refused (exit 2, nothing sent) unless --yes. Exit 3: no upcoming reservation by
    that id; 1: declined, refused by Resy, or not confirmed.
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services import reservations

    run.choose_account(account)
    interactive = sys.stdin.isatty() and run.output.stderr.is_terminal
    ask = None if yes or not interactive else _ask
    result = run.with_runtime(
        lambda rt: reservations.cancel_reservation(rt, reservation_id, allow_fee=yes, confirm=ask)
    )
    if run.output.json_mode:
        run.output.json(result)
        return
    fee = f" (fee ${result.fee:.2f})" if result.fee else ""
    run.output.note(f"cancelled reservation {result.reservation_id}{fee}")


def _ask(quote: CancelQuote) -> bool:
    return typer.confirm(f"{quote.summary[0].upper()}{quote.summary[1:]}. Cancel it?", err=True)


def _cancel_terms(r: ReservationView) -> str:
    """What a cancel costs, as `fee_if_cancelled` reckons it now."""
    if not r.cancellable:
        return "-"
    if r.fee_if_cancelled(datetime.now(UTC)) > 0:
        return f"${r.cancel_fee:.2f}"
    if r.cancel_fee > 0 and r.cancel_cut_off is not None:
        return f"free until {r.cancel_cut_off:%Y-%m-%d %H:%M} UTC, then ${r.cancel_fee:.2f}"
    return "free"


def _document(r: ReservationView) -> dict[str, object]:
    """The documented --json fields (the reservation's resy_token is left out: it cancels)."""
    return {
        "reservation_id": r.reservation_id,
        "venue_id": r.venue_id,
        "venue_name": r.venue_name,
        "day": r.day,
        "time": f"{r.time:%H:%M}" if r.time else None,
        "party_size": r.party_size,
        "seating_type": r.seating_type,
        "upcoming": r.upcoming,
        "cancellable": r.cancellable,
        "cancel_fee": r.cancel_fee,
        "cancel_cut_off": r.cancel_cut_off,
    }
