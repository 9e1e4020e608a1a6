"""Wire parsing of well-formed streams: what the client sends and the events it makes of replies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from demo.backends.base import Timeouts
from demo.backends.openai import OpenAIBackend
from demo.core.conversation import ChatRequest, Conversation, Message
from demo.core.events import (
    ContentChunk,
    RequestSent,
    ResponseStarted,
    ServerTiming,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamWarning,
    Usage,
)
from tests.support import (
    DONE,
    Exchange,
    FaultServer,
    ask,
    chunk,
    collect,
    comment,
    of_type,
    open_backend,
    reply_chunks,
    reply_text,
    sse,
    stream_reply,
    usage_chunk,
)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server
        assert fault_server.handler_errors == []


async def test_ordinary_reply(server: FaultServer) -> None:
    url = server.scenario(
        stream_reply(*reply_chunks("Hello", ", ", "world"), headers={"x-request-id": "req-42"})
    )
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    assert [type(e) for e in events] == [
        RequestSent,
        ResponseStarted,
        ContentChunk,
        ContentChunk,
        ContentChunk,
        StreamDone,
    ]
    sent, started = events[0], events[1]
    assert isinstance(sent, RequestSent)
    assert (sent.backend, sent.model, sent.base_url) == ("t", "m", url)
    assert isinstance(started, ResponseStarted)
    assert (started.status, started.content_type, started.request_id) == (
        200,
        "text/event-stream",
        "req-42",
    )
    assert [c.text for c in of_type(events, ContentChunk)] == ["Hello", ", ", "world"]
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert (done.finish_reason, done.saw_done_marker, done.cancelled) == ("stop", True, False)


def crlf(event: bytes) -> bytes:
    return event.replace(b"\n", b"\r\n")


@pytest.mark.parametrize("line_end", ["lf", "crlf"])
async def test_comments_and_other_sse_fields_are_ignored(
    server: FaultServer, line_end: str
) -> None:
    parts = [
        comment("OPENROUTER PROCESSING"),
        b"retry: 3000\n\n",
        sse(chunk(role="assistant", content="")),
        b"event: message\nid: 1\n" + sse(chunk("one")),
        comment("ping"),
        b":\n",
        b'data:{"choices": [{"index": 0, "delta": {"content": " two"}}]}\n\n',
        sse(chunk(finish_reason="stop")),
        comment("ping"),
    ]
    if line_end == "crlf":
        parts = [crlf(p) for p in parts]
    url = server.scenario(stream_reply(*parts))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    assert [c.text for c in of_type(events, ContentChunk)] == ["one", " two"]
    assert not of_type(events, StreamWarning)
    done = events[-1]
    assert isinstance(done, StreamDone) and done.finish_reason == "stop"


async def test_role_only_and_empty_chunks_make_no_content(server: FaultServer) -> None:
    url = server.scenario(
        stream_reply(
            chunk(role="assistant"),
            chunk(role="assistant", content=""),
            chunk(),
            {"choices": [{"index": 0, "delta": {"content": None}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": None}], "usage": None},
            chunk("x"),
            chunk(content="", finish_reason="stop"),
        )
    )
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    assert [(c.text, c.reasoning) for c in of_type(events, ContentChunk)] == [("x", "")]
    assert not of_type(events, Usage)
    assert not of_type(events, StreamWarning)


async def test_a_chunk_may_carry_several_tokens(server: FaultServer) -> None:
    url = server.scenario(stream_reply(*reply_chunks("The quick brown fox", " jumps over\n\n")))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    assert [c.text for c in of_type(events, ContentChunk)] == [
        "The quick brown fox",
        " jumps over\n\n",
    ]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_deltas(server: FaultServer, field: str) -> None:
    url = server.scenario(
        stream_reply(
            chunk(role="assistant", content=""),
            chunk(reasoning="Let me think", reasoning_field=field),
            chunk(reasoning=" about it.", reasoning_field=field, content=None),
            chunk("Answer"),
            chunk(finish_reason="stop"),
        )
    )
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    assert [(c.text, c.reasoning) for c in of_type(events, ContentChunk)] == [
        ("", "Let me think"),
        ("", " about it."),
        ("Answer", ""),
    ]
    assert reply_text(events) == "Answer"


async def test_usage_in_a_final_chunk_without_choices(server: FaultServer) -> None:
    url = server.scenario(
        stream_reply(
            *(dict(part, usage=None) for part in reply_chunks("a", "b")),
            usage_chunk(12, 34, reasoning_tokens=5),
        )
    )
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    (usage,) = of_type(events, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens) == (12, 34, 5)
    assert [type(e) for e in events[-2:]] == [Usage, StreamDone]
    assert reply_text(events) == "ab"


GROQ_FINAL = chunk(
    finish_reason="stop",
    x_groq={
        "id": "req_01",
        "usage": {
            "queue_time": 0.012,
            "prompt_tokens": 10,
            "prompt_time": 0.003,
            "completion_tokens": 60,
            "completion_time": 0.25,
            "total_tokens": 70,
            "total_time": 0.253,
        },
    },
)
CEREBRAS_FINAL = dict(
    usage_chunk(10, 60),
    time_info={
        "queue_time": 0.0001,
        "prompt_time": 0.002,
        "completion_time": 0.05,
        "total_time": 0.06,
        "created": 1_700_000_000.5,
    },
)
LLAMA_CPP_FINAL = chunk(
    finish_reason="stop",
    timings={
        "prompt_n": 9,
        "prompt_ms": 45.5,
        "prompt_per_token_ms": 5.06,
        "prompt_per_second": 197.8,
        "predicted_n": 40,
        "predicted_ms": 500.0,
        "predicted_per_token_ms": 12.5,
        "predicted_per_second": 80.0,
    },
)


@pytest.mark.parametrize(
    ("final", "provider", "values"),
    [
        (
            GROQ_FINAL,
            "groq",
            {"queue_s": 0.012, "prompt_s": 0.003, "completion_s": 0.25, "total_s": 0.253},
        ),
        (
            CEREBRAS_FINAL,
            "cerebras",
            {"queue_s": 0.0001, "prompt_s": 0.002, "completion_s": 0.05, "total_s": 0.06},
        ),
        (
            LLAMA_CPP_FINAL,
            "llama.cpp",
            {"prompt_s": 0.0455, "completion_s": 0.5, "decode_tokens_per_s": 80.0},
        ),
    ],
    ids=["groq", "cerebras", "llama.cpp"],
)
async def test_server_timings(
    server: FaultServer, final: dict[str, object], provider: str, values: dict[str, float]
) -> None:
    url = server.scenario(stream_reply(*reply_chunks("hi")[:-1], final))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    (timing,) = of_type(events, ServerTiming)
    assert timing.provider == provider
    assert timing.values == pytest.approx(values)


async def test_request_body_and_headers(server: FaultServer) -> None:
    conversation = Conversation(system_prompt="Be brief.")
    conversation.commit("Hi", "Hello!")
    request = conversation.request_for("And now?", max_tokens=50, temperature=0.0)
    request = ChatRequest(request.messages, request.max_tokens, request.temperature, {"user": "u1"})
    url = server.scenario(stream_reply(*reply_chunks("ok")), name="chat")

    async with open_backend(
        url,
        api_key_env="X_KEY",
        environ={"X_KEY": "sk-test-abcdef"},
        params={"top_p": 0.9, "seed": 7},
        headers={"X-Title": "Latency Demo", "HTTP-Referer": "https://example.test"},
    ) as backend:
        events = await collect(backend, request)

    (recorded,) = server.requests()
    assert (recorded.method, recorded.path) == ("POST", "/chat/v1/chat/completions")
    assert recorded.json() == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "And now?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 50,
        "temperature": 0.0,
        "top_p": 0.9,
        "seed": 7,
        "user": "u1",
    }
    assert recorded.header("content-type") == "application/json"
    assert recorded.header("accept") == "text/event-stream"
    assert recorded.header("x-title") == "Latency Demo"
    assert recorded.header("http-referer") == "https://example.test"
    assert recorded.header("authorization") == "Bearer sk-test-abcdef"
    sent = events[0]
    assert isinstance(sent, RequestSent)
    assert sent.params == {
        "model": "m",
        "stream_options": {"include_usage": True},
        "max_tokens": 50,
        "temperature": 0.0,
        "top_p": 0.9,
        "seed": 7,
        "user": "u1",
    }


async def test_unset_options_are_not_sent(server: FaultServer) -> None:
    url = server.scenario(stream_reply(*reply_chunks("ok")))
    async with open_backend(url) as backend:
        await collect(backend, ChatRequest((Message("user", "Hi"),)))
    body = server.requests()[0].json()
    assert set(body) == {"model", "messages", "stream", "stream_options"}


async def test_timestamps_are_monotonic_and_request_sent_comes_first(server: FaultServer) -> None:
    url = server.scenario(stream_reply(*reply_chunks(*"streaming"), usage_chunk(3, 9), gap_s=0.002))
    async with open_backend(url) as backend:
        before = time.perf_counter_ns()
        events = await collect(backend, ask())
        after = time.perf_counter_ns()

    assert isinstance(events[0], RequestSent)
    assert isinstance(events[1], ResponseStarted)
    stamps = [e.t_ns for e in events]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after
    assert reply_text(events) == "streaming"


async def test_chunk_time_is_when_it_was_parsed(server: FaultServer) -> None:
    sent_ns: list[int] = []

    async def paced(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send(chunk("A"))
        await exchange.pause(0.2)
        await exchange.send(chunk("B"))
        sent_ns.extend(exchange.sent_ns)
        await exchange.send_all(chunk(finish_reason="stop"), DONE)
        await exchange.end()

    url = server.scenario(paced)
    async with open_backend(url) as backend:
        events = await collect(backend, ask())

    a, b = of_type(events, ContentChunk)
    assert (b.t_ns - a.t_ns) / 1e9 == pytest.approx(0.2, abs=0.02)
    # Server and client share this process's clock: each chunk was stamped just after it was sent.
    for content, sent in zip((a, b), sent_ns, strict=True):
        assert abs(content.t_ns - sent) / 1e9 < 0.02


async def test_done_ends_the_turn_even_if_the_connection_stays_open(server: FaultServer) -> None:
    async def lingers(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send_all(*reply_chunks("hi"), DONE)
        await exchange.hang()

    delivered_ns: list[int] = []

    def note_delivery(event: StreamEvent) -> None:
        if isinstance(event, StreamDone):
            delivered_ns.append(time.perf_counter_ns())

    url = server.scenario(lingers)
    async with open_backend(url, timeouts=Timeouts(stall_s=5.0)) as backend:
        started = time.perf_counter()
        events = await collect(backend, ask(), on_event=note_delivery)
        elapsed = time.perf_counter() - started

    done = events[-1]
    assert isinstance(done, StreamDone) and done.saw_done_marker
    # Stamped when [DONE] was parsed; handed on after at most a short wait for the body's end.
    assert (done.t_ns - events[-2].t_ns) / 1e9 < 0.05
    assert (delivered_ns[0] - done.t_ns) / 1e9 < 0.5
    assert elapsed < 2.0, "the turn waited for the server to close after [DONE]"


async def test_events_after_done_are_ignored(server: FaultServer) -> None:
    url = server.scenario(stream_reply(*reply_chunks("kept"), DONE, chunk("ignored")))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    assert reply_text(events) == "kept"


async def stop_at_terminal(backend: OpenAIBackend, request: ChatRequest) -> None:
    """Consume like a runner that stops reading at the terminal event, without closing."""
    async for event in backend.stream(request):
        if isinstance(event, StreamDone | StreamError):
            break


@pytest.mark.parametrize("consumer", ["to-the-end", "stop-at-terminal"])
async def test_consecutive_turns_reuse_the_connection(server: FaultServer, consumer: str) -> None:
    url = server.scenario(stream_reply(*reply_chunks("one"), usage_chunk(1, 1)))
    async with open_backend(url) as backend:
        for _ in range(3):
            if consumer == "to-the-end":
                await collect(backend, ask())
            else:
                await stop_at_terminal(backend, ask())
    # A new connection per turn would add a TCP (and, remotely, TLS) handshake to every
    # turn's time to first token.
    assert [r.connection for r in server.requests()] == [1, 1, 1]


async def test_line_separator_characters_inside_content(server: FaultServer) -> None:
    # Raw in the JSON (only control characters below U+0020 must be escaped), and each of them
    # is a line break to str.splitlines but not to SSE.
    text = "a\u2028b\u2029c\x85d"
    raw = json.dumps(chunk(text), ensure_ascii=False)
    assert "\u2028" in raw and "\x85" in raw
    url = server.scenario(stream_reply(chunk("<"), chunk(text), chunk(finish_reason="stop")))
    async with open_backend(url) as backend:
        events = await collect(backend, ask())
    assert [c.text for c in of_type(events, ContentChunk)] == ["<", text]
