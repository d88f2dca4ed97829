"""First use: a config file that is named but does not exist yet is empty configuration,
and the first `auth login` creates it (and its directory), privately and atomically."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from resywatch.db.engine import Database
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle
from resywatch.sandbox.config import DEMO_EMAIL, DEMO_PASSWORD


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(seed=7, speed=1.0, control_enabled=True)


def _env(sandbox: SandboxHandle, database_url: str) -> dict[str, str]:
    return {
        "RESYWATCH_RESY_BASE_URL": sandbox.base_url,
        "RESYWATCH_RESY_API_KEY": DEMO_API_KEY,
        "RESYWATCH_DATABASE_URL": database_url,
    }


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _login(cli: Any, *args: str, env: dict[str, str], expect: int = 0) -> dict[str, Any]:
    result = cli(
        *args, "auth", "login", "--email", DEMO_EMAIL, "--password-stdin", "--json",
        env=env, input=f"{DEMO_PASSWORD}\n", expect=expect,
    )  # fmt: skip
    assert DEMO_PASSWORD not in result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize("named_by", ["--config", "RESYWATCH_CONFIG"])
def test_a_first_login_creates_the_named_config_file(
    cli: Any, sandbox: SandboxHandle, database_url: str, tmp_path: Path, named_by: str
) -> None:
    config = tmp_path / "fresh" / "resywatch" / "config.toml"
    env = _env(sandbox, database_url)
    args: tuple[str, ...] = ()
    if named_by == "--config":
        args = ("--config", str(config))
    else:
        env["RESYWATCH_CONFIG"] = str(config)
    # Before it exists, every command runs (it is empty configuration).
    cli(*args, "admin", "db-info", "--json", env=env)
    assert json.loads(cli(*args, "auth", "logout", "--json", env=env).stdout)["removed"] is False
    assert not config.parent.exists()

    login = _login(cli, *args, env=env)
    assert Path(login["config_file"]) == config
    assert _mode(config) == 0o600 and _mode(config.parent) == 0o700
    assert os.listdir(config.parent) == ["config.toml"]
    status = json.loads(cli(*args, "auth", "status", "--json", env=env).stdout)
    assert status["accepted"] is True


def test_a_symlinked_config_is_written_through_to_its_target(
    cli: Any, sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "dotfiles" / "resywatch.toml"
    target.parent.mkdir()
    target.write_text("# mine\n[discovery]\ndays = 7\n")
    link = tmp_path / "config.toml"
    link.symlink_to(target)
    _login(cli, "--config", str(link), env=_env(sandbox, database_url))
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text().startswith("# mine\n[discovery]\ndays = 7\n")
    assert "auth_token" in target.read_text() and _mode(target) == 0o600


def test_an_unwritable_config_fails_before_logging_in(
    cli: Any, sandbox: SandboxHandle, database_url: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    config = blocker / "config.toml"
    error = _login(cli, "--config", str(config), env=_env(sandbox, database_url), expect=1)
    assert error["error"]["code"] == "config_not_writable"
    assert f"cannot write the config file {config}" in error["error"]["message"]
    assert blocker.read_text() == ""
    db = Database(database_url)
    try:
        with db.read() as session:  # Resy was not asked for a token that could not be kept
            assert session.scalar(text("SELECT count(*) FROM api_call_log")) == 0
    finally:
        db.dispose()
