"""What a session file holds: a header line, then one JSON object per turn.

The turn record is built from the turn's own event stream, so everything a replay or a report
needs (every chunk's arrival offset from t0, usage, provider timings, errors) comes from the same
timestamps the live figures were computed from. `assets/session.schema.json` documents it.
Nothing that could hold a secret is written: no headers, no keys, and base URLs lose any
user-info or query string.
"""

from __future__ import annotations

import dataclasses
import platform
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from demo import __version__
from demo.core.events import (
    ContentChunk,
    RequestSent,
    ResponseStarted,
    ServerTiming,
    StreamDone,
    StreamError,
    StreamWarning,
    Usage,
)
from demo.core.turn import Turn, TurnResult
from demo.core.units import public_url

SCHEMA_VERSION = 1
"""Bumped whenever a reader of the previous version would misread a file."""

TurnMode = Literal["typed", "voice", "race", "replay", "bench"]


def header(started: datetime | None = None) -> dict[str, Any]:
    """The first line of every session file."""
    started = started or datetime.now(UTC)
    return {
        "type": "session",
        "schema_version": SCHEMA_VERSION,
        "app_version": __version__,
        "started_at": started.isoformat(timespec="milliseconds"),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def race_record(lanes: list[str], number: int) -> dict[str, Any]:
    """What ties a race's turns together in a session: an id unique across runs, its lanes.

    Add the lane's `place` (1 = finished first, None = did not finish) per turn.
    """
    return {"id": uuid.uuid4().hex[:12], "number": number, "lanes": list(lanes)}


def turn_record(
    turn: Turn,
    result: TurnResult,
    *,
    mode: TurnMode = "typed",
    race: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One turn as a JSON-ready dict: request, reply, every chunk's timing and every figure."""
    t0 = turn.accumulator.t0_ns
    chunks: list[list[Any]] = []
    usage: dict[str, Any] | None = None
    server: dict[str, Any] | None = None
    warnings: list[str] = []
    error: dict[str, Any] | None = None
    response_ns: int | None = None
    end_ns: int | None = None
    params: dict[str, Any] = {}
    for event in turn.events:
        if isinstance(event, ContentChunk):
            if t0 is None or not (event.text or event.reasoning):
                continue
            chunk: list[Any] = [event.t_ns - t0, event.text]
            if event.reasoning:
                chunk.append(event.reasoning)
            chunks.append(chunk)
        elif isinstance(event, RequestSent):
            params = dict(event.params)
        elif isinstance(event, ResponseStarted) and t0 is not None:
            response_ns = event.t_ns - t0
        elif isinstance(event, Usage):
            usage = {
                "prompt_tokens": event.prompt_tokens,
                "completion_tokens": event.completion_tokens,
                "reasoning_tokens": event.reasoning_tokens,
            }
        elif isinstance(event, ServerTiming):
            server = {"provider": event.provider, **event.values}
        elif isinstance(event, StreamWarning):
            warnings.append(event.message)
        elif isinstance(event, StreamError):
            error = {"kind": event.kind, "message": event.message, "status": event.status}
            end_ns = event.t_ns - t0 if t0 is not None else None
        elif isinstance(event, StreamDone):
            end_ns = event.t_ns - t0 if t0 is not None else None
    request = turn.request
    feel = getattr(result, "feel", None)
    shown = getattr(result, "shown", None)
    return {
        "type": "turn",
        "recorded_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "mode": mode,
        "race": race,
        "backend": {
            "name": result.backend,
            "kind": result.kind,
            "model": result.model,
            "base_url": public_url(result.base_url),
        },
        "request": {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "messages": len(request.messages),
            "params": params,
        },
        "prompt": result.prompt,
        "text": result.text,
        "reasoning": result.reasoning,
        "request_id": result.request_id,
        "response_offset_ns": response_ns,
        "end_offset_ns": end_ns,
        "chunks": chunks,
        "usage": usage,
        "server_timing": server,
        "warnings": warnings,
        "metrics": dataclasses.asdict(result.metrics),
        "voice": result.voice.as_json() if result.voice else None,
        "feel": dataclasses.asdict(feel) if feel is not None else None,
        "shown": dataclasses.asdict(shown) if shown is not None else None,
        "error": error,
        "cancelled": result.metrics.cancelled,
    }
