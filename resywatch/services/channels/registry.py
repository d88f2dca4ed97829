"""The configured channels, built from their URLs (each checked before anything is sent)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from resywatch.errors import ConfigError
from resywatch.redact import BUILTIN_NOTIFY_SCHEMES, redact_notify_url
from resywatch.services.channels.apprise_channel import apprise_channel
from resywatch.services.channels.base import Channel
from resywatch.services.channels.files import NdjsonFileChannel, StreamChannel, ndjson_path
from resywatch.services.channels.webhook import webhook_channel

if TYPE_CHECKING:
    from resywatch.config import Settings

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)


@dataclass
class Channels:
    """The configured channels, closed together."""

    items: list[Channel]
    default: bool = False  # True when no URL was configured and stdout stands in

    def __iter__(self) -> Iterator[Channel]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

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
        return apprise_channel(url, scheme)
    shown = redact_notify_url(url)
    if scheme in ("json", "jsons"):
        return webhook_channel(url, scheme, match["rest"], shown)
    rest = match["rest"]  # ndjson://
    if rest == "-":
        return StreamChannel(url=url, kind="ndjson", stream=stdout, json_lines=True)
    if not rest.startswith("/") or rest.startswith("//") or rest.rstrip("/") == "":
        raise ConfigError(f"{shown!r}: use ndjson:///ABSOLUTE/PATH.ndjson or ndjson://-")
    return NdjsonFileChannel(url=url, kind="ndjson", path=ndjson_path(Path(rest), shown))


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
