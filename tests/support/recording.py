"""Recording real turns into session files, exactly as the app records them."""

from __future__ import annotations

import asyncio
from typing import Any

from demo.backends.base import BackendSpec
from demo.backends.openai import OpenAIBackend
from demo.core.conversation import Conversation
from demo.core.runner import BackendRunner
from demo.core.turn import Turn
from demo.sessions.record import TurnMode, turn_record
from demo.sessions.writer import SessionWriter


def lab_spec(lab_url: str, profile: str, tokens: int) -> BackendSpec:
    """A lab profile on the lab server at `lab_url`, its replies cut to `tokens` tokens."""
    return BackendSpec(
        name=profile,
        kind="lab",
        model=profile,
        base_url=f"{lab_url}/v1",
        params={"lab": {"output_tokens": tokens}},
    )


async def record_turn(
    writer: SessionWriter,
    spec: BackendSpec,
    prompt: str,
    *,
    cancel_after_chunks: int | None = None,
    race: dict[str, Any] | None = None,
) -> Turn:
    """Stream `prompt` on a real client (cancelling it after some chunks if asked) and record it.

    A race lane is recorded with `race` (from `race_record`, plus the lane's `place`).
    """
    runner = BackendRunner(OpenAIBackend(spec))
    try:
        turn = Turn(runner, prompt, Conversation().request_for(prompt, max_tokens=2000))
        async with asyncio.timeout(20):
            async for _ in turn.batches():
                chunks = turn.accumulator.chunk_times
                if cancel_after_chunks is not None and len(chunks) >= cancel_after_chunks:
                    turn.cancel()
        result = turn.result()
    finally:
        runner.close()
    mode: TurnMode = "race" if race is not None else "typed"
    writer.record(lambda: turn_record(turn, result, mode=mode, race=race))
    return turn
