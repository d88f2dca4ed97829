"""Resy credentials: log in, check the token, forget it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from resywatch.config import check_config_writable, read_config_file, set_config_value
from resywatch.errors import ResywatchError
from resywatch.resy.errors import AuthExpired

if TYPE_CHECKING:
    from resywatch.resy.client import ResyClient

EXPIRY_WARNING = timedelta(days=7)


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
    config_file: Path
    expires_at: datetime | None


@dataclass(frozen=True)
class AuthStatus:
    account: Account
    expires_at: datetime | None
    expires_in_days: float | None
    expiring_soon: bool
    accepted: bool


def token_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT (read, not verified: only Resy can verify it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (IndexError, ValueError, KeyError, TypeError):
        return None


async def login(*, resy: ResyClient, email: str, password: str, config_file: Path) -> LoginResult:
    """Exchange email and password for a token and keep it in the config file (mode 0600,
    created with its directory when missing)."""
    check_config_writable(config_file)  # before Resy hands out a token we could not keep
    answer = await resy.login(email, password)
    set_config_value(config_file, "resy", "auth_token", answer.token)
    account = Account(
        user_id=answer.id,
        name=_full_name(answer.first_name, answer.last_name),
        email=answer.em_address or email,
        payment_method_id=answer.default_payment_method_id,
    )
    return LoginResult(account, config_file, token_expiry(answer.token))


async def status(*, resy: ResyClient, now: datetime) -> AuthStatus:
    """Who the token belongs to, when it expires, and whether Resy still accepts it."""
    if not resy.auth_token:
        raise NotLoggedIn()
    expires_at = token_expiry(resy.auth_token)
    try:
        user = await resy.user()
    except AuthExpired as exc:
        when = f" (its expiry: {expires_at:%Y-%m-%d %H:%M} UTC)" if expires_at else ""
        raise AuthExpired(
            f"Resy no longer accepts the auth token{when}: run `resywatch auth login`",
            status=exc.status,
        ) from None
    left = expires_at - now if expires_at else None
    return AuthStatus(
        account=Account(
            user_id=user.id,
            name=_full_name(user.first_name, user.last_name),
            email=user.em_address,
            payment_method_id=user.default_payment_method_id,
        ),
        expires_at=expires_at,
        expires_in_days=round(left / timedelta(days=1), 2) if left is not None else None,
        expiring_soon=left is not None and left < EXPIRY_WARNING,
        accepted=True,
    )


def logout(*, config_file: Path) -> bool:
    """Forget the token kept in the config file; whether there was one to forget."""
    if "resy_auth_token" not in read_config_file(config_file):
        return False
    set_config_value(config_file, "resy", "auth_token", None)
    return True


def _full_name(first: str | None, last: str | None) -> str | None:
    return " ".join(part for part in (first, last) if part) or None
