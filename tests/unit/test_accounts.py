"""Accounts: where each account's token and refresh cookie are kept, how a runtime acts for
one, and how the client logs in and refreshes (against httpx.MockTransport), with no secret
in a repr, an error or the client's cookie jar."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from resywatch.accounts import (
    DEFAULT_ACCOUNT,
    AccountTokens,
    TokenStore,
    UnknownAccount,
    pick,
    tokens_in_settings,
)
from resywatch.clock import ManualClock
from resywatch.config import load_settings, read_config_file
from resywatch.db.engine import Database
from resywatch.db.models import Notification
from resywatch.errors import ConfigError, InvalidInput
from resywatch.resy import errors
from resywatch.resy.client import ResyClient
from resywatch.runtime import Runtime
from resywatch.services import auth

COOKIE = "production_refresh_token"


def jwt(exp: int) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{claims}.signature-{exp}"


def test_the_store_keeps_each_account_privately_beside_the_default(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.toml"
    path.parent.mkdir()
    path.write_text('[general]\ntimezone = "UTC"  # mine\n\n[resy]\nauth_token = "old-token"\n')
    store = TokenStore(path, environ={})
    store.save("friend", "friend-token", "friend-cookie")
    store.save(DEFAULT_ACCOUNT, "new-token", "new-cookie")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "# mine" in path.read_text()  # the rest of the file is left as it was
    table = store.all()
    assert list(table) == ["default", "friend"]
    assert (table["default"].auth_token, table["default"].refresh_token) == (
        "new-token",
        "new-cookie",
    )
    assert table["friend"].refresh_token == "friend-cookie"
    # The settings read the same file: the accounts' secrets are masked everywhere.
    settings = load_settings(config_path=path, environ={})
    assert {"friend-token", "friend-cookie", "new-token", "new-cookie"} <= set(settings.secrets())
    assert "friend-token" not in repr(settings) + repr(table)
    assert tokens_in_settings(settings) == table

    assert store.forget("friend") is True
    assert store.forget("friend") is False
    assert "accounts.friend" not in path.read_text()  # no empty table left behind
    assert list(store.all()) == ["default"]


def test_the_environment_token_is_the_default_account(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "config.toml", environ={"RESYWATCH_RESY_AUTH_TOKEN": "env-tok"})
    assert store.all()["default"].auth_token == "env-tok"
    assert store.environment_token()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[accounts.Bad]\nauth_token = "x"\n', "not an account name"),
        ('[accounts.default]\nauth_token = "x"\n', "[resy] auth_token"),
        ('[accounts.bob]\ntoken = "x"\n', "invalid value"),
        ('[general]\naccount = "No Way"\n', "not an account name"),
    ],
)
def test_bad_accounts_in_the_file_are_config_errors(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as caught:
        load_settings(config_path=path, environ={})
    assert words in str(caught.value)


def test_unknown_and_bad_names_are_refused() -> None:
    table = {"default": AccountTokens("default", "t")}
    with pytest.raises(UnknownAccount, match="auth login --account bob") as caught:
        pick(table, "bob")
    assert caught.value.exit_code == 2
    with pytest.raises(InvalidInput):
        pick(table, "../etc")
    assert pick({}, None).auth_token is None  # `default` exists, perhaps logged out


def test_a_runtime_acts_for_an_account_on_the_same_client(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    store = TokenStore(path, environ={})
    store.save("default", "default-token", None)
    store.save("friend", "friend-token", None)
    settings = load_settings(config_path=path, environ={})

    async def go() -> None:
        async with ResyClient(base_url="https://resy.test", api_key="k") as resy:
            resy.auth_token = "default-token"
            rt = Runtime(settings, db=None, resy=resy, tokens=store)  # type: ignore[arg-type]
            friend = rt.for_account("friend")
            assert (friend.account, friend.resy.auth_token) == ("friend", "friend-token")
            assert friend.resy.calls is resy.calls  # one call log, budget and connection
            assert rt.for_account(None).resy is resy
            # A token refreshed on file is the one the next pass uses.
            store.save("friend", "fresher", None)
            assert rt.for_account("friend").resy.auth_token == "fresher"
            assert "fresher" in rt.secrets()  # masked though the settings predate it
            with pytest.raises(UnknownAccount):
                rt.for_account("stranger")

    asyncio.run(go())


def _login_and_refresh_server(request: httpx.Request) -> httpx.Response:
    set_cookie = {"set-cookie": f"{COOKIE}=cookie-2; Path=/; HttpOnly"}
    if request.url.path == "/4/auth/password":
        return httpx.Response(200, json={"token": jwt(2_000_000_000)}, headers=set_cookie)
    if request.url.path == "/3/auth/refresh":
        if request.headers.get("cookie") != f"{COOKIE}=cookie-2":
            return httpx.Response(419, json={"status": 419, "message": "Unauthorized"})
        return httpx.Response(200, json={"token": jwt(2_100_000_000)}, headers=set_cookie)
    # Any other call must never carry a refresh cookie.
    assert COOKIE not in request.headers.get("cookie", "")
    return httpx.Response(200, json={"id": 1, "em_address": "me@x"})


def test_login_keeps_the_refresh_cookie_out_of_the_jar_and_refresh_sends_it() -> None:
    async def go() -> Any:
        transport = httpx.MockTransport(_login_and_refresh_server)
        async with ResyClient(base_url="https://resy.test", api_key="k", transport=transport) as c:
            session = await c.login_session("me@x", "pw-123456")
            assert session.refresh_token == "cookie-2"
            assert COOKIE not in c._http.cookies  # one account's cookie, never the jar's
            await c.with_token(session.token).user()
            fresh = await c.refresh("cookie-2")
            assert fresh.token != session.token
            with pytest.raises(errors.RefreshRefused) as refused:
                await c.refresh("stale-cookie-value")
            assert "stale-cookie-value" not in str(refused.value)
            assert "pw-123456" not in repr(session) and "cookie-2" not in repr(fresh)

    asyncio.run(go())


def test_the_config_file_keeps_refresh_cookies_under_resy_and_accounts(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    TokenStore(path, environ={}).save("default", "t", "c")
    assert read_config_file(path)["resy_refresh_token"] == "c"


def test_a_token_with_no_refresh_cookie_is_told_a_week_ahead_whatever_the_margin(
    db: Database, tmp_path: Path
) -> None:
    """A token from before refresh cookies (or the environment) cannot be refreshed: the
    notice comes a week before it lapses even with a 3-day margin, and once."""
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    path = tmp_path / "config.toml"
    store = TokenStore(path, environ={})
    store.save("default", jwt(int((now + timedelta(days=6)).timestamp())), None)
    settings = load_settings(config_path=path, environ={"RESYWATCH_AUTH_REFRESH_MARGIN_DAYS": "3"})

    async def tokens_pass() -> list[auth.RefreshResult]:
        async with ResyClient(base_url="http://127.0.0.1:9", api_key="k") as resy:  # unused
            return await auth.refresh_tokens(
                Runtime(settings, db, resy, ManualClock(now), tokens=store)
            )

    (first,) = asyncio.run(tokens_pass())
    (again,) = asyncio.run(tokens_pass())
    assert (first.status, first.notified, again.notified) == ("no_cookie", "expiring", None)
    with db.read() as session:
        (note,) = session.exec(select(Notification)).all()
    assert note.kind == "account" and note.payload["account"] == "default"
