"""Notification channels: where the outbox relay sends a message.

Built in: `json://host[:port]/path` and `jsons://…` (a JSON POST over http or https),
`ndjson:///absolute/path.ndjson` (one line appended per notification, fsync'd) and
`ndjson://-` (stdout). Every other URL goes to Apprise (ntfy, Slack, Discord, Telegram,
Pushover, email…), imported only when such a URL is configured: it is slow to import.
With no URL configured the channel is stdout: text for people, NDJSON with `--json`.

Channel URLs embed tokens, so they are shown only through `redact_notify_url`, and every
error a channel reports is scrubbed of that URL's secrets before it is stored or shown.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from resywatch import __version__
from resywatch.errors import ConfigError
from resywatch.redact import (
    BUILTIN_NOTIFY_SCHEMES,
    apprise_private_values,
    instantiate_apprise,
    notify_url_secrets,
    redact_notify_url,
    redact_text,
)

if TYPE_CHECKING:
    from types import ModuleType

    import httpx

    from resywatch.config import Settings
    from resywatch.db.models import Notification

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)
_ERROR_LIMIT = 500  # characters of an error kept in the database


# --- redaction -----------------------------------------------------------------------------


def scrub(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """The text with the given secrets and any URL's userinfo masked."""
    return redact_text(text, secrets)


# --- messages ------------------------------------------------------------------------------


def ago(seconds: float) -> str:
    """An age for people: "just now", "4 min ago", "2 h ago", "3 days ago"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86_400
    return f"{days} day{'s' if days > 1 else ''} ago"


@dataclass(frozen=True)
class Message:
    """What a channel sends: the outbox row's content (title and body are already short)."""

    id: int | None
    dedupe_key: str
    kind: str
    title: str
    body: str
    url: str | None
    payload: dict[str, object]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Notification) -> Message:
        return cls(
            id=row.id,
            dedupe_key=row.dedupe_key,
            kind=row.kind,
            title=row.title,
            body=row.body,
            url=row.url,
            payload=dict(row.payload or {}),
            created_at=row.created_at,
        )

    def document(self) -> dict[str, Any]:
        """The JSON shape webhooks and NDJSON sinks receive (stable field names)."""
        created = self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return {
            "id": self.id,
            "dedupe_key": self.dedupe_key,
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "payload": self.payload,
            "created_at": created,
        }

    def age_line(self, now: datetime) -> str:
        """How long ago the event happened: a drop may be gone when the message is late."""
        when = ago((now - self.created_at).total_seconds())
        return f"Opened {when}." if self.kind == "drop" else f"({when})"

    def text(self, now: datetime) -> str:
        """The body for people: body, link, age."""
        return "\n".join(line for line in (self.body, self.url, self.age_line(now)) if line)


# --- channels ------------------------------------------------------------------------------


class SendError(Exception):
    """A send failed; `permanent` means retrying cannot help (e.g. HTTP 404)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Channel(ABC):
    """One destination. `key` names it in the database without its secrets."""

    url: str = field(repr=False)  # holds tokens: repr shows `display`
    kind: str
    display: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    key: str = ""

    def __post_init__(self) -> None:
        self.display = self.display or redact_notify_url(self.url)
        self.secrets = tuple(dict.fromkeys([*self.secrets, *notify_url_secrets(self.url)]))
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.key = self.key or f"{self.kind.split(':')[0]}:{digest}"

    @abstractmethod
    def send(self, message: Message, now: datetime) -> None:
        """Deliver the message or raise SendError."""

    def close(self) -> None:  # noqa: B027 (most channels hold nothing to release)
        """Release connections (the channel is not used afterwards)."""

    def describe(self, error: BaseException) -> str:
        """An error as stored and shown: which channel, what happened, no secrets."""
        text = f"{self.display}: {error}" if str(error) else f"{self.display}: {error!r}"
        return scrub(text, self.secrets)[:_ERROR_LIMIT]


@dataclass
class WebhookChannel(Channel):
    """json:// and jsons://: POST the message document; 2xx is success, any 4xx except
    408 and 429 is permanent, everything else (5xx, timeouts, refused) is transient."""

    timeout_s: float = 10.0
    target: str = field(default="", repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    _client: httpx.Client | None = field(default=None, repr=False)

    def send(self, message: Message, now: datetime) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout_s,
                auth=self.auth,
                follow_redirects=False,
                headers={"User-Agent": f"resywatch/{__version__}"},
            )
        try:
            response = self._client.post(
                self.target,
                json=message.document(),
                # Lets a receiver drop the rare duplicate (a crash between send and record).
                headers={"Idempotency-Key": message.dedupe_key},
            )
        except httpx.TimeoutException:
            raise SendError(f"no answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = " ".join(response.text.split())[:200]
        reason = f"HTTP {status} {response.reason_phrase}" + (f": {detail}" if detail else "")
        raise SendError(reason, permanent=400 <= status < 500 and status not in (408, 429))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class NdjsonFileChannel(Channel):
    """ndjson:///path: one JSON line per notification, appended and fsync'd before success."""

    path: Path = Path()

    def send(self, message: Message, now: datetime) -> None:
        line = json.dumps(message.document(), ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, line.encode())
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise SendError(f"cannot append to the file: {exc.strerror or exc}") from None


@dataclass
class StreamChannel(Channel):
    """stdout: NDJSON lines (`ndjson://-`, or the default channel under --json), or a short
    text block for people (the default channel otherwise)."""

    stream: IO[str] | None = None
    json_lines: bool = True

    def send(self, message: Message, now: datetime) -> None:
        if self.stream is None:
            raise SendError("no output stream")
        if self.json_lines:
            text = json.dumps(message.document(), ensure_ascii=False, separators=(",", ":"))
        else:
            text = f"{message.title}\n{message.text(now)}\n"
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError) as exc:  # a closed pipe
            raise SendError(f"cannot write: {exc}") from None


@dataclass
class AppriseChannel(Channel):
    """Any URL Apprise understands. Apprise reports only success or failure (logging the
    reason), so its failures are all treated as transient and its log is the error text."""

    service: Any = field(default=None, repr=False)  # an apprise.Apprise holding one plugin

    def send(self, message: Message, now: datetime) -> None:
        apprise = _apprise_module()
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            ok = self.service.notify(title=message.title, body=message.text(now))
        if not ok:
            lines = [line for line in captured.getvalue().splitlines() if line.strip()]
            raise SendError(" ".join(lines[-2:]) or "Apprise reported a failure")


# --- building channels from settings -------------------------------------------------------


@dataclass
class Channels:
    """The configured channels, closed together."""

    items: list[Channel]
    default: bool = False  # True when no URL was configured and stdout stands in

    def __iter__(self) -> Iterator[Channel]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def writes_stdout(self) -> bool:
        return any(isinstance(c, StreamChannel) for c in self.items)

    def close(self) -> None:
        for channel in self.items:
            channel.close()


def build_channels(
    urls: list[str],
    *,
    stdout: IO[str] | None = None,
    json_lines: bool = False,
    timeout_s: float = 10.0,
) -> Channels:
    """The channels for these URLs, every URL checked first: one that cannot be used is a
    ConfigError naming it (redacted), before anything is claimed or sent."""
    if not urls:
        default = StreamChannel(
            url="stdout://",
            kind="stdout",
            display="stdout",
            key="stdout",
            stream=stdout,
            json_lines=json_lines,
        )
        return Channels([default], default=True)
    channels: list[Channel] = []
    problems: list[str] = []
    seen: set[str] = set()
    for url in urls:
        try:
            channel = _channel(url.strip(), stdout=stdout, timeout_s=timeout_s)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if channel.key not in seen:  # the same URL twice is one channel
            seen.add(channel.key)
            channels.append(channel)
    if problems:
        raise ConfigError("notify URLs: " + "; ".join(problems))
    return Channels(channels)


def _channel(url: str, *, stdout: IO[str] | None, timeout_s: float) -> Channel:
    match = _SCHEME.match(url)
    if match is None:
        raise ConfigError(f"{redact_notify_url(url)!r} is not a URL (expected scheme://...)")
    scheme = match["scheme"].lower()
    if scheme not in BUILTIN_NOTIFY_SCHEMES:
        return _apprise(url, scheme)
    shown = redact_notify_url(url)
    if scheme in ("json", "jsons"):
        return _webhook(url, scheme, match["rest"], shown, timeout_s)
    rest = match["rest"]  # ndjson://
    if rest == "-":
        return StreamChannel(url=url, kind="ndjson", stream=stdout, json_lines=True)
    if not rest.startswith("/") or rest.startswith("//") or rest.rstrip("/") == "":
        raise ConfigError(f"{shown!r}: use ndjson:///ABSOLUTE/PATH.ndjson or ndjson://-")
    return NdjsonFileChannel(url=url, kind="ndjson", path=Path(rest))


def _webhook(url: str, scheme: str, rest: str, shown: str, timeout_s: float) -> Channel:
    from urllib.parse import unquote, urlsplit

    http = "https" if scheme == "jsons" else "http"
    try:
        parts = urlsplit(f"{http}://{rest}")
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"{shown!r} is not a valid URL") from None
    if not parts.hostname:
        raise ConfigError(f"{shown!r} has no host (expected {scheme}://HOST[:PORT]/PATH)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port is not None else host
    target = parts._replace(netloc=netloc, fragment="").geturl()
    auth = None
    if parts.username is not None:  # Apprise's json:// takes user:password as basic auth
        auth = (unquote(parts.username), unquote(parts.password or ""))
    return WebhookChannel(url=url, kind=scheme, timeout_s=timeout_s, target=target, auth=auth)


def _apprise_module() -> ModuleType:
    with _apprise_warnings_ignored():
        import apprise

    # Apprise logs whole URLs ("Unparseable URL tgram://TOKEN..."): keep its records away
    # from any handler the host application installs; LogCapture still sees them.
    logging.getLogger("apprise").propagate = False
    return apprise


@contextmanager
def _apprise_warnings_ignored() -> Iterator[None]:
    # Apprise's email plugin imports the deprecated imghdr module: nothing our users can fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _apprise(url: str, scheme: str) -> Channel:
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


def channels_from_settings(
    settings: Settings, *, stdout: IO[str] | None = None, json_lines: bool = False
) -> Channels:
    """The channels `[notify] urls` names (stdout when none), checked."""
    return build_channels(
        settings.notify_urls,
        stdout=stdout,
        json_lines=json_lines,
        timeout_s=settings.notify_timeout_s,
    )


# --- listing and testing -------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelInfo:
    kind: str
    url: str  # redacted
    key: str
    default: bool


@dataclass(frozen=True)
class ChannelCheck:
    kind: str
    url: str  # redacted
    key: str
    ok: bool
    error: str | None
    latency_ms: float


def describe_channels(channels: Channels) -> list[ChannelInfo]:
    return [ChannelInfo(c.kind, c.display, c.key, channels.default) for c in channels]


def check_channels(channels: Channels, now: datetime) -> list[ChannelCheck]:
    """Send a test message to each channel now (not through the outbox), one by one."""
    message = Message(
        id=None,
        dedupe_key=f"test:{uuid.uuid4().hex}",
        kind="test",
        title="resywatch: test notification",
        body="If you can read this, resywatch can notify you here.",
        url=None,
        payload={},
        created_at=now,
    )
    checks = []
    for channel in channels:
        started = time.perf_counter()
        error = None
        try:
            channel.send(message, now)
        except SendError as exc:
            error = channel.describe(exc)
        except Exception as exc:  # report a broken channel, then test the others
            error = channel.describe(SendError(f"{type(exc).__name__}: {exc}"))
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        checks.append(
            ChannelCheck(channel.kind, channel.display, channel.key, error is None, error, elapsed)
        )
    return checks
