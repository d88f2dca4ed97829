"""`resywatch admin migrate|db-info` through the CLI, on each backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resywatch.config import load_settings
from resywatch.db.migrate import head_revision


def test_migrate_then_db_info(cli: Any, empty_database_url: str) -> None:
    first = json.loads(
        cli("--database-url", empty_database_url, "admin", "migrate", "--json").stdout
    )
    assert first["revision_before"] is None
    assert first["revision"] == head_revision()
    assert first["changed"] is True

    again = json.loads(
        cli("--database-url", empty_database_url, "admin", "migrate", "--json").stdout
    )
    assert again["changed"] is False

    info = json.loads(
        cli("--database-url", empty_database_url, "admin", "db-info", "--json").stdout
    )
    assert info["current_revision"] == info["head_revision"] == head_revision()
    assert info["up_to_date"] is True
    assert info["row_counts"]["drop_event"] == 0
    assert set(info["row_counts"]) >= {"discovery_bucket", "notification", "api_call_log"}


def test_database_url_from_environment(cli: Any, database_url: str) -> None:
    result = cli("admin", "db-info", "--json", env={"RESYWATCH_DATABASE_URL": database_url})
    assert json.loads(result.stdout)["backend"] in {"sqlite", "postgresql"}


def test_db_info_hides_the_password(cli: Any, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        database_url = "postgresql+psycopg://someone:pa55word-xyz@127.0.0.1:1/none"
        result = cli("--database-url", database_url, "admin", "db-info", "--json", expect=1)
        assert json.loads(result.stdout)["error"]["code"] == "database_unavailable"
    else:
        result = cli("--database-url", database_url, "admin", "db-info", "--json")
        assert "://***@" in json.loads(result.stdout)["url"]
    password = database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert password not in result.stdout + result.stderr


def test_default_sqlite_is_created_on_first_use(cli: Any) -> None:
    default = Path(load_settings().default_database_path)
    assert not default.exists()
    info = json.loads(cli("admin", "migrate", "--json").stdout)
    assert info["url"] == f"sqlite:///{default}"
    assert default.exists()


def test_db_info_on_a_missing_file_does_not_create_it(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    result = cli("--database-url", f"sqlite:///{path}", "admin", "db-info", "--json")
    info = json.loads(result.stdout)
    assert info["current_revision"] is None
    assert info["up_to_date"] is False
    assert not path.exists()


def test_human_output_is_plain_text_in_a_pipe(cli: Any, database_url: str) -> None:
    result = cli("--database-url", database_url, "admin", "db-info")
    assert "up to date: yes" in result.stdout
    assert "table\trows" in result.stdout
    assert "drop_event\t0" in result.stdout
