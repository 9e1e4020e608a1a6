"""Shared test support: the fault server, and small helpers for driving a backend's stream.

The helpers check the stream's contract (exactly one terminal event, last) on every use, so no test
can forget to; they raise `AssertionError` with a message since pytest only rewrites asserts in test
modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from demo.backends.base import BackendSpec, Timeouts
from demo.backends.openai import OpenAIBackend
from demo.core.conversation import ChatRequest, Message
from demo.core.events import ContentChunk, StreamDone, StreamError, StreamEvent
from tests.support.faultserver import (
    DONE,
    Exchange,
    FaultServer,
    RecordedRequest,
    Signal,
    chunk,
    comment,
    error_reply,
    never_reply,
    reply_chunks,
    sse,
    stream_reply,
    usage_chunk,
)

__all__ = [
    "DONE",
    "Exchange",
    "FaultServer",
    "RecordedRequest",
    "Signal",
    "ask",
    "chunk",
    "collect",
    "comment",
    "error_reply",
    "never_reply",
    "of_type",
    "open_backend",
    "reply_chunks",
    "reply_text",
    "sse",
    "stream_reply",
    "terminal",
    "usage_chunk",
]

E = TypeVar("E")


@asynccontextmanager
async def open_backend(
    base_url: str,
    *,
    timeouts: Timeouts | None = None,
    environ: dict[str, str] | None = None,
    **spec_fields: Any,
) -> AsyncIterator[OpenAIBackend]:
    """An `OpenAIBackend` named "t" for model "m", closed on exit.

    `environ` defaults to an empty mapping so a developer's real keys never reach a test server.
    """
    fields: dict[str, Any] = {"name": "t", "kind": "remote", "model": "m", **spec_fields}
    backend = OpenAIBackend(
        BackendSpec(base_url=base_url, **fields),
        timeouts=timeouts,
        environ={} if environ is None else environ,
    )
    try:
        yield backend
    finally:
        await backend.aclose()


def ask(prompt: str = "Hello?", **fields: Any) -> ChatRequest:
    """A one-message request."""
    return ChatRequest(messages=(Message("user", prompt),), **fields)


async def collect(
    backend: OpenAIBackend,
    request: ChatRequest,
    on_event: Callable[[StreamEvent], None] | None = None,
) -> list[StreamEvent]:
    """Every event of one turn, after checking the stream ended with exactly one terminal event.

    Args:
        backend: The backend to stream from.
        request: The turn.
        on_event: Called with each event as it arrives, to steer the server mid-stream.
    """
    events: list[StreamEvent] = []
    async for event in backend.stream(request):
        events.append(event)
        if on_event is not None:
            on_event(event)
    terminal(events)
    return events


def terminal(events: list[StreamEvent]) -> StreamError | StreamDone:
    """The one terminal event, which must be the last event."""
    ends = [e for e in events if isinstance(e, StreamError | StreamDone)]
    if len(ends) != 1 or not events or events[-1] is not ends[0]:
        raise AssertionError(f"expected exactly one terminal event, last; got {events!r}")
    return ends[0]


def of_type(events: list[StreamEvent], kind: type[E]) -> list[E]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def reply_text(events: list[StreamEvent]) -> str:
    """The reply text the stream carried (before any error: nothing follows a terminal event)."""
    return "".join(e.text for e in of_type(events, ContentChunk))
