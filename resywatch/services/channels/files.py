"""`ndjson://`: one JSON line per notification, to a file or to stdout; and the stdout
channel that stands in when no URL is configured."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from resywatch.errors import ConfigError
from resywatch.services.channels.base import Channel, Message, SendError

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


def ndjson_path(path: Path, shown: str) -> Path:
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
