"""Moves one turn's events onto the screen, a frame at a time.

Events arrive already timestamped from the backend's thread; this only decides when to *show*
them. Text is buffered and flushed on a ~30 Hz frame timer, except the first token and the end
of the stream, which are flushed at once so neither waits for the next tick. The figures are
refreshed on their own ~10 Hz timer.

With an active `Feel` the events go through a `Throttle` first and only what it releases is shown
(and handed to `on_shown`, which is where a throttled reply is spoken from): the pump then keeps
going after the true stream has ended, until the last held-back piece has been shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Protocol

from textual.timer import Timer
from textual.widget import Widget

from demo.core.events import ContentChunk, StreamEvent, StreamWarning
from demo.core.runner import EventSink
from demo.core.throttle import Feel, Throttle
from demo.core.turn import Turn, TurnResult
from demo.ui.widgets.metrics_panel import PanelFigures
from demo.ui.widgets.transcript import Transcript

FRAME_S = 1 / 30
METRICS_S = 0.1


class FiguresView(Protocol):
    """Where a pump shows a turn's figures: the chat screen's panel, or a race pane's."""

    def start_turn(self, backend: str) -> None: ...

    def show(self, figures: PanelFigures) -> None: ...


class ReplyPump:
    """Drives one turn into the transcript and the metrics panel.

    Args:
        turn: the turn to show (started or not).
        transcript: where the reply is written.
        panel: where its figures are shown.
        on_finished: called once with the result when the reply has been shown to the end.
        feel: how to show it; None or an inactive feel shows it as it arrives, at no extra cost.
        on_shown: called on this loop with every event as it is shown, only under an active feel.
        label: the reply's heading in the transcript; `backend · kind` by default.
        frame_s: how often buffered text is flushed to the transcript (a race with several
            panes streaming at once flushes each less often, so the screen's total stays put).
    """

    def __init__(
        self,
        turn: Turn,
        transcript: Transcript,
        panel: FiguresView,
        on_finished: Callable[[TurnResult], None],
        *,
        feel: Feel | None = None,
        on_shown: EventSink | None = None,
        label: str | None = None,
        frame_s: float = FRAME_S,
    ) -> None:
        self.turn = turn
        self._transcript = transcript
        self._panel = panel
        self._on_finished = on_finished
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._warned = False
        self._label = label
        self._frame_s = frame_s
        self._frame_ns = round(frame_s * 1e9)
        self.throttle: Throttle | None = None
        """Holds the reply back when a feel is active; None shows it as it arrives."""
        if feel is not None and feel.active:
            self.throttle = Throttle(feel)
            turn.shown = self.throttle.shown
        self._on_shown = on_shown
        self._wake = asyncio.Event()

    def cancel(self) -> None:
        """Stop the reply and stop showing it at once, even what a feel still holds back."""
        self.turn.cancel()
        throttle = self.throttle
        if throttle is not None and not throttle.done:
            self._show(throttle.cancel(time.perf_counter_ns()))
            self._wake.set()

    async def run(self) -> None:
        try:
            if self.throttle is None:
                await self._stream()
            else:
                await self._stream_throttled(self.throttle)
        except Exception as exc:  # a bug must cost this reply, not the app
            self.turn.cancel()
            self._flush()
            self._transcript.end_reply(status="error", note=f"internal error: {exc!r}"[:200])
            self._on_finished(self.turn.result())

    async def _stream(self) -> None:
        turn = self.turn
        owner: Widget = self._transcript
        self._panel.start_turn(turn.backend_name)
        self._transcript.start_reply(label=self._heading())
        frame: Timer = owner.set_interval(self._frame_s, self._flush)
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

    def _heading(self) -> str:
        turn = self.turn
        return self._label or f"{turn.backend_name} · {turn.runner.backend.spec.kind}"

    async def _stream_throttled(self, throttle: Throttle) -> None:
        """Show what the throttle releases, when it is due, until its end has been shown.

        The true stream is consumed by a task of its own that only feeds the throttle. This loop
        sleeps until the next piece is due, but flushes at most once a frame: except for the first
        piece and the end, which are shown the moment they are due.
        """
        turn = self.turn
        self._panel.start_turn(turn.backend_name)
        self._transcript.start_reply(label=self._heading())
        wake = self._wake
        consumer = asyncio.create_task(self._consume(throttle))
        figures: Timer = self._transcript.set_interval(METRICS_S, self._refresh_figures)
        shown_first = False
        flushed_ns = 0
        try:
            while not throttle.done:
                wake.clear()
                now = time.perf_counter_ns()
                self._show(throttle.release(now))
                if throttle.done:
                    break
                if (self._text or self._reasoning) and (
                    not shown_first or now - flushed_ns >= self._frame_ns
                ):
                    self._flush()
                    flushed_ns = now
                    if not shown_first:
                        shown_first = True
                        self._refresh_figures()
                due = throttle.next_due_ns()
                if due is None:
                    if consumer.done():
                        consumer.result()  # re-raises what ended it early
                        raise RuntimeError("the stream ended without a terminal event")
                    await wake.wait()
                    continue
                if shown_first:
                    due = max(due, flushed_ns + self._frame_ns)
                    end = throttle.end_ns
                    if end is not None:
                        due = min(due, end)
                delay = (due - time.perf_counter_ns()) / 1e9
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await wake.wait()
            # Cancelled while showing: the true stream ends within moments; its figures need it.
            await consumer
        finally:
            if not consumer.done():
                consumer.cancel()
            figures.stop()
            self._flush()
        self._finish()

    async def _consume(self, throttle: Throttle) -> None:
        """Feed the true events to the throttle.

        The showing loop is woken only when its plans change: it had nothing due, or the end is
        now known (and may come before the frame it sleeps until).
        """
        wake = self._wake
        try:
            async for batch in self.turn.batches():
                idle = throttle.next_due_ns() is None
                for event in batch:
                    throttle.feed(event)
                if idle or throttle.end_ns is not None:
                    wake.set()
        finally:
            wake.set()

    def _show(self, events: list[StreamEvent]) -> None:
        """Buffer released events for the next flush and hand each to `on_shown`."""
        on_shown = self._on_shown
        for event in events:
            if isinstance(event, ContentChunk):
                if event.text:
                    self._text.append(event.text)
                if event.reasoning:
                    self._reasoning.append(event.reasoning)
            elif isinstance(event, StreamWarning) and not self._warned:
                self._warned = True
                self._transcript.add_notice(event.message, level="warning")
            if on_shown is not None:
                on_shown(event)

    def _flush(self) -> None:
        if self._text or self._reasoning:
            text, reasoning = "".join(self._text), "".join(self._reasoning)
            self._text.clear()
            self._reasoning.clear()
            self._transcript.append(text, reasoning)

    def _refresh_figures(self) -> None:
        accumulator = self.turn.accumulator
        throttle = self.throttle
        if throttle is not None:
            shown = throttle.shown
            self._panel.show(
                PanelFigures(
                    self.turn.backend_name,
                    accumulator.snapshot(),
                    shown.live_tokens_per_s(time.perf_counter_ns()),
                    shown=shown.snapshot(),
                    feel=throttle.feel,
                )
            )
            return
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
        throttle = self.throttle
        if throttle is not None:
            shown = throttle.shown
            result = dataclasses.replace(
                result, feel=throttle.feel, shown=shown.snapshot(), shown_text=shown.text
            )
            # The reply ended as it was shown: a cancel while showing cuts it there.
            assert result.shown is not None
            metrics = result.shown if result.shown.finished else metrics
        self._panel.show(
            PanelFigures(result.backend, result.metrics, shown=result.shown, feel=result.feel)
        )
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
