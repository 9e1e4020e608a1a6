"""The scripted backend, streamed through a real runner thread and measured like any turn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from demo.backends.base import BackendSpec
from demo.backends.scripted import ScriptedBackend
from demo.core.conversation import ChatRequest, Message
from demo.core.events import ContentChunk, RequestSent, ResponseStarted, StreamDone, Usage
from demo.core.metrics import estimate_tokens
from demo.core.runner import BackendRunner
from demo.core.throttle import token_pieces
from demo.core.turn import Turn

SPEC = BackendSpec(name="replay", kind="lab", model="m")
REQUEST = ChatRequest(messages=(Message("user", "again, please"),))
WORDS = (
    "Speed changes how a reply feels: at twenty tokens a second you read along as it is typed, "
    "while at a thousand the whole answer lands before your eyes have moved. "
)


def reply_of(tokens: int) -> str:
    """About `tokens` pieces of ordinary prose."""
    text = WORDS
    while len(token_pieces(text)) < tokens:
        text += WORDS
    return "".join(token_pieces(text)[:tokens])


@pytest.fixture
def runners() -> Iterator[list[BackendRunner]]:
    made: list[BackendRunner] = []
    yield made
    for runner in made:
        runner.close()


def scripted(runners: list[BackendRunner], text: str, ttft_s: float, rate: float) -> Turn:
    runner = BackendRunner(ScriptedBackend(SPEC, text, ttft_s=ttft_s, tokens_per_s=rate))
    runners.append(runner)
    return Turn(runner, "again, please", REQUEST)


@pytest.mark.parametrize(("rate", "tokens"), [(20, 30), (1000, 700)])
async def test_the_measured_pace_is_the_chosen_one(
    runners: list[BackendRunner], rate: float, tokens: int
) -> None:
    text = reply_of(tokens)
    turn = scripted(runners, text, 0.15, rate)
    async with asyncio.timeout(10):
        result = await turn.run()
    m = result.metrics
    assert result.text == text
    assert m.error is None and m.finish_reason == "stop"
    assert m.output_tokens == tokens and m.output_tokens_source == "usage"
    assert m.ttft_s == pytest.approx(0.15, abs=0.02)
    assert m.decode_tokens_per_s == pytest.approx(rate, rel=0.02)
    chunks = [e for e in turn.events if isinstance(e, ContentChunk)]
    if rate <= 100:
        assert len(chunks) == tokens  # a timer keeps this pace: one token per chunk
    else:
        assert len(chunks) < tokens  # it does not keep this one: chunks carry several


async def test_the_events_are_those_of_a_real_backend(runners: list[BackendRunner]) -> None:
    turn = scripted(runners, "Canberra is the capital.", 0.0, 500)
    async with asyncio.timeout(5):
        await turn.run()
    kinds = [type(e) for e in turn.events]
    assert kinds[:2] == [RequestSent, ResponseStarted]
    assert kinds[-2:] == [Usage, StreamDone]
    assert set(kinds[2:-2]) == {ContentChunk}
    times = [e.t_ns for e in turn.events]
    assert times == sorted(times)
    usage = turn.events[-2]
    assert isinstance(usage, Usage)
    assert usage.completion_tokens == estimate_tokens("Canberra is the capital.") == 7


async def test_an_empty_reply_ends_at_once(runners: list[BackendRunner]) -> None:
    turn = scripted(runners, "", 0.5, 20)
    async with asyncio.timeout(0.4):
        result = await turn.run()
    assert result.metrics.finished and result.metrics.output_tokens == 0
    assert result.metrics.ttft_s is None


async def test_cancelling_stops_the_replay(runners: list[BackendRunner]) -> None:
    turn = scripted(runners, reply_of(200), 0.0, 50)
    async with asyncio.timeout(5):
        async for _ in turn.batches():
            if len(turn.accumulator.text_parts) >= 3:
                turn.cancel()
    m = turn.result().metrics
    assert m.cancelled
    assert m.output_tokens < 20


def test_a_pace_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ScriptedBackend(SPEC, "x", ttft_s=0.1, tokens_per_s=0)
    with pytest.raises(ValueError):
        ScriptedBackend(SPEC, "x", ttft_s=-1, tokens_per_s=10)
