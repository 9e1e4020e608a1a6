"""The reply plan and its timetable: absolute due times, jitter that never reorders chunks."""

from __future__ import annotations

import dataclasses
import itertools
import statistics

from demo.lab.profiles import Profile, load_profiles
from demo.lab.reply import CYCLE_SEPARATOR, plan_reply
from demo.lab.request import CompletionRequest
from demo.lab.schedule import chunk_interval_ns, due_times
from demo.lab.tokens import split_tokens

PACE = Profile("p", "P", ttft_s=0.2, tokens_per_s=100, jitter_ms=0, tokens_per_chunk=4, source="x")
ANSWER = "One two three four five six seven eight nine ten."


def answer(_: object) -> str:
    return ANSWER


def request(**overrides: object) -> CompletionRequest:
    max_tokens = overrides.pop("max_tokens", None)
    assert max_tokens is None or isinstance(max_tokens, int)
    return CompletionRequest(
        model="p",
        messages=[{"role": "user", "content": "Count to ten"}],
        stream=True,
        max_tokens=max_tokens,
        overrides=overrides,
    )


def test_without_jitter_chunks_are_due_exactly_on_the_timetable() -> None:
    start = 1_000_000_000
    due = list(due_times(start, 5, PACE, seed=1))
    # ttft 0.2 s, then 4 tokens per chunk at 100 tokens/s: one chunk every 40 ms.
    assert due == [start + 200_000_000 + k * 40_000_000 for k in range(5)]
    assert chunk_interval_ns(PACE) == 40_000_000


def test_jitter_is_seeded_ordered_and_never_before_the_start() -> None:
    pace = dataclasses.replace(PACE, ttft_s=0.0, jitter_ms=30.0)
    first = list(due_times(0, 400, pace, seed=42))
    assert first == list(due_times(0, 400, pace, seed=42))
    assert first != list(due_times(0, 400, pace, seed=43))
    assert all(b >= a for a, b in itertools.pairwise(first))
    assert min(first) >= 0


def test_jitter_has_the_requested_spread_around_the_timetable() -> None:
    pace = dataclasses.replace(PACE, ttft_s=10.0, tokens_per_chunk=1, tokens_per_s=1, jitter_ms=5)
    # One chunk a second and a 5 ms spread: clipping never bites, so offsets are plain Gaussian.
    offsets = [
        (due - (10_000_000_000 + k * 1_000_000_000)) / 1e6
        for k, due in enumerate(due_times(0, 2000, pace, seed=3))
    ]
    assert abs(statistics.mean(offsets)) < 0.5
    assert 4.5 < statistics.stdev(offsets) < 5.5


def test_the_timetable_does_not_drift_over_a_long_reply() -> None:
    pace = dataclasses.replace(PACE, ttft_s=0.0, tokens_per_s=969, tokens_per_chunk=3)
    due = list(due_times(0, 100_000, pace, seed=0))
    assert due[-1] == round(99_999 * 3 / 969 * 1e9)


def test_the_plan_sends_the_answer_in_chunks_of_the_profile() -> None:
    plan = plan_reply(request(), PACE, answer)
    assert plan.text == ANSWER
    assert plan.tokens == split_tokens(ANSWER)
    assert plan.chunk_count == -(-len(plan.tokens) // 4)
    assert plan.finish_reason == "stop"
    assert plan.pace == PACE


def test_overrides_change_the_pace_for_one_request() -> None:
    plan = plan_reply(
        request(tokens_per_s=5000, ttft_s=0, tokens_per_chunk=10, seed=7), PACE, answer
    )
    assert (plan.pace.tokens_per_s, plan.pace.ttft_s, plan.pace.tokens_per_chunk) == (5000, 0, 10)
    assert plan.seed == 7
    assert plan.pace.label == PACE.label


def test_output_tokens_cycles_the_answer_to_exactly_that_length() -> None:
    base = split_tokens(ANSWER)
    plan = plan_reply(request(output_tokens=1000), PACE, answer)
    assert len(plan.tokens) == 1000
    assert plan.text.startswith(ANSWER + CYCLE_SEPARATOR + ANSWER)
    assert plan.finish_reason == "stop"
    short = plan_reply(request(output_tokens=3), PACE, answer)
    assert short.tokens == base[:3]


def test_max_tokens_cuts_the_reply_and_says_length() -> None:
    plan = plan_reply(request(max_tokens=5), PACE, answer)
    assert plan.tokens == split_tokens(ANSWER)[:5]
    assert plan.finish_reason == "length"
    capped = plan_reply(request(output_tokens=50, max_tokens=20), PACE, answer)
    assert (len(capped.tokens), capped.finish_reason) == (20, "length")
    roomy = plan_reply(request(max_tokens=10_000), PACE, answer)
    assert roomy.finish_reason == "stop"


def test_prompt_tokens_grow_with_the_conversation() -> None:
    short = plan_reply(request(), PACE, answer).prompt_tokens
    longer = CompletionRequest(
        model="p",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Count to ten"},
        ],
    )
    assert plan_reply(longer, PACE, answer).prompt_tokens > short > 0


def test_a_seed_is_drawn_when_none_is_given() -> None:
    seeds = {plan_reply(request(), load_profiles()["fast"], answer).seed for _ in range(5)}
    assert len(seeds) > 1
