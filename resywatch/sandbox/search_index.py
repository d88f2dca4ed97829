"""Which venues a search finds: its words matched against each venue's name, cuisine and
neighbourhood (a typo away, with the `fuzzy_search` variant), inside the area it names."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from difflib import SequenceMatcher
from typing import Any

from resywatch.sandbox.http import ApiError
from resywatch.sandbox.venues import Venue, slugify
from resywatch.sandbox.world import World

#: Distinct (query, area) search candidate lists kept before the memo starts over.
_MAX_CANDIDATE_SETS = 4096


def _near(query: str, venue: Venue) -> bool:
    """A typo away from the venue's name (the `fuzzy_search` variant): real search finds
    "Mori" for "amori" (a capture-based client plan)."""
    return SequenceMatcher(None, query, venue.name.lower()).ratio() >= 0.8


def haystack(venue: Venue) -> str:
    """What a search ``query`` matches: name (also without accents), cuisine, neighbourhood."""
    words = (slugify(venue.name).replace("-", " "), venue.name, *venue.cuisine, venue.neighborhood)
    return " ".join(words).lower()


class SearchIndex:
    """The catalogue's venues by what a search ``query`` matches; memoises its answers."""

    def __init__(self, world: World) -> None:
        self.world = world
        #: Search candidates per (query, area), already in result order; see `candidates`.
        self._candidates: dict[tuple[str, Hashable, bool], tuple[Venue, ...]] = {}
        self._haystacks = {v.id: haystack(v) for v in world.venues}

    def candidates(
        self,
        query: str,
        area: Hashable,
        in_area: Callable[[Venue], bool],
        *,
        fuzzy: bool = False,
    ) -> tuple[Venue, ...]:
        """Venues matching ``query`` inside ``area`` (``in_area`` tests it), in result order.

        That order is rating (best first), then id: stable, so paging through one search is
        consistent. Memoised per (query, area): both depend only on the catalogue.
        """
        key = (query, area, fuzzy)
        cached = self._candidates.get(key)
        if cached is None:
            if len(self._candidates) >= _MAX_CANDIDATE_SETS:
                self._candidates.clear()
            chosen = [
                v
                for v in self.world.venues
                if (not query or query in self._haystacks[v.id] or (fuzzy and _near(query, v)))
                and in_area(v)
            ]
            chosen.sort(key=lambda v: (-v.rating_average, v.id))
            cached = self._candidates[key] = tuple(chosen)
        return cached


def geo_filter(geo: Any) -> tuple[Hashable, Callable[[Venue], bool]]:
    """(a hashable key for the area, a test whether a venue is inside it)."""
    if not geo:
        return None, lambda venue: True
    if not isinstance(geo, dict):
        raise ApiError(400, "Invalid geo")
    try:
        if "bounding_box" in geo:
            south, west, north, east = (float(x) for x in geo["bounding_box"])
            return (
                ("box", south, west, north, east),
                lambda v: south <= v.lat <= north and west <= v.lng <= east,
            )
        lat, lng = float(geo["latitude"]), float(geo["longitude"])
        radius = float(geo.get("radius", 5000))
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError(400, "Invalid geo") from exc
    return ("radius", lat, lng, radius), lambda v: _distance_m(lat, lng, v.lat, v.lng) <= radius


def _distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))
