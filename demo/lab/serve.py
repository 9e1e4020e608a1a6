"""Running the lab server under uvicorn on a socket it binds itself.

Binding the socket here (rather than letting uvicorn do it) is what makes port 0 usable: the real
port is known before the server starts, so it can be announced the moment the server listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
from collections.abc import Callable, Generator, Mapping

import uvicorn
from starlette.types import ASGIApp

from demo.lab.profiles import Profile
from demo.lab.server import create_app

STDIN_FD = 0

WARM_UP_TIMEOUT_S = 10.0
"""How long the warm-up request may take before start-up fails."""
GRACEFUL_SHUTDOWN_S = 2
"""How long shutdown waits for requests that are still being answered."""


class LabUvicorn(uvicorn.Server):
    """A uvicorn server that warms up, reports readiness, and stops promptly, even mid-reply."""

    def __init__(
        self, config: uvicorn.Config, on_ready: Callable[[], None], warm_up_model: str | None
    ) -> None:
        super().__init__(config)
        self._on_ready = on_ready
        self._warm_up_model = warm_up_model

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started or self.should_exit:
            return
        if self._warm_up_model is not None and sockets:
            await warm_up(sockets[0], self._warm_up_model)
        self._on_ready()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # A reply at laptop pace can run for minutes; waiting for it would stall the exit. Dropping
        # the connections is what a provider going away does, and each reply then ends as it
        # would for a departed client: quietly.
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises a captured SIGINT/SIGTERM after shutting down, which turns a clean
        # stop into a KeyboardInterrupt or a death by signal. Here a signal only means "stop".
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (0 picks a free port)."""
    return socket.create_server((host, port), family=_family(host), backlog=128)


def url_of(sock: socket.socket) -> str:
    """The base URL of the server listening on `sock`."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(
    app: ASGIApp, on_ready: Callable[[], None], warm_up_model: str | None = None
) -> LabUvicorn:
    """A quiet uvicorn server for the lab app: no access log, no lifespan, prompt shutdown.

    Args:
        app: The lab app.
        on_ready: Called once the server accepts requests (and has warmed up).
        warm_up_model: A model to stream one tiny reply from before `on_ready`, or None.
    """
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return LabUvicorn(config, on_ready, warm_up_model)


def run(
    host: str,
    port: int,
    *,
    profiles: Mapping[str, Profile],
    on_ready: Callable[[str], None],
    exit_on_stdin_eof: bool = False,
) -> None:
    """Serve until a signal (or, if asked, the end of standard input) says stop.

    Args:
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        profiles: The models to serve.
        on_ready: Called with the base URL once the server accepts requests.
        exit_on_stdin_eof: Stop when standard input reaches its end. A parent that spawned the
            server with a pipe as its stdin holds the other end, so the server cannot outlive it,
            however the parent ends.
    """
    sock = bind(host, port)
    url = url_of(sock)
    server = make_server(create_app(profiles), lambda: on_ready(url), next(iter(profiles)))
    if exit_on_stdin_eof:
        threading.Thread(
            target=_stop_at_stdin_eof, args=(server,), name="lab-stdin-watch", daemon=True
        ).start()
    server.run(sockets=[sock])


async def warm_up(sock: socket.socket, model: str) -> None:
    """Stream one tiny reply through the listening socket, and discard it.

    The first request a fresh server handles pays for lazy imports and first calls (about 15 ms
    here), which would show up as extra time to first token on the app's first turn.
    """
    host, port = sock.getsockname()[:2]
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "warm-up"}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "lab": {"ttft_s": 0, "tokens_per_s": 1_000_000, "output_tokens": 2},
        }
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head + body)
        async with asyncio.timeout(WARM_UP_TIMEOUT_S):
            await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _stop_at_stdin_eof(server: uvicorn.Server) -> None:
    # Read the raw descriptor: a daemon thread blocked inside the buffered `sys.stdin` would make
    # the interpreter abort at exit, unable to take the buffer's lock.
    with contextlib.suppress(OSError):
        while os.read(STDIN_FD, 4096):
            pass
    # uvicorn checks this flag on every tick of its main loop (10 times a second).
    server.should_exit = True


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
