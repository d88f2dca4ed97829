"""The migrations and the models describe the same schema, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from resywatch.db import migrate
from resywatch.db.engine import Database
from resywatch.db.models import metadata


def test_upgrade_from_empty_matches_the_models(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        assert migrate.current_revision(db) is None
        result = migrate.upgrade(db)
        assert result.before is None
        assert result.after == migrate.head_revision()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert set(metadata.tables) <= tables
    finally:
        db.dispose()


def test_upgrade_twice_changes_nothing(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        assert migrate.upgrade(db).changed
        again = migrate.upgrade(db)
        assert not again.changed
        assert again.before == again.after == migrate.head_revision()
    finally:
        db.dispose()


def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    from alembic import command

    db = Database(empty_database_url)
    try:
        migrate.upgrade(db)
        config = migrate.alembic_config()
        with db.write_connection() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        assert migrate.upgrade(db).changed
    finally:
        db.dispose()


def test_the_quick_head_lookup_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert migrate.head_revision() == script.get_current_head()
    assert set(migrate.revisions()) == {rev.revision for rev in script.walk_revisions()}
