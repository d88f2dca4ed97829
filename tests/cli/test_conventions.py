"""The CLI contract: exit codes, the JSON error envelope, --traceback, a light --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from resywatch.errors import ExitCode


def test_bad_database_url_is_a_usage_error_with_an_envelope(cli: Any) -> None:
    result = cli("admin", "db-info", "--json", env={"RESYWATCH_DATABASE_URL": "nonsense"}, expect=2)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "bad_config"
    assert error["exit_code"] == ExitCode.USAGE
    assert "RESYWATCH_DATABASE_URL" in error["message"]
    assert "Traceback" not in result.stdout + result.stderr
    assert "RESYWATCH_DATABASE_URL" in result.stderr


def test_bad_toml_names_the_file(cli: Any, tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[discovery\n", encoding="utf-8")
    result = cli("--config", str(config), "admin", "db-info", "--json", expect=2)
    assert str(config) in json.loads(result.stdout)["error"]["message"]
    assert "Traceback" not in result.stderr


def test_unknown_option_with_json_gives_an_envelope(cli: Any) -> None:
    result = cli("admin", "db-info", "--bogus", "--json", expect=2)
    assert json.loads(result.stdout)["error"]["code"] == "usage"


def test_unknown_option_without_json_is_a_plain_usage_error(cli: Any) -> None:
    result = cli("admin", "db-info", "--bogus", expect=2)
    assert result.stdout == ""
    assert "No such option" in result.stderr


def test_unexpected_errors_exit_1_and_traceback_shows_the_stack(
    cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resywatch.services import admin

    def broken(_db: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(admin, "db_info", broken)
    result = cli("--database-url", database_url, "admin", "db-info", "--json", expect=1)
    assert json.loads(result.stdout)["error"] == {
        "code": "internal",
        "message": "RuntimeError: disk on fire (run with --traceback for details)",
        "exit_code": 1,
    }
    result = cli("--traceback", "--database-url", database_url, "admin", "db-info", expect=1)
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise RuntimeError("disk on fire")' in result.stderr  # the stack, then the report
    assert result.stderr.rstrip().endswith("error: RuntimeError: disk on fire")


def test_keyboard_interrupt_exits_130(
    cli: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from resywatch.services import admin

    def interrupted(_db: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(admin, "db_info", interrupted)
    cli("--database-url", database_url, "admin", "db-info", expect=130)


def test_version(cli: Any) -> None:
    from resywatch import __version__

    assert cli("--version").stdout.strip() == f"resywatch {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["admin", "--help"], ["admin", "migrate", "--help"]])
def test_help_imports_no_database_or_http_library(argv: list[str]) -> None:
    probe = (
        "import sys\n"
        "from resywatch.cli.app import main\n"
        f"sys.argv = ['resywatch', *{argv!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('sqlmodel', 'sqlalchemy', 'httpx', 'alembic', 'rich.table')"
        " if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Usage" in done.stdout
    assert "HEAVY=\n" in done.stderr
