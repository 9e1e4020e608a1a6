"""The streaming client against every fault on the list, over real loopback sockets.

Each fault must end the turn with exactly one terminal event (checked by `collect`), a one-line
message of the right kind, the text received before the fault kept, and no exception escaping.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from demo.backends.base import Timeouts
from demo.core.events import (
    ContentChunk,
    RequestSent,
    ResponseStarted,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamWarning,
)
from tests.support import (
    DONE,
    Exchange,
    FaultServer,
    Signal,
    ask,
    chunk,
    collect,
    comment,
    error_reply,
    of_type,
    open_backend,
    reply_chunks,
    reply_text,
    sse,
    stream_reply,
)
from tests.support.faultserver import Framing

KEY = "sk-test-SECRETSECRET123"
KEY_ENV = {"X_KEY": KEY}


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server
        assert fault_server.handler_errors == []


def assert_one_line(message: str) -> None:
    assert message
    assert message == message.strip()
    assert all(c.isprintable() for c in message), repr(message)
    assert "<" not in message and ">" not in message, message


def error_of(events: list[StreamEvent]) -> StreamError:
    end = events[-1]
    assert isinstance(end, StreamError), events
    assert_one_line(end.message)
    return end


def seconds_between(earlier: StreamEvent, later: StreamEvent) -> float:
    return (later.t_ns - earlier.t_ns) / 1e9


# --- HTTP error statuses ---------------------------------------------------------------------

STATUS_KINDS = [
    (401, "auth"),
    (403, "auth"),
    (404, "not_found"),
    (429, "rate_limit"),
    (500, "server"),
    (503, "server"),
]


def json_error(status: int) -> tuple[dict[str, Any], str]:
    body = {
        "error": {
            "message": f"Problem {status} happened.\n  See the docs.",
            "type": "invalid_request_error",
            "code": None,
        }
    }
    return body, f"Problem {status} happened. See the docs."


def html_error(status: int) -> tuple[str, str]:
    body = (
        "<!DOCTYPE html>\n<html><head>\n<meta charset='utf-8'>\n"
        f"<title>\n  Gateway {status} &amp; friends\n</title>\n</head>\n"
        f"<body><h1>Gateway {status}</h1><p><b>nginx</b></p></body></html>\n"
    )
    return body, f"Gateway {status} & friends"


@pytest.mark.parametrize("body_format", ["json", "html"])
@pytest.mark.parametrize(("status", "kind"), STATUS_KINDS)
async def test_http_error_status(
    server: FaultServer, status: int, kind: str, body_format: str
) -> None:
    headers = {"Retry-After": "7"} if status == 429 else {}
    if body_format == "json":
        json_body, detail = json_error(status)
        handler = error_reply(status, json_body, headers=headers)
    else:
        html_body, detail = html_error(status)
        handler = error_reply(status, html_body, content_type="text/html", headers=headers)
    url = server.scenario(handler)

    async with open_backend(url, api_key_env="X_KEY", environ=KEY_ENV) as backend:
        events = await collect(backend, ask())

    assert [type(e) for e in events] == [RequestSent, ResponseStarted, StreamError]
    started = events[1]
    assert isinstance(started, ResponseStarted) and started.status == status
    error = error_of(events)
    assert error.kind == kind
    assert error.status == status
    assert error.message.startswith(f"HTTP {status} ")
    assert detail in error.message
    if status == 429:
        assert "retry after 7 s" in error.message
        assert error.retry_after_s == 7
    else:
        assert error.retry_after_s is None
    if kind == "auth":
        assert "X_KEY" in error.message


async def test_plain_text_error_body(server: FaultServer) -> None:
    url = server.scenario(
        error_reply(502, "upstream connect error or disconnect/reset before headers\r\n")
    )
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    error = error_of(events)
    assert (error.kind, error.status) == ("server", 502)
    assert error.message == (
        "HTTP 502 Bad Gateway: upstream connect error or disconnect/reset before headers"
    )


# --- Network failures before any response ----------------------------------------------------


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        # Bound but not listening: the kernel refuses connections at once, and the port cannot be
        # handed to anyone else while the test runs.
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with open_backend(f"http://127.0.0.1:{port}/v1") as backend:
            events = await collect(backend, ask())
    assert [type(e) for e in events] == [RequestSent, StreamError]
    error = error_of(events)
    assert error.kind == "connect"
    assert "refused" in error.message and "127.0.0.1" in error.message


async def test_dns_failure_fails_fast() -> None:
    started = time.perf_counter()
    async with open_backend("http://no-such-host.invalid/v1") as backend:
        events = await collect(backend, ask())
    elapsed = time.perf_counter() - started
    assert [type(e) for e in events] == [RequestSent, StreamError]
    error = error_of(events)
    assert error.kind == "dns"
    assert "no-such-host.invalid" in error.message
    assert elapsed < 5.0, f"a failed DNS lookup took {elapsed:.1f} s"


async def test_timeout_before_first_byte(server: FaultServer) -> None:
    left = Signal()

    async def silent(exchange: Exchange) -> None:
        await exchange.hang()
        left.set()

    url = server.scenario(silent)
    async with open_backend(url, timeouts=Timeouts(first_byte_s=0.3)) as backend:
        events = await collect(backend, ask())

    assert [type(e) for e in events] == [RequestSent, StreamError]
    error = error_of(events)
    assert error.kind == "timeout"
    assert "0.3 s" in error.message
    assert 0.29 <= seconds_between(events[0], error) < 2.0
    assert len(server.requests()) == 1
    # The client gave up on the connection rather than leaving it half-open.
    assert await left.wait(5)


# --- Faults in the middle of a stream --------------------------------------------------------


async def test_stall_mid_stream(server: FaultServer) -> None:
    async def stalls(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send_all(*reply_chunks("Hel", "lo")[:-1])
        await exchange.hang()

    url = server.scenario(stalls)
    async with open_backend(url, timeouts=Timeouts(stall_s=0.3)) as backend:
        events = await collect(backend, ask())

    error = error_of(events)
    assert error.kind == "stall"
    assert "0.3 s" in error.message
    assert reply_text(events) == "Hello"
    last_chunk = of_type(events, ContentChunk)[-1]
    assert 0.29 <= seconds_between(last_chunk, error) < 2.0


async def test_keepalive_comments_keep_a_slow_stream_alive(server: FaultServer) -> None:
    async def pings(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send(chunk("before"))
        for _ in range(8):
            await exchange.pause(0.1)
            await exchange.send(comment("ping"))
        await exchange.send_all(chunk(" after"), chunk(finish_reason="stop"), DONE)
        await exchange.end()

    url = server.scenario(pings)
    async with open_backend(url, timeouts=Timeouts(stall_s=0.3)) as backend:
        events = await collect(backend, ask())

    done = events[-1]
    assert isinstance(done, StreamDone) and done.finish_reason == "stop"
    assert reply_text(events) == "before after"
    first, second = of_type(events, ContentChunk)
    # Silence between the two pieces of text lasted well past the stall limit.
    assert seconds_between(first, second) >= 0.75


@pytest.mark.parametrize("how", ["rst", "fin"])
async def test_connection_lost_mid_stream(server: FaultServer, how: str) -> None:
    client_has_text = Signal()

    async def drops(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send_all(*reply_chunks("Hel", "lo")[:-1])
        # Only cut once the client holds the text, so the test is about what it keeps.
        await client_has_text.wait()
        if how == "rst":
            exchange.reset()
        else:
            # A clean close in the middle of a chunked body: the reply is truncated.
            await exchange.close()

    def watch(event: StreamEvent) -> None:
        if isinstance(event, ContentChunk) and event.text == "lo":
            client_has_text.set()

    url = server.scenario(drops)
    async with open_backend(url) as backend:
        events = await collect(backend, ask(), on_event=watch)

    error = error_of(events)
    assert error.kind == "reset"
    assert "mid-stream" in error.message
    assert reply_text(events) == "Hello"


@pytest.mark.parametrize(
    "bad",
    [
        sse('{"choices": [{"index": 0, "delta": {"content": "lost'),
        sse("42"),
        sse('["not", "an", "object"]'),
    ],
    ids=["broken-json", "number", "list"],
)
async def test_malformed_chunk_is_skipped_with_a_warning(server: FaultServer, bad: bytes) -> None:
    url = server.scenario(
        stream_reply(chunk(role="assistant", content=""), chunk("Hello"), bad, chunk(" world"))
    )
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    warnings = of_type(events, StreamWarning)
    assert len(warnings) == 1
    assert "skipped" in warnings[0].message
    assert_one_line(warnings[0].message)
    assert reply_text(events) == "Hello world"
    done = events[-1]
    assert isinstance(done, StreamDone) and done.saw_done_marker


async def test_in_band_error_after_200(server: FaultServer) -> None:
    in_band = {
        "error": {
            "message": "The model is overloaded.\nPlease try again later.",
            "type": "server_error",
            "code": 529,
        }
    }
    url = server.scenario(stream_reply(*reply_chunks("Hel", "lo")[:-1], in_band))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    error = error_of(events)
    assert error.kind == "provider"
    assert "The model is overloaded. Please try again later." in error.message
    assert error.status is None
    assert reply_text(events) == "Hello"


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_stream_ending_without_done_after_finish_reason(
    server: FaultServer, framing: Framing
) -> None:
    url = server.scenario(stream_reply(*reply_chunks("Hi", " there"), done=False, framing=framing))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    done = events[-1]
    assert isinstance(done, StreamDone)
    assert done.finish_reason == "stop"
    assert not done.saw_done_marker
    assert any("[DONE]" in w.message for w in of_type(events, StreamWarning))
    assert reply_text(events) == "Hi there"


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_stream_ending_without_done_or_finish_reason(
    server: FaultServer, framing: Framing
) -> None:
    url = server.scenario(
        stream_reply(*reply_chunks("Hi", " there")[:-1], done=False, framing=framing)
    )
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    error = error_of(events)
    assert error.kind == "protocol"
    assert "[DONE]" in error.message
    assert reply_text(events) == "Hi there"


@pytest.mark.parametrize("content_type", ["application/json", "text/html; charset=utf-8"])
async def test_non_sse_content_type(server: FaultServer, content_type: str) -> None:
    whole_reply = (
        '{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, '
        '"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]}'
    )
    url = server.scenario(error_reply(200, whole_reply, content_type=content_type))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    error = error_of(events)
    assert error.kind == "protocol"
    assert error.status == 200
    assert content_type.partition(";")[0] in error.message
    assert reply_text(events) == ""


# --- Content that must pass through untouched ------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_multibyte_characters_split_across_writes(
    server: FaultServer, framing: Framing
) -> None:
    text = "café 日本 🙂!"
    payload = sse(chunk(text))
    cuts: list[int] = []
    offset = payload.index(text.encode())
    for character in text:
        width = len(character.encode())
        cuts.extend(offset + inside for inside in range(1, width))
        offset += width
    gap_s = 0.02

    async def splits(exchange: Exchange) -> None:
        await exchange.start(framing=framing)
        await exchange.send(chunk(role="assistant", content=""))
        await exchange.send_split(payload, cuts, gap_s)
        await exchange.send_all(chunk(finish_reason="stop"), DONE)
        await exchange.end()

    url = server.scenario(splits)
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    assert isinstance(events[-1], StreamDone)
    (content,) = of_type(events, ContentChunk)
    assert content.text == text
    # The event could only be complete after every piece had been written.
    assert len(cuts) == 8
    assert seconds_between(events[0], content) >= 0.95 * len(cuts) * gap_s


async def test_markup_and_escape_sequences_pass_through_verbatim(server: FaultServer) -> None:
    pieces = [
        "[bold]x[/bold]",
        " [link=http://x]y[/link]",
        " \x1b[31mred\x1b[0m",
        " \x1b]8;;http://x\x1b\\osc link\x1b]8;;\x1b\\",
        " [/]",
        "\r\x07\x00",
    ]
    url = server.scenario(stream_reply(*reply_chunks(*pieces)))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    assert [c.text for c in of_type(events, ContentChunk)] == pieces


async def test_one_megabyte_chunk_arrives_whole(server: FaultServer) -> None:
    text = "abcdefghijklmnoé" * 62_500
    assert len(text) == 1_000_000
    url = server.scenario(stream_reply(*reply_chunks(text)))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    (content,) = of_type(events, ContentChunk)
    assert content.text == text
    assert isinstance(events[-1], StreamDone)


# --- stream_options rejected -----------------------------------------------------------------

REJECTS_STREAM_OPTIONS = {
    "error": {
        "message": "Unrecognized request argument supplied: stream_options",
        "type": "invalid_request_error",
    }
}


async def test_rejected_stream_options_retried_once_then_skipped(server: FaultServer) -> None:
    rejects = error_reply(400, REJECTS_STREAM_OPTIONS)
    streams = stream_reply(*reply_chunks("Hi"))

    async def picky(exchange: Exchange) -> None:
        await (rejects if "stream_options" in exchange.request.json() else streams)(exchange)

    url = server.scenario(picky)
    async with open_backend(url) as backend:
        first = await collect(backend, ask())
        second = await collect(backend, ask())

    assert [type(e) for e in first] == [
        RequestSent,
        ResponseStarted,
        StreamWarning,
        RequestSent,
        ResponseStarted,
        ContentChunk,
        StreamDone,
    ]
    assert "stream_options" in of_type(first, StreamWarning)[0].message
    assert reply_text(first) == "Hi"
    assert not of_type(second, StreamWarning)
    assert reply_text(second) == "Hi"

    bodies = [r.json() for r in server.requests()]
    assert len(bodies) == 3
    assert bodies[0]["stream_options"] == {"include_usage": True}
    assert "stream_options" not in bodies[1]
    assert {k: v for k, v in bodies[0].items() if k != "stream_options"} == bodies[1]
    assert "stream_options" not in bodies[2]


async def test_unrelated_400_is_reported_and_usage_still_asked_for(server: FaultServer) -> None:
    url = server.scenario(
        error_reply(400, {"error": {"message": "max_tokens is too large: 999999"}})
    )
    async with open_backend(url) as backend:
        first = await collect(backend, ask(max_tokens=999_999))
        second = await collect(backend, ask(max_tokens=999_999))

    for events in (first, second):
        error = error_of(events)
        assert (error.kind, error.status) == ("http", 400)
        assert "max_tokens is too large" in error.message
    bodies = [r.json() for r in server.requests()]
    # One retry without stream_options per turn; that it was refused too shows stream_options
    # was not the problem, so the next turn still asks for usage.
    assert ["stream_options" in body for body in bodies] == [True, False, True, False]


# --- Keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "body", "content_type"),
    [
        (KEY, {"error": {"message": f"Incorrect API key provided: {KEY}."}}, None),
        (KEY, {"error": {"message": "Incorrect API key provided: sk-test-****T123."}}, None),
        (KEY, f"<html><title>Bad key {KEY}</title></html>", "text/html"),
        (KEY, f"invalid key {KEY}", "text/plain"),
        ("correct-horse-battery-staple", "key correct-horse-battery-staple rejected", None),
    ],
    ids=["json", "json-partial", "html", "text", "unusual-key"],
)
async def test_key_echoed_in_an_error_is_not_shown(
    server: FaultServer, key: str, body: dict[str, object] | str, content_type: str | None
) -> None:
    url = server.scenario(error_reply(401, body, content_type=content_type))
    async with open_backend(url, api_key_env="X_KEY", environ={"X_KEY": key}) as backend:
        events = await collect(backend, ask())

    error = error_of(events)
    assert error.kind == "auth"
    assert key not in repr(events)
    assert "SECRETSECRET" not in repr(events) and "T123" not in error.message
    assert "X_KEY" in error.message
    assert server.requests()[0].header("authorization") == f"Bearer {key}"


async def test_key_echoed_in_stream_is_not_shown(server: FaultServer) -> None:
    url = server.scenario(
        stream_reply(
            chunk("Hi"),
            sse(f'{{"debug": "authorization: Bearer {KEY}'),
            {"error": {"message": f"key {KEY} was revoked mid-stream"}},
        )
    )
    async with open_backend(url, api_key_env="X_KEY", environ=KEY_ENV) as backend:
        events = await collect(backend, ask())
    assert error_of(events).kind == "provider"
    assert of_type(events, StreamWarning)
    assert "SECRETSECRET" not in repr(events)


async def test_authorization_header(server: FaultServer) -> None:
    url = server.scenario(stream_reply(*reply_chunks("ok")))
    async with open_backend(url, api_key_env="X_KEY", environ=KEY_ENV) as backend:
        await collect(backend, ask())
    async with open_backend(url) as backend:
        await collect(backend, ask())
    with_key, without_key = server.requests()
    assert with_key.header("authorization") == f"Bearer {KEY}"
    assert without_key.header("authorization") is None


@pytest.mark.parametrize("environ", [{}, {"X_KEY": ""}], ids=["unset", "empty"])
async def test_missing_key_is_a_config_error_before_any_request(
    server: FaultServer, environ: dict[str, str]
) -> None:
    url = server.scenario(stream_reply(*reply_chunks("should not be asked")))
    async with open_backend(url, api_key_env="X_KEY", environ=environ) as backend:
        events = await collect(backend, ask())
    assert len(events) == 1
    error = error_of(events)
    assert error.kind == "config"
    assert "X_KEY" in error.message
    assert server.requests() == []


# --- The consumer gives up -------------------------------------------------------------------


async def test_cancelling_the_consumer_closes_the_connection(server: FaultServer) -> None:
    connection_closed = Signal()

    async def endless(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send(chunk("first"))
        await exchange.hang()
        connection_closed.set()

    url = server.scenario(endless)
    got_text = asyncio.Event()

    async with open_backend(url) as backend:

        async def consume() -> None:
            async for event in backend.stream(ask()):
                if isinstance(event, ContentChunk):
                    got_text.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_text.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await connection_closed.wait(5)
