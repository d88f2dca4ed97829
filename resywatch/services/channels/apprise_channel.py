"""Every URL resywatch does not handle itself goes to Apprise (ntfy, Slack, Discord,
Telegram, Pushover, email…), imported only when such a URL is configured: it is slow."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from resywatch.errors import ConfigError
from resywatch.redact import apprise_private_values, instantiate_apprise, redact_notify_url
from resywatch.services.channels.base import Channel, Message, SendError

if TYPE_CHECKING:
    from types import ModuleType


class _ThreadLog(logging.Handler):
    """Apprise's log lines written by one thread (Apprise 1.x, whose result carries no log):
    channels send in parallel, and one channel's error must not carry another's lines (nor
    that one's secrets)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


@dataclass
class AppriseChannel(Channel):
    """Any URL Apprise understands. Apprise reports only success or failure (logging the
    reason), so its failures are all treated as transient and its log is the error text.
    Its sends block and cannot be cancelled: Apprise is given the deadline where it takes
    one (2.x), and the caller abandons a send that overruns it anyway (see `submit`)."""

    service: Any = field(default=None, repr=False)  # an apprise.Apprise holding one plugin

    def send(self, message: Message, now: datetime) -> None:
        import inspect

        options = {}
        if "timeout" in inspect.signature(self.service.notify).parameters:
            options["timeout"] = self.timeout_s
        logger = logging.getLogger("apprise")
        captured = _ThreadLog()
        logger.addHandler(captured)
        try:
            result = self.service.notify(title=message.title, body=message.text(now), **options)
        finally:
            logger.removeHandler(captured)
        if result:
            return
        logs = getattr(result, "logs", None)  # Apprise 2.x: this call's own log
        texts = [str(entry.message) for entry in logs()] if callable(logs) else captured.lines
        lines = [line for text in texts for line in text.splitlines() if line.strip()]
        raise SendError(" ".join(lines[-2:]) or "Apprise reported a failure")


def _apprise_module() -> ModuleType:
    with _apprise_warnings_ignored():
        import apprise

    # Apprise logs whole URLs ("Unparseable URL tgram://TOKEN..."): keep its records away
    # from any handler the host application installs; LogCapture still sees them.
    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not logger.level or logger.level > logging.WARNING:  # the failure reasons we report
        logger.setLevel(logging.WARNING)
    return apprise


@contextmanager
def _apprise_warnings_ignored() -> Iterator[None]:
    # Apprise's email plugin imports the deprecated imghdr module: nothing our users can fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def apprise_channel(url: str, scheme: str) -> Channel:
    apprise = _apprise_module()
    plugin = instantiate_apprise(url)
    shown = redact_notify_url(url, plugin)  # Apprise's own rendering, private fields masked
    if plugin is None:
        raise ConfigError(
            f"{shown!r} is not a notification URL resywatch or Apprise understands "
            "(see https://github.com/caronc/apprise/wiki for the URL of each service)"
        )
    service = apprise.Apprise(asset=plugin.asset)
    service.add(plugin)
    return AppriseChannel(
        url=url,
        kind=f"apprise:{scheme}",
        display=shown,
        secrets=tuple(apprise_private_values(plugin, url)),
        service=service,
    )
