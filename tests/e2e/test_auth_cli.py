"""`resywatch auth login|status|logout` against the sandbox, and no secret left behind."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from resywatch.config import default_config_path, load_settings
from resywatch.sandbox import DEMO_API_KEY, SandboxConfig, SandboxHandle
from resywatch.sandbox.config import DEMO_EMAIL, DEMO_PASSWORD


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(seed=7, speed=1.0, control_enabled=True)  # real time: real expiries


@pytest.fixture
def resy_env(sandbox: SandboxHandle) -> dict[str, str]:
    return {"RESYWATCH_RESY_BASE_URL": sandbox.base_url, "RESYWATCH_RESY_API_KEY": DEMO_API_KEY}


def test_login_status_logout(cli: Any, resy_env: dict[str, str], sandbox: SandboxHandle) -> None:
    result = cli(
        "auth", "login", "--email", DEMO_EMAIL, "--password-stdin", "--json",
        env=resy_env, input=f"{DEMO_PASSWORD}\n",
    )  # fmt: skip
    login = json.loads(result.stdout)
    assert login["account"]["email"] == DEMO_EMAIL
    config = default_config_path()
    assert Path(login["config_file"]) == config
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    token = load_settings().resy_auth_token
    assert token is not None
    token_value = token.get_secret_value()
    assert token_value.count(".") == 2
    assert token_value not in result.stdout + result.stderr

    status = json.loads(cli("auth", "status", "--json", env=resy_env).stdout)
    assert status["accepted"] is True
    assert status["account"]["email"] == DEMO_EMAIL
    assert 44 < status["expires_in_days"] <= 45
    assert status["expiring_soon"] is False

    # Every Resy call was logged, and neither the log nor any output holds a secret.
    info = json.loads(cli("admin", "db-info", "--json").stdout)
    assert info["row_counts"]["api_call_log"] >= 2
    database = load_settings().default_database_path.read_bytes()
    for secret in (token_value, DEMO_PASSWORD, DEMO_API_KEY):
        assert secret.encode() not in database

    logout = json.loads(cli("auth", "logout", "--json").stdout)
    assert logout["removed"] is True
    assert "auth_token" not in config.read_text()
    failed = cli("auth", "status", "--json", env=resy_env, expect=1)
    assert json.loads(failed.stdout)["error"]["code"] == "not_logged_in"


def test_wrong_password_is_refused(cli: Any, resy_env: dict[str, str]) -> None:
    result = cli(
        "auth", "login", "--email", DEMO_EMAIL, "--password-stdin", "--json",
        env=resy_env, input="wrong-password-123\n", expect=1,
    )  # fmt: skip
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "login_refused"
    # The 419 of a login is the password, not an expired token: not "run auth login" again.
    assert "wrong email or password" in error["message"]
    assert "resywatch auth login" not in error["message"]
    assert "wrong-password-123" not in result.stdout + result.stderr
    assert not default_config_path().exists()


def test_status_reports_an_expired_token(
    cli: Any, resy_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    cli(
        "auth", "login", "--email", DEMO_EMAIL, "--password-stdin",
        env=resy_env, input=f"{DEMO_PASSWORD}\n",
    )  # fmt: skip
    httpx.post(f"{sandbox.base_url}/__sandbox/auth", json={"expire_tokens": True}, timeout=5)
    result = cli("auth", "status", "--json", env=resy_env, expect=1)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "auth_expired"
    assert "resywatch auth login" in error["message"]


def test_status_warns_when_the_token_expires_soon(
    cli: Any, resy_env: dict[str, str], sandbox: SandboxHandle
) -> None:
    httpx.post(
        f"{sandbox.base_url}/__sandbox/auth", json={"token_lifetime_s": 3 * 86400}, timeout=5
    )
    cli(
        "auth", "login", "--email", DEMO_EMAIL, "--password-stdin",
        env=resy_env, input=f"{DEMO_PASSWORD}\n",
    )  # fmt: skip
    result = cli("auth", "status", env=resy_env)
    assert "expires in 3.0 days" in result.stderr
    assert "accepted by Resy: yes" in result.stdout


def test_password_needs_a_terminal_or_stdin(cli: Any, resy_env: dict[str, str]) -> None:
    result = cli("auth", "login", "--email", DEMO_EMAIL, "--json", env=resy_env, expect=2)
    assert "--password-stdin" in json.loads(result.stdout)["error"]["message"]


def test_a_refused_api_key_is_explained(cli: Any, sandbox: SandboxHandle) -> None:
    # No key configured: the client sends Resy's public web key, which the sandbox (keeping
    # its own) refuses; a venue lookup sends no token, so only the key can be at fault.
    env = {"RESYWATCH_RESY_BASE_URL": sandbox.base_url, "RESYWATCH_RESY_AUTH_TOKEN": "x" * 20}
    result = cli("venue", "show", "1505", "--json", env=env, expect=1)
    message = json.loads(result.stdout)["error"]["message"]
    assert "API key" in message and "RESYWATCH_RESY_API_KEY" in message
