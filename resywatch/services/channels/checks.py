"""Listing the configured channels and sending each a test message now."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from resywatch.services.channels.base import Message, start_send, wait_for_send
from resywatch.services.channels.registry import Channels


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
