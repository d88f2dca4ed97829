"""Match Resy venue names against the curated hotspot and hard-to-get lists.

The lists are editorial: a match only flags ``is_hotspot``, adds a badge or lifts a drop in the
ranking; it never decides which drops exist. So the matcher prefers missing a badge to pinning one
on the wrong restaurant ("Burger King" is not King, "Notre Dame Deli" is not Dame).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable
from functools import cache

from resywatch.data import load_hard_to_get, load_hotspot_names
from resywatch.errors import InvalidInput

# Apostrophes join their letters ("Raoul's" -> "raouls"); "&" reads as "and"; letters NFKD cannot
# decompose are spelled out so "Smørrebrød" and "Smorrebrod" agree.
_TRANSLATE = str.maketrans(
    {
        "'": None,
        "’": None,
        "‘": None,
        "ʼ": None,
        "`": None,
        "´": None,
        "&": " and ",
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
    }
)
_NON_WORD = re.compile(r"[\W_]+")
# The combining accents Latin names use, which NFKD splits off "é", "ô", "ñ"...
_LATIN_ACCENTS = re.compile("[\u0300-\u036f]+")
# The same for plain ASCII names, without the regex: most names take this path.
_ASCII_PUNCTUATION = str.maketrans(
    {ch: None if ch in "'`" else " " for ch in string.punctuation if ch != "&"}
)

#: Curated names shorter than this (one word) only ever match exactly.
MIN_CONTAINED_CHARS = 6

#: Words that say what a place is rather than which place it is, plus a few given names and plain
#: nouns that are also curated names. A curated name made only of these ("Thai Diner", "Corner
#: Bar", "The Modern", "Daniel") matches exactly, never inside a longer venue name.
GENERIC_WORDS = frozenset(
    {
        "a",
        "and",
        "at",
        "bar",
        "bistro",
        "brasserie",
        "bungalow",
        "cafe",
        "chelsea",
        "club",
        "corner",
        "daniel",
        "diner",
        "el",
        "golden",
        "grill",
        "house",
        "kitchen",
        "la",
        "le",
        "lounge",
        "modern",
        "new",
        "nyc",
        "of",
        "pizza",
        "pizzeria",
        "restaurant",
        "river",
        "room",
        "sailor",
        "steakhouse",
        "sushi",
        "tavern",
        "thai",
        "the",
        "york",
    }
)


def normalize_name(name: str) -> str:
    """A comparison key for venue names: case, accents, "&", punctuation and spacing ignored.

    Case-folds, strips accents (NFKD), reads "&" as "and", drops apostrophes, turns other
    punctuation into spaces, collapses whitespace and drops a leading "the " ("The Four
    Horsemen" and "Four Horsemen" are one place).
    """
    text = name.casefold()
    if not text.isascii():
        text = _LATIN_ACCENTS.sub("", unicodedata.normalize("NFKD", text))
        if not text.isascii():
            text = text.translate(_TRANSLATE)
    if text.isascii():
        if not text.replace(" ", "").isalnum():  # "Via Carota" needs no translation
            text = text.replace("&", " and ").translate(_ASCII_PUNCTUATION)
    else:  # other scripts: drop any combining mark left, keep letters of every script
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        text = _NON_WORD.sub(" ", text)
    words = text.split()
    if len(words) > 1 and words[0] == "the":
        del words[0]
    return " ".join(words)


def name_filter(text: str, *, what: str = "--venue") -> str:
    """A venue-name filter as typed, normalised; InvalidInput (exit 2) when nothing of it is
    left to compare ("%", "!!", spaces), which would otherwise match every venue."""
    wanted = normalize_name(text)
    if not wanted:
        raise InvalidInput(f"{what} {text!r} has no letters or digits to match a venue name")
    return wanted


def _containable(tokens: tuple[str, ...]) -> bool:
    if len(tokens) < 2 and len(tokens[0]) < MIN_CONTAINED_CHARS:
        return False
    return not all(token in GENERIC_WORDS for token in tokens)


class HotspotMatcher:
    """Finds the curated name a Resy venue name refers to.

    Rule, on normalised names (see ``normalize_name``):

    1. exact: the venue name equals a curated name;
    2. containment: a curated name appears in the venue name as a run of whole words
       ("Carbone" in "Carbone (Dallas)", "Peter Luger" in "Peter Luger Steak House"), but only
       for curated names of at least two words or at least six characters that are not made
       only of ``GENERIC_WORDS``. So "King", "Dame", "Misi" and "Thai Diner" never match
       "Burger King", "Notre Dame Deli" or "Lucky Thai Diner". When several curated names are
       contained, the longest wins.

    Only curated-in-venue: a venue called "Luger" does not match "Peter Luger". Matching is a
    dict lookup plus a first-token index probe per word, so 10,000 names take milliseconds.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._exact: dict[str, str] = {}
        # First word -> (words, canonical name), longest first, for the containment rule.
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for name in names:
            key = normalize_name(name)
            if not key or key in self._exact:
                continue  # first spelling wins
            self._exact[key] = name
            tokens = tuple(key.split())
            if _containable(tokens):
                self._by_first.setdefault(tokens[0], []).append((tokens, name))
        for candidates in self._by_first.values():
            candidates.sort(key=lambda item: (-len(item[0]), -len(" ".join(item[0]))))

    @classmethod
    def default(cls) -> HotspotMatcher:
        """Hotspots ∪ hard-to-get, from the packaged data (built once)."""
        return _default_matcher()

    @classmethod
    def hard_to_get(cls) -> HotspotMatcher:
        """Only the hard-to-get venues, from the packaged data (built once)."""
        return _hard_to_get_matcher()

    @property
    def names(self) -> list[str]:
        """The canonical curated names, one per normalised name, in input order."""
        return list(self._exact.values())

    def __len__(self) -> int:
        return len(self._exact)

    def match(self, venue_name: str) -> str | None:
        """The canonical curated name ``venue_name`` refers to, or None."""
        key = normalize_name(venue_name)
        exact = self._exact.get(key)
        if exact is not None or not key:
            return exact
        tokens = key.split()
        best: tuple[tuple[str, ...], str] | None = None
        for start, token in enumerate(tokens):
            for candidate in self._by_first.get(token, ()):
                words = candidate[0]
                if best is not None and len(words) <= len(best[0]):
                    break  # sorted longest first: nothing here can beat the current best
                if tuple(tokens[start : start + len(words)]) == words:
                    best = candidate
                    break
        return None if best is None else best[1]

    def matches(self, venue_name: str) -> bool:
        """Whether ``venue_name`` is one of the curated venues."""
        return self.match(venue_name) is not None


@cache
def _default_matcher() -> HotspotMatcher:
    hard = [venue.name for venue in load_hard_to_get()]
    return HotspotMatcher([*load_hotspot_names(), *hard])


@cache
def _hard_to_get_matcher() -> HotspotMatcher:
    return HotspotMatcher(venue.name for venue in load_hard_to_get())
