"""Alembic, driven from code: where the scripts are, which revision a database is at, upgrade.

Every command checks the schema revision before it starts, so that check must be cheap:
it reads `alembic_version` and the revision ids of the migration files directly. Alembic
itself (a tenth of a second to import) is loaded only to migrate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    return config


_REVISION = re.compile(r"^revision(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision(?::[^=]*)?=\s*(?:['\"]([^'\"]+)['\"]|None)", re.MULTILINE)


@cache
def revisions() -> dict[str, str | None]:
    """Each migration's revision id and the one it follows (None for the first)."""
    found: dict[str, str | None] = {}
    for path in (script_location() / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is not None and down is not None:
            found[revision[1]] = down[1]
    return found


@cache
def head_revision() -> str:
    """The newest revision: the one no other migration follows (the history is linear)."""
    chain = revisions()
    heads = set(chain) - {down for down in chain.values() if down}
    assert len(heads) == 1, f"expected one head revision, found {sorted(heads)}"
    return heads.pop()


def current_revision(db: Database) -> str | None:
    """The revision the database is at; None when it was never migrated (or has no file)."""
    path = db.sqlite_path
    if path is not None and not path.exists():
        return None  # connecting would create an empty file
    try:
        with db.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
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
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds the private file
    before = current_revision(db)
    _refuse_unknown(before)
    if before != head_revision():
        from alembic import command

        config = alembic_config()
        with db.write_connection() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    return Upgrade(before=before, after=head_revision())


NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs"}


def filesystem_of(path: Path, mounts: str) -> str | None:
    """The type of the filesystem holding `path`, from a /proc/mounts-style table."""
    best, kind = -1, None
    target = str(path.resolve())
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > best:
            best, kind = len(mount_point), fields[2]
    return kind


def refuse_network_filesystem(path: Path, mounts_file: Path = Path("/proc/mounts")) -> None:
    """SQLite's locking does not hold over NFS and the like: concurrent writers would
    corrupt the file (RELIABILITY §5). Several machines need PostgreSQL."""
    try:
        mounts = mounts_file.read_text(encoding="utf-8")
    except OSError:
        return  # not Linux: nothing to check against
    kind = filesystem_of(path.parent, mounts)
    if kind in NETWORK_FILESYSTEMS:
        raise DatabaseUnavailable(
            f"the SQLite file {path} is on a network filesystem ({kind}), where SQLite's "
            "locks do not hold: keep it on a local disk, or use PostgreSQL"
        )


def ensure_current(db: Database, *, auto_migrate: bool = False) -> None:
    """Refuse to work on a database that is missing, behind or on a network filesystem (or
    migrate it, if allowed)."""
    if db.sqlite_path is not None:
        refuse_network_filesystem(db.sqlite_path)
    current = current_revision(db)
    if current == head_revision():
        return
    if auto_migrate:
        upgrade(db)
        return
    if current is None:
        raise DatabaseNotReady(f"the database {db.display_url} is not initialised: {MIGRATE_HINT}")
    _refuse_unknown(current)
    raise DatabaseNotReady(
        f"the database is at revision {current}, behind {head_revision()}: {MIGRATE_HINT}"
    )


def _refuse_unknown(current: str | None) -> None:
    """A revision no migration here names comes from a newer resywatch: neither using nor
    migrating the database can be right, whichever command asks."""
    if current is not None and current not in revisions():
        raise DatabaseNotReady(
            f"the database is at revision {current}, which this resywatch does not know: "
            "upgrade resywatch"
        )


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error and str(error).strip() else "error"
