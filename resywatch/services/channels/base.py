"""What every channel shares: the message it sends, the send under a deadline, its errors.

Deadlines. `[notify] timeout_s` is an overall deadline for one send, whatever the channel
does meanwhile: `Channel.submit` runs the send in a daemon thread of its own and the caller
waits for it at most that long (`wait_for_send`, and the relay in `delivery`), so a webhook
that trickles one byte every few seconds, a hung Apprise plugin or a blocked pipe cannot
hold up the caller, the other channels or the process's exit. Webhooks also end their own
request at the deadline (an asyncio timeout around the whole exchange, body included), so
their threads and connections do not linger; a blocking send that never returns (Apprise)
is abandoned, and the channel's next send waits for it to return (within its own deadline),
so a stuck send holds one thread, not one per attempt.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from resywatch.redact import notify_url_secrets, redact_notify_url, redact_text

if TYPE_CHECKING:
    from resywatch.db.models import Notification

_ERROR_LIMIT = 500  # characters of an error kept in the database
STOP_POLL_S = 0.1  # how often a wait for a send looks at its stop event


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


class SendError(Exception):
    """A send failed; `permanent` means retrying cannot help (e.g. HTTP 404)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


# One lock per channel (by key), process-wide like the send threads themselves: held by the
# send in progress, so a stuck send keeps every later one to that channel waiting.
_SEND_LOCKS: dict[str, threading.Lock] = {}
_SEND_LOCKS_LOCK = threading.Lock()


def _send_lock(key: str) -> threading.Lock:
    with _SEND_LOCKS_LOCK:
        return _SEND_LOCKS.setdefault(key, threading.Lock())


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
        (`wait_for_send`); a thread still running after that is abandoned, never joined.
        Sends to one channel go one at a time in this process, whichever Channel object
        makes them (the delivery job builds its channels anew each pass): a new one first
        waits, within its own deadline, for the send in progress to return, so a stuck send
        holds one thread, not one per attempt."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        deadline = time.monotonic() + self.timeout_s
        lock = _send_lock(self.key)

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            # Not the thread before ours, but the send in progress: one that gave up waiting
            # behind a stuck send must not let the next one past it. A thread that starts
            # after its deadline (a starved machine) sends nothing: its waiter has given up.
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not lock.acquire(timeout=remaining):
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
            finally:
                lock.release()

        threading.Thread(target=work, name=f"resywatch-send-{self.kind}", daemon=True).start()
        return future

    def close(self) -> None:  # noqa: B027 (most channels hold nothing to release)
        """Release connections (the channel is not used afterwards)."""

    def describe(self, error: BaseException) -> str:
        """An error as stored and shown: which channel, what happened, no secrets."""
        text = f"{self.display}: {error}" if str(error) else f"{self.display}: {error!r}"
        return redact_text(text, self.secrets)[:_ERROR_LIMIT]

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
