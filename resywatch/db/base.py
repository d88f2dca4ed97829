"""What every table shares: constraint names and the clock default.

Timestamps are plain `datetime` fields: SQLModel stores them as UTC and refuses naive values
(SQLite keeps no zone, so they are read back as UTC). Venue-local wall-clock times are
`NaiveDatetime` on purpose: Resy gives them without a zone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import SQLModel

# Stable constraint names, so migrations can refer to them on SQLite and PostgreSQL alike.
# Set here, before any table is defined: names are given when a table is built.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# Table options of every table with a generated integer id. SQLite otherwise hands the id
# of the newest row out again once that row is deleted, and ids are named by other rows and
# by dedupe keys (`drop:<id>`, `notify:<id>`, `watch:<id>:...`): a reused id would collide
# with, or inherit, what the deleted row left behind. PostgreSQL's sequences never go back.
NEVER_REUSED = {"sqlite_autoincrement": True}
