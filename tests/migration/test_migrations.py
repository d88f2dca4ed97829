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


def test_upgrading_to_0005_keeps_dependent_rows_and_never_reuses_a_named_id(
    empty_database_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import text

    db = Database(empty_database_url)
    config = migrate.alembic_config()
    try:
        with db.write_connection() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
        with db.write_connection() as c:
            for _ in (1, 2):  # two notify requests, the newest satisfied, then both removed
                c.execute(
                    text(
                        "INSERT INTO notify_request (venue_id, venue_name, date_from, date_to,"
                        " party_size, auto_book, status, created_at) VALUES (1, 'Lilia',"
                        " '2026-12-01', '2026-12-01', 2, false, 'pending', '2026-11-30')"
                    )
                )
            c.execute(
                text(
                    "INSERT INTO notification (dedupe_key, kind, title, body, payload, status,"
                    " attempts, next_attempt_at, created_at) VALUES ('notify:2', 'notify_hit',"
                    " 't', 'b', '{}', 'sent', 1, '2026-11-30', '2026-11-30')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO notification_delivery (notification_id, channel, status,"
                    " attempts, updated_at) SELECT id, 'stdout', 'sent', 1, '2026-11-30'"
                    " FROM notification"
                )
            )
            c.execute(text("DELETE FROM notify_request"))
            c.execute(
                text(
                    "INSERT INTO discovery_bucket (id, slot_date, anchor, consecutive_failures,"
                    " baseline_count, slot_count, created_at, last_cycle) VALUES"
                    " ('2026-12-01_19:00', '2026-12-01', '19:00', 0, 1, 1, '2026-11-30', 7)"
                )
            )
            c.execute(
                text(
                    "INSERT INTO slot_snapshot (bucket_id, slot_id, venue_id, starts_at, offered,"
                    " in_baseline, in_previous, first_seen_at, changed_at) VALUES"
                    " ('2026-12-01_19:00', 's1', 1, '2026-12-01 19:00', '', true, true,"
                    " '2026-11-30', '2026-11-30')"
                )
            )
        migrate.upgrade(db)
        with db.write_connection() as c:
            # Rebuilding a table must not cascade into the rows that refer to it.
            assert c.execute(text("SELECT count(*) FROM notification_delivery")).scalar() == 1
            assert c.execute(text("SELECT count(*) FROM slot_snapshot")).scalar() == 1
            # A cycle number cannot be converted (its interval is unknown): due at once.
            assert c.execute(text("SELECT last_cycle_start FROM discovery_bucket")).all() == [
                (None,)
            ]
            new = c.execute(
                text(
                    "INSERT INTO notify_request (venue_id, venue_name, date_from, date_to,"
                    " party_size, auto_book, status, created_at) VALUES (1, 'Lilia',"
                    " '2026-12-01', '2026-12-01', 2, false, 'pending', '2026-11-30') RETURNING id"
                )
            ).scalar()
        assert new == 3  # not 1: `notify:2` still names the removed request 2
    finally:
        db.dispose()


def test_upgrading_to_0006_leaves_old_rows_acting_for_the_default_account(
    empty_database_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import text
    from sqlmodel import select

    from resywatch.db.models import NotifyRequest

    db = Database(empty_database_url)
    config = migrate.alembic_config()
    try:
        with db.write_connection() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
        with db.write_connection() as c:
            c.execute(
                text(
                    "INSERT INTO notify_request (venue_id, venue_name, date_from, date_to,"
                    " party_size, auto_book, status, created_at) VALUES (1, 'Lilia',"
                    " '2026-12-01', '2026-12-01', 2, true, 'pending', '2026-11-30')"
                )
            )
        migrate.upgrade(db)
        with db.read() as session:
            (row,) = session.exec(select(NotifyRequest)).all()
        assert row.account is None  # NULL: the `default` account, as before
        for table in ("watch", "notify_request", "scheduled_snipe"):
            columns = {c["name"]: c for c in inspect(db.engine).get_columns(table)}
            assert columns["account"]["nullable"], table
    finally:
        db.dispose()
