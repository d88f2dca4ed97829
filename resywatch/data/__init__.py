"""Curated, editorial venue lists shipped with the package (JSON beside this module).

They only feed ranking and badges, never which drops exist, so they are loaded lazily and cached:
importing this module reads nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, cast

ListName = Literal["toughest", "hit-list"]
LIST_NAMES: tuple[ListName, ...] = ("toughest", "hit-list")


@dataclass(frozen=True, slots=True)
class HardToGet:
    """One hard-to-get venue; ``name`` is meant to equal the Resy display name."""

    name: str
    neighborhood: str
    cuisine: str
    #: Which list it is on: "toughest" (perennially hard) or "hit-list" (newer, in demand).
    list_name: ListName
    note: str


def _read_json(filename: str) -> dict[str, Any]:
    # importlib.resources works from a wheel or a zip too; imported here to keep import cheap.
    from importlib.resources import files

    text = files("resywatch.data").joinpath(filename).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{filename}: expected a JSON object at the top level")
    return cast(dict[str, Any], data)


def _text(entry: dict[str, Any], key: str, filename: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{filename}: {key!r} must be a non-empty string in {entry!r}")
    return value


@cache
def _hard_to_get() -> tuple[HardToGet, ...]:
    filename = "hard_to_get.json"
    venues = _read_json(filename).get("venues")
    if not isinstance(venues, list):
        raise ValueError(f"{filename}: 'venues' must be a list")
    result: list[HardToGet] = []
    for entry in venues:
        if not isinstance(entry, dict):
            raise ValueError(f"{filename}: each venue must be an object, got {entry!r}")
        list_name = entry.get("list")
        if list_name not in LIST_NAMES:
            raise ValueError(f"{filename}: 'list' must be one of {LIST_NAMES}, got {list_name!r}")
        result.append(
            HardToGet(
                name=_text(entry, "name", filename),
                neighborhood=_text(entry, "neighborhood", filename),
                cuisine=_text(entry, "cuisine", filename),
                list_name=cast(ListName, list_name),
                note=_text(entry, "note", filename),
            )
        )
    return tuple(result)


@dataclass(frozen=True, slots=True)
class ListSource:
    """Where a curated list comes from, as its file says."""

    source: str
    as_of: str


@cache
def _hard_to_get_source() -> ListSource:
    filename = "hard_to_get.json"
    data = _read_json(filename)
    return ListSource(_text(data, "source", filename), _text(data, "as_of", filename))


@cache
def _hotspot_names() -> tuple[str, ...]:
    filename = "hotspots.json"
    names = _read_json(filename).get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"{filename}: 'names' must be a list of non-empty strings")
    return tuple(cast(list[str], names))


def load_hard_to_get() -> list[HardToGet]:
    """The curated hard-to-get venues, in file order (a fresh list; the parse is cached)."""
    return list(_hard_to_get())


def load_hard_to_get_source() -> ListSource:
    """The hard-to-get list's source and date."""
    return _hard_to_get_source()


def load_hotspot_names() -> list[str]:
    """The curated hotspot names, in file order (a fresh list; the parse is cached)."""
    return list(_hotspot_names())


__all__ = [
    "LIST_NAMES",
    "HardToGet",
    "ListName",
    "ListSource",
    "load_hard_to_get",
    "load_hard_to_get_source",
    "load_hotspot_names",
]
