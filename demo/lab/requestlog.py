"""What the lab server really sent, and when.

Benchmarks check a client's measurements against these records: every send time is taken with
`time.perf_counter_ns()` right after the bytes were handed to the transport, on the same monotonic
clock a client in another process reads on Linux.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

CAPACITY = 500
"""How many recent requests are kept; older ones are forgotten first."""


@dataclass(slots=True)
class RequestRecord:
    """One request's log, filled in while its reply is being sent."""

    id: str
    profile: str
    received_ns: int
    stream: bool
    seed: int
    chunks: list[tuple[int, int, int, int]] = field(default_factory=list)
    """(due_ns, sent_ns, tokens, chars) of each content chunk: plain tuples on the hot path."""
    role_sent_ns: int | None = None
    finish_reason: str | None = None
    done_sent_ns: int | None = None
    disconnected: bool = False
    """The client went away before the reply was complete."""

    def to_json(self) -> dict[str, Any]:
        """The record in the shape `GET /lab/requests/{id}` returns."""
        chunks = self.chunks
        return {
            "id": self.id,
            "profile": self.profile,
            "stream": self.stream,
            "seed": self.seed,
            "received_ns": self.received_ns,
            "role_sent_ns": self.role_sent_ns,
            "chunks": [
                {"sent_ns": s, "due_ns": d, "tokens": t, "chars": c} for d, s, t, c in chunks
            ],
            "first_content_sent_ns": chunks[0][1] if chunks else None,
            "last_content_sent_ns": chunks[-1][1] if chunks else None,
            "output_tokens": sum(chunk[2] for chunk in chunks),
            "finish_reason": self.finish_reason,
            "done_sent_ns": self.done_sent_ns,
            "disconnected": self.disconnected,
        }


class RequestLog:
    """The most recent requests, by id."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._records: OrderedDict[str, RequestRecord] = OrderedDict()

    def open(self, profile: str, received_ns: int, *, stream: bool, seed: int) -> RequestRecord:
        """Start the record of a new request, forgetting the oldest one if the log is full."""
        record = RequestRecord(f"req_{secrets.token_hex(12)}", profile, received_ns, stream, seed)
        self._records[record.id] = record
        while len(self._records) > self._capacity:
            self._records.popitem(last=False)
        return record

    def get(self, request_id: str) -> RequestRecord | None:
        """The record of a request still in the log."""
        return self._records.get(request_id)

    def __len__(self) -> int:
        return len(self._records)
