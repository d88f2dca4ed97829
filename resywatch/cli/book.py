"""`resywatch book`: book now, snipe at a release instant, scheduled snipes, attempts.

Every booking outcome has its own exit code (see EXIT_CODES_HELP); a failed one prints its
message (and with --json the error envelope, whose `code` is the outcome).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from resywatch.cli.context import use
from resywatch.cli.options import (
    AccountOption,
    DaysAheadOption,
    JsonFlag,
    RepeatOption,
    with_option_set,
)
from resywatch.cli.params import (
    id_parser,
    parse_day,
    parse_duration,
    parse_hhmm,
    parse_since,
    parse_times,
    parse_window,
)
from resywatch.errors import InvalidInput
from resywatch.ids import is_id

T = TypeVar("T")

if TYPE_CHECKING:
    from resywatch.cli.output import Output
    from resywatch.services.booking.outcomes import BookingResult
    from resywatch.services.booking.plan import BookingRequest
    from resywatch.services.booking.quote import Quote
    from resywatch.services.booking.schedule import SnipeSpec, SnipeView
    from resywatch.services.vocabulary import OpenSlot

# Here, not in the service, so that `--help` loads no service code; a unit test checks it
# against `booking.outcomes.EXIT_CODES`.
EXIT_CODES_HELP = (
    "Exit codes: 0 booked (or dry run), 1 other failure, 2 bad input, 3 unknown venue, "
    "10 no matching slot, 11 slot gone (404), 12 already booked or conflict (412), "
    "13 card required (402), 14 venue can't take payment or firewall (403), "
    "15 fee above ceiling, 16 auth expired (419), 17 rate limited (429), "
    "18 booking unconfirmed, 19 venue asks for a captcha (book it in the Resy app)."
)

app = typer.Typer(
    help="Book tables: now, or at the instant a day is released.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
schedule_app = typer.Typer(
    help="Snipes saved for later, run by `resywatch run snipes` or `run-forever`.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(schedule_app, name="schedule")

VenueOption = Annotated[
    str, typer.Option("--venue", help="Venue name, Resy id or resy.com venue page URL.")
]
DateOption = Annotated[str, typer.Option("--date", help="Date of the reservation, YYYY-MM-DD.")]
PartyOption = Annotated[int, typer.Option("--party", help="Party size (1-20).")]
TimeOption = Annotated[
    str | None,
    typer.Option(
        "--time",
        help="Preferred time HH:MM, or a ranked list 19:30,19:00,20:15: the first listed time "
        "open wins; other slots (within --window, or alone 30 min around the listed times) "
        "come after every listed one, closest to the first listed time first.",
    ),
]
WindowOption = Annotated[
    str | None, typer.Option("--window", help="Only slots between, HH:MM-HH:MM (local).")
]
TypeOption = Annotated[
    list[str] | None,
    typer.Option("--type", help='Seating type, e.g. "Dining Room"; repeat, best first.'),
]
PaymentOption = Annotated[
    int | None,
    typer.Option(
        "--payment-method",
        help="Card id [default: your default card].",
        parser=id_parser("--payment-method"),
    ),
]
MaxTotalOption = Annotated[
    float | None,
    # A ceiling, not infinity: JSON has no way to write inf.
    typer.Option(
        "--max-total", min=0, max=100_000, help="Refuse quotes charging more up front [0]."
    ),
]
MaxCancelOption = Annotated[
    float | None,
    typer.Option(
        "--max-cancel-fee", min=0, max=100_000, help="Refuse higher cancellation fees [50]."
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Stop before the book request: nothing is booked.")
]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at", help='Release instant, "YYYY-MM-DD HH:MM" in the venue\'s time (or ISO with zone).'
    ),
]
LeadDaysOption = Annotated[
    str | None,
    typer.Option(
        "--lead-days",
        help="Days ahead the venue releases: N, or auto (Resy's /2/config, else learned).",
    ),
]
ReleaseTimeOption = Annotated[
    str | None,
    typer.Option("--release-time", help="Local release time HH:MM [default: learned pattern]."),
]
LeadOption = Annotated[
    str | None,
    typer.Option(
        "--lead",
        help="Poll densely from this long before the instant, as early as the drop may come, "
        "e.g. 2s [0.1s] (one early look comes 3 s before in any case).",
    ),
]
IntervalOption = Annotated[
    str | None, typer.Option("--interval", help="Poll interval, e.g. 0.2s [0.2s].")
]
DeadlineOption = Annotated[
    str | None,
    typer.Option("--deadline", help="Keep trying this long after the drop, e.g. 60s [60s]."),
]
LateOption = Annotated[
    str | None,
    typer.Option("--late", help="Wait this long past the instant for a late drop [120s]."),
]
# Every booking command takes --yes, so that scripts can pass it to all of them alike. Only
# `book now` asks (on a terminal, before booking); a snipe books unattended at the release.
UnattendedYesOption = Annotated[
    bool,
    typer.Option(
        "--yes", "-y", help="Do not ask: this command never does (a snipe books unattended)."
    ),
]
BudgetOption = Annotated[
    int | None, typer.Option("--budget", min=10, help="Most requests one snipe sends [900].")
]


def _now() -> datetime:
    return datetime.now(UTC)


def _times(at: str | None, window: str | None) -> tuple[tuple[time, ...], tuple[time, time] | None]:
    return (
        parse_times(at, what="--time") if at is not None else (),
        parse_window(window) if window else None,
    )


@app.command(epilog=EXIT_CODES_HELP)
def now(
    ctx: typer.Context,
    venue: VenueOption,
    day: DateOption,
    party: PartyOption,
    at: TimeOption = None,
    window: WindowOption = None,
    seating: TypeOption = None,
    payment_method: PaymentOption = None,
    max_total: MaxTotalOption = None,
    max_cancel_fee: MaxCancelOption = None,
    dry_run: DryRunOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before booking.")] = False,
    account: AccountOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Book the best open slot now: find, check the quote, book, confirm.

    Candidates are ranked by the --time list (the first listed time open wins), then by
    distance from the (first) preferred time, then seating preference.
    Nothing is booked if you already hold a table there that day or the quote is above the
    ceilings. On a terminal it asks before booking, unless --yes.

    Example: resywatch book now --venue "Don Angie" --date 2026-12-04 --party 2 --time 19:00
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services.booking.book import book_now

    request = _request(
        venue, day, party, at, window, seating, payment_method, max_total, max_cancel_fee, dry_run
    )
    run.choose_account(account)
    ask = None if yes or not (sys.stdin.isatty() and run.output.stderr.is_terminal) else _ask
    _report(run.output, run.with_runtime(lambda rt: book_now(rt, request, confirm=ask)))


def _request(
    venue: str,
    day: str,
    party: int,
    at: str | None,
    window: str | None,
    seating: list[str] | None,
    payment_method: int | None,
    max_total: float | None,
    max_cancel_fee: float | None,
    dry_run: bool,
) -> BookingRequest:
    """The booking request of `book now`, `book snipe` and `book schedule add` alike."""
    from resywatch.services.booking.plan import BookingRequest

    preferred, span = _times(at, window)
    return BookingRequest(
        venue=venue,
        day=parse_day(day, what="--date"),
        party_size=party,
        times=preferred,
        window=span,
        seating_types=tuple(seating or []),
        payment_method_id=payment_method,
        max_total=max_total,
        max_cancel_fee=max_cancel_fee,
        dry_run=dry_run,
    )


def _ask(slot: OpenSlot, quote: Quote) -> bool:
    seating = f" ({slot.seating_type})" if slot.seating_type else ""
    return typer.confirm(
        f"Book {slot.venue_name}, {slot.starts_at:%a %b %d %H:%M}{seating}: "
        f"${quote.total:.2f} up front, {quote.fee_text()}?",
        err=True,
    )


def _report(output: Output, result: BookingResult) -> None:
    """Success (booked, dry run): the result. Anything else: its error and exit code."""
    for warning in result.warnings:
        output.warn(warning)
    if not result.ok:
        raise result.error()
    if output.json_mode:
        output.json(result)
        return
    output.fields(
        [
            ("outcome", result.outcome.value),
            ("venue", f"{result.venue_name} ({result.venue_id})"),
            ("when", f"{result.starts_at:%a %Y-%m-%d %H:%M}" if result.starts_at else result.day),
            ("party", result.party_size),
            ("seating", result.seating_type),
            ("reservation", result.reservation_id),
            ("up front", f"${result.total:.2f}" if result.total is not None else None),
            (
                "cancel fee",
                f"${result.cancellation_fee:.2f}" if result.cancellation_fee is not None else None,
            ),
            ("took", f"{result.latency_ms.get('total', 0):.0f} ms"),
        ]
    )
    output.note(result.message)


@dataclass(frozen=True)
class SnipeOptions:
    """The options `book snipe` and `book schedule add` share: written once, so both take
    (and document) them alike. `with_snipe_options` gives a command these parameters."""

    venue: VenueOption
    day: DateOption
    party: PartyOption
    at: TimeOption = None
    window: WindowOption = None
    seating: TypeOption = None
    release_at: AtOption = None
    lead_days: LeadDaysOption = None
    release_time: ReleaseTimeOption = None
    payment_method: PaymentOption = None
    max_total: MaxTotalOption = None
    max_cancel_fee: MaxCancelOption = None
    lead: LeadOption = None
    interval: IntervalOption = None
    deadline: DeadlineOption = None
    late: LateOption = None
    budget: BudgetOption = None
    dry_run: DryRunOption = False
    yes: UnattendedYesOption = False
    account: AccountOption = None

    def spec(self) -> SnipeSpec:
        """The snipe asked for (exit 2 on a bad value, before anything is looked up)."""
        from resywatch.services.booking.schedule import Pacing, Release, SnipeSpec

        request = _request(
            self.venue, self.day, self.party, self.at, self.window, self.seating,
            self.payment_method, self.max_total, self.max_cancel_fee, self.dry_run,
        )  # fmt: skip
        lead_days, release_time = self.lead_days, self.release_time
        if self.release_at is not None and (lead_days is not None or release_time is not None):
            raise InvalidInput("give either --at, or --lead-days (with --release-time), not both")
        auto = lead_days is not None and lead_days.strip().lower() == "auto"
        if lead_days is not None and not auto and not is_id(lead_days):  # ASCII digits only
            raise InvalidInput(f"--lead-days {lead_days!r} is neither a number of days nor auto")
        release = Release(
            at=_instant(self.release_at) if self.release_at else None,
            lead_days=int(lead_days) if lead_days is not None and not auto else None,
            auto_lead=auto,
            time_of_day=parse_hhmm(release_time, what="--release-time") if release_time else None,
        )
        pacing = Pacing(
            lead_s=_seconds(self.lead, "--lead"),
            poll_interval_s=_seconds(self.interval, "--interval"),
            deadline_s=_seconds(self.deadline, "--deadline"),
            late_s=_seconds(self.late, "--late"),
            request_budget=self.budget,
        )
        return SnipeSpec(request, release, pacing)


#: `command(ctx, options: SnipeOptions, ...own options)`: the fields of SnipeOptions as its
#: options, handed to it as one `options`.
with_snipe_options = with_option_set(SnipeOptions, "options")


@app.command(epilog=EXIT_CODES_HELP)
@with_snipe_options
def snipe(
    ctx: typer.Context,
    options: SnipeOptions,
    speculate: Annotated[
        bool,
        typer.Option(
            "--speculate",
            help="Also send book requests on predicted tokens before the drop is seen "
            "(how Resy answers them is unknown) [default: the book.speculate setting, off].",
        ),
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Wait for the day's release, then book the best slot the moment it drops.

    The instant is --at, or the date minus --lead-days at --release-time (auto: Resy's
    /2/config lead days; the time defaults to the release pattern discovery learned). Polls
    from --lead before it (drops come early or late) every --interval, until booked or the
    deadline passes, within the request budget. Runs in the foreground; `book schedule add`
    saves one for `resywatch run-forever` instead.

    Example: resywatch book snipe --venue "Don Angie" --date 2026-12-04 --party 2
    --window 19:00-21:00 --lead-days auto --release-time 09:00
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services.booking.runs import snipe_now
    from resywatch.services.vocabulary import local_moment

    spec = options.spec()
    run.choose_account(options.account)
    settings, output = run.settings(), run.output
    if speculate:
        settings = settings.model_copy(update={"book_speculate": True})

    def waiting(found: SnipeView) -> None:
        output.note(
            f"snipe {found.id}: {found.venue_name} releases {found.day} at "
            f"{local_moment(found.release_at, settings.timezone)} ({found.release_source}); "
            "waiting (Ctrl-C stops it)"
        )

    _, result = run.with_runtime(
        lambda rt: snipe_now(rt, spec, on_scheduled=waiting), settings=settings
    )
    _report(output, result)


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--at {text!r} is not a time: use 'YYYY-MM-DD HH:MM' (the venue's local time)"
        ) from None


def _seconds(text: str | None, what: str) -> float | None:
    return None if text is None else parse_duration(text, what=what).total_seconds()


@app.command()
def attempts(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Since: 1h, 30m, 2d or an ISO time.")] = None,
    failed: Annotated[
        bool,
        typer.Option(
            "--failed",
            help="Only failed tries: not booked, and neither a dry run, still under way "
            "(pending) nor declined.",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    json_output: JsonFlag = False,
) -> None:
    """Every booking try, newest first: what was asked, the outcome, Resy's status, the
    latency of each step and the reservation id."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.booking.attempts import list_attempts

    moment = _now()
    found = list_attempts(
        run.database(),
        since=parse_since(since, moment) if since else None,
        failed_only=failed,
        limit=limit,
    )
    if run.output.json_mode:
        run.output.json({"attempts": found})
        return
    if not found:
        run.output.note("no booking attempts")
        return
    run.output.table(
        [
            "id",
            "when",
            "source",
            "venue",
            "slot",
            "party",
            "outcome",
            "resy",
            "ms",
            "pace",
            "message",
        ],
        [
            (
                a.id,
                run.output.when(a.created_at, moment),
                f"{a.source} {a.source_id}" if a.source_id is not None else a.source,
                a.venue_name or a.venue_id,
                f"{a.starts_at:%Y-%m-%d %H:%M}" if a.starts_at else a.slot_date,
                a.party_size,
                a.outcome + (" (dry run)" if a.dry_run and a.outcome != "dry_run" else ""),
                a.resy_status,
                f"{a.latency_ms['total']:.0f}" if "total" in a.latency_ms else None,
                _pace(a.latency_ms),
                a.message,
            )
            for a in found
        ],
    )


def _pace(figures: dict[str, float]) -> str | None:
    """A snipe's pacing: requests sent, the interval kept (asked), waits for the budget."""
    if "effective_interval_ms" not in figures:
        return None
    return (
        f"{figures.get('requests', 0):.0f} req, every {figures['effective_interval_ms']:.0f} "
        f"ms (asked {figures['interval_ms']:.0f}), waited {figures['budget_wait_ms']:.0f} ms"
    )


@schedule_app.command("add")
@with_snipe_options
def schedule_add(
    ctx: typer.Context,
    options: SnipeOptions,
    repeat: RepeatOption = None,
    days_ahead: DaysAheadOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Save a snipe (same options as `book snipe`) for `resywatch run-forever`, or cron's
    `resywatch run snipes`, to run at the release instant; with --repeat, a series.

    Example: resywatch book schedule add --venue Carbone --date 2026-12-04 --party 2
    --time 19:30 --at "2026-11-04 10:00"

    Every Friday: resywatch book schedule add --venue Carbone --date 2026-12-04 --party 2
    --time 19:30,19:00,20:00 --repeat weekly:fri --days-ahead 30 --release-time 10:00
    """
    run = use(ctx, json_output=json_output)
    from resywatch.services.booking.schedule import Recurrence, schedule_snipe
    from resywatch.services.vocabulary import local_moment

    if (repeat is None) != (days_ahead is None):
        raise InvalidInput("--repeat and --days-ahead go together: give both, or neither")
    spec = options.spec()
    if repeat is not None and days_ahead is not None:
        spec = replace(spec, recurrence=Recurrence(repeat, days_ahead))
    run.choose_account(options.account)  # the snipe books as this account when it runs
    added = run.with_runtime(lambda rt: schedule_snipe(rt, spec))
    if run.output.json_mode:
        run.output.json(added)
    else:
        released = local_moment(added.release_at, run.settings().timezone)
        repeats = f", repeats {added.repeat}" if added.repeat else ""
        run.output.note(
            f"snipe {added.id} scheduled: {added.venue_name} on {added.day} for "
            f"{added.party_size}, released {released} ({added.release_source}){repeats}"
        )


@schedule_app.command("list")
def schedule_list(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also the finished, missed and cancelled ones.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Scheduled snipes, next release first (a series shows the occurrence to come: its
    release is the series' next run)."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.booking.schedule import list_snipes
    from resywatch.services.vocabulary import local_moment

    found = list_snipes(run.database(), include_finished=show_all)
    if run.output.json_mode:
        run.output.json({"snipes": found})
        return
    if not found:
        run.output.note("no scheduled snipes: add one with `resywatch book schedule add`")
        return
    zone = run.settings().timezone
    run.output.table(
        ["id", "venue", "date", "party", "times", "released", "repeat", "status", "outcome"],
        [
            (s.id, s.venue_name, s.day, s.party_size, _wanted_times(s),
             local_moment(s.release_at, zone),
             f"{s.repeat}, {s.days_ahead}d ahead" if s.repeat else None, s.status, s.outcome)
            for s in found
        ],
    )  # fmt: skip


def _wanted_times(snipe: SnipeView) -> str | None:
    """`19:30>19:00 in 18:00-21:00`: the ranked times, then the window."""
    ranked = ">".join(snipe.preferred_times) or snipe.preferred_time
    if ranked and snipe.window:
        return f"{ranked} in {snipe.window}"
    return ranked or snipe.window


@schedule_app.command("cancel")
def schedule_cancel(
    ctx: typer.Context,
    snipe_id: Annotated[
        int, typer.Argument(help="Snipe id.", metavar="SNIPE_ID", parser=id_parser("snipe id"))
    ],
    json_output: JsonFlag = False,
) -> None:
    """Cancel a scheduled snipe (a running one stops before it polls). Any id of a
    repeating snipe's occurrences stops the series."""
    run = use(ctx, json_output=json_output)
    from resywatch.services.booking.schedule import cancel_snipe

    cancelled = cancel_snipe(run.database(), snipe_id, _now())
    if run.output.json_mode:
        run.output.json(cancelled)
    else:
        series = f" (series {cancelled.series_id} stopped)" if cancelled.series_id else ""
        run.output.note(f"snipe {cancelled.id} cancelled{series}")
