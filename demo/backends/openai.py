"""Streaming chat completions from any OpenAI-compatible server.

This is the only code that talks to providers. Each SSE event is timestamped as soon as it is
parsed off the socket; nothing downstream (rendering, printing) runs on this path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError

from demo.backends.base import BackendSpec, Timeouts
from demo.backends.errors import one_line, provider_error_message, redact, status_error
from demo.backends.errors import transport_error as classify_transport_error
from demo.core.conversation import ChatRequest
from demo.core.events import (
    ContentChunk,
    ErrorKind,
    RequestSent,
    ResponseStarted,
    ServerTiming,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamWarning,
    Usage,
)

_ERROR_BODY_LIMIT = 64 * 1024
_DRAIN_AFTER_DONE_S = 0.1


class OpenAIBackend:
    """An OpenAI-compatible `/chat/completions` endpoint, streamed with httpx + httpx-sse.

    The httpx client (and so the connection pool) is created on first use inside the event loop
    that streams, and kept across turns so keep-alive connections are reused, as a chat client
    talking to a provider would.
    """

    def __init__(
        self,
        spec: BackendSpec,
        base_url: str | None = None,
        *,
        timeouts: Timeouts | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self._spec = spec
        url = base_url or spec.base_url
        if not url:
            raise ValueError(f"backend {spec.name!r} has no base URL")
        self._base_url = url.rstrip("/")
        self._timeouts = timeouts or Timeouts()
        self._environ = os.environ if environ is None else environ
        self._client: httpx.AsyncClient | None = None
        self._send_usage_option = True
        """Cleared for good once the server rejects `stream_options`."""

    @property
    def spec(self) -> BackendSpec:
        return self._spec

    @property
    def base_url(self) -> str:
        return self._base_url

    def _key(self) -> str | None:
        if self._spec.api_key_env:
            return self._environ.get(self._spec.api_key_env) or None
        return None

    def _client_for_loop(self) -> httpx.AsyncClient:
        if self._client is None:
            t = self._timeouts
            # The first-byte and stall limits are enforced with asyncio timeouts (they differ by
            # phase); httpx's own read timeout is only a backstop.
            backstop = max(t.first_byte_s, t.stall_s) + 1.0
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    connect=t.connect_s, read=backstop, write=backstop, pool=t.connect_s
                ),
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
            )
        return self._client

    def prepare(self) -> None:
        """Build the client ahead of the first request (called on the streaming thread)."""
        self._client_for_loop()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _body(self, request: ChatRequest, with_usage: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._spec.model,
            "messages": [m.to_wire() for m in request.messages],
            "stream": True,
        }
        if with_usage:
            body["stream_options"] = {"include_usage": True}
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        body.update(self._spec.params)
        body.update(request.extra)
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        headers.update(self._spec.headers)
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _clean(self, message: str) -> str:
        key = self._key()
        return redact(message, (key,) if key else ())

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        missing = self._spec.missing_key(dict(self._environ))
        if missing:
            yield StreamError(
                time.perf_counter_ns(),
                "config",
                f"{self._spec.name} needs an API key: set the environment variable {missing}",
            )
            return
        with_usage = self._send_usage_option
        while True:
            retry = False
            async with contextlib.aclosing(self._attempt(request, with_usage)) as attempt:
                async for event in attempt:
                    if (
                        isinstance(event, StreamError)
                        and event.status == 400
                        and with_usage
                        and event.kind == "http"
                    ):
                        # Some servers reject stream_options outright; ask again without it.
                        with_usage = False
                        retry = True
                        yield StreamWarning(
                            event.t_ns, "server rejected stream_options; retried without usage"
                        )
                        break
                    if isinstance(event, ResponseStarted) and not with_usage and event.status < 400:
                        # Accepted without it: stream_options was the problem, so stop sending it.
                        # (A 400 to the retry as well means the request was at fault, not it.)
                        self._send_usage_option = False
                    yield event
            if not retry:
                return

    async def _attempt(
        self, request: ChatRequest, with_usage: bool
    ) -> AsyncGenerator[StreamEvent, None]:
        client = self._client_for_loop()
        url = f"{self._base_url}/chat/completions"
        body = self._body(request, with_usage)
        params = {k: v for k, v in body.items() if k not in ("messages", "stream")}
        clock = _SendClock()
        http_request = client.build_request(
            "POST", url, json=body, headers=self._headers(), extensions={"trace": clock.trace}
        )
        sent: RequestSent | None = None
        started = False
        try:
            clock.arm()
            async with asyncio.timeout(self._timeouts.first_byte_s):
                response = await client.send(http_request, stream=True)
            sent = clock.event(self._spec, self._base_url, params)
            yield sent
            try:
                started = True
                response.stream = _StallGuard(response.stream, self._timeouts.stall_s)
                content_type = response.headers.get("content-type", "")
                yield ResponseStarted(
                    time.perf_counter_ns(),
                    response.status_code,
                    content_type,
                    response.headers.get("x-request-id"),
                )
                if response.status_code >= 400:
                    yield await self._status_error(response)
                    return
                if "text/event-stream" not in content_type.partition(";")[0]:
                    yield StreamError(
                        time.perf_counter_ns(),
                        "protocol",
                        "expected an event stream but the server sent "
                        f"{content_type.partition(';')[0] or 'no content type'}",
                        status=response.status_code,
                    )
                    return
                async for event in self._events(EventSource(response)):
                    yield event
            finally:
                await response.aclose()
        except TimeoutError:
            if sent is None:
                yield clock.event(self._spec, self._base_url, params)
            host = httpx.URL(self._base_url).host
            if started:
                kind: ErrorKind = "stall"
                message = (
                    f"the stream from {host} stalled: no data for {self._timeouts.stall_s:g} s"
                )
            else:
                kind = "timeout"
                message = f"no response from {host} within {self._timeouts.first_byte_s:g} s"
            yield StreamError(time.perf_counter_ns(), kind, message)
        except httpx.HTTPError as exc:
            if sent is None:
                yield clock.event(self._spec, self._base_url, params)
            kind, message = classify_transport_error(exc, started, self._base_url)
            yield StreamError(time.perf_counter_ns(), kind, self._clean(message))

    async def _status_error(self, response: httpx.Response) -> StreamError:
        body = b""
        try:
            async for part in response.aiter_bytes():
                body += part
                if len(body) >= _ERROR_BODY_LIMIT:
                    break
        except httpx.HTTPError:
            pass
        kind, message, wait = status_error(
            response.status_code,
            response.reason_phrase,
            body,
            response.headers.get("content-type", ""),
            response.headers.get("retry-after"),
            self._spec.api_key_env,
        )
        return StreamError(
            time.perf_counter_ns(),
            kind,
            self._clean(message),
            status=response.status_code,
            retry_after_s=wait,
        )

    async def _events(self, source: EventSource) -> AsyncIterator[StreamEvent]:
        finish_reason: str | None = None
        now = time.perf_counter_ns
        events = source.aiter_sse()
        try:
            async for sse in events:
                t_ns = now()
                data = sse.data
                if not data:
                    continue
                if data == "[DONE]":
                    done = StreamDone(now(), finish_reason)
                    await _drain(events)
                    yield done
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    shown = one_line(self._clean(data), 60)
                    yield StreamWarning(t_ns, f"skipped a malformed chunk: {shown}")
                    continue
                if not isinstance(chunk, dict):
                    yield StreamWarning(t_ns, "skipped a chunk that is not a JSON object")
                    continue
                if "error" in chunk and not chunk.get("choices"):
                    message = provider_error_message(chunk) or "the server reported an error"
                    yield StreamError(t_ns, "provider", self._clean(f"server error: {message}"))
                    return
                for event in _chunk_events(t_ns, chunk):
                    yield event
                for choice in chunk.get("choices") or ():
                    if isinstance(choice, dict) and choice.get("finish_reason"):
                        finish_reason = str(choice["finish_reason"])
        except SSEError as exc:
            yield StreamError(now(), "protocol", one_line(str(exc)))
            return
        if finish_reason is not None:
            yield StreamWarning(now(), "the stream ended without [DONE]")
            yield StreamDone(now(), finish_reason, saw_done_marker=False)
        else:
            yield StreamError(
                now(), "protocol", "the stream ended before the reply finished (no [DONE])"
            )


async def _drain(events: AsyncIterator[object]) -> None:
    """Read the rest of the body after `[DONE]`, so httpx keeps the connection for the next turn.

    An unread remainder (even just the closing empty chunk) makes httpx close the connection, and
    every later turn would pay a new TCP and TLS handshake in its time to first token. Done before
    `StreamDone` is handed on (its time is already taken), because consumers stop reading at a
    terminal event; reading to the end also releases the connection to the pool at once. A
    server that keeps the stream open after `[DONE]` is not waited for long.
    """
    with contextlib.suppress(TimeoutError, httpx.HTTPError, SSEError):
        async with asyncio.timeout(_DRAIN_AFTER_DONE_S):
            async for _ in events:
                pass


class _SendClock:
    """t0: when the request really goes out, not when httpx starts preparing it.

    httpcore reports, through its trace extension, the moment it starts connecting (for a new
    connection) or writing the request headers (on a kept-alive one). Taking t0 there leaves
    httpx's own bookkeeping — a few hundred microseconds, more while a UI competes for the GIL —
    out of the time to first token, while a new connection's set-up, which the user does wait
    for, stays in.
    """

    _EVENTS = frozenset(
        {
            "connection.connect_tcp.started",
            "connection.connect_unix_socket.started",
            "http11.send_request_headers.started",
            "http2.send_request_headers.started",
        }
    )

    def __init__(self) -> None:
        self.t0_ns = time.perf_counter_ns()
        self._traced = False

    def arm(self) -> None:
        """The fallback t0, should the transport report nothing: just before sending."""
        self.t0_ns = time.perf_counter_ns()

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        if not self._traced and name in self._EVENTS:
            self.t0_ns = time.perf_counter_ns()
            self._traced = True

    def event(self, spec: BackendSpec, base_url: str, params: dict[str, object]) -> RequestSent:
        return RequestSent(self.t0_ns, spec.name, spec.model, base_url, params)


class _StallGuard(httpx.AsyncByteStream):
    """Fails the read when the body goes silent for longer than the stall limit.

    Wrapping the byte stream means any bytes, keep-alive comments included, count as life.
    """

    def __init__(self, inner: httpx.AsyncByteStream | httpx.SyncByteStream, stall_s: float):
        assert isinstance(inner, httpx.AsyncByteStream)
        self._inner = inner
        self._stall_s = stall_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        parts = self._inner.__aiter__()
        while True:
            try:
                async with asyncio.timeout(self._stall_s):
                    part = await anext(parts)
            except StopAsyncIteration:
                return
            yield part

    async def aclose(self) -> None:
        await self._inner.aclose()


def _chunk_events(t_ns: int, chunk: dict[str, Any]) -> list[StreamEvent]:
    """The content, usage and provider timings one parsed chunk carries."""
    events: list[StreamEvent] = []
    text_parts: list[str] = []
    reasoning_parts: list[str] = []
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            continue
        content = delta.get("content")
        if isinstance(content, str) and content:
            text_parts.append(content)
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            reasoning_parts.append(reasoning)
    if text_parts or reasoning_parts:
        events.append(ContentChunk(t_ns, "".join(text_parts), "".join(reasoning_parts)))

    usage = chunk.get("usage")
    if isinstance(usage, dict):
        details = usage.get("completion_tokens_details")
        reasoning_tokens = details.get("reasoning_tokens") if isinstance(details, dict) else None
        events.append(
            Usage(
                t_ns,
                _int(usage.get("prompt_tokens")),
                _int(usage.get("completion_tokens")),
                _int(reasoning_tokens),
            )
        )
    timing = server_timing(chunk)
    if timing is not None:
        events.append(ServerTiming(t_ns, *timing))
    return events


def server_timing(chunk: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
    """Provider-side timings in seconds, from Groq, Cerebras or llama.cpp chunks."""
    groq = chunk.get("x_groq")
    if isinstance(groq, dict) and isinstance(groq.get("usage"), dict):
        return "groq", _seconds(groq["usage"], ("queue", "prompt", "completion", "total"))
    cerebras = chunk.get("time_info")
    if isinstance(cerebras, dict):
        return "cerebras", _seconds(cerebras, ("queue", "prompt", "completion", "total"))
    llama = chunk.get("timings")
    if isinstance(llama, dict):
        values: dict[str, float] = {}
        for source, target in (("prompt_ms", "prompt_s"), ("predicted_ms", "completion_s")):
            if isinstance(llama.get(source), int | float):
                values[target] = float(llama[source]) / 1000.0
        if isinstance(llama.get("predicted_per_second"), int | float):
            values["decode_tokens_per_s"] = float(llama["predicted_per_second"])
        return ("llama.cpp", values) if values else None
    return None


def _seconds(block: dict[str, Any], names: tuple[str, ...]) -> dict[str, float]:
    return {
        f"{name}_s": float(block[f"{name}_time"])
        for name in names
        if isinstance(block.get(f"{name}_time"), int | float)
    }


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
