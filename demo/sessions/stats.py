"""Per-backend statistics of recorded turns. Pure: no UI, no I/O.

Computed from turn *records* (the dicts `demo.sessions.record.turn_record` builds and session files
hold), so a live benchmark and a session loaded from disk are summarised by the same code.

Public API (stable; the bench command and the report both build on it):

- `summarize_turns(records) -> dict[str, BackendStats]`: one entry per backend name, in order of
  first appearance.
- `BackendStats`: `backend`, `count` (turns), `ok` (completed: no error, not cancelled),
  `errors`, `cancelled`, and one `Distribution` each for `ttft_s`, `decode_tokens_per_s`,
  `e2e_s`, `chunk_gap_s` and `output_tokens`; `as_json()`.
- `Distribution`: `n`, `mean`, `p50`, `p90`, `p99`, `min`, `max` (None when `n == 0`);
  `as_json()`; built by `distribution(values)`.
- `METRICS`: the names of the `Distribution` fields, in display order.
- `is_ok(record)`, `metric_values(records, name)` (the raw values a distribution is built from,
  for histograms), `chunk_gaps_s(record)`, `group_by_backend(records)`.

Which turns count: `count` is every turn; the distributions use completed turns only, as llmperf
and vLLM's benchmark do, so a timed-out request cannot pull the means. Chunk gaps are pooled from
the `chunks` offsets of every completed turn (intervals between consecutive content chunks of the
same turn, never across turns); a chunk may carry several tokens, so they are not per-token
figures.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from demo.core.metrics import percentile

Record = Mapping[str, Any]
"""A turn record as recorded (see `assets/session.schema.json`)."""

METRICS: tuple[str, ...] = (
    "ttft_s",
    "decode_tokens_per_s",
    "e2e_s",
    "chunk_gap_s",
    "output_tokens",
)
"""The distributions of a `BackendStats`, in the order tables show them."""


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of one figure over many turns; every statistic is None when there are no values."""

    n: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    min: float | None
    max: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "min": self.min,
            "max": self.max,
        }


EMPTY = Distribution(0, None, None, None, None, None, None)


def distribution(values: Iterable[float]) -> Distribution:
    """Mean and percentiles (linear interpolation between closest ranks, as numpy's default)."""
    ordered = sorted(v for v in values if v is not None and math.isfinite(v))
    if not ordered:
        return EMPTY
    # `percentile` sorts again; on an already sorted list that is a linear pass.
    return Distribution(
        n=len(ordered),
        mean=math.fsum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        min=ordered[0],
        max=ordered[-1],
    )


@dataclass(frozen=True, slots=True)
class BackendStats:
    """What one backend's turns add up to."""

    backend: str
    count: int
    """Every turn, whatever became of it."""
    ok: int
    """Turns that completed (no error, not cancelled); the distributions are built from these."""
    errors: int
    cancelled: int
    ttft_s: Distribution
    decode_tokens_per_s: Distribution
    e2e_s: Distribution
    chunk_gap_s: Distribution
    """Every gap between consecutive content chunks of a turn, pooled over the turns."""
    output_tokens: Distribution

    def as_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "count": self.count,
            "ok": self.ok,
            "errors": self.errors,
            "cancelled": self.cancelled,
            **{name: getattr(self, name).as_json() for name in METRICS},
        }


def is_error(record: Record) -> bool:
    return bool(record.get("error")) or bool((record.get("metrics") or {}).get("error"))


def is_cancelled(record: Record) -> bool:
    return bool(record.get("cancelled")) and not is_error(record)


def is_ok(record: Record) -> bool:
    """Completed: neither an error nor a cancellation."""
    return not is_error(record) and not record.get("cancelled")


def backend_name(record: Record) -> str:
    backend = record.get("backend") or {}
    return str(backend.get("name", "?")) if isinstance(backend, Mapping) else "?"


def group_by_backend(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Records by backend name, in order of first appearance."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(backend_name(record), []).append(record)
    return groups


def chunk_gaps_s(record: Record) -> list[float]:
    """Seconds between consecutive content chunks of one turn."""
    offsets = [chunk[0] for chunk in record.get("chunks") or ()]
    return [(b - a) / 1e9 for a, b in itertools.pairwise(offsets)]


def metric_values(records: Iterable[Record], name: str) -> list[float]:
    """The values of figure `name` (one of `METRICS`) over the completed turns among `records`."""
    if name not in METRICS:
        raise ValueError(f"unknown figure {name!r}; expected one of {', '.join(METRICS)}")
    values: list[float] = []
    for record in records:
        if not is_ok(record):
            continue
        if name == "chunk_gap_s":
            values.extend(chunk_gaps_s(record))
            continue
        value = (record.get("metrics") or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values.append(float(value))
    return values


def summarize_backend(backend: str, records: Sequence[Record]) -> BackendStats:
    """Statistics of one backend's records (all assumed to be that backend's)."""
    errors = sum(1 for r in records if is_error(r))
    cancelled = sum(1 for r in records if is_cancelled(r))
    ok = [r for r in records if is_ok(r)]
    figures = {name: distribution(metric_values(ok, name)) for name in METRICS}
    return BackendStats(
        backend=backend,
        count=len(records),
        ok=len(ok),
        errors=errors,
        cancelled=cancelled,
        **figures,
    )


def summarize_turns(records: Iterable[Record]) -> dict[str, BackendStats]:
    """Per-backend statistics of `records`, keyed by backend name in order of first appearance."""
    return {
        name: summarize_backend(name, group) for name, group in group_by_backend(records).items()
    }
