"""Moves one turn's events onto the screen, a frame at a time.

Events arrive already timestamped from the backend's thread; this only decides when to *show*
them. Text is buffered and flushed on a ~30 Hz frame timer, except the first token and the end
of the stream, which are flushed at once so neither waits for the next tick. The figures are
refreshed on their own ~10 Hz timer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.timer import Timer
from textual.widget import Widget

from demo.core.events import ContentChunk, StreamWarning
from demo.core.turn import Turn, TurnResult
from demo.ui.widgets.metrics_panel import MetricsPanel, PanelFigures
from demo.ui.widgets.transcript import Transcript

FRAME_S = 1 / 30
METRICS_S = 0.1


class ReplyPump:
    """Drives one turn into the transcript and the metrics panel."""

    def __init__(
        self,
        turn: Turn,
        transcript: Transcript,
        panel: MetricsPanel,
        on_finished: Callable[[TurnResult], None],
    ) -> None:
        self.turn = turn
        self._transcript = transcript
        self._panel = panel
        self._on_finished = on_finished
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._warned = False

    async def run(self) -> None:
        try:
            await self._stream()
        except Exception as exc:  # a bug must cost this reply, not the app
            self.turn.cancel()
            self._flush()
            self._transcript.end_reply(status="error", note=f"internal error: {exc!r}"[:200])
            self._on_finished(self.turn.result())

    async def _stream(self) -> None:
        turn = self.turn
        owner: Widget = self._transcript
        self._panel.start_turn(turn.backend_name)
        self._transcript.start_reply(label=f"{turn.backend_name} · {turn.runner.backend.spec.kind}")
        frame: Timer = owner.set_interval(FRAME_S, self._flush)
        figures: Timer = owner.set_interval(METRICS_S, self._refresh_figures)
        shown_first = False
        try:
            async for batch in turn.batches():
                for event in batch:
                    if isinstance(event, ContentChunk):
                        if event.text:
                            self._text.append(event.text)
                        if event.reasoning:
                            self._reasoning.append(event.reasoning)
                    elif isinstance(event, StreamWarning) and not self._warned:
                        self._warned = True
                        self._transcript.add_notice(event.message, level="warning")
                if not shown_first and (self._text or self._reasoning):
                    shown_first = True
                    self._flush()
                    self._refresh_figures()
        finally:
            # Both callbacks are synchronous, so stopping cannot interrupt one half-way.
            frame.stop()
            figures.stop()
            self._flush()
        self._finish()

    def _flush(self) -> None:
        if self._text or self._reasoning:
            text, reasoning = "".join(self._text), "".join(self._reasoning)
            self._text.clear()
            self._reasoning.clear()
            self._transcript.append(text, reasoning)

    def _refresh_figures(self) -> None:
        accumulator = self.turn.accumulator
        self._panel.show(
            PanelFigures(
                self.turn.backend_name,
                accumulator.snapshot(),
                accumulator.live_tokens_per_s(time.perf_counter_ns()),
            )
        )

    def _finish(self) -> None:
        result = self.turn.result()
        metrics = result.metrics
        self._panel.show(PanelFigures(result.backend, metrics))
        if metrics.error:
            self._transcript.end_reply(status="error", note=metrics.error)
        elif metrics.cancelled:
            self._transcript.end_reply(status="cancelled", note="cancelled — partial reply kept")
        elif metrics.finish_reason == "length":
            self._transcript.end_reply(
                status="done", note="stopped at the token limit (max_tokens)"
            )
        else:
            self._transcript.end_reply(status="done")
        self._on_finished(result)
