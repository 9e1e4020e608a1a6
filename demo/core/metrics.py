"""Latency figures of one turn, computed from its event stream. Pure: no UI, no I/O.

Definitions (also in the README):

- t0: the `RequestSent` timestamp, taken immediately before the request goes out (when the HTTP
  stack starts connecting, or writing the headers on a kept-alive connection).
- TTFT: t0 → the first chunk carrying non-empty content or reasoning text.
- Output tokens: `usage.completion_tokens` when the server reports it (source "usage"), otherwise
  an estimate from the text (source "estimate").
- Decode speed: (output tokens − tokens in the first content chunk) ÷ (last content chunk time −
  first content chunk time). None when a single chunk carried everything.
- E2E: t0 → the terminal event (end of stream, error or cancellation).
- Chunk gaps: intervals between consecutive content chunks; a chunk may carry several tokens, so
  these are not per-token figures.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

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

TokenSource = Literal["usage", "estimate"]

_TOKENISH = re.compile(r"\s?[A-Za-z]{1,6}|\s?\d{1,3}|\s?[^\sA-Za-z\d]|\s+")
LIVE_WINDOW_NS = 1_000_000_000
"""The sliding window of the live tokens/s readout."""
LIVE_MIN_SPAN_NS = 100_000_000
"""Below this span of arrivals the live rate is not shown: two chunks that arrive in one read,
microseconds apart, would read as tens of thousands of tokens/s."""


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens a BPE tokenizer would make of `text`.

    Used only when a server reports no usage; figures built on it are labelled as estimates.
    """
    return len(_TOKENISH.findall(text)) if text else 0


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    """The figures of one turn. Times in seconds; None where a figure does not exist."""

    ttft_s: float | None
    decode_tokens_per_s: float | None
    e2e_s: float | None
    output_tokens: int
    output_tokens_source: TokenSource
    reasoning_tokens: int
    chunks: int
    chunk_gap_p50_s: float | None
    chunk_gap_p95_s: float | None
    chunk_gap_p99_s: float | None
    chunk_gap_max_s: float | None
    prompt_tokens: int | None
    server_timing: dict[str, object] | None
    warnings: int
    error: str | None
    error_kind: str | None
    cancelled: bool
    finish_reason: str | None
    """The server's reason for ending ("stop", "length", …), when it gave one."""
    finished: bool
    """True once the terminal event was seen; live snapshots have it False."""


@dataclass(slots=True)
class TurnAccumulator:
    """Folds a turn's events into figures; `snapshot()` may be called at any point.

    Feeding is O(1) per event, so it can sit beside the stream without slowing it.
    """

    t0_ns: int | None = None
    first_ns: int | None = None
    last_ns: int | None = None
    end_ns: int | None = None
    first_chunk_text: str = ""
    text_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    chunk_times: list[int] = field(default_factory=list)
    text_chars: int = 0
    usage_tokens: int | None = None
    usage_reasoning_tokens: int | None = None
    prompt_tokens: int | None = None
    timing: ServerTiming | None = None
    warnings: int = 0
    error: StreamError | None = None
    cancelled: bool = False
    finish_reason: str | None = None
    request_id: str | None = None
    """The server's `x-request-id`, to match a turn with the server's own records."""
    _window: deque[tuple[int, int]] = field(default_factory=deque)
    _window_tokens: int = 0
    _estimated_tokens: int = 0

    def feed(self, event: StreamEvent) -> None:
        if isinstance(event, ContentChunk):
            self._chunk(event)
        elif isinstance(event, RequestSent):
            # A retried request restarts the clock: t0 is always the request actually answered.
            self.t0_ns = event.t_ns
        elif isinstance(event, ResponseStarted):
            self.request_id = event.request_id
        elif isinstance(event, Usage):
            if event.completion_tokens is not None:
                self.usage_tokens = event.completion_tokens
            if event.reasoning_tokens is not None:
                self.usage_reasoning_tokens = event.reasoning_tokens
            if event.prompt_tokens is not None:
                self.prompt_tokens = event.prompt_tokens
        elif isinstance(event, ServerTiming):
            self.timing = event
        elif isinstance(event, StreamWarning):
            self.warnings += 1
        elif isinstance(event, StreamError):
            self.error = event
            self.end_ns = event.t_ns
        elif isinstance(event, StreamDone):
            self.cancelled = event.cancelled
            self.finish_reason = None if event.cancelled else event.finish_reason
            self.end_ns = event.t_ns

    def feed_all(self, events: list[StreamEvent]) -> None:
        for event in events:
            self.feed(event)

    def _chunk(self, chunk: ContentChunk) -> None:
        if not chunk.text and not chunk.reasoning:
            return
        t = chunk.t_ns
        if self.first_ns is None:
            self.first_ns = t
            self.first_chunk_text = chunk.text + chunk.reasoning
        self.last_ns = t
        self.chunk_times.append(t)
        if chunk.text:
            self.text_parts.append(chunk.text)
            self.text_chars += len(chunk.text)
        if chunk.reasoning:
            self.reasoning_parts.append(chunk.reasoning)
        tokens = estimate_tokens(chunk.text) + estimate_tokens(chunk.reasoning)
        self._estimated_tokens += tokens
        self._window.append((t, tokens))
        self._window_tokens += tokens

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def finished(self) -> bool:
        return self.end_ns is not None

    def live_tokens_per_s(self, now_ns: int) -> float | None:
        """Tokens/s over the last second of arrivals, for the readout while streaming.

        The window is anchored at the latest chunk while the stream is live, so a pause in the
        readout's refresh does not read as a slowdown; once finished it yields the final figure.
        """
        if self.finished:
            return self.snapshot().decode_tokens_per_s
        if self.first_ns is None or self.last_ns is None:
            return None
        horizon = self.last_ns - LIVE_WINDOW_NS
        window = self._window
        while len(window) > 1 and window[0][0] < horizon:
            self._window_tokens -= window.popleft()[1]
        if len(window) < 2:
            return None
        span = window[-1][0] - window[0][0]
        if span < LIVE_MIN_SPAN_NS:
            return None
        # The first chunk in the window opens the interval; its tokens arrived before it.
        return (self._window_tokens - window[0][1]) / (span / 1e9)

    def output_tokens(self) -> tuple[int, TokenSource]:
        if self.usage_tokens is not None:
            return self.usage_tokens, "usage"
        return self._estimated_tokens, "estimate"

    def _first_chunk_tokens(self, total: int, source: TokenSource) -> float:
        """Tokens the first content chunk carried.

        With a usage count, the first chunk's share is its share of the estimated tokens scaled to
        the server's total, so the estimator's bias cancels out instead of skewing the decode rate
        (a share by characters undercounts short tokens such as a lone `#`).
        """
        first = float(estimate_tokens(self.first_chunk_text))
        if source == "estimate" or self._estimated_tokens == 0:
            return first
        return total * first / self._estimated_tokens

    def snapshot(self) -> TurnMetrics:
        total, source = self.output_tokens()
        ttft = _seconds(self.first_ns, self.t0_ns)
        decode: float | None = None
        if self.first_ns is not None and self.last_ns is not None and self.last_ns > self.first_ns:
            decode_tokens = total - self._first_chunk_tokens(total, source)
            decode = max(0.0, decode_tokens) / ((self.last_ns - self.first_ns) / 1e9)
        times = self.chunk_times
        gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
        reasoning_tokens = self.usage_reasoning_tokens
        if reasoning_tokens is None:
            reasoning_tokens = sum(estimate_tokens(r) for r in self.reasoning_parts)
        timing: dict[str, object] | None = None
        if self.timing is not None:
            timing = {"provider": self.timing.provider, **self.timing.values}
        return TurnMetrics(
            ttft_s=ttft,
            decode_tokens_per_s=decode,
            e2e_s=_seconds(self.end_ns, self.t0_ns),
            output_tokens=total,
            output_tokens_source=source,
            reasoning_tokens=reasoning_tokens,
            chunks=len(times),
            chunk_gap_p50_s=percentile(gaps, 50),
            chunk_gap_p95_s=percentile(gaps, 95),
            chunk_gap_p99_s=percentile(gaps, 99),
            chunk_gap_max_s=max(gaps) if gaps else None,
            prompt_tokens=self.prompt_tokens,
            server_timing=timing,
            warnings=self.warnings,
            error=self.error.message if self.error else None,
            error_kind=self.error.kind if self.error else None,
            cancelled=self.cancelled,
            finish_reason=self.finish_reason,
            finished=self.finished,
        )


def _seconds(end_ns: int | None, start_ns: int | None) -> float | None:
    if end_ns is None or start_ns is None:
        return None
    return (end_ns - start_ns) / 1e9
