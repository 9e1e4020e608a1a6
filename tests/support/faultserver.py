"""A loopback HTTP/1.1 server that misbehaves on demand, byte by byte.

Providers fail in ways a well-behaved framework server cannot imitate: a multi-byte character split
across TCP segments, a stream that goes silent, a reset in the middle of a reply, framing cut short.
This server speaks HTTP/1.1 by hand over `asyncio.start_server`, so every byte and every pause is
the test's choice. It runs its own event loop in a background thread, so sync tests, async tests and
Textual `run_test` tests (each on their own loop) can all point a client at it.

A test registers a *scenario*, an async handler that receives an `Exchange`, and gets back a base
URL `http://127.0.0.1:PORT/<scenario>/v1`; the client's `base_url + "/chat/completions"` then
reaches that handler. Handlers run on the server's loop: they may await only `Exchange` methods,
`Signal.wait` and asyncio primitives created there. Every request is recorded before its handler
runs, so once a client has seen any response the request is already in `FaultServer.requests`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

Framing = Literal["chunked", "close"]
"""How a streamed body is delimited: HTTP chunks, or the server closing the connection."""

Handler = Callable[["Exchange"], Awaitable[None]]
"""A scenario: answers one request, however badly it likes."""

HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request exactly as the server read it off the socket."""

    method: str
    path: str
    """The request target, query string included."""
    scenario: str
    """The first path segment, which chose the handler."""
    headers: tuple[tuple[str, str], ...]
    """Header names lower-cased, in the order received."""
    body: bytes
    connection: int
    """Which TCP connection carried it (numbered from 1), to tell keep-alive reuse apart."""

    def header(self, name: str) -> str | None:
        """The value of a header, or None when it was not sent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Signal:
    """A one-shot flag that any thread can raise and any event loop (or thread) can wait for.

    The server's loop and the test's loop are different loops in different threads, so neither
    `asyncio.Event` nor `threading.Event` alone can carry a "now" between them without polling.
    """

    def __init__(self) -> None:
        self._future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lock = threading.Lock()

    def set(self) -> None:
        """Raise the flag; waking every waiter. Raising it twice is harmless."""
        with self._lock:
            if not self._future.done():
                self._future.set_result(None)

    def is_set(self) -> bool:
        """Whether the flag has been raised."""
        return self._future.done()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait on the current loop; True when raised, False when the timeout passed first."""
        done, _ = await asyncio.wait({asyncio.wrap_future(self._future)}, timeout=timeout)
        return bool(done)

    def wait_sync(self, timeout: float | None = None) -> bool:
        """Block the calling thread until raised; True when raised, False on timeout."""
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True


class Exchange:
    """One request/response on a connection, driven by a scenario handler.

    Streamed responses begin with `start` and end with `end` (or `close`, `reset`, `hang`); a whole
    response is `respond`. The connection is kept alive for the next request only when the response
    was properly delimited and complete, as a real server would.
    """

    def __init__(
        self, request: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.request = request
        """What the client sent."""
        self.sent_ns: list[int] = []
        """`time.perf_counter_ns()` right after each `send`/`send_split` piece left for the socket;
        the same clock the client stamps events with, since both run in this process."""
        self.peer_closed = Signal()
        """Raised when `hang` sees the client close its end."""
        self._reader = reader
        self._writer = writer
        self._framing: Framing | None = None
        self._complete = False
        self._open = True

    @property
    def reusable(self) -> bool:
        """Whether the connection may carry another request after this one."""
        return self._complete and self._open

    async def start(
        self,
        status: int = 200,
        *,
        content_type: str | None = "text/event-stream",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        framing: Framing = "chunked",
    ) -> None:
        """Send the status line and headers of a streamed response."""
        head = [f"HTTP/1.1 {status} {_reason(status)}"]
        if content_type is not None:
            head.append(f"Content-Type: {content_type}")
        head.append("Cache-Control: no-cache")
        if framing == "chunked":
            head.append("Transfer-Encoding: chunked")
        else:
            head.append("Connection: close")
        head.extend(f"{name}: {value}" for name, value in _pairs(headers))
        self._framing = framing
        await self._write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))

    async def send(self, data: bytes | Mapping[str, Any]) -> None:
        """Send body bytes in one write (one HTTP chunk when chunked); a mapping is sent as SSE."""
        payload = sse(data) if isinstance(data, Mapping) else data
        await self._write(self._frame(payload))
        self.sent_ns.append(time.perf_counter_ns())

    async def send_all(self, *parts: bytes | Mapping[str, Any]) -> None:
        """`send` each part in turn, one write each."""
        for part in parts:
            await self.send(part)

    async def send_split(self, data: bytes, cuts: Iterable[int], gap_s: float = 0.02) -> None:
        """Send `data` in separate writes cut at the given byte offsets, pausing between them.

        Each piece is written and drained on its own (and TCP_NODELAY is on, asyncio's default),
        so each leaves as its own segment; the pause lets the client read one before the next.
        """
        bounds = [0, *sorted(set(cuts)), len(data)]
        for index, (low, high) in enumerate(itertools.pairwise(bounds)):
            if index:
                await asyncio.sleep(gap_s)
            await self.send(data[low:high])

    async def end(self) -> None:
        """Finish a streamed body properly: the last chunk, or closing a close-delimited body."""
        if self._framing == "chunked":
            await self._write(b"0\r\n\r\n")
            self._complete = True
        else:
            await self.close()

    async def respond(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send a whole response delimited by Content-Length."""
        head = [f"HTTP/1.1 {status} {_reason(status)}"]
        if content_type is not None:
            head.append(f"Content-Type: {content_type}")
        head.append(f"Content-Length: {len(body)}")
        head.extend(f"{name}: {value}" for name, value in _pairs(headers))
        await self._write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self._complete = True

    async def write_raw(self, data: bytes) -> None:
        """Write bytes with no framing at all, to forge broken framing."""
        await self._write(data)

    async def pause(self, seconds: float) -> None:
        """Wait on the server's side; only ever shapes timing the client sees."""
        await asyncio.sleep(seconds)

    async def hang(self) -> None:
        """Say nothing more until the client closes its end of the connection."""
        while await self._reader.read(65536):
            pass
        self._open = False
        self.peer_closed.set()

    async def close(self) -> None:
        """Close the connection gracefully (FIN) right now, whatever was promised."""
        self._open = False
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed proxy would."""
        self._open = False
        sock = self._writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()

    def _frame(self, payload: bytes) -> bytes:
        if self._framing is None:
            raise RuntimeError("send() before start()")
        if self._framing == "chunked":
            if not payload:
                raise ValueError("an empty HTTP chunk would end the body; use end()")
            return b"%x\r\n%s\r\n" % (len(payload), payload)
        return payload

    async def _write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()


class FaultServer:
    """The server: scenarios in, recorded requests out.

    Use as a context manager (`with FaultServer() as server:`) or call `start` / `stop`.
    """

    def __init__(self) -> None:
        self.port = 0
        """The listening port, set by `start`."""
        self._handlers: dict[str, Handler] = {}
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._names = itertools.count(1)
        self._connections = itertools.count(1)
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://{HOST}:{self.port}"

    def scenario(self, handler: Handler, name: str | None = None) -> str:
        """Register a handler and return the base URL (ending in `/v1`) that reaches it."""
        label = name or f"s{next(self._names)}"
        if not label or "/" in label or "?" in label:
            raise ValueError(f"a scenario name is one path segment, not {label!r}")
        with self._lock:
            self._handlers[label] = handler
        return self.url(label)

    def url(self, name: str) -> str:
        """The base URL of a registered scenario."""
        return f"{self.origin}/{name}/v1"

    def requests(self, scenario: str | None = None) -> list[RecordedRequest]:
        """Requests received so far (for one scenario, if named), oldest first."""
        with self._lock:
            return [r for r in self._requests if scenario is None or r.scenario == scenario]

    @property
    def handler_errors(self) -> list[BaseException]:
        """Exceptions raised by handlers (a client leaving early is not one)."""
        with self._lock:
            return list(self._errors)

    def start(self) -> FaultServer:
        """Start listening on a free loopback port; returns once connections are accepted."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the fault server did not start")
        return self

    def stop(self) -> None:
        """Drop every connection and stop the server thread. Idempotent."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        loop.call_soon_threadsafe(stopping.set)
        thread.join(10)
        self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = next(self._connections)
        try:
            while True:
                request = await _read_request(reader, connection)
                if request is None:
                    break
                with self._lock:
                    self._requests.append(request)
                    handler = self._handlers.get(request.scenario, _unknown_scenario)
                exchange = Exchange(request, reader, writer)
                try:
                    await handler(exchange)
                except ConnectionError:
                    break
                except Exception as exc:
                    with self._lock:
                        self._errors.append(exc)
                    break
                if not exchange.reusable:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, _BadRequest):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()
            self._tasks.discard(task)


class _BadRequest(Exception):
    """The bytes received were not an HTTP/1.1 request this server understands."""


async def _read_request(reader: asyncio.StreamReader, connection: int) -> RecordedRequest | None:
    line = await reader.readline()
    if not line.strip():
        return None
    try:
        method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    except ValueError as exc:
        raise _BadRequest(line) from exc
    headers: list[tuple[str, str]] = []
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip().lower(), value.strip()))
    fields = dict(headers)
    if "chunked" in fields.get("transfer-encoding", ""):
        raise _BadRequest("chunked request bodies are not supported")
    length = int(fields.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    scenario = target.split("?", 1)[0].lstrip("/").split("/", 1)[0]
    return RecordedRequest(method, target, scenario, tuple(headers), body, connection)


async def _unknown_scenario(exchange: Exchange) -> None:
    message = f"no scenario named {exchange.request.scenario!r}"
    body = json.dumps({"error": {"message": message, "type": "not_found"}}).encode()
    await exchange.respond(404, body, content_type="application/json")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    return headers.items() if isinstance(headers, Mapping) else headers


# --- OpenAI-format stream pieces -------------------------------------------------------------

DONE = b"data: [DONE]\n\n"
"""The end-of-stream marker OpenAI sends."""


def sse(data: Mapping[str, Any] | str) -> bytes:
    """One SSE event: a mapping as compact JSON with raw UTF-8 (as most servers send), a str as is.

    A str is sent verbatim as the data field, which is how malformed payloads are forged.
    """
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return b"data: " + text.encode("utf-8") + b"\n\n"


def comment(text: str = "ping") -> bytes:
    """An SSE comment line, which proxies and providers send as a keep-alive."""
    return f": {text}\n\n".encode()


def chunk(
    content: str | None = None,
    *,
    reasoning: str | None = None,
    reasoning_field: str = "reasoning_content",
    role: str | None = None,
    finish_reason: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice; extra top-level fields (usage, x_groq, ...)."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[reasoning_field] = reasoning
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        **fields,
    }


def usage_chunk(
    prompt_tokens: int, completion_tokens: int, *, reasoning_tokens: int | None = None
) -> dict[str, Any]:
    """The final chunk OpenAI sends for `stream_options.include_usage`: no choices, only usage."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "m",
        "choices": [],
        "usage": usage,
    }


def reply_chunks(*pieces: str, finish_reason: str = "stop") -> list[dict[str, Any]]:
    """A whole ordinary reply: a role-only chunk, one chunk per piece, then the finish chunk."""
    return [
        chunk(role="assistant", content=""),
        *(chunk(piece) for piece in pieces),
        chunk(finish_reason=finish_reason),
    ]


# --- Ready-made scenarios --------------------------------------------------------------------


def stream_reply(
    *parts: Mapping[str, Any] | bytes,
    done: bool = True,
    framing: Framing = "chunked",
    gap_s: float = 0.0,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> Handler:
    """A 200 event stream of the given parts (mappings as SSE events, bytes verbatim).

    Args:
        parts: What to send, one write each.
        done: Whether to send `data: [DONE]` after the parts.
        framing: How the body is delimited.
        gap_s: Server-side pause between writes, to spread chunks out in time.
        headers: Extra response headers.
    """
    header_pairs = list(_pairs(headers))

    async def handler(exchange: Exchange) -> None:
        await exchange.start(headers=header_pairs, framing=framing)
        for index, part in enumerate([*parts, DONE] if done else parts):
            if index and gap_s:
                await exchange.pause(gap_s)
            await exchange.send(part)
        await exchange.end()

    return handler


def error_reply(
    status: int,
    body: Mapping[str, Any] | str | bytes = b"",
    *,
    content_type: str | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> Handler:
    """A whole (Content-Length) response: a mapping as JSON, a str as UTF-8 text."""
    if isinstance(body, Mapping):
        payload = json.dumps(body).encode()
        kind = content_type or "application/json"
    elif isinstance(body, str):
        payload = body.encode()
        kind = content_type or "text/plain; charset=utf-8"
    else:
        payload, kind = body, content_type or "application/octet-stream"
    header_pairs = list(_pairs(headers))

    async def handler(exchange: Exchange) -> None:
        await exchange.respond(status, payload, content_type=kind, headers=header_pairs)

    return handler


def never_reply() -> Handler:
    """Read the request, then say nothing until the client gives up."""

    async def handler(exchange: Exchange) -> None:
        await exchange.hang()

    return handler
