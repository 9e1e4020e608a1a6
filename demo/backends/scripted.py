"""A backend that streams a given text at a chosen pace, with no server at all.

"Replay the last reply at another speed" streams a reply's text again at, say, 20 and then 1,000
tokens/s, so the same words can be felt at both. It runs on a `BackendRunner` like any backend and
produces the same events, so its figures are measured exactly like a real turn's: each chunk is
timestamped when it is emitted, not when it was due.

The schedule is absolute (piece k is due at t0 + TTFT + k / rate), so sleeping late for one piece
never slows the rest (`demo.backends.pacing`, shared with the replay backend). A timer cannot wake
a thousand times a second reliably, so at high rates pieces are sent in groups, each when its last
piece is due (the first piece always alone, the last group when the last piece is due, so TTFT and
the decode span stay exact); a chunk then carries several tokens, as a fast provider's chunks do.
A wake-up that comes late sends every piece due by then.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from demo.backends.base import BackendSpec
from demo.backends.pacing import paced
from demo.core.conversation import ChatRequest
from demo.core.events import (
    ContentChunk,
    RequestSent,
    ResponseStarted,
    StreamDone,
    StreamEvent,
    Usage,
)
from demo.core.throttle import token_pieces

MIN_WAKE_S = 0.002
"""Shortest interval between two chunks: pieces due closer together than this share a chunk."""


class ScriptedBackend:
    """Streams `text` in token pieces: the first after `ttft_s`, then `tokens_per_s`.

    Args:
        spec: the name, kind and model the turn is shown under.
        text: the reply to stream; every request gets the same one.
        ttft_s: seconds from the request to the first piece.
        tokens_per_s: pace of the pieces after the first.
    """

    def __init__(self, spec: BackendSpec, text: str, *, ttft_s: float, tokens_per_s: float):
        if not tokens_per_s > 0:
            raise ValueError(f"tokens_per_s must be positive, not {tokens_per_s!r}")
        if not ttft_s >= 0:
            raise ValueError(f"ttft_s must be zero or more, not {ttft_s!r}")
        self._spec = spec
        self._pieces = token_pieces(text)
        self._ttft_ns = round(ttft_s * 1e9)
        self._period_ns = 1e9 / tokens_per_s

    @property
    def spec(self) -> BackendSpec:
        return self._spec

    @property
    def base_url(self) -> str:
        return self._spec.base_url or "scripted"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        now = time.perf_counter_ns
        t0 = now()
        params: dict[str, object] = {"tokens_per_s": 1e9 / self._period_ns}
        yield RequestSent(t0, self._spec.name, self._spec.model, self.base_url, params)
        yield ResponseStarted(now(), 200, "text/event-stream")
        pieces = self._pieces
        period = self._period_ns
        due = [round(k * period) for k in range(len(pieces))]
        releases = paced(due, t0 + self._ttft_ns, min_wake_ns=round(MIN_WAKE_S * 1e9))
        async with contextlib.aclosing(releases):
            async for first, stop, t_ns in releases:
                yield ContentChunk(t_ns, text="".join(pieces[first:stop]))
        end = now()
        yield Usage(end, prompt_tokens=None, completion_tokens=len(pieces))
        yield StreamDone(end, "stop")

    async def aclose(self) -> None:
        """Nothing to close: no connection was ever opened."""
