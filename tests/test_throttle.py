"""The throttle's shown-time schedule, on a fake clock: every time here is chosen, none is read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demo.core.events import (
    ContentChunk,
    RequestSent,
    ResponseStarted,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamWarning,
    Usage,
)
from demo.core.metrics import TurnAccumulator, estimate_tokens
from demo.core.throttle import Feel, Throttle, token_pieces

S = 1_000_000_000
T0 = 10 * S


def ns(seconds: float) -> int:
    return T0 + round(seconds * S)


def head() -> list[StreamEvent]:
    return [RequestSent(ns(0), "b", "m", "http://x"), ResponseStarted(ns(0.01), 200, "x")]


def feed_all(throttle: Throttle, events: list[StreamEvent]) -> None:
    for event in events:
        throttle.feed(event)


def drain(throttle: Throttle) -> list[StreamEvent]:
    """Release everything, one due time at a time, as a consumer waking at each would."""
    released: list[StreamEvent] = []
    while (due := throttle.next_due_ns()) is not None:
        batch = throttle.release(due)
        assert batch, "a due event must be released at its due time"
        assert all(e.t_ns <= due for e in batch)
        released.extend(batch)
    return released


def shown_times(events: list[StreamEvent]) -> list[float]:
    return [(e.t_ns - T0) / S for e in events if isinstance(e, ContentChunk)]


def test_feel_is_active_only_when_it_changes_something() -> None:
    assert not Feel().active
    assert Feel(30).active
    assert Feel(extra_ttft_s=0.5).active
    assert Feel(30, 0.5).label() == "shown ≤ 30 tok/s · +0.5 s TTFT"
    assert Feel(1000).label() == "shown ≤ 1,000 tok/s"
    assert Feel(extra_ttft_s=2).label() == "shown +2 s TTFT"
    assert Feel(12.5).label() == "shown ≤ 12.5 tok/s"
    for bad in (0.0, -5.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            Feel(bad)
    with pytest.raises(ValueError):
        Feel(extra_ttft_s=-0.1)


@given(st.text(max_size=300))
def test_pieces_join_back_to_the_text_and_count_as_the_estimate(text: str) -> None:
    pieces = token_pieces(text)
    assert "".join(pieces) == text
    assert len(pieces) == estimate_tokens(text)
    assert all(pieces)


def test_a_cap_spaces_the_pieces_of_a_fast_stream() -> None:
    throttle = Throttle(Feel(10))
    # Nine tokens in three chunks within 2 ms: far faster than 10 tok/s.
    feed_all(
        throttle,
        [
            *head(),
            ContentChunk(ns(0.2), " one two three"),
            ContentChunk(ns(0.201), " four five six"),
            ContentChunk(ns(0.202), " seven eight nine"),
            StreamDone(ns(0.203), "stop"),
        ],
    )
    released = drain(throttle)
    assert shown_times(released) == pytest.approx([0.2 + k / 10 for k in range(9)])
    assert throttle.shown.text == " one two three four five six seven eight nine"
    assert isinstance(released[-1], StreamDone)
    assert released[-1].t_ns == ns(1.0)  # after the last piece, not at its true time
    assert throttle.done


def test_piece_k_is_shown_at_the_later_of_its_arrival_plus_extra_and_the_cap() -> None:
    throttle = Throttle(Feel(4, extra_ttft_s=0.5))
    feed_all(
        throttle,
        [
            *head(),
            ContentChunk(ns(0.3), " a b"),  # a at 0.8; b capped to 1.05
            ContentChunk(ns(2.0), " c"),  # arrives late: 2.5, the cap allows it sooner
            ContentChunk(ns(2.01), " d"),  # capped: 2.75
            StreamDone(ns(2.02), "stop"),
        ],
    )
    assert shown_times(drain(throttle)) == pytest.approx([0.8, 1.05, 2.5, 2.75])


def test_a_cap_slower_than_the_arrivals_shows_them_at_arrival_plus_extra() -> None:
    throttle = Throttle(Feel(1000, extra_ttft_s=0.25))
    arrivals = [0.3, 0.5, 0.9, 1.4]
    feed_all(
        throttle,
        [
            *head(),
            *(ContentChunk(ns(t), f" {word}") for word, t in zip("abcd", arrivals, strict=True)),
        ],
    )
    assert shown_times(drain(throttle)) == pytest.approx([t + 0.25 for t in arrivals])


def test_extra_ttft_alone_shifts_whole_chunks_and_keeps_the_decode_rate() -> None:
    events = [
        *head(),
        ContentChunk(ns(0.24), " alpha beta gamma"),
        ContentChunk(ns(0.25), " delta epsilon zeta"),
        ContentChunk(ns(0.26), " eta theta iota"),
        Usage(ns(0.261), 5, 9),
        StreamDone(ns(0.262), "stop"),
    ]
    true = TurnAccumulator()
    true.feed_all(events)
    throttle = Throttle(Feel(extra_ttft_s=0.5))
    feed_all(throttle, events)
    released = drain(throttle)
    chunks = [e for e in released if isinstance(e, ContentChunk)]
    assert [c.text for c in chunks] == [
        " alpha beta gamma",
        " delta epsilon zeta",
        " eta theta iota",
    ]
    real, shown = true.snapshot(), throttle.shown.snapshot()
    assert shown.ttft_s == pytest.approx(real.ttft_s + 0.5)  # type: ignore[operator]
    assert shown.decode_tokens_per_s == pytest.approx(real.decode_tokens_per_s)
    assert shown.e2e_s == pytest.approx(0.76)
    assert shown.output_tokens == 9 and shown.output_tokens_source == "usage"


def test_a_chunk_of_many_tokens_is_cut_and_the_shown_rate_is_the_cap() -> None:
    text = " ".join(f"w{i}" for i in range(60))
    assert estimate_tokens(text) == 120
    throttle = Throttle(Feel(30))
    feed_all(
        throttle,
        [*head(), ContentChunk(ns(0.4), text), Usage(ns(0.41), 3, 120), StreamDone(ns(0.42))],
    )
    released = drain(throttle)
    chunks = [e for e in released if isinstance(e, ContentChunk)]
    assert len(chunks) == 120
    assert "".join(c.text for c in chunks) == text
    shown = throttle.shown.snapshot()
    assert shown.ttft_s == pytest.approx(0.4)
    assert shown.decode_tokens_per_s == pytest.approx(30.0)
    assert shown.e2e_s == pytest.approx(0.4 + 119 / 30)
    assert shown.finished and shown.finish_reason is None


def test_reasoning_is_throttled_like_text_and_stays_reasoning() -> None:
    throttle = Throttle(Feel(10))
    feed_all(throttle, [*head(), ContentChunk(ns(0.1), " yes", reasoning=" think hard")])
    released = [e for e in drain(throttle) if isinstance(e, ContentChunk)]
    assert [(c.reasoning, c.text) for c in released] == [
        (" think", ""),
        (" hard", ""),
        ("", " yes"),
    ]
    assert throttle.shown.reasoning == " think hard"


def test_other_events_keep_their_place_and_nothing_overtakes() -> None:
    throttle = Throttle(Feel(2))
    feed_all(
        throttle,
        [
            *head(),
            ContentChunk(ns(0.1), " a b c"),
            StreamWarning(ns(0.11), "odd chunk"),
            ContentChunk(ns(0.12), " d"),
            Usage(ns(0.13), 1, 4),
            StreamDone(ns(0.14), "stop"),
        ],
    )
    released = drain(throttle)
    kinds = [type(e).__name__ for e in released]
    assert kinds == [
        "RequestSent",
        "ResponseStarted",
        "ContentChunk",
        "ContentChunk",
        "ContentChunk",
        "StreamWarning",
        "ContentChunk",
        "Usage",
        "StreamDone",
    ]
    times = [e.t_ns for e in released]
    assert times == sorted(times)
    assert released[0].t_ns == ns(0)  # t0 is never moved: shown TTFT counts from the request
    assert released[5].t_ns == ns(1.1)  # after " c" at 0.1 + 2 × 0.5
    assert throttle.shown.warnings == 1


def test_release_holds_back_what_is_not_due() -> None:
    throttle = Throttle(Feel(10, extra_ttft_s=1.0))
    feed_all(throttle, [*head(), ContentChunk(ns(0.2), " x y")])
    assert [type(e) for e in throttle.release(ns(0.5))] == [RequestSent, ResponseStarted]
    assert throttle.next_due_ns() == ns(1.2)
    assert throttle.release(ns(1.19)) == []
    assert [e.text for e in throttle.release(ns(1.25)) if isinstance(e, ContentChunk)] == [" x"]
    assert throttle.pending == 1
    assert not throttle.done
    assert throttle.end_ns is None


def test_the_end_comes_at_its_own_time_when_that_is_later() -> None:
    throttle = Throttle(Feel(100))
    feed_all(throttle, [*head(), ContentChunk(ns(0.1), " x"), StreamDone(ns(3.0), "stop")])
    assert throttle.end_ns == ns(3.0)
    released = drain(throttle)
    assert released[-1].t_ns == ns(3.0)
    assert throttle.shown.snapshot().e2e_s == pytest.approx(3.0)


def test_an_error_is_shown_after_the_pieces_before_it() -> None:
    throttle = Throttle(Feel(5))
    feed_all(
        throttle,
        [*head(), ContentChunk(ns(0.1), " part reply"), StreamError(ns(0.2), "reset", "gone")],
    )
    released = drain(throttle)
    assert isinstance(released[-1], StreamError)
    assert released[-1].t_ns == ns(0.3)
    assert throttle.shown.text == " part reply"
    assert throttle.shown.snapshot().error == "gone"


def test_cancel_stops_showing_and_keeps_only_what_was_shown() -> None:
    throttle = Throttle(Feel(10))
    words = " ".join(f"w{i}" for i in range(30))
    feed_all(throttle, [*head(), ContentChunk(ns(0.1), words), StreamDone(ns(0.2), "stop")])
    throttle.release(ns(0.45))  # w0…w3 (pieces 0–7 are " w", "0", …): 0.1 … 0.4
    shown_before = throttle.shown.text
    released = throttle.cancel(ns(0.47))
    assert len(released) == 1
    end = released[0]
    assert isinstance(end, StreamDone) and end.cancelled and end.t_ns == ns(0.47)
    assert throttle.done and throttle.pending == 0
    assert throttle.shown.text == shown_before == "".join(token_pieces(words)[:4])
    snapshot = throttle.shown.snapshot()
    assert snapshot.cancelled and snapshot.finished
    assert throttle.cancel(ns(0.5)) == []  # once ended, nothing more
    throttle.feed(ContentChunk(ns(0.6), " late"))
    assert throttle.release(ns(9)) == []


def test_cancel_releases_what_was_already_due() -> None:
    throttle = Throttle(Feel(10))
    feed_all(throttle, [*head(), ContentChunk(ns(0.1), " a b c d")])
    released = throttle.cancel(ns(0.25))  # nothing released yet: a at 0.1, b at 0.2 were due
    texts = [e.text for e in released if isinstance(e, ContentChunk)]
    assert texts == [" a", " b"]
    assert isinstance(released[-1], StreamDone) and released[-1].cancelled


def test_a_cancelled_end_from_the_stream_cuts_the_reply_at_its_time() -> None:
    throttle = Throttle(Feel(10))
    feed_all(throttle, [*head(), ContentChunk(ns(0.1), " a b c d e f")])
    throttle.release(ns(0.15))
    throttle.feed(StreamDone(ns(0.32), "cancelled", cancelled=True))
    assert throttle.end_ns == ns(0.32)
    released = drain(throttle)
    assert [e.text for e in released if isinstance(e, ContentChunk)] == [" b", " c"]
    assert throttle.shown.text == " a b c"
    assert throttle.shown.snapshot().cancelled


def test_cancelling_after_the_true_end_still_cuts_what_is_held_back() -> None:
    throttle = Throttle(Feel(10))
    feed_all(throttle, [*head(), ContentChunk(ns(0.1), " a b c d"), StreamDone(ns(0.11), "stop")])
    throttle.release(ns(0.1))
    released = throttle.cancel(ns(0.15))
    assert len(released) == 1 and isinstance(released[0], StreamDone)
    assert released[0].cancelled
    assert throttle.shown.text == " a"


def test_a_cancel_after_the_end_was_due_keeps_the_end() -> None:
    throttle = Throttle(Feel(10))
    feed_all(throttle, [*head(), ContentChunk(ns(0.1), " a"), StreamDone(ns(0.11), "stop")])
    released = throttle.cancel(ns(5.0))
    end = released[-1]
    assert isinstance(end, StreamDone) and not end.cancelled and end.finish_reason == "stop"
    assert throttle.shown.text == " a"
