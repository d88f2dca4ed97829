"""Database administration: migrate, and describe what is there."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, inspect, select

from resywatch.db import migrate as migrations
from resywatch.db.engine import Database
from resywatch.db.models import metadata


@dataclass(frozen=True)
class MigrateResult:
    backend: str
    url: str
    revision_before: str | None
    revision: str
    changed: bool


@dataclass(frozen=True)
class DbInfo:
    backend: str
    url: str
    current_revision: str | None
    head_revision: str
    up_to_date: bool
    row_counts: dict[str, int]


def migrate(db: Database) -> MigrateResult:
    """Upgrade the database to the newest schema; running it again changes nothing."""
    result = migrations.upgrade(db)
    return MigrateResult(
        backend=db.backend,
        url=db.display_url,
        revision_before=result.before,
        revision=result.after,
        changed=result.changed,
    )


def db_info(db: Database) -> DbInfo:
    """Backend, URL (password masked), schema revisions and the rows in each table."""
    current = migrations.current_revision(db)
    counts: dict[str, int] = {}
    if current is not None:
        with db.read() as session:
            present = set(inspect(session.connection()).get_table_names())
            for table in metadata.sorted_tables:
                if table.name in present:
                    counts[table.name] = (
                        session.scalar(select(func.count()).select_from(table)) or 0
                    )
    head = migrations.head_revision()
    return DbInfo(
        backend=db.backend,
        url=db.display_url,
        current_revision=current,
        head_revision=head,
        up_to_date=current == head,
        row_counts=dict(sorted(counts.items())),
    )
