"""Options shared by many commands, declared once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

if TYPE_CHECKING:
    from resywatch.config import Settings
    from resywatch.services.discovery.filters import BoardFilter

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of text.")
]

# The drop filters `discover feed`, `just-opened`, `hot` and `calendar` share: declared once
# here, parsed once by `board_filter`.
DatesOption = Annotated[
    list[str] | None,
    typer.Option("--date", help="Slot date, YYYY-MM-DD; repeatable (not with --from/--until)."),
]
FromOption = Annotated[str | None, typer.Option("--from", help="First slot date, YYYY-MM-DD.")]
UntilOption = Annotated[str | None, typer.Option("--until", help="Last slot date, YYYY-MM-DD.")]
AnchorOption = Annotated[
    str | None,
    typer.Option(help="Only slots the buckets of this anchor scan (HH:MM, one of the anchors)."),
]
PartyFilterOption = Annotated[
    int | None, typer.Option("--party", min=1, max=20, help="Offered for this party.")
]
AfterOption = Annotated[str | None, typer.Option(help="Slot time at or after HH:MM.")]
BeforeOption = Annotated[str | None, typer.Option(help="Slot time at or before HH:MM.")]
HotspotsOption = Annotated[bool, typer.Option("--hotspots", help="Only hotspot venues.")]
VenueFilterOption = Annotated[str | None, typer.Option(help="Venue name contains this.")]


@dataclass(frozen=True)
class DropFilterArgs:
    """The drop filters as typed on the command line, before they are parsed."""

    dates: DatesOption = None
    date_from: FromOption = None
    date_until: UntilOption = None
    anchor: AnchorOption = None
    party: PartyFilterOption = None
    after: AfterOption = None
    before: BeforeOption = None
    hotspots: HotspotsOption = False
    venue: VenueFilterOption = None


def with_option_set(
    options_type: type[Any], name: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator giving `command(ctx, <name>: options_type, ...own options)`, as Typer sees
    it, the fields of the dataclass `options_type` as its options (after `ctx`), handed to it
    as one `<name>`: an option set written (and documented) once for several commands."""
    hints = get_type_hints(options_type, include_extras=True)
    shared = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=hints[f.name],
            default=inspect.Parameter.empty if f.default is MISSING else f.default,
        )
        for f in fields(options_type)
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command, eval_str=True)
        ctx, *rest = (p for p in own.parameters.values() if p.name != name)

        @functools.wraps(command)
        def with_options(**given: Any) -> None:
            values = {f.name: given.pop(f.name) for f in fields(options_type)}
            command(**{name: options_type(**values)}, **given)

        signature = own.replace(parameters=[ctx, *shared, *rest])
        with_options.__signature__ = signature  # type: ignore[attr-defined]
        with_options.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        return with_options

    return decorate


#: `command(ctx, given: DropFilterArgs, ...)`: the drop filters as its options.
with_drop_filters = with_option_set(DropFilterArgs, "given")


def board_filter(settings: Settings, given: DropFilterArgs) -> BoardFilter:
    """Parse and check the drop filters: bad dates or times, --from after --until, or an
    anchor discovery does not scan are InvalidInput (exit 2)."""
    from resywatch.cli.params import parse_day, parse_hhmm
    from resywatch.errors import InvalidInput
    from resywatch.services.discovery.filters import BoardFilter

    anchor = parse_hhmm(given.anchor, what="--anchor") if given.anchor is not None else None
    if anchor is not None and anchor not in settings.discovery_time_slots:
        known = ", ".join(f"{a:%H:%M}" for a in sorted(settings.discovery_time_slots))
        raise InvalidInput(f"--anchor {given.anchor} is not a discovery anchor: use one of {known}")
    return BoardFilter(
        dates=tuple(parse_day(d, what="--date") for d in given.dates or ()),
        date_from=parse_day(given.date_from, what="--from") if given.date_from else None,
        date_until=parse_day(given.date_until, what="--until") if given.date_until else None,
        anchor=anchor,
        window_hours=settings.discovery_window_hours,
        party_size=given.party,
        after=parse_hhmm(given.after, what="--after") if given.after else None,
        before=parse_hhmm(given.before, what="--before") if given.before else None,
        hotspots_only=given.hotspots,
        venue=given.venue,
    )


AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account",
        help="The Resy account to act for (env RESYWATCH_ACCOUNT) [default: default].",
        show_default=False,
    ),
]


# `book schedule add`: a series of snipes.
RepeatOption = Annotated[
    str | None,
    typer.Option(
        "--repeat",
        help="Repeat: daily, weekly (the weekday of --date) or weekly:DAYS (weekly:mon,fri), "
        "naming the days to book; each is sniped --days-ahead days before, at its release "
        "time. --date is the first day. A booked or missed day does not stop the series; "
        "`book schedule cancel ID` does.",
    ),
]
DaysAheadOption = Annotated[
    int | None,
    typer.Option(
        "--days-ahead",
        help="With --repeat: days ahead the venue releases a day (instead of --lead-days).",
    ),
]
