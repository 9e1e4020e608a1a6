"""One prompt → one streamed reply: the unit every consumer works in.

A `Turn` starts a request on a backend's runner and hands its events back in batches on the
caller's loop. The TUI, the headless commands and (later) the recorder all drive turns this way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from demo.core.conversation import ChatRequest
from demo.core.events import StreamEvent, VoiceEvent
from demo.core.metrics import TurnAccumulator, TurnMetrics
from demo.core.runner import BackendRunner, EventChannel, EventSink, StreamHandle
from demo.core.throttle import Feel
from demo.core.units import public_url
from demo.core.voice import VoiceAccumulator, VoiceFigures


class Turn:
    """A running turn. Iterate `batches()` to consume it; `cancel()` from anywhere on the loop."""

    def __init__(
        self,
        runner: BackendRunner,
        prompt: str,
        request: ChatRequest,
        *,
        observers: Sequence[EventSink] = (),
        voice: VoiceAccumulator | None = None,
    ) -> None:
        self.runner = runner
        self.prompt = prompt
        self.request = request
        self.accumulator = TurnAccumulator()
        self.voice = voice
        """Stage timings when the prompt was spoken (or the reply is spoken), else None."""
        self.events: list[StreamEvent | VoiceEvent] = []
        """Every event of the turn, for whoever records or replays it."""
        self.shown: TurnAccumulator | None = None
        """Figures of what was shown, when a feel held the reply back (set by whoever shows it)."""
        self._observers = tuple(observers)
        self._channel: EventChannel | None = None
        self._handle: StreamHandle | None = None

    @property
    def backend_name(self) -> str:
        return self.runner.backend.spec.name

    def start(self) -> None:
        channel = self._channel = EventChannel()
        observers = self._observers
        sink: EventSink = channel.put
        if observers:
            # Observers run on the reader thread as events arrive (the spoken reply starts from
            # here rather than a frame later); they must be quick and must not block.
            def sink(event: StreamEvent) -> None:
                channel.put(event)
                for observer in observers:
                    observer(event)

        self._handle = self.runner.start(self.request, sink)

    def add_voice_event(self, event: VoiceEvent) -> None:
        """Record a voice stage; callable from any thread (audio callbacks included)."""
        if self.voice is None:
            self.voice = VoiceAccumulator()
        self.voice.feed(event)
        self.events.append(event)

    def cancel(self) -> None:
        """Close the connection; the stream then ends with a cancelled `StreamDone`."""
        if self._handle is not None:
            self._handle.cancel()

    async def batches(self) -> AsyncIterator[list[StreamEvent]]:
        """Events as they arrive, a batch per wake-up, until the terminal event.

        Every event is folded into `accumulator` before the batch is handed over, so figures are
        current whenever the caller looks.
        """
        if self._channel is None:
            self.start()
        assert self._channel is not None
        channel = self._channel
        accumulator = self.accumulator
        while not accumulator.finished:
            await channel.wait()
            batch = channel.drain()
            if not batch:
                continue
            accumulator.feed_all(batch)
            self.events.extend(batch)
            yield batch

    async def run(self) -> TurnResult:
        """Consume the whole turn and return its result."""
        async for _ in self.batches():
            pass
        return self.result()

    def result(self) -> TurnResult:
        backend = self.runner.backend
        return TurnResult(
            backend=backend.spec.name,
            kind=backend.spec.kind,
            model=backend.spec.model,
            base_url=public_url(backend.base_url),
            prompt=self.prompt,
            text=self.accumulator.text,
            reasoning=self.accumulator.reasoning,
            metrics=self.accumulator.snapshot(),
            request_id=self.accumulator.request_id,
            voice=self.voice_figures(),
        )

    def voice_figures(self) -> VoiceFigures | None:
        """Voice stage timings. Under a feel the reply is spoken as it is shown, so the first
        sentence is timed from the first *shown* token, and the stages add up to what was heard."""
        if self.voice is None:
            return None
        accumulator = self.accumulator
        first = accumulator.first_ns
        if self.shown is not None and self.shown.first_ns is not None:
            first = self.shown.first_ns
        return self.voice.figures(t0_ns=accumulator.t0_ns, first_token_ns=first)


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What a finished turn produced: its text and its figures."""

    backend: str
    kind: str
    model: str
    base_url: str
    prompt: str
    text: str
    reasoning: str
    metrics: TurnMetrics
    request_id: str | None = None
    voice: VoiceFigures | None = None
    feel: Feel | None = None
    """How the reply was shown, when a feel was set for its backend."""
    shown: TurnMetrics | None = None
    """Figures of what was shown under the feel (the true ones stay in `metrics`)."""
    shown_text: str | None = None
    """The text that was shown under the feel; shorter than `text` when cancelled mid-way."""

    @property
    def kept_text(self) -> str:
        """What the conversation keeps: the reply as the user saw it."""
        return self.text if self.shown_text is None else self.shown_text

    def as_json(self) -> dict[str, Any]:
        """The flat JSON object `ask --json` prints, one per turn.

        With an active feel, the shown figures are added under `shown_*` keys beside the true
        ones, which keep their names.
        """
        m = self.metrics
        voice = self.voice.as_json() if self.voice else {}
        feel: dict[str, Any] = {}
        if self.feel is not None and self.feel.active:
            shown = self.shown
            feel = {
                "feel_cap_tokens_per_s": self.feel.max_tokens_per_s,
                "feel_extra_ttft_s": self.feel.extra_ttft_s,
                "shown_ttft_s": shown.ttft_s if shown else None,
                "shown_decode_tokens_per_s": shown.decode_tokens_per_s if shown else None,
                "shown_e2e_s": shown.e2e_s if shown else None,
            }
        return {
            "backend": self.backend,
            "kind": self.kind,
            "model": self.model,
            "base_url": self.base_url,
            "ttft_s": m.ttft_s,
            "decode_tokens_per_s": m.decode_tokens_per_s,
            "e2e_s": m.e2e_s,
            "output_tokens": m.output_tokens,
            "output_tokens_source": m.output_tokens_source,
            "reasoning_tokens": m.reasoning_tokens,
            "prompt_tokens": m.prompt_tokens,
            "chunks": m.chunks,
            "chunk_gap_p50_s": m.chunk_gap_p50_s,
            "chunk_gap_p95_s": m.chunk_gap_p95_s,
            "chunk_gap_p99_s": m.chunk_gap_p99_s,
            "chunk_gap_max_s": m.chunk_gap_max_s,
            "server_timing": m.server_timing,
            "warnings": m.warnings,
            "cancelled": m.cancelled,
            "finish_reason": m.finish_reason,
            "error": m.error,
            "error_kind": m.error_kind,
            "request_id": self.request_id,
            "text": self.text,
            "reasoning": self.reasoning or None,
            **voice,
            **feel,
        }
