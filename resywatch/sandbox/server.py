"""Running the sandbox: `serve` blocks (the CLI); `run_in_thread` serves tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from resywatch.sandbox.app import create_app
from resywatch.sandbox.config import SandboxConfig
from resywatch.sandbox.state import SandboxState

DEFAULT_PORT = 8765
_STARTUP_TIMEOUT_S = 10.0


def _uvicorn_config(app: Starlette, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        ws="none",
        # Let idle keep-alive connections go quickly so that stopping never waits on them.
        timeout_graceful_shutdown=2,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it Nagle + delayed ACKs add ~40 ms to responses written in two parts.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _base_url(sock: socket.socket) -> str:
    bound_host, bound_port = sock.getsockname()[:2]
    url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return f"http://{url_host}:{bound_port}"


def serve(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    log_level: str = "warning",
    on_listening: Callable[[str], None] | None = None,
) -> None:
    """Serve the sandbox until SIGINT/SIGTERM (uvicorn, one process, one event loop).

    `on_listening` gets the base URL (with the port bound, when 0 asked for any) once the
    socket is bound, and never when binding fails (OSError)."""
    app = create_app(config)
    sock = _bind(host, port)
    try:
        if on_listening is not None:
            on_listening(_base_url(sock))
        uvicorn.Server(_uvicorn_config(app, log_level)).run(sockets=[sock])
    finally:
        sock.close()


@dataclass(frozen=True)
class SandboxHandle:
    """A running sandbox: where to reach it and its live state (clock, world, faults, traffic)."""

    base_url: str
    state: SandboxState
    app: Starlette


@contextmanager
def run_in_thread(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[SandboxHandle]:
    """Start the sandbox on ``host:port`` (0: a free port) in a background thread.

    Yields once it accepts connections; stops it and joins the thread on exit.
    """
    app = create_app(config)
    sock = _bind(host, port)
    server = uvicorn.Server(_uvicorn_config(app, "warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="resy-sandbox", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        yield SandboxHandle(_base_url(sock), app.state.sandbox, app)
    finally:
        server.should_exit = True
        thread.join(timeout=_STARTUP_TIMEOUT_S)
        sock.close()
