"""Notification channels: where the outbox relay sends a message.

Built in: `json://host[:port]/path` and `jsons://…` (a JSON POST over http or https),
`ndjson:///absolute/path.ndjson` (one line appended per notification, fsync'd) and
`ndjson://-` (stdout). Every other URL goes to Apprise (ntfy, Slack, Discord, Telegram,
Pushover, email…), imported only when such a URL is configured: it is slow to import.
With no URL configured the channel is stdout: text for people, NDJSON with `--json`.

Channel URLs embed tokens, so they are shown only through `redact_notify_url`, and every
error a channel reports is scrubbed of that URL's secrets before it is stored or shown.

Deadlines. `[notify] timeout_s` is an overall deadline for one send, whatever the channel
does meanwhile: `Channel.submit` runs the send in a daemon thread of its own and the caller
waits for it at most that long (`send_within`, and the relay in `delivery`), so a webhook
that trickles one byte every few seconds, a hung Apprise plugin or a blocked pipe cannot
hold up the caller, the other channels or the process's exit. Webhooks also end their own
request at the deadline (an asyncio timeout around the whole exchange, body included), so
their threads and connections do not linger; a blocking send that never returns (Apprise)
is abandoned, and the channel's next send waits for it to return (within its own deadline),
so a stuck send holds one thread, not one per attempt.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Iterator
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


# The last send started to each channel (by key), process-wide like the threads themselves.
_LAST_SEND: dict[str, threading.Thread] = {}
_LAST_SEND_LOCK = threading.Lock()


class DeadlineMissed(SendError):
    """The send did not finish within the channel's deadline (always transient)."""


@dataclass
class Channel(ABC):
    """One destination. `key` names it in the database without its secrets; `timeout_s` is
    the overall deadline of one send."""

    url: str = field(repr=False)  # holds tokens: repr shows `display`
    kind: str
    display: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    key: str = ""
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        self.display = self.display or redact_notify_url(self.url)
        self.secrets = tuple(dict.fromkeys([*self.secrets, *notify_url_secrets(self.url)]))
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.key = self.key or f"{self.kind.split(':')[0]}:{digest}"

    @abstractmethod
    def send(self, message: Message, now: datetime) -> None:
        """Deliver the message or raise SendError (blocking; see `submit`)."""

    def submit(self, message: Message, now: datetime) -> concurrent.futures.Future[None]:
        """Start `send` in a daemon thread; its future. The caller decides how long to wait
        (`send_within`); a thread still running after that is abandoned, never joined.
        Sends to one channel go one at a time in this process, whichever Channel object
        makes them (the delivery job builds its channels anew each pass): a new one first
        waits, within its own deadline, for the one before to return, so a stuck send holds
        one thread, not one per attempt."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        deadline = time.monotonic() + self.timeout_s

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            if previous is not None:
                previous.join(max(0.0, deadline - time.monotonic()))
                if previous.is_alive():
                    future.set_exception(
                        DeadlineMissed(
                            f"an earlier send has not returned yet ({self.timeout_s:g} s later)"
                        )
                    )
                    return
            try:
                self.send(message, now)
            except BaseException as exc:  # handed to the waiter, who classifies it
                future.set_exception(exc)
            else:
                future.set_result(None)

        thread = threading.Thread(target=work, name=f"resywatch-send-{self.kind}", daemon=True)
        with _LAST_SEND_LOCK:
            previous = _LAST_SEND.get(self.key)
            _LAST_SEND[self.key] = thread
        try:
            thread.start()
        except BaseException:  # no thread to be had: the one before is still the last
            with _LAST_SEND_LOCK:
                if _LAST_SEND.get(self.key) is thread:
                    if previous is None:
                        del _LAST_SEND[self.key]
                    else:
                        _LAST_SEND[self.key] = previous
            raise
        return future

    def close(self) -> None:  # noqa: B027 (most channels hold nothing to release)
        """Release connections (the channel is not used afterwards)."""

    def describe(self, error: BaseException) -> str:
        """An error as stored and shown: which channel, what happened, no secrets."""
        text = f"{self.display}: {error}" if str(error) else f"{self.display}: {error!r}"
        return scrub(text, self.secrets)[:_ERROR_LIMIT]

    def missed(self) -> DeadlineMissed:
        return DeadlineMissed(f"no answer within {self.timeout_s:g} s")


def send_error(future: concurrent.futures.Future[None]) -> SendError | None:
    """What a send came to, once it ends: None when it succeeded, else a SendError (a crash
    in a channel is a transient failure, so one broken channel stops nothing else)."""
    try:
        exc = future.exception()
    except concurrent.futures.CancelledError:
        return SendError("cancelled: the channel was closed")
    if exc is None or isinstance(exc, SendError):
        return exc
    return SendError(f"{type(exc).__name__}: {exc}")


def start_send(
    channel: Channel, message: Message, now: datetime
) -> concurrent.futures.Future[None]:
    """`channel.submit`, with a channel that cannot even start a send (no thread to be had,
    a bug) failing that send instead of its caller: one broken channel stops no other."""
    try:
        return channel.submit(message, now)
    except Exception as exc:
        failed: concurrent.futures.Future[None] = concurrent.futures.Future()
        failed.set_exception(exc)
        return failed


def send_within(
    channel: Channel,
    message: Message,
    now: datetime,
    *,
    stop: threading.Event | None = None,
) -> SendError | None:
    """Send and wait at most the channel's deadline (less if `stop` is set meanwhile)."""
    future = start_send(channel, message, now)
    return wait_for_send(channel, future, time.monotonic() + channel.timeout_s, stop)


def wait_for_send(
    channel: Channel,
    future: concurrent.futures.Future[None],
    deadline: float,
    stop: threading.Event | None = None,
) -> SendError | None:
    """Wait for a submitted send until it ends, `deadline` (time.monotonic) passes or `stop`
    is set; what it came to (a miss or a stop is a transient SendError)."""
    while not future.done():
        left = deadline - time.monotonic()
        if left <= 0:
            return channel.missed()
        if stop is not None and stop.is_set():
            return SendError("stopped before the send finished")
        concurrent.futures.wait([future], timeout=min(left, STOP_POLL_S))
    return send_error(future)


STOP_POLL_S = 0.1  # how often a wait for a send looks at its stop event


@dataclass
class WebhookChannel(Channel):
    """json:// and jsons://: POST the message document; 2xx is success, any 4xx except
    408 and 429 is permanent, everything else (5xx, timeouts, refused) is transient.

    Requests run on an event loop of the channel's own (a daemon thread, started on the
    first send), so the deadline can cancel the whole exchange: httpx's own timeout is per
    read, and a server that trickles a byte every few seconds would never trip it."""

    target: str = field(default="", repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def send(self, message: Message, now: datetime) -> None:
        error = send_error(self.submit(message, now))  # waits: _post ends by its deadline
        if error is not None:
            raise error

    def submit(self, message: Message, now: datetime) -> concurrent.futures.Future[None]:
        """The request runs on the channel's loop (no thread of its own is needed: it is
        cancelled at its deadline, so it never outlives it)."""
        return self._run(self._post(message))

    async def _post(self, message: Message) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout_s,
                auth=self.auth,
                follow_redirects=False,
                headers={"User-Agent": f"resywatch/{__version__}"},
            )
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole exchange, body included
                response = await self._client.post(
                    self.target,
                    json=message.document(),
                    # Lets a receiver drop the rare duplicate (a crash between send and record).
                    headers={"Idempotency-Key": message.dedupe_key},
                )
        except (TimeoutError, httpx.TimeoutException):
            raise self.missed() from None
        except httpx.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = " ".join(response.text.split())[:200]
        reason = f"HTTP {status} {response.reason_phrase}" + (f": {detail}" if detail else "")
        raise SendError(reason, permanent=400 <= status < 500 and status not in (408, 429))

    def _run(self, work: Coroutine[Any, Any, None]) -> concurrent.futures.Future[None]:
        with self._lock:
            if self._loop is None:
                self._client = None  # a client belongs to the loop it was made on
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="resywatch-webhook", daemon=True
                )
                self._thread.start()
            return asyncio.run_coroutine_threadsafe(work, self._loop)

    def close(self) -> None:
        """Cancel a request still under way, close the connections, end the loop's thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()
            client, self._client = self._client, None
            if client is not None:
                await client.aclose()

        with contextlib.suppress(Exception):  # a loop that will not answer is left behind
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)
        if not thread.is_alive():
            loop.close()


# Errors that say the path can never be written as a file: retrying cannot help.
_NOT_A_FILE = frozenset({errno.EISDIR, errno.ENOTDIR, errno.EEXIST})


@dataclass
class NdjsonFileChannel(Channel):
    """ndjson:///path: one JSON line per notification, appended and fsync'd before success.

    A line is written whole or not at all: one write of the encoded line under an exclusive
    lock (so other relays appending to the same file wait), its byte count checked, and on
    a short write or an error (a full disk) the file is cut back to its size before, so no
    fragment is left for the next line to be glued onto; the send then fails (transient).
    """

    path: Path = Path()

    def send(self, message: Message, now: datetime) -> None:
        line = json.dumps(message.document(), ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode()
        readable = True  # to look at the last byte; a write-only file is written unchecked
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            except PermissionError:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                readable = False
        except OSError as exc:
            raise self._failure(exc) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            size = os.fstat(descriptor).st_size
            if readable and size and os.pread(descriptor, 1, size - 1) != b"\n":
                data = b"\n" + data  # a fragment someone else left: start a line of our own
            try:
                written = os.write(descriptor, data)
                if written != len(data):
                    raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
                os.fsync(descriptor)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, size)
                raise
        except OSError as exc:
            raise self._failure(exc) from None
        finally:
            os.close(descriptor)  # releases the lock

    def _failure(self, exc: OSError) -> SendError:
        permanent = exc.errno in _NOT_A_FILE
        return SendError(f"cannot append to the file: {exc.strerror or exc}", permanent=permanent)


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
            timeout_s=timeout_s,
            stream=stdout,
            json_lines=json_lines,
        )
        return Channels([default], default=True)
    channels: list[Channel] = []
    problems: list[str] = []
    seen: set[str] = set()
    for url in urls:
        try:
            channel = _channel(url.strip(), stdout=stdout)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        channel.timeout_s = timeout_s
        if channel.key not in seen:  # the same URL twice is one channel
            seen.add(channel.key)
            channels.append(channel)
    if problems:
        raise ConfigError("notify URLs: " + "; ".join(problems))
    return Channels(channels)


def _channel(url: str, *, stdout: IO[str] | None) -> Channel:
    match = _SCHEME.match(url)
    if match is None:
        raise ConfigError(f"{redact_notify_url(url)!r} is not a URL (expected scheme://...)")
    scheme = match["scheme"].lower()
    if scheme not in BUILTIN_NOTIFY_SCHEMES:
        return _apprise(url, scheme)
    shown = redact_notify_url(url)
    if scheme in ("json", "jsons"):
        return _webhook(url, scheme, match["rest"], shown)
    rest = match["rest"]  # ndjson://
    if rest == "-":
        return StreamChannel(url=url, kind="ndjson", stream=stdout, json_lines=True)
    if not rest.startswith("/") or rest.startswith("//") or rest.rstrip("/") == "":
        raise ConfigError(f"{shown!r}: use ndjson:///ABSOLUTE/PATH.ndjson or ndjson://-")
    return NdjsonFileChannel(url=url, kind="ndjson", path=_ndjson_path(Path(rest), shown))


def _ndjson_path(path: Path, shown: str) -> Path:
    """The file path, refused now when it can never be a file (a directory, or below a
    file): retrying such a send is pointless, and the queued notifications stay pending
    until the URL is fixed instead of failing one by one. The path itself is not echoed:
    it may hold what redaction masked."""
    if path.is_dir():
        raise ConfigError(f"{shown!r}: the path is a directory; name a file in it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{shown!r}: a parent of the path is a file, not a directory")
            break
    return path


def _webhook(url: str, scheme: str, rest: str, shown: str) -> Channel:
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
    return WebhookChannel(url=url, kind=scheme, target=target, auth=auth)


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


def check_channels(
    channels: Channels, now: datetime, *, stop: threading.Event | None = None
) -> list[ChannelCheck]:
    """Send a test message to every channel now (not through the outbox), all at once, each
    within its deadline: the slowest channel sets how long this takes, not their sum."""
    from resywatch.services import outbox  # lazily: it loads the database models

    message = Message.from_row(outbox.test_message(now))
    started = time.monotonic()
    finished: dict[int, float] = {}
    sends = []
    for index, channel in enumerate(channels):
        future = start_send(channel, message, now)

        def stamp(_: concurrent.futures.Future[None], i: int = index) -> None:
            finished.setdefault(i, time.monotonic())

        future.add_done_callback(stamp)
        sends.append((channel, future))
    checks = []
    for index, (channel, future) in enumerate(sends):
        error = wait_for_send(channel, future, started + channel.timeout_s, stop)
        text = channel.describe(error) if error is not None else None
        ended = min(finished.get(index, time.monotonic()), started + channel.timeout_s)
        checks.append(
            ChannelCheck(
                channel.kind,
                channel.display,
                channel.key,
                error is None,
                text,
                round((ended - started) * 1000, 1),
            )
        )
    return checks
