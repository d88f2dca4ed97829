"""The collaborators of one invocation, built lazily so `--help` opens nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from resywatch.cli.output import Output

if TYPE_CHECKING:
    from resywatch.accounts import TokenStore
    from resywatch.config import Settings
    from resywatch.db.engine import Database
    from resywatch.resy.client import ResyClient
    from resywatch.resy.gate import HostGate
    from resywatch.resy.transport import ApiCall
    from resywatch.runtime import Runtime

T = TypeVar("T")


@dataclass
class AppContext:
    """Global options, then the settings, database and output built from them on demand."""

    config_path: Path | None = None
    flags: dict[str, Any] = field(default_factory=dict)  # settings given as global options
    traceback: bool = False
    _output: Output | None = None
    _settings: Settings | None = None
    _database: Database | None = None
    _resy_calls: list[ApiCall] = field(default_factory=list)
    _secrets: list[str] = field(default_factory=list, repr=False)  # beyond the settings'
    # The account a command acts for, once it chose one (`choose_account`); until then the
    # client carries the settings' token, as it always did.
    _account: str | None = None

    @property
    def output(self) -> Output:
        if self._output is None:
            self.output = Output(json_mode=False)
        assert self._output is not None
        return self._output

    @output.setter
    def output(self, output: Output) -> None:
        output.mask = self.redact  # every message on stderr, and the error envelope
        self._output = output

    def settings(self) -> Settings:
        if self._settings is None:
            from resywatch.config import load_settings

            self._settings = load_settings(config_path=self.config_path, flags=self.flags)
        return self._settings

    def database(self, *, require_current: bool = True) -> Database:
        """The database, checked to be at the current schema unless told otherwise.

        The default SQLite file is created and migrated on first use: zero set-up.
        """
        if self._database is None:
            from resywatch.db.engine import Database

            self._database = Database(self.settings().effective_database_url)
        if require_current:
            from resywatch.db.migrate import ensure_current

            ensure_current(self._database, auto_migrate=self.settings().uses_default_database)
        return self._database

    def config_file(self) -> Path:
        """The config file in effect (it may not exist yet)."""
        from resywatch.config import config_file

        return config_file(self.config_path)

    def tokens(self) -> TokenStore:
        """Every account's tokens, from the config file in effect (and the environment)."""
        from resywatch.accounts import TokenStore

        return TokenStore(self.config_file())

    def choose_account(self, name: str | None) -> str:
        """The account this command acts for: `name` (--account), else RESYWATCH_ACCOUNT or
        `[general] account`, else `default`. Checked now, before anything is written: a bad
        or unknown name is exit 2."""
        from resywatch.accounts import account_name, pick

        chosen = account_name(name or self.settings().account)
        pick(self.tokens().all(), chosen)  # UnknownAccount unless logged in (or default)
        self._account = chosen
        return chosen

    def with_resy(self, work: Callable[[ResyClient], Awaitable[T]], **options: Any) -> T:
        """Run `work` with a Resy client built from the settings (`options` override them),
        in one event loop. The client obeys the request budget, pause and breaker shared
        through the database. Its calls are written to `api_call_log` at the end."""
        import asyncio

        from resywatch.resy.client import client_from_settings

        if "gate" not in options:
            options["gate"] = self._shared_politeness()
        if self._account is not None and "auth_token" not in options:
            # The one place a command's client gets its account's token.
            from resywatch.accounts import pick

            options["auth_token"] = pick(self.tokens().all(), self._account).auth_token

        async def main() -> T:
            async with client_from_settings(self.settings(), **options) as resy:
                try:
                    return await work(resy)
                finally:
                    self._resy_calls.extend(resy.calls)

        return asyncio.run(main())

    def with_runtime(
        self,
        work: Callable[[Runtime], Awaitable[T]],
        *,
        settings: Settings | None = None,
        **options: Any,
    ) -> T:
        """`with_resy`, handing the service the one Runtime: these settings (or the
        invocation's), the database, the client and the wall clock."""
        from resywatch.runtime import Runtime

        settings, db = settings or self.settings(), self.database()
        tokens, account = self.tokens(), self._account or "default"
        return self.with_resy(
            lambda resy: work(Runtime(settings, db, resy, tokens=tokens, account=account)),
            **options,
        )

    def _shared_politeness(self) -> HostGate | None:
        """The database's politeness gate; None when the database is not usable (`auth
        login` before any migration): the command then works with local limits only."""
        from resywatch.errors import DatabaseNotReady, DatabaseUnavailable
        from resywatch.services.politeness import PolitenessPolicy, SharedPoliteness

        try:
            db = self.database()
        except (DatabaseNotReady, DatabaseUnavailable):
            return None
        return SharedPoliteness(db, PolitenessPolicy.from_settings(self.settings()))

    def close(self) -> None:
        try:
            if self._resy_calls:
                self._record_resy_calls()
        finally:
            if self._database is not None:
                self._database.dispose()

    def _record_resy_calls(self) -> None:
        from resywatch.errors import ResywatchError
        from resywatch.services.api_log import record_calls

        calls, self._resy_calls = self._resy_calls, []
        try:
            record_calls(self.database(), calls)
        except ResywatchError as exc:  # the command's own outcome matters more than its log
            self.output.warn(f"could not record {len(calls)} Resy calls: {exc}")

    def add_secret(self, value: str) -> None:
        """A secret the settings do not hold (the password during `auth login`)."""
        from resywatch.redact import secret_forms

        self._secrets += secret_forms(value)

    def secrets(self) -> list[str]:
        """Every secret this invocation knows, to mask wherever text leaves the process."""
        from resywatch.errors import ResywatchError

        try:
            settings = self.settings()  # they may not have been needed yet
            stored = self.tokens().secrets()
        except ResywatchError:
            return list(self._secrets)
        return [*settings.secrets(), *stored, *self._secrets]

    def redact(self, text: str) -> str:
        from resywatch.redact import redact_text

        return redact_text(text, self.secrets())


def use(ctx: typer.Context, *, json_output: bool = False) -> AppContext:
    """The invocation's AppContext, with the command's output mode set."""
    app = ctx.find_object(AppContext)
    if app is None:  # a sub-app invoked on its own (tests)
        app = ctx.ensure_object(AppContext)
        ctx.call_on_close(app.close)
    app.output = Output(json_mode=json_output)
    return app
