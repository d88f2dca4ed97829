"""Resy accounts: one auth token, and its refresh cookie, per account name.

The `default` account is the one resywatch always had: `[resy] auth_token` (and
`[resy] refresh_token`) in the config file, or RESYWATCH_RESY_AUTH_TOKEN. Any other account
NAME is the config file's `[accounts.NAME]` table (`auth_token`, `refresh_token`), written
by `resywatch auth login --account NAME`. Rows that act for an account (watches, notify
requests, scheduled snipes) name it, NULL meaning `default`.

`TokenStore` reads the file each time it is asked, so a pass of a long-running supervisor
uses the token another pass (or another process) refreshed, not the one it started with.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from resywatch.config import (
    DEFAULT_ACCOUNT,
    AccountSecrets,
    Settings,
    check_account_name,
    env_var,
    read_config_file,
    set_config_values,
)
from resywatch.errors import ConfigError, ExitCode, InvalidInput, ResywatchError

__all__ = ["DEFAULT_ACCOUNT", "AccountTokens", "TokenStore", "UnknownAccount"]


class UnknownAccount(ResywatchError):
    """No such account: log in to it first (`resywatch auth login --account NAME`)."""

    exit_code = ExitCode.USAGE
    code = "unknown_account"


@dataclass(frozen=True)
class AccountTokens:
    """One account's credentials. Never printed: repr hides both values."""

    name: str
    auth_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def expires_at(self) -> datetime | None:
        return token_expiry(self.auth_token) if self.auth_token else None


def account_name(name: str | None) -> str:
    """The account a row or an option names (None: `default`), checked (exit 2 if bad)."""
    if name is None:
        return DEFAULT_ACCOUNT
    try:
        return check_account_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def stored_name(name: str | None) -> str | None:
    """How a row keeps its account: NULL for `default`, so old rows and new agree."""
    name = account_name(name)
    return None if name == DEFAULT_ACCOUNT else name


def pick(table: Mapping[str, AccountTokens], name: str | None) -> AccountTokens:
    """The named account's tokens; an account never logged in to is UnknownAccount (exit
    2). `default` always exists, perhaps with no token (then calls say "not logged in")."""
    name = account_name(name)
    if name in table:
        return table[name]
    if name == DEFAULT_ACCOUNT:
        return AccountTokens(DEFAULT_ACCOUNT)
    known = ", ".join(table) or "none"
    raise UnknownAccount(
        f"unknown account {name!r} (accounts: {known}): run "
        f"`resywatch auth login --account {name}` first"
    )


def tokens_in_settings(settings: Settings) -> dict[str, AccountTokens]:
    """Every account's tokens as `settings` hold them (fixed when the settings were read)."""
    return _table(
        settings.resy_auth_token.get_secret_value() if settings.resy_auth_token else None,
        settings.resy_refresh_token.get_secret_value() if settings.resy_refresh_token else None,
        settings.accounts,
    )


@dataclass(frozen=True)
class TokenStore:
    """The accounts of one config file (plus the environment's token for `default`)."""

    path: Path
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def all(self) -> dict[str, AccountTokens]:
        values = read_config_file(self.path)
        try:
            accounts = {
                name: AccountSecrets.model_validate(table)
                for name, table in values.get("accounts", {}).items()
            }
        except ValidationError:
            raise ConfigError(f"config file {self.path}: invalid [accounts] table") from None
        return _table(
            self.environ.get(env_var("resy_auth_token")) or values.get("resy_auth_token"),
            self.environ.get(env_var("resy_refresh_token")) or values.get("resy_refresh_token"),
            accounts,
        )

    def save(self, name: str, auth_token: str, refresh_token: str | None) -> None:
        """Keep an account's new token (and its refresh cookie, or none) in one write."""
        set_config_values(
            self.path,
            _section(name),
            {"auth_token": auth_token, "refresh_token": refresh_token},
        )

    def forget(self, name: str) -> bool:
        """Remove an account's token and refresh cookie; whether the file had a token."""
        values = read_config_file(self.path)
        if name == DEFAULT_ACCOUNT:
            had = "resy_auth_token" in values or "resy_refresh_token" in values
        else:
            had = name in values.get("accounts", {})
        if had:
            set_config_values(
                self.path, _section(name), {"auth_token": None, "refresh_token": None}
            )
        return had

    def secrets(self) -> list[str]:
        """Every token and refresh cookie held now (none if the file cannot be read)."""
        try:
            table = self.all()
        except ResywatchError:
            return []
        return [
            secret
            for account in table.values()
            for secret in (account.auth_token, account.refresh_token)
            if secret
        ]

    def changed_at(self) -> datetime | None:
        """When the config file last changed (a login, a refresh, or a hand editing a token
        in it); None when there is none."""
        try:
            return datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        except OSError:
            return None

    def environment_token(self) -> bool:
        """Whether RESYWATCH_RESY_AUTH_TOKEN gives the default account's token."""
        return bool(self.environ.get(env_var("resy_auth_token")))


def _section(name: str) -> str:
    """Where the config file keeps an account's tokens."""
    name = account_name(name)
    return "resy" if name == DEFAULT_ACCOUNT else f"accounts.{name}"


def _table(
    default_token: str | None,
    default_refresh: str | None,
    accounts: Mapping[str, AccountSecrets],
) -> dict[str, AccountTokens]:
    table: dict[str, AccountTokens] = {}
    if default_token or default_refresh:
        table[DEFAULT_ACCOUNT] = AccountTokens(DEFAULT_ACCOUNT, default_token, default_refresh)
    for name in sorted(accounts):
        secrets = accounts[name]
        table[name] = AccountTokens(
            name,
            secrets.auth_token.get_secret_value() if secrets.auth_token else None,
            secrets.refresh_token.get_secret_value() if secrets.refresh_token else None,
        )
    return table


# A token this close to its expiry is warned about (`auth status`, health, the tokens job).
EXPIRY_WARNING = timedelta(days=7)


def token_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT (read, not verified: only Resy can verify it)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (IndexError, ValueError, KeyError, TypeError):
        return None
