"""Feel controls: show a reply slower, or later, than it really arrived. Pure: no UI, no I/O.

A `Feel` caps the rate a reply is *shown* (and spoken) at and adds time before its first token,
so an audience can feel 15 tokens/s against 1,000 on the same backend. The true figures are never
touched: a `Throttle` sits between the true stream and the screen and keeps figures of its own for
what it released.

The shown-time definition (also in the README):

- A reply is cut into token-sized pieces, the same pieces `estimate_tokens` counts (joining them
  gives back the text exactly).
- Piece k, which arrived at `arrival_k`, is shown at
  `shown_k = max(arrival_k + extra_ttft, shown_{k-1} + 1 / cap)`;
  with no cap it is `arrival_k + extra_ttft` (a chunk is then shown whole, not cut).
- Everything else (request and response start, usage, server timings, warnings) keeps its place
  in the stream: it is shown at `max(its true time, the shown time of what came before it)`.
- The terminal event (end, error) comes after the last piece, at
  `max(its true time, the last shown time)`.
- Shown TTFT, decode tokens/s and E2E are computed from the released events by the very same
  `TurnAccumulator` as the true ones, from the same t0 (the request is never delayed).

Cancelling cuts the reply where it is: pieces not yet shown are dropped and a cancelled end is
released, so the shown text is exactly what was on screen.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

from demo.core.events import ContentChunk, StreamDone, StreamError, StreamEvent
from demo.core.metrics import _TOKENISH, TurnAccumulator


@dataclass(frozen=True, slots=True)
class Feel:
    """How a backend's replies are shown: a rate cap and extra time before the first token."""

    max_tokens_per_s: float | None = None
    """Cap on the shown rate; None shows tokens as they arrive."""
    extra_ttft_s: float = 0.0
    """Added to when every token is shown (so the first token, too)."""

    def __post_init__(self) -> None:
        cap = self.max_tokens_per_s
        if cap is not None and not (math.isfinite(cap) and cap > 0):
            raise ValueError(f"the shown rate cap must be a positive number, not {cap!r}")
        if not (math.isfinite(self.extra_ttft_s) and self.extra_ttft_s >= 0):
            raise ValueError(f"extra TTFT must be zero or more seconds, not {self.extra_ttft_s!r}")

    @property
    def active(self) -> bool:
        """False when the reply would be shown exactly as it arrives."""
        return self.max_tokens_per_s is not None or self.extra_ttft_s > 0

    def label(self) -> str:
        """One short line for the screen, e.g. `shown ≤ 30 tok/s · +0.5 s TTFT`."""
        parts: list[str] = []
        if self.max_tokens_per_s is not None:
            parts.append(f"≤ {_number(self.max_tokens_per_s)} tok/s")
        if self.extra_ttft_s > 0:
            parts.append(f"+{_number(self.extra_ttft_s)} s TTFT")
        if not parts:
            return "shown as it arrives"
        return "shown " + " · ".join(parts)


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:g}"


def token_pieces(text: str) -> list[str]:
    """`text` cut into the token-sized pieces `estimate_tokens` counts; they join back to it."""
    return _TOKENISH.findall(text) if text else []


_Terminal = StreamDone | StreamError


class Throttle:
    """Holds a turn's events back until their shown time.

    Fed with the true events on the consumer's loop; `release(now_ns)` hands back those whose
    shown time has come, oldest first. Scheduling happens once, at feed time, so releasing costs
    a deque pop per event.
    """

    def __init__(self, feel: Feel) -> None:
        self.feel = feel
        self.shown = TurnAccumulator()
        """Figures of what was released: shown TTFT, decode tokens/s, E2E and the shown text."""
        self.done = False
        """True once the terminal event has been released."""
        cap = feel.max_tokens_per_s
        self._period_ns = 1e9 / cap if cap is not None else 0.0
        self._extra_ns = round(feel.extra_ttft_s * 1e9)
        self._queue: deque[tuple[int, StreamEvent]] = deque()
        self._last_piece_ns: float | None = None
        """Shown time of the latest piece, unrounded so the cap does not drift."""
        self._last_ns = 0
        """Shown time of the latest scheduled event: nothing may overtake it."""
        self._end_ns: int | None = None
        self._released_ns = 0
        """Shown time of the latest released event."""

    @property
    def end_ns(self) -> int | None:
        """When the terminal event will be shown, once the true stream has ended."""
        return self._end_ns

    @property
    def pending(self) -> int:
        """Events scheduled but not yet released."""
        return len(self._queue)

    def next_due_ns(self) -> int | None:
        """Shown time of the next held event; None when nothing is held."""
        return self._queue[0][0] if self._queue else None

    def feed(self, event: StreamEvent) -> None:
        """Schedule one true event. A cancelled end cuts the reply at its time."""
        if self._end_ns is not None:
            return  # nothing follows a terminal event
        if isinstance(event, ContentChunk) and (event.text or event.reasoning):
            self._chunk(event)
        elif isinstance(event, StreamDone) and event.cancelled:
            self._cut(event.t_ns)
        else:
            self._push(event)

    def release(self, now_ns: int) -> list[StreamEvent]:
        """The events whose shown time is at or before `now_ns`, each already in `shown`."""
        queue = self._queue
        released: list[StreamEvent] = []
        while queue and queue[0][0] <= now_ns:
            self._released_ns, event = queue.popleft()
            self.shown.feed(event)
            released.append(event)
            if isinstance(event, _Terminal):
                self.done = True
        return released

    def cancel(self, now_ns: int) -> list[StreamEvent]:
        """Stop showing at `now_ns`: what is due is released, the rest dropped, then the end.

        Returns the released events (the last is a cancelled `StreamDone`); empty when the
        terminal event was already released.
        """
        if self.done:
            return []
        self._cut(now_ns)
        return self.release(max(now_ns, self._end_ns or now_ns))

    def _chunk(self, chunk: ContentChunk) -> None:
        arrival = chunk.t_ns + self._extra_ns
        if not self._period_ns:
            due = max(arrival, self._last_ns)
            self._queue.append((due, dataclasses.replace(chunk, t_ns=due)))
            self._last_ns = due
            return
        period = self._period_ns
        last = self._last_piece_ns
        queue = self._queue
        for is_text, part in ((False, chunk.reasoning), (True, chunk.text)):
            for piece in token_pieces(part):
                shown = float(arrival) if last is None else max(float(arrival), last + period)
                last = shown
                due = max(round(shown), self._last_ns)
                self._last_ns = due
                if is_text:
                    queue.append((due, ContentChunk(due, text=piece)))
                else:
                    queue.append((due, ContentChunk(due, reasoning=piece)))
        self._last_piece_ns = last

    def _push(self, event: StreamEvent) -> None:
        due = max(event.t_ns, self._last_ns)
        if due != event.t_ns:
            event = dataclasses.replace(event, t_ns=due)
        self._queue.append((due, event))
        self._last_ns = due
        if isinstance(event, _Terminal):
            self._end_ns = due

    def _cut(self, at_ns: int) -> None:
        """Drop what would be shown after `at_ns` (a pending end included); end cancelled."""
        queue = self._queue
        while queue and queue[-1][0] > at_ns:
            queue.pop()
        if queue and isinstance(queue[-1][1], _Terminal):
            self._end_ns = queue[-1][0]  # it had ended before the cut
            return
        self._end_ns = None
        self._last_ns = max(queue[-1][0] if queue else 0, self._released_ns, at_ns)
        self._push(StreamDone(self._last_ns, "cancelled", cancelled=True))
