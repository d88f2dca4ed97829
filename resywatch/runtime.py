"""What every service works with, in one object passed first: the settings, the database,
the Resy client, the clock and this worker's name. The CLI and the scheduler build it once
per command or process; tests build it around their own database, sandbox and clock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from resywatch.accounts import DEFAULT_ACCOUNT, TokenStore, account_name, pick, tokens_in_settings
from resywatch.clock import SYSTEM_CLOCK, Clock
from resywatch.config import Settings
from resywatch.db.engine import Database
from resywatch.db.leases import WorkerId, this_worker

if TYPE_CHECKING:  # the HTTP stack is imported by whoever builds the client
    from resywatch.resy.client import ResyClient


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    resy: ResyClient
    clock: Clock = SYSTEM_CLOCK
    worker: WorkerId = field(default_factory=this_worker)
    # Set when the process is stopping: work running in a thread (which cancelling its task
    # cannot reach) watches it and returns early.
    stop: threading.Event = field(default_factory=threading.Event)
    # Every account's tokens, read from the config file when asked (None: as the settings
    # hold them, with nowhere to keep a refreshed one).
    tokens: TokenStore | None = None
    # The account `resy` acts for: what new watches, requests and snipes remember.
    account: str = DEFAULT_ACCOUNT

    def secrets(self) -> list[str]:
        """Every secret to mask: the settings', the client's, and every account's tokens as
        they are now (a token refreshed after the settings were read included)."""
        stored = self.tokens.secrets() if self.tokens is not None else []
        return [*self.settings.secrets(), *self.resy.secrets(), *stored]

    def for_account(self, name: str | None) -> Runtime:
        """This runtime acting for account `name` (None: `default`): the same client and
        budget, carrying that account's token as it is now. Unknown: UnknownAccount."""
        name = account_name(name)
        table = self.tokens.all() if self.tokens is not None else tokens_in_settings(self.settings)
        token = pick(table, name).auth_token
        if token == self.resy.auth_token:
            # The same account (its caller's runtime, as handed), or another with this token.
            return self if name == self.account else replace(self, account=name)
        return replace(self, resy=self.resy.with_token(token), account=name)
