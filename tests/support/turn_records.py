"""Turn records built from real `Turn`s fed a fixed event stream, and session files holding them.

The events are what a backend would produce; the figures come from the real accumulator and the
record from the real `turn_record`, so a test that checks a report or an export against these
records checks the same fields a live session would hold.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.core.conversation import Conversation
from demo.core.events import (
    ContentChunk,
    RequestSent,
    ResponseStarted,
    StreamDone,
    StreamError,
    StreamEvent,
    Usage,
)
from demo.core.turn import Turn, TurnResult
from demo.sessions.record import TurnMode, turn_record
from demo.sessions.writer import SessionWriter

WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "it",
    "streams",
)


def fixed_events(
    backend: str,
    *,
    ttft_s: float,
    tokens_per_s: float,
    tokens: int,
    tokens_per_chunk: int = 3,
    t0_ns: int = 1_000_000_000,
    error_after: int | None = None,
    cancel_after: int | None = None,
) -> list[StreamEvent]:
    """A reply of `tokens` one-word tokens: the first chunk after `ttft_s`, then `tokens_per_s`.

    Args:
        error_after: End with a connection error after this many chunks.
        cancel_after: End cancelled after this many chunks.
    """
    events: list[StreamEvent] = [
        RequestSent(t0_ns, backend, f"{backend}-model", "http://127.0.0.1:9/v1"),
        ResponseStarted(t0_ns + 5_000_000, 200, "text/event-stream", f"req-{backend}"),
    ]
    first = t0_ns + round(ttft_s * 1e9)
    sent = 0
    chunk = 0
    t = first
    while sent < tokens:
        if chunk == error_after:
            events.append(StreamError(t + 1_000_000, "connection", "connection reset", None))
            return events
        if chunk == cancel_after:
            events.append(StreamDone(t + 1_000_000, "cancelled", cancelled=True))
            return events
        count = min(tokens_per_chunk, tokens - sent)
        text = "".join(f" {WORDS[(sent + i) % len(WORDS)]}" for i in range(count))
        t = first + round(sent / tokens_per_s * 1e9) if sent else first
        events.append(ContentChunk(t, text=text))
        sent += count
        chunk += 1
    end = t + 1_000_000
    events.append(Usage(end, prompt_tokens=12, completion_tokens=tokens))
    events.append(StreamDone(end, "stop"))
    return events


def record_of(
    events: list[StreamEvent],
    *,
    backend: str,
    prompt: str = "Why does speed matter?",
    kind: str = "lab",
    mode: TurnMode = "typed",
    race: dict[str, Any] | None = None,
    **result_fields: Any,
) -> dict[str, Any]:
    """The turn record of a turn that received `events`.

    Args:
        result_fields: Set on the `TurnResult` (e.g. `feel`, `shown`, `voice`).
    """
    request = Conversation("Be brief.").request_for(prompt, max_tokens=500, temperature=0.0)
    turn = Turn(None, prompt, request)  # type: ignore[arg-type]  # never started: fed below
    turn.accumulator.feed_all(events)
    turn.events.extend(events)
    accumulator = turn.accumulator
    result = TurnResult(
        backend=backend,
        kind=kind,
        model=f"{backend}-model",
        base_url="http://127.0.0.1:9/v1",
        prompt=prompt,
        text=accumulator.text,
        reasoning=accumulator.reasoning,
        metrics=accumulator.snapshot(),
        request_id=accumulator.request_id,
    )
    result = replace(result, **result_fields)
    return turn_record(turn, result, mode=mode, race=race)


def fixed_turn(backend: str, **figures: Any) -> dict[str, Any]:
    """`record_of(fixed_events(backend, ...))`; record fields (prompt, mode…) pass through."""
    passed = ("prompt", "kind", "mode", "race", "feel", "shown", "voice")
    record_fields = {key: figures.pop(key) for key in passed if key in figures}
    return record_of(fixed_events(backend, **figures), backend=backend, **record_fields)


def write_session(path: Path, records: list[dict[str, Any]]) -> Path:
    """A session file holding `records`, written by the app's own writer."""
    with SessionWriter(path) as writer:
        for record in records:
            writer.record(lambda record=record: record)
    return path


LAB_OVERRIDES: dict[str, dict[str, Any]] = {
    "fast": {"output_tokens": 60},
    "slow": {"output_tokens": 24, "ttft_s": 0.15, "tokens_per_s": 120},
}
"""Short replies from the lab's fast and slow profiles, so a few real turns take about a second."""


def lab_records(url: str, rounds: int = 2) -> list[dict[str, Any]]:
    """Real turns against a lab server at `url`: each round races `fast` and `slow` once.

    Every turn is streamed over loopback by the real client on its backend's runner and
    recorded with `turn_record`, exactly as the app records a race.
    """
    specs = {
        name: BackendSpec(
            name=name, kind="local", model=name, base_url=f"{url}/v1", params={"lab": overrides}
        )
        for name, overrides in LAB_OVERRIDES.items()
    }
    hub = BackendHub(specs)
    try:
        return asyncio.run(_race_rounds(hub, list(specs), rounds))
    finally:
        hub.close()


async def _race_rounds(hub: BackendHub, names: list[str], rounds: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    prompts = ("What is the capital of Australia?", "Explain TTFT,\nbriefly.")
    for number in range(1, rounds + 1):
        prompt = prompts[(number - 1) % len(prompts)]
        turns = []
        for name in names:
            request = Conversation("Be brief.").request_for(prompt, max_tokens=200)
            turns.append(Turn(hub.runner(name), prompt, request))
        results = await asyncio.gather(*(turn.run() for turn in turns))
        order = sorted(results, key=lambda result: result.metrics.e2e_s or float("inf"))
        for turn, result in zip(turns, results, strict=True):
            race = {"id": number, "lanes": names, "finish_place": order.index(result) + 1}
            records.append(turn_record(turn, result, mode="race", race=race))
    return records
