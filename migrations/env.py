"""Alembic environment for resywatch.

`resywatch admin migrate` passes an open connection in `config.attributes["connection"]`;
the `alembic` command line (for developers: `alembic revision --autogenerate -m ...`) gets
its URL from resywatch's settings instead, so both use the same database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from resywatch.db.models import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: Alembic rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two workers migrating at once take turns (a transaction lock: PgBouncer-safe).
            connection.execute(text("SELECT pg_advisory_xact_lock(7264551)"))
        context.run_migrations()


def run_from_settings() -> None:
    from resywatch.config import load_settings
    from resywatch.db.engine import Database

    db = Database(load_settings().effective_database_url)
    try:
        with db.write_connection() as connection:
            run(connection)
    finally:
        db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")

given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    run_from_settings()
