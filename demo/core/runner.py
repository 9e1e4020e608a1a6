"""Runs a backend's streams on a thread of their own, away from whatever renders.

Each backend gets a dedicated thread with its own asyncio loop (and so its own connection pool).
Timestamps are taken there, as bytes are parsed, so a busy UI loop — or a slow terminal in the
headless commands — can delay when an event is *shown* but never when it is *measured*. Concurrent
backends in a race do not share a loop or a lock, so they cannot slow each other through the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from demo.backends.base import Backend
from demo.core.conversation import ChatRequest
from demo.core.events import StreamDone, StreamError, StreamEvent

EventSink = Callable[[StreamEvent], None]

# A reader thread waiting for the GIL while the UI thread renders would stamp late; a short switch
# interval bounds that wait to about a millisecond.
_SWITCH_INTERVAL_S = 0.001


class EventChannel:
    """Carries events from a reader thread to a consumer on another asyncio loop.

    `put` is called on the reader thread and costs an append; the consumer is woken at most once
    per batch, so a burst of thousands of chunks costs one wake-up, not thousands.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._items: deque[StreamEvent] = deque()
        self._wake = asyncio.Event()
        self._armed = False
        self.closed = False
        """Set once a terminal event has been put."""

    def put(self, event: StreamEvent) -> None:
        self._items.append(event)
        if isinstance(event, StreamDone | StreamError):
            self.closed = True
        if not self._armed:
            self._armed = True
            self._loop.call_soon_threadsafe(self._wake.set)

    async def wait(self) -> None:
        """Wait until at least one event is pending (returns at once if some are)."""
        if not self._items:
            await self._wake.wait()
        self._wake.clear()

    def drain(self) -> list[StreamEvent]:
        """Every pending event, oldest first. Never blocks."""
        # Disarm before draining: an event put meanwhile either lands in this batch or re-arms.
        self._armed = False
        items = self._items
        batch: list[StreamEvent] = []
        while items:
            batch.append(items.popleft())
        return batch


class StreamHandle:
    """A running turn: cancel it, or wait for it to finish."""

    def __init__(self, future: Future[None], loop: asyncio.AbstractEventLoop) -> None:
        self._future = future
        self._loop = loop

    def cancel(self) -> None:
        """Close the connection now; the sink receives a cancelled `StreamDone`."""
        self._future.cancel()

    @property
    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        with contextlib.suppress(Exception):
            self._future.result(timeout)


async def _prime(backend: Backend) -> None:
    """Pay the HTTP stack's one-off costs before the first prompt is even typed.

    httpcore loads anyio's asyncio backend lazily on the first connection (about 20 ms) and an
    httpx client takes tens of milliseconds to build (its TLS context): the app's costs, which
    would otherwise delay the first request — and, for the first, land in its TTFT.
    """
    import anyio

    await anyio.sleep(0)
    prepare = getattr(backend, "prepare", None)
    if prepare is not None:
        prepare()


class BackendRunner:
    """One backend, streamed on its own thread and loop, reused across turns."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"stream:{backend.spec.name}", daemon=True
        )
        if sys.getswitchinterval() > _SWITCH_INTERVAL_S:
            sys.setswitchinterval(_SWITCH_INTERVAL_S)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(_prime(backend), self._loop)

    def start(self, request: ChatRequest, sink: EventSink) -> StreamHandle:
        """Stream `request` and hand every event to `sink` on the reader thread."""
        future = asyncio.run_coroutine_threadsafe(self._run(request, sink), self._loop)
        return StreamHandle(future, self._loop)

    async def _run(self, request: ChatRequest, sink: EventSink) -> None:
        terminal = False
        try:
            async for event in self.backend.stream(request):
                sink(event)
                if isinstance(event, StreamDone | StreamError):
                    terminal = True
                    break
        except asyncio.CancelledError:
            sink(StreamDone(time.perf_counter_ns(), "cancelled", cancelled=True))
            raise
        except Exception as exc:  # a bug must end the turn, not the app
            terminal = True
            sink(StreamError(time.perf_counter_ns(), "internal", f"internal error: {exc!r}"[:240]))
        if not terminal:
            sink(StreamError(time.perf_counter_ns(), "protocol", "the stream ended unexpectedly"))

    def close(self, timeout: float = 2.0) -> None:
        """Close the backend's connections and stop the thread."""
        if not self._thread.is_alive():
            return
        closing = asyncio.run_coroutine_threadsafe(self.backend.aclose(), self._loop)
        with contextlib.suppress(Exception):
            closing.result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
