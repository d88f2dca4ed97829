"""Resy credentials, per account: log in, check the tokens, refresh them, forget them.

Each account keeps its token and Resy's refresh cookie in the config file (mode 0600; see
`resywatch.accounts`). The `tokens` job refreshes every token that lapses within
`auth_refresh_margin_days`; when Resy refuses (or there is no cookie), the user is told
through their channels a week before the token lapses and again when it lapses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import select

from resywatch.accounts import (
    DEFAULT_ACCOUNT,
    EXPIRY_WARNING,
    AccountTokens,
    TokenStore,
    account_name,
    pick,
    token_expiry,
)
from resywatch.config import check_config_writable
from resywatch.db.models import Notification
from resywatch.errors import ResywatchError
from resywatch.redact import redact_text
from resywatch.resy import errors as resy_errors
from resywatch.resy.errors import AuthExpired

if TYPE_CHECKING:
    from resywatch.resy.client import ResyClient
    from resywatch.runtime import Runtime

__all__ = ["EXPIRY_WARNING", "NotLoggedIn", "token_expiry"]


class NotLoggedIn(ResywatchError):
    """Not logged in: run `resywatch auth login` (or set RESYWATCH_RESY_AUTH_TOKEN)."""

    code = "not_logged_in"


@dataclass(frozen=True)
class Account:
    user_id: int | None
    name: str | None
    email: str | None
    payment_method_id: int | None


@dataclass(frozen=True)
class LoginResult:
    account: Account
    account_name: str
    config_file: Path
    expires_at: datetime | None
    refresh_kept: bool  # Resy set a refresh cookie, kept beside the token


@dataclass(frozen=True)
class AccountExpiry:
    """One account as `auth status` lists it (read from the token: no Resy call)."""

    name: str
    logged_in: bool
    expires_at: datetime | None
    expires_in_days: float | None
    expiring_soon: bool
    refreshable: bool  # a refresh cookie is kept: the `tokens` job renews the token


@dataclass(frozen=True)
class AuthStatus:
    account: Account
    account_name: str
    expires_at: datetime | None
    expires_in_days: float | None
    expiring_soon: bool
    accepted: bool
    accounts: list[AccountExpiry]


async def login(
    *, resy: ResyClient, email: str, password: str, store: TokenStore, account: str
) -> LoginResult:
    """Exchange email and password for a token and Resy's refresh cookie, kept as
    `account`'s in the config file (mode 0600, created with its directory when missing)."""
    account = account_name(account)
    check_config_writable(store.path)  # before Resy hands out a token we could not keep
    session = await resy.login_session(email, password)
    user = await resy.with_token(session.token).user()
    store.save(account, session.token, session.refresh_token)
    who = Account(
        user_id=user.id,
        name=_full_name(user.first_name, user.last_name),
        email=user.em_address or email,
        payment_method_id=user.default_payment_method_id,
    )
    return LoginResult(
        who, account, store.path, token_expiry(session.token), session.refresh_token is not None
    )


async def status(
    *, resy: ResyClient, now: datetime, tokens: dict[str, AccountTokens], account: str
) -> AuthStatus:
    """Who `account`'s token belongs to, when it expires and whether Resy accepts it; and
    every account's expiry."""
    chosen = pick(tokens, account)
    if not chosen.auth_token:
        raise NotLoggedIn(_not_logged_in(chosen.name))
    expires_at = token_expiry(chosen.auth_token)
    try:
        user = await resy.with_token(chosen.auth_token).user()
    except AuthExpired as exc:
        when = f" (its expiry: {expires_at:%Y-%m-%d %H:%M} UTC)" if expires_at else ""
        raise AuthExpired(
            f"Resy no longer accepts the auth token of account {chosen.name!r}{when}: run "
            f"`resywatch auth login{_flag(chosen.name)}`",
            status=exc.status,
        ) from None
    mine = expiry(chosen, now)
    return AuthStatus(
        account=Account(
            user_id=user.id,
            name=_full_name(user.first_name, user.last_name),
            email=user.em_address,
            payment_method_id=user.default_payment_method_id,
        ),
        account_name=chosen.name,
        expires_at=expires_at,
        expires_in_days=mine.expires_in_days,
        expiring_soon=mine.expiring_soon,
        accepted=True,
        accounts=[expiry(tokens_, now) for tokens_ in tokens.values()],
    )


def expiry(account: AccountTokens, now: datetime) -> AccountExpiry:
    expires_at = account.expires_at
    left = expires_at - now if expires_at else None
    return AccountExpiry(
        name=account.name,
        logged_in=bool(account.auth_token),
        expires_at=expires_at,
        expires_in_days=round(left / timedelta(days=1), 2) if left is not None else None,
        expiring_soon=left is not None and left < EXPIRY_WARNING,
        refreshable=bool(account.refresh_token),
    )


def logout(*, store: TokenStore, account: str) -> bool:
    """Forget `account`'s token and refresh cookie; whether there was one to forget."""
    return store.forget(account_name(account))


# --- staying logged in ----------------------------------------------------------------------


class RefreshStatus(StrEnum):
    FRESH = "fresh"  # lapses after the margin: nothing to do yet
    REFRESHED = "refreshed"
    REFUSED = "refused"  # Resy refused the cookie: log in again
    NO_COOKIE = "no_cookie"  # nothing to refresh with (a token from the environment)
    FAILED = "failed"  # Resy could not be asked (tried again next pass)
    UNKNOWN = "unknown"  # the token says no expiry


@dataclass(frozen=True)
class RefreshResult:
    account: str
    status: RefreshStatus
    expires_at: datetime | None
    error: str | None = None
    notified: str | None = None  # the notice written, if one was: expiring | expired


async def refresh_tokens(rt: Runtime) -> list[RefreshResult]:
    """Refresh every account's token that lapses within the margin, keeping the new token
    and cookie; tell the user (once each) a week before a token that cannot be refreshed
    lapses, and when it lapses."""
    if rt.tokens is None:  # tokens from the settings alone: nowhere to keep a new one
        return []
    margin = timedelta(days=rt.settings.auth_refresh_margin_days)
    results = []
    for account in rt.tokens.all().values():
        if not account.auth_token:
            continue
        result = await _refresh_one(rt, rt.tokens, account, margin)
        notice = _lapse_notice(account.name, result, rt.clock.now())
        if notice is not None and _add_once(rt, notice):
            result = replace(result, notified=str(notice.payload["event"]))
        results.append(result)
    return results


async def _refresh_one(
    rt: Runtime, store: TokenStore, account: AccountTokens, margin: timedelta
) -> RefreshResult:
    expires_at = account.expires_at
    if expires_at is None:
        return RefreshResult(account.name, RefreshStatus.UNKNOWN, None)
    left = expires_at - rt.clock.now()
    if not account.refresh_token:
        # Nothing to refresh with: said a week ahead, whatever the margin.
        soon = left <= max(margin, EXPIRY_WARNING)
        return RefreshResult(
            account.name, RefreshStatus.NO_COOKIE if soon else RefreshStatus.FRESH, expires_at
        )
    if left > margin:
        return RefreshResult(account.name, RefreshStatus.FRESH, expires_at)
    try:
        session = await rt.resy.refresh(account.refresh_token)
    except resy_errors.AuthError as exc:
        return RefreshResult(account.name, RefreshStatus.REFUSED, expires_at, _said(rt, exc))
    except resy_errors.ResyError as exc:
        return RefreshResult(account.name, RefreshStatus.FAILED, expires_at, _said(rt, exc))
    store.save(account.name, session.token, session.refresh_token)
    return RefreshResult(account.name, RefreshStatus.REFRESHED, token_expiry(session.token))


def _lapse_notice(account: str, result: RefreshResult, now: datetime) -> Notification | None:
    """The notice a token that was not refreshed calls for now, if any."""
    from resywatch.services import outbox

    expires_at = result.expires_at
    if expires_at is None or result.status in (RefreshStatus.FRESH, RefreshStatus.REFRESHED):
        return None
    if expires_at <= now:
        return outbox.token_lapsing(account, expires_at, now, why=_why(result))
    if result.status == RefreshStatus.FAILED or expires_at - now > EXPIRY_WARNING:
        return None  # a passing failure is tried again; the lapse notice still comes
    return outbox.token_lapsing(account, expires_at, now, why=_why(result))


def _why(result: RefreshResult) -> str:
    if result.status == RefreshStatus.NO_COOKIE:
        return "resywatch has no refresh cookie for it (the token came from the environment)"
    if result.status == RefreshStatus.REFUSED:
        return "Resy refused to refresh it"
    return f"it could not be refreshed ({result.error or result.status})"


def _add_once(rt: Runtime, notice: Notification) -> bool:
    """Write the notice unless its key is already written; whether it was."""
    with rt.db.write() as session:
        if session.exec(
            select(Notification.id).where(Notification.dedupe_key == notice.dedupe_key)
        ).first():
            return False
        notice.created_at = rt.clock.now()
        session.add(notice)
    return True


def _said(rt: Runtime, exc: Exception) -> str:
    return redact_text(str(exc), rt.secrets())


def _not_logged_in(name: str) -> str:
    if name == DEFAULT_ACCOUNT:
        return NotLoggedIn.__doc__ or ""
    return f"account {name!r} is not logged in: run `resywatch auth login --account {name}`"


def _flag(name: str) -> str:
    return "" if name == DEFAULT_ACCOUNT else f" --account {name}"


def _full_name(first: str | None, last: str | None) -> str | None:
    return " ".join(part for part in (first, last) if part) or None
