"""Options shared by many commands, declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

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

    dates: list[str] | None = None
    date_from: str | None = None
    date_until: str | None = None
    anchor: str | None = None
    party: int | None = None
    after: str | None = None
    before: str | None = None
    hotspots: bool = False
    venue: str | None = None


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
