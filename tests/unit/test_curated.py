from __future__ import annotations

from collections.abc import Callable

import pytest

from resywatch.data import LIST_NAMES, HardToGet, load_hard_to_get, load_hotspot_names
from resywatch.services.curated import (
    HotspotMatcher,
    normalize_name,
)

# --- the data files ---------------------------------------------------------------------------


def test_hard_to_get_list_is_big_enough_and_well_formed() -> None:
    venues = load_hard_to_get()
    assert len(venues) >= 30
    assert all(isinstance(v, HardToGet) for v in venues)
    assert {v.list_name for v in venues} == set(LIST_NAMES)
    for venue in venues:
        assert venue.name.strip() == venue.name
        assert venue.neighborhood and venue.cuisine and venue.note


def test_hotspot_list_is_big_enough() -> None:
    assert len(load_hotspot_names()) >= 100


def _hard_to_get_names() -> list[str]:
    return [venue.name for venue in load_hard_to_get()]


@pytest.mark.parametrize("names", [load_hotspot_names, _hard_to_get_names])
def test_no_duplicates_after_normalisation(names: Callable[[], list[str]]) -> None:
    keys = [normalize_name(name) for name in names()]
    assert all(keys)
    assert len(keys) == len(set(keys))


def test_every_hard_to_get_name_is_a_hotspot() -> None:
    hotspots = set(load_hotspot_names())
    assert [v.name for v in load_hard_to_get() if v.name not in hotspots] == []


def test_loaders_return_fresh_lists() -> None:
    load_hotspot_names().clear()
    load_hard_to_get().clear()
    assert len(load_hotspot_names()) >= 100
    assert len(load_hard_to_get()) >= 30


def test_hard_to_get_entry_is_frozen() -> None:
    venue = load_hard_to_get()[0]
    with pytest.raises(AttributeError):
        venue.name = "Elsewhere"  # type: ignore[misc]


# --- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CARBONE", "carbone"),
        ("Via Carota", "via carota"),
        ("Rezdôra", "rezdora"),
        ("Café Carmellini", "cafe carmellini"),
        ("Raoul's", "raouls"),
        ("Raoul’s", "raouls"),
        ("Le Veau d'Or", "le veau dor"),
        ("Gage & Tollner", "gage and tollner"),
        ("Gage&Tollner", "gage and tollner"),
        ("Jean-Georges", "jean georges"),
        ("St. Anselm", "st anselm"),
        ("Carbone (Dallas)", "carbone dallas"),
        ("  Don \t Angie\n", "don angie"),
        ("The Four Horsemen", "four horsemen"),
        ("the four horsemen", "four horsemen"),
        ("Theodora", "theodora"),
        ("The", "the"),
        ("Smørrebrød", "smorrebrod"),
        ("Place des Fêtes", "place des fetes"),
        ("Ｃａｒｂｏｎｅ", "carbone"),
        ("鮨 さいとう", "鮨 さいとう"),
        ("", ""),
        ("!!!", ""),
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


# --- matching ---------------------------------------------------------------------------------


@pytest.fixture
def matcher() -> HotspotMatcher:
    names = "Carbone|King|Dame|Misi|Thai Diner|Peter Luger|The Four Horsemen|4 Charles"
    names += "|4 Charles Prime Rib|Rezdôra|Gage & Tollner|Raoul's"
    return HotspotMatcher(names.split("|"))


@pytest.mark.parametrize(
    ("venue", "expected"),
    [
        ("Carbone", "Carbone"),
        ("carbone", "Carbone"),
        ("Carbone (Dallas)", "Carbone"),
        ("Bar Carbone", "Carbone"),
        ("King", "King"),
        ("KING", "King"),
        ("Dame", "Dame"),
        ("Misi", "Misi"),
        ("Thai Diner", "Thai Diner"),
        ("Peter Luger Steak House", "Peter Luger"),
        ("Four Horsemen", "The Four Horsemen"),
        ("The Four Horsemen - Bar", "The Four Horsemen"),
        ("Rezdora", "Rezdôra"),
        ("Gage and Tollner", "Gage & Tollner"),
        ("RAOULS", "Raoul's"),
        ("4 Charles Prime Rib", "4 Charles Prime Rib"),
        ("4 Charles Prime Rib - Bar", "4 Charles Prime Rib"),
        ("4 Charles Bar", "4 Charles"),
    ],
)
def test_matches(matcher: HotspotMatcher, venue: str, expected: str) -> None:
    assert matcher.match(venue) == expected
    assert matcher.matches(venue)


@pytest.mark.parametrize(
    "venue",
    [
        "Burger King",  # short names match only exactly
        "King Street Grill",
        "Notre Dame Deli",
        "Misi Pasta Bar",
        "Lucky Thai Diner",  # a name made only of generic words matches only exactly
        "Carbonell's",  # whole words only
        "Carbones",
        "Luger",  # a venue name inside a curated name is not a match
        "Peter",
        "Four",
        "",
        "   ",
        "The",
    ],
)
def test_false_positive_guards(matcher: HotspotMatcher, venue: str) -> None:
    assert matcher.match(venue) is None
    assert not matcher.matches(venue)


def test_first_spelling_wins_and_blank_names_are_ignored() -> None:
    matcher = HotspotMatcher(["Raoul's", "RAOULS", "  ", "The Polo Bar", "Polo Bar"])
    assert matcher.names == ["Raoul's", "The Polo Bar"]
    assert len(matcher) == 2
    assert matcher.match("polo bar") == "The Polo Bar"


def test_default_matcher_uses_the_packaged_lists() -> None:
    matcher = HotspotMatcher.default()
    assert matcher is HotspotMatcher.default()
    assert len(matcher) == len(load_hotspot_names())
    assert matcher.match("Rezdora") == "Rezdôra"
    assert matcher.match("The Polo Bar") == "Polo Bar"
    assert matcher.match("Peter Luger Steak House") == "Peter Luger"
    assert matcher.match("Tatiana by Kwame Onwuachi") == "Tatiana"
    for venue in ("Burger King", "Notre Dame Deli", "Lucky Thai Diner", "Hudson River Cafe"):
        assert matcher.match(venue) is None, venue
    # Names shaped like generated filler venues must never be taken for curated ones.
    for venue in ("Olive Kitchen", "The Hudson", "Sushi Nori", "Harbor Oyster Bar", "Casa Fig"):
        assert matcher.match(venue) is None, venue


def test_ten_thousand_names_match_in_one_pass() -> None:
    """A discovery scan checks every venue it sees; this only checks that such a pass completes
    with the expected answers (speed is measured elsewhere, not asserted on a shared runner)."""
    matcher = HotspotMatcher.default()
    names = [f"Venue {i} Kitchen" for i in range(5_000)]
    names += [f"Carbone {i}" for i in range(2_500)]
    names += [f"Café Ñoño {i}" for i in range(2_500)]
    assert sum(matcher.matches(name) for name in names) == 2_500
