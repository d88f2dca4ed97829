"""A webhook on 127.0.0.1 that never answers properly, for the delivery deadline tests.

`silent`: reads the request and says nothing. `trickle`: answers one byte every `every`
seconds (a status line, then a header that never ends), so a per-read timeout never fires.
Bounded: each connection is held at most `hold_s`, and `close()` ends every one at once.
"""

from __future__ import annotations

import socket
import threading
from typing import Literal

_TRICKLE = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 4096


class HangingHook:
    def __init__(
        self,
        mode: Literal["silent", "trickle"] = "silent",
        *,
        every: float = 0.2,
        hold_s: float = 30,
    ) -> None:
        self.mode, self.every, self.hold_s = mode, every, hold_s
        self.requests = 0  # requests read in full
        self.got_request = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._closing.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                self._read_request(connection)
            except OSError:
                return
            with self._lock:
                self.requests += 1
            self.got_request.set()
            if self.mode == "silent":
                self._closing.wait(self.hold_s)
                return
            sent = 0
            while not self._closing.wait(self.every) and sent * self.every < self.hold_s:
                try:
                    connection.sendall(_TRICKLE[sent % len(_TRICKLE) : sent % len(_TRICKLE) + 1])
                except OSError:  # the client gave up and closed
                    return
                sent += 1

    @staticmethod
    def _read_request(connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the request was read")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the body was read")
            body += chunk
