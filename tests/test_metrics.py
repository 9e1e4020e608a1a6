"""Every metric definition, on hand-built event streams with known times."""

from __future__ import annotations

import pytest

from demo.core.events import (
    ContentChunk,
    RequestSent,
    ServerTiming,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamWarning,
    Usage,
)
from demo.core.metrics import TurnAccumulator, estimate_tokens, percentile

MS = 1_000_000
T0 = 10_000 * MS


def sent(t: int = T0) -> RequestSent:
    return RequestSent(t, "b", "m", "http://x/v1")


def chunk(ms: float, text: str = "", reasoning: str = "") -> ContentChunk:
    return ContentChunk(T0 + int(ms * MS), text, reasoning)


def fold(events: list[StreamEvent]) -> TurnAccumulator:
    acc = TurnAccumulator()
    acc.feed_all(events)
    return acc


def test_ttft_is_first_chunk_with_text_not_role_only_or_empty() -> None:
    acc = fold([sent(), chunk(50, ""), chunk(120, "Hello"), chunk(130, " world"), StreamDone(T0)])
    assert acc.snapshot().ttft_s == pytest.approx(0.120)


def test_reasoning_counts_for_ttft_and_is_kept_apart() -> None:
    acc = fold([sent(), chunk(80, reasoning="thinking"), chunk(200, "answer")])
    snap = acc.snapshot()
    assert snap.ttft_s == pytest.approx(0.080)
    assert acc.text == "answer"
    assert acc.reasoning == "thinking"
    assert snap.reasoning_tokens == estimate_tokens("thinking")


def test_decode_rate_with_usage_excludes_first_chunk_share() -> None:
    # 11 chunks of 10 characters, one every 10 ms; the server says 110 tokens.
    events: list[StreamEvent] = [sent()]
    events += [chunk(100 + 10 * i, "abcdefghij") for i in range(11)]
    events += [Usage(T0 + 300 * MS, 5, 110), StreamDone(T0 + 301 * MS)]
    snap = fold(events).snapshot()
    assert snap.output_tokens == 110
    assert snap.output_tokens_source == "usage"
    # first chunk carries 1/11 of the characters → 10 tokens; 100 tokens over 100 ms.
    assert snap.decode_tokens_per_s == pytest.approx(1000.0)
    assert snap.e2e_s == pytest.approx(0.301)
    assert snap.prompt_tokens == 5


def test_decode_rate_estimate_when_no_usage() -> None:
    events: list[StreamEvent] = [sent(), chunk(100, " one"), chunk(200, " two three")]
    snap = fold([*events, StreamDone(T0 + 250 * MS)]).snapshot()
    assert snap.output_tokens_source == "estimate"
    assert snap.output_tokens == estimate_tokens(" one two three")
    expected = (snap.output_tokens - estimate_tokens(" one")) / 0.1
    assert snap.decode_tokens_per_s == pytest.approx(expected)


def test_decode_rate_is_none_when_one_chunk_carries_everything() -> None:
    snap = fold([sent(), chunk(100, "all of it"), Usage(T0, 1, 3), StreamDone(T0)]).snapshot()
    assert snap.decode_tokens_per_s is None
    assert snap.chunk_gap_p50_s is None


def test_chunk_gaps_percentiles_and_max() -> None:
    times = [100, 110, 120, 130, 180]
    snap = fold([sent(), *(chunk(t, "x") for t in times)]).snapshot()
    assert snap.chunks == 5
    assert snap.chunk_gap_p50_s == pytest.approx(0.010)
    assert snap.chunk_gap_max_s == pytest.approx(0.050)
    assert snap.chunk_gap_p95_s == pytest.approx(percentile([0.01, 0.01, 0.01, 0.05], 95))


def test_e2e_runs_to_the_terminal_event_even_on_error() -> None:
    acc = fold([sent(), chunk(100, "part"), StreamError(T0 + 400 * MS, "reset", "reset")])
    snap = acc.snapshot()
    assert snap.e2e_s == pytest.approx(0.4)
    assert snap.error == "reset"
    assert snap.error_kind == "reset"
    assert acc.text == "part"
    assert snap.finished


def test_cancellation_is_recorded() -> None:
    snap = fold([sent(), chunk(10, "a"), StreamDone(T0 + 20 * MS, cancelled=True)]).snapshot()
    assert snap.cancelled
    assert snap.error is None


def test_retried_request_restarts_the_clock() -> None:
    snap = fold([sent(T0 - 500 * MS), sent(T0), chunk(100, "x")]).snapshot()
    assert snap.ttft_s == pytest.approx(0.1)


def test_warnings_and_server_timing() -> None:
    timing = ServerTiming(T0, "groq", {"queue_s": 0.01, "total_s": 0.5})
    snap = fold([sent(), StreamWarning(T0, "bad chunk"), timing]).snapshot()
    assert snap.warnings == 1
    assert snap.server_timing == {"provider": "groq", "queue_s": 0.01, "total_s": 0.5}


def test_live_rate_uses_a_one_second_window_and_converges() -> None:
    acc = TurnAccumulator()
    acc.feed(sent())
    # 10 ms apart, each chunk two estimated tokens, for 3 s: 200 tokens/s.
    for i in range(300):
        acc.feed(chunk(100 + 10 * i, " ab cd"))
    live = acc.live_tokens_per_s(T0 + 3_100 * MS)
    assert live == pytest.approx(200.0, rel=0.02)
    assert len(acc._window) <= 102  # only the last second is kept
    acc.feed(StreamDone(T0 + 3_200 * MS))
    assert acc.live_tokens_per_s(T0) == acc.snapshot().decode_tokens_per_s


def test_live_rate_follows_a_slowdown() -> None:
    acc = TurnAccumulator()
    acc.feed(sent())
    t = 100.0
    for _ in range(200):  # 2 s at 100 chunks/s
        acc.feed(chunk(t, " ab"))
        t += 10
    for _ in range(20):  # then 2 s at 10 chunks/s
        acc.feed(chunk(t, " ab"))
        t += 100
    assert acc.live_tokens_per_s(0) == pytest.approx(10.0, rel=0.1)


def test_estimate_tokens_is_roughly_bpe_sized() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("Hello, world!") == 4
    text = "The quick brown fox jumps over the lazy dog. " * 10
    assert 90 <= estimate_tokens(text) <= 120


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0


def test_live_rate_waits_for_a_meaningful_span() -> None:
    acc = TurnAccumulator()
    acc.feed(sent())
    acc.feed(chunk(100, " ab"))
    acc.feed(chunk(100.1, " cd ef"))  # same read: 0.1 ms apart
    assert acc.live_tokens_per_s(0) is None
    acc.feed(chunk(250, " gh"))
    assert acc.live_tokens_per_s(0) == pytest.approx((2 + 1) / 0.150, rel=0.01)
