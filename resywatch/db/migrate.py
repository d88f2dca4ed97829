"""Alembic, driven from code: where the scripts are, which revision a database is at, upgrade."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from resywatch.db.engine import Database
from resywatch.errors import DatabaseNotReady, DatabaseUnavailable

MIGRATE_HINT = "run `resywatch admin migrate`"


def script_location() -> Path:
    """The Alembic environment: inside the package when installed from a wheel, else the
    top-level migrations/ folder of a source checkout."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_migrations"
    return packaged if packaged.is_dir() else package.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    return config


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(db: Database) -> str | None:
    """The revision the database is at; None when it was never migrated (or has no file)."""
    path = db.sqlite_path
    if path is not None and not path.exists():
        return None  # connecting would create an empty file
    try:
        with db.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise DatabaseUnavailable(
            f"cannot open the database {db.display_url}: {_first_line(exc.orig)}"
        ) from None


@dataclass(frozen=True)
class Upgrade:
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def upgrade(db: Database) -> Upgrade:
    """Bring the database to head; a database already there is left as it is."""
    path = db.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    before = current_revision(db)
    if before != head_revision():
        config = alembic_config()
        with db.write_connection() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    return Upgrade(before=before, after=head_revision())


def ensure_current(db: Database, *, auto_migrate: bool = False) -> None:
    """Refuse to work on a database that is missing or behind (or migrate it, if allowed)."""
    current = current_revision(db)
    if current == head_revision():
        return
    if auto_migrate:
        upgrade(db)
        return
    if current is None:
        raise DatabaseNotReady(f"the database {db.display_url} is not initialised: {MIGRATE_HINT}")
    script = ScriptDirectory.from_config(alembic_config())
    if current not in {rev.revision for rev in script.walk_revisions()}:
        raise DatabaseNotReady(
            f"the database is at revision {current}, which this resywatch does not know: "
            "upgrade resywatch"
        )
    raise DatabaseNotReady(
        f"the database is at revision {current}, behind {head_revision()}: {MIGRATE_HINT}"
    )


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error and str(error).strip() else "error"
