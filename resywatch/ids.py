"""Ids that people type: our rows' ids (watch, notify request, snipe) and Resy's (venue,
payment method). One reading of them for every command, so none can reach the database
as a value it cannot hold.

Only ASCII digits are an id: `int()` would also take "٣", " 7", "+7" and "1_000", and
`str.isdigit()` takes "²", which `int()` then refuses.
"""

from __future__ import annotations

from resywatch.errors import InvalidInput

#: Signed 64-bit: the widest integer column (BIGINT) either backend stores.
MAX_ID = 2**63 - 1
#: Our tables' id columns (and `venue.id`) are INTEGER: signed 32-bit on PostgreSQL. A
#: larger id is well formed but names no row.
MAX_ROW_ID = 2**31 - 1


def is_id(text: str) -> bool:
    """Whether `text` is written as an id (ASCII digits only, surrounding spaces ignored)."""
    digits = text.strip()
    return digits.isascii() and digits.isdigit()


def parse_id(text: str, *, what: str = "id") -> int:
    """`text` as an id, or InvalidInput (exit 2) naming the value."""
    if not is_id(text):
        raise InvalidInput(f"{what} {text!r} is not an id: use digits 0-9, e.g. 42")
    value = int(text.strip())
    if value > MAX_ID:
        raise InvalidInput(f"{what} {text.strip()} is out of range: ids go up to {MAX_ID}")
    return value


def may_name_a_row(row_id: int) -> bool:
    """Whether an id fits our id columns; one that does not can only be "not found"."""
    return 0 < row_id <= MAX_ROW_ID
