"""resy.com's own pages (the web app, not the API): where a person books a venue. Apart
from the client, so listing drops or checking health needs no HTTP stack."""

from __future__ import annotations

from datetime import date

WEB_ORIGIN = "https://resy.com"
VENUE_PAGE = WEB_ORIGIN + "/cities/{city}/venues/{slug}?date={day}&seats={party}"


def venue_page_url(city_slug: str | None, venue_slug: str, day: date, party_size: int) -> str:
    """The venue's booking page on resy.com for a date and party size."""
    return VENUE_PAGE.format(
        city=city_slug or "new-york-ny", slug=venue_slug, day=day.isoformat(), party=party_size
    )
