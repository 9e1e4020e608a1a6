"""The lab server in-process (uvicorn on a free port, same event loop): OpenAI's wire format."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from demo.backends.base import BackendSpec
from demo.backends.openai import OpenAIBackend
from demo.core.conversation import ChatRequest, Message
from demo.core.events import ContentChunk, ResponseStarted, StreamDone, StreamEvent, Usage
from demo.lab.content import answer_for
from demo.lab.profiles import load_profiles
from demo.lab.requestlog import RequestLog
from demo.lab.serve import bind, make_server, url_of
from demo.lab.server import create_app
from demo.lab.tokens import split_tokens

PROMPT = "What is the capital of Australia?"
ANSWER = answer_for([{"role": "user", "content": PROMPT}])
QUICK = {"ttft_s": 0, "tokens_per_s": 100_000, "jitter_ms": 0}
"""Overrides that make a reply arrive at once, for tests about content rather than timing."""


@dataclass
class Lab:
    url: str
    log: RequestLog


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    app = create_app(load_profiles())
    ready = asyncio.Event()
    server = make_server(app, ready.set)
    sock = bind("127.0.0.1", 0)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({serving, waiting}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert ready.is_set(), "the lab server did not start"
    yield Lab(url_of(sock), app.state.request_log)
    server.should_exit = True
    await asyncio.wait_for(serving, 10)


def body(**fields: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "fast",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "lab": dict(QUICK),
    }
    request.update(fields)
    return request


def events_of(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, checking each event is one `data:` line."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    for event in events:
        assert event.startswith("data: ") and "\n" not in event, repr(event)
    return [event.removeprefix("data: ") for event in events]


async def post(lab: Lab, request: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{lab.url}/v1/chat/completions", json=request)


async def stream(lab: Lab, request: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    response = await post(lab, request)
    assert response.status_code == 200, response.text
    payloads = events_of(response.content)
    assert payloads[-1] == "[DONE]"
    assert "[DONE]" not in payloads[:-1]
    return response, [json.loads(p) for p in payloads[:-1]]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for a condition the server sets on its own loop, failing after `timeout`."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def backend_events(server: Lab, overrides: dict[str, Any]) -> list[StreamEvent]:
    """One turn through the app's own client, with `overrides` as the `lab` body field."""
    spec = BackendSpec(name="fast", kind="lab", model="fast", base_url=server.url + "/v1")
    backend = OpenAIBackend(spec, environ={})
    request = ChatRequest((Message("user", PROMPT),), extra={"lab": overrides})
    try:
        return [event async for event in backend.stream(request)]
    finally:
        await backend.aclose()


async def test_a_stream_is_byte_for_byte_openai_shaped(lab: Lab) -> None:
    response, chunks = await stream(lab, body(lab={**QUICK, "tokens_per_chunk": 2}))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"].startswith("req_")

    first = chunks[0]
    assert list(first) == ["id", "object", "created", "model", "system_fingerprint", "choices"]
    assert first["id"].startswith("chatcmpl-")
    assert first["object"] == "chat.completion.chunk"
    assert isinstance(first["created"], int) and abs(first["created"] - time.time()) < 60
    assert first["model"] == "fast"
    assert first["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    for chunk in chunks:
        assert {k: chunk[k] for k in ("id", "created", "model")} == {
            k: first[k] for k in ("id", "created", "model")
        }
        assert "usage" not in chunk

    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    tokens = split_tokens(ANSWER)
    assert contents == ["".join(tokens[i : i + 2]) for i in range(0, len(tokens), 2)]
    for chunk in chunks[1:-1]:
        assert chunk["choices"][0]["finish_reason"] is None
        assert list(chunk["choices"][0]["delta"]) == ["content"]
    assert chunks[-1]["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    ]


async def test_usage_comes_last_and_only_when_asked(lab: Lab) -> None:
    _, chunks = await stream(lab, body(stream_options={"include_usage": True}))
    *earlier, last = chunks
    assert all("usage" in c and c["usage"] is None for c in earlier)
    assert last["choices"] == []
    completion = len(split_tokens(ANSWER))
    usage = last["usage"]
    assert usage["completion_tokens"] == completion
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + completion
    assert earlier[-1]["choices"][0]["finish_reason"] == "stop"

    _, without = await stream(lab, body(stream_options={"include_usage": False}))
    assert all("usage" not in c for c in without)


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_cuts_the_reply_with_finish_reason_length(lab: Lab, field: str) -> None:
    _, chunks = await stream(lab, body(**{field: 5}))
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "".join(split_tokens(ANSWER)[:5])
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_an_unknown_model_is_a_404_in_openai_shape(lab: Lab) -> None:
    response = await post(lab, body(model="gpt-17"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "model",
        "model_not_found",
    )
    assert "gpt-17" in error["message"] and "fast" in error["message"]


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (json.dumps({"model": "fast"}).encode(), "messages"),
        (json.dumps({"model": "fast", "messages": []}).encode(), "messages"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
        (json.dumps(body(lab={"speed": 3})).encode(), "lab.speed"),
        (json.dumps(body(lab={"tokens_per_s": -1})).encode(), "lab.tokens_per_s"),
        (json.dumps(body(lab={"output_tokens": 1.5})).encode(), "lab.output_tokens"),
        (json.dumps(body(lab={"tokens_per_chunk": 0})).encode(), "lab.tokens_per_chunk"),
        (json.dumps(body(max_tokens=0)).encode(), "max_tokens"),
        (
            json.dumps(body(stream=False, stream_options={"include_usage": True})).encode(),
            "stream_options",
        ),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-messages",
        "empty-messages",
        "no-model",
        "unknown-lab-key",
        "negative-rate",
        "fractional-output-tokens",
        "zero-tokens-per-chunk",
        "zero-max-tokens",
        "stream-options-without-stream",
    ],
)
async def test_bad_requests_are_400s_in_openai_shape(
    lab: Lab, request_body: bytes, param: str | None
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{lab.url}/v1/chat/completions",
            content=request_body,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]
    assert len(lab.log) == 0, "a refused request is not logged"


async def test_output_tokens_sets_the_reply_length_exactly(lab: Lab) -> None:
    response, chunks = await stream(
        lab,
        body(
            lab={**QUICK, "output_tokens": 777, "tokens_per_chunk": 10},
            stream_options={"include_usage": True},
        ),
    )
    assert chunks[-1]["usage"]["completion_tokens"] == 777
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert len(split_tokens(text)) >= 777 - 5  # re-splitting may merge pieces at chunk edges
    assert text.startswith(ANSWER)
    record = lab.log.get(response.headers["x-request-id"])
    assert record is not None
    assert record.to_json()["output_tokens"] == 777
    assert len(record.chunks) == 78


async def test_the_request_log_matches_what_the_client_received(lab: Lab) -> None:
    events = await backend_events(lab, {**QUICK, "tokens_per_chunk": 3})
    [started] = [e for e in events if isinstance(e, ResponseStarted)]
    received = [e for e in events if isinstance(e, ContentChunk)]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{lab.url}/lab/requests/{started.request_id}")
    assert response.status_code == 200
    record = response.json()

    assert record["id"] == started.request_id
    assert record["profile"] == "fast"
    assert record["finish_reason"] == "stop"
    assert record["disconnected"] is False
    assert len(record["chunks"]) == len(received)
    assert [c["chars"] for c in record["chunks"]] == [len(e.text) for e in received]
    assert record["output_tokens"] == sum(c["tokens"] for c in record["chunks"])
    assert record["output_tokens"] == len(split_tokens(ANSWER))
    # One clock for both sides: each chunk was sent before the client parsed it.
    for logged, event in zip(record["chunks"], received, strict=True):
        assert logged["due_ns"] <= logged["sent_ns"] <= event.t_ns
    assert record["first_content_sent_ns"] == record["chunks"][0]["sent_ns"]
    assert record["last_content_sent_ns"] == record["chunks"][-1]["sent_ns"]
    assert record["received_ns"] <= record["role_sent_ns"] <= record["first_content_sent_ns"]
    assert record["last_content_sent_ns"] <= record["done_sent_ns"]


async def test_the_app_client_reads_a_complete_reply(lab: Lab) -> None:
    events = await backend_events(lab, QUICK)
    assert "".join(e.text for e in events if isinstance(e, ContentChunk)) == ANSWER
    [usage] = [e for e in events if isinstance(e, Usage)]
    assert usage.completion_tokens == len(split_tokens(ANSWER))
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert (done.finish_reason, done.saw_done_marker) == ("stop", True)


async def test_a_profile_paces_the_reply(lab: Lab) -> None:
    start = time.perf_counter()
    # A reply long enough (0.3 s) that a few milliseconds of scheduling noise on a busy machine
    # cannot pass for a pacing error.
    overrides = {"tokens_per_s": 1000, "ttft_s": 0.1, "jitter_ms": 0, "output_tokens": 300}
    events = await backend_events(lab, overrides)
    chunks = [e for e in events if isinstance(e, ContentChunk)]
    ttft = chunks[0].t_ns / 1e9 - start
    span = (chunks[-1].t_ns - chunks[0].t_ns) / 1e9
    expected_span = (300 - 3) / 1000  # the fast profile sends 3 a chunk
    assert 0.1 <= ttft < 0.3
    assert expected_span * 0.9 <= span < expected_span + 0.05


async def test_a_whole_completion_when_not_streaming(lab: Lab) -> None:
    start = time.perf_counter()
    response = await post(lab, body(stream=False, lab={"ttft_s": 0.1, "tokens_per_s": 1000}))
    elapsed = time.perf_counter() - start
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["choices"][0]["message"] == {
        "role": "assistant",
        "content": ANSWER,
        "refusal": None,
    }
    assert data["choices"][0]["finish_reason"] == "stop"
    tokens = len(split_tokens(ANSWER))
    assert data["usage"]["completion_tokens"] == tokens
    # Sent whole after the time the stream would have taken.
    assert elapsed >= 0.1 + (tokens - 3) / 1000
    record = lab.log.get(response.headers["x-request-id"])
    assert record is not None and record.stream is False
    assert record.to_json()["output_tokens"] == tokens


async def test_models_list_the_profiles_in_order(lab: Lab) -> None:
    async with httpx.AsyncClient() as client:
        models = (await client.get(f"{lab.url}/v1/models")).json()
        health = await client.get(f"{lab.url}/health")
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == list(load_profiles())
    assert all(m["object"] == "model" and "owned_by" in m for m in models["data"])
    assert health.status_code == 200


async def test_unknown_paths_and_requests_are_json_errors(lab: Lab) -> None:
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{lab.url}/lab/requests/req_nope")
        nowhere = await client.get(f"{lab.url}/v2/anything")
        wrong_method = await client.get(f"{lab.url}/v1/chat/completions")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert nowhere.status_code == 404 and "error" in nowhere.json()
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


async def test_a_client_leaving_mid_stream_stops_the_reply_quietly(
    lab: Lab, capfd: pytest.CaptureFixture[str]
) -> None:
    request = body(lab={"ttft_s": 0, "tokens_per_s": 200, "output_tokens": 10_000})
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("POST", f"{lab.url}/v1/chat/completions", json=request) as response,
    ):
        request_id = response.headers["x-request-id"]
        lines = response.aiter_lines()
        async for line in lines:
            if '"content":"' in line and '"content":""' not in line:
                break
    record = lab.log.get(request_id)
    assert record is not None
    await wait_until(lambda: record.disconnected)
    sent = len(record.chunks)
    assert sent < 100
    assert record.done_sent_ns is None
    # The server is still healthy, and the abandoned reply sends nothing more.
    response = await post(lab, body())
    assert response.status_code == 200
    assert len(record.chunks) == sent
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ERROR" not in err, err


async def test_the_log_keeps_only_recent_requests() -> None:
    log = RequestLog(capacity=3)
    records = [log.open("fast", i, stream=True, seed=i) for i in range(5)]
    assert len(log) == 3
    assert log.get(records[0].id) is None and log.get(records[1].id) is None
    assert log.get(records[4].id) is records[4]
