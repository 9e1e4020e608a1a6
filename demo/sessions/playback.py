"""A session's turns read for replaying: checked, with their figures, grouped as they were played.

Records come from files that may be old, hand-edited or half-written, so each turn is checked
once here and a turn that cannot be replayed is skipped with a warning, never half-replayed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast, get_args

from demo.config import RACE_MAX_LANES, RACE_MIN_LANES
from demo.core.events import ErrorKind
from demo.core.metrics import TurnMetrics
from demo.sessions.reader import Session

_ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """One turn of a session file, checked and ready to be replayed."""

    index: int
    """Its position among the session's turns (0-based)."""
    prompt: str
    backend: str
    model: str
    chunks: tuple[tuple[int, str, str], ...]
    """(offset from t0 in ns, text, reasoning) of every content chunk, in arrival order."""
    response_offset_ns: int | None
    end_offset_ns: int | None
    usage: tuple[int | None, int | None, int | None] | None
    """(prompt, completion, reasoning) tokens as the server reported them."""
    server_timing: tuple[str, dict[str, float]] | None
    warnings: tuple[str, ...]
    error: tuple[ErrorKind, str, int | None] | None
    cancelled: bool
    finish_reason: str | None
    request_id: str | None
    race_id: str | None
    """The race this turn ran in, shared by every lane of it; None outside races."""
    metrics: TurnMetrics
    """The figures measured when it was recorded."""
    shown: TurnMetrics | None
    """Figures of what was shown, when a feel held the reply back."""
    feel: dict[str, Any] | None

    @classmethod
    def parse(cls, record: dict[str, Any], index: int) -> RecordedTurn:
        """Check a turn record; ValueError (one line) when it cannot be replayed."""
        backend = record.get("backend")
        if not isinstance(backend, dict):
            raise ValueError("no backend")
        chunks: list[tuple[int, str, str]] = []
        latest = 0
        raw_chunks = record.get("chunks")
        if not isinstance(raw_chunks, list):
            raise ValueError("no chunks")
        for chunk in raw_chunks:
            if not (
                isinstance(chunk, list)
                and len(chunk) in (2, 3)
                and _is_int(chunk[0])
                and all(isinstance(part, str) for part in chunk[1:])
            ):
                raise ValueError(f"a malformed chunk: {str(chunk)[:60]}")
            # Offsets come from a monotonic clock; a hand-edited file cannot make time run back.
            latest = max(latest, chunk[0])
            chunks.append((latest, chunk[1], chunk[2] if len(chunk) == 3 else ""))
        metrics = recorded_metrics(record.get("metrics"))
        if metrics is None:
            raise ValueError("no figures")
        error = record.get("error")
        parsed_error: tuple[ErrorKind, str, int | None] | None = None
        if isinstance(error, dict):
            kind = error.get("kind")
            status = error.get("status")
            parsed_error = (
                cast(ErrorKind, kind) if kind in _ERROR_KINDS else "internal",
                str(error.get("message") or "error"),
                status if _is_int(status) else None,
            )
        usage = record.get("usage")
        parsed_usage = None
        if isinstance(usage, dict):
            parsed_usage = (
                _int_or_none(usage.get("prompt_tokens")),
                _int_or_none(usage.get("completion_tokens")),
                _int_or_none(usage.get("reasoning_tokens")),
            )
        timing = record.get("server_timing")
        parsed_timing = None
        if isinstance(timing, dict):
            values = {k: float(v) for k, v in timing.items() if k != "provider" and _is_num(v)}
            parsed_timing = (str(timing.get("provider", "server")), values)
        race = record.get("race")
        race_id = race.get("id") if isinstance(race, dict) else None
        feel = record.get("feel")
        return cls(
            index=index,
            prompt=str(record.get("prompt", "")),
            backend=str(backend.get("name", "recorded")),
            model=str(backend.get("model", "")),
            chunks=tuple(chunks),
            response_offset_ns=_int_or_none(record.get("response_offset_ns")),
            end_offset_ns=_int_or_none(record.get("end_offset_ns")),
            usage=parsed_usage,
            server_timing=parsed_timing,
            warnings=tuple(str(w) for w in record.get("warnings") or () if isinstance(w, str)),
            error=parsed_error,
            cancelled=bool(record.get("cancelled")),
            finish_reason=metrics.finish_reason,
            request_id=_str_or_none(record.get("request_id")),
            race_id=None if race_id is None else str(race_id),
            metrics=metrics,
            shown=recorded_metrics(record.get("shown")),
            feel=feel if isinstance(feel, dict) else None,
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


_METRIC_DEFAULTS: dict[str, object] = {
    "output_tokens": 0,
    "output_tokens_source": "estimate",
    "reasoning_tokens": 0,
    "chunks": 0,
    "warnings": 0,
    "cancelled": False,
    "finished": True,
}
_METRIC_TYPES: dict[str, type | tuple[type, ...]] = {
    "output_tokens_source": str,
    "error": str,
    "error_kind": str,
    "finish_reason": str,
    "server_timing": dict,
    "cancelled": bool,
    "finished": bool,
}


def recorded_metrics(data: object) -> TurnMetrics | None:
    """The figures of a recorded turn, as `TurnMetrics`; None when there are none.

    Fields a file lacks (an older writer) or holds with the wrong type read as unknown, so a
    figure is shown as missing rather than wrong.
    """
    if not isinstance(data, dict):
        return None
    values: dict[str, Any] = {}
    for item in dataclasses.fields(TurnMetrics):
        name = item.name
        value = data.get(name)
        expected = _METRIC_TYPES.get(name)
        if expected is not None:
            ok = isinstance(value, expected)
        elif name in _METRIC_DEFAULTS or name == "prompt_tokens":
            ok = _is_int(value)
        else:
            ok = _is_num(value)
        values[name] = value if ok else _METRIC_DEFAULTS.get(name)
    if values["output_tokens_source"] not in ("usage", "estimate"):
        values["output_tokens_source"] = "estimate"
    return TurnMetrics(**values)


def recorded_turns(session: Session) -> tuple[list[RecordedTurn], list[str]]:
    """The session's replayable turns, and a warning for each turn that is not."""
    turns: list[RecordedTurn] = []
    warnings: list[str] = []
    for index, record in enumerate(session.turns):
        try:
            turns.append(RecordedTurn.parse(record, index))
        except ValueError as exc:
            warnings.append(f"{session.path}: turn {index + 1} cannot be replayed ({exc}): skipped")
    return turns, warnings


@dataclass(frozen=True, slots=True)
class Play:
    """What one step of a replay plays: a single turn, or every lane of one race together."""

    turns: tuple[RecordedTurn, ...]

    @property
    def is_race(self) -> bool:
        return len(self.turns) > 1

    @property
    def prompt(self) -> str:
        return self.turns[0].prompt


def playlist(turns: Sequence[RecordedTurn]) -> list[Play]:
    """The turns in recorded order, the lanes of each race gathered where the race first appears.

    A race's lanes are recorded one after another when it ends; a race that cannot be raced again
    (a lane missing or named twice) is played one lane after another instead.
    """
    order: list[str | int] = []
    races: dict[str, list[RecordedTurn]] = {}
    for turn in turns:
        if turn.race_id is None:
            order.append(turn.index)
            continue
        if turn.race_id not in races:
            races[turn.race_id] = []
            order.append(turn.race_id)
        races[turn.race_id].append(turn)
    by_index = {turn.index: turn for turn in turns}
    plays: list[Play] = []
    for key in order:
        if isinstance(key, int):
            plays.append(Play((by_index[key],)))
            continue
        lanes = races[key]
        names = [lane.backend for lane in lanes]
        if RACE_MIN_LANES <= len(lanes) <= RACE_MAX_LANES and len(set(names)) == len(names):
            plays.append(Play(tuple(lanes)))
        else:
            plays.extend(Play((lane,)) for lane in lanes)
    return plays
