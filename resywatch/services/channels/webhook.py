"""`json://` and `jsons://`: the message document POSTed to a webhook."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from resywatch import __version__
from resywatch.errors import ConfigError
from resywatch.services.channels.base import Channel, Message, SendError, send_error
from resywatch.tls import tls_context

if TYPE_CHECKING:
    import httpx


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
                verify=tls_context(),
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


def webhook_channel(url: str, scheme: str, rest: str, shown: str) -> Channel:
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
