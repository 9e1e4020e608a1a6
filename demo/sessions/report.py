"""What a report is made of: the turns of one or more session files, as table rows and curves.

Pure: no drawing and no output. The HTML and PNG reports (`report_html`, `charts`), the terminal
summary (`summary`) and the TUI's stats screen all read turns through these functions, so a turn
is shortened, labelled and drawn the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.core.metrics import estimate_tokens
from demo.sessions.reader import SessionError, load_session
from demo.sessions.stats import backend_name, group_by_backend, is_error

Record = Mapping[str, Any]
"""A turn record as recorded (see `assets/session.schema.json`)."""

MAX_CURVE_POINTS = 240
"""Points kept per turn's tokens-over-time curve: a chart a few hundred pixels wide cannot show
more, and a 1,000-turn report must stay small and quick to draw."""

PROMPT_WIDTH = 48
"""Characters of a prompt shown in a per-turn table."""


@dataclass(frozen=True, slots=True)
class LoadedTurns:
    """The turns of every session file given, in file order, and what was skipped on the way."""

    paths: list[Path]
    turns: list[dict[str, Any]]
    warnings: list[str]


def load_turns(paths: Sequence[Path]) -> LoadedTurns:
    """Load and combine session files.

    A torn or corrupt line only costs that line (listed in `warnings`); a file that cannot be
    read at all stops everything, so a report never silently leaves a named file out.

    Raises:
        SessionError: a file is missing, a directory, empty, not a session or from a newer
            schema (one line, naming the file).
    """
    turns: list[dict[str, Any]] = []
    warnings: list[str] = []
    for path in paths:
        session = load_session(path)
        warnings.extend(session.warnings)
        for number, turn in enumerate(session.turns, start=1):
            problem = malformed(turn)
            if problem:
                warnings.append(f"{path}: turn {number} is malformed ({problem}): skipped")
            else:
                turns.append(turn)
    if not turns:
        named = str(paths[0]) if len(paths) == 1 else f"{len(paths)} session files"
        raise SessionError(f"{named}: no turns recorded")
    return LoadedTurns(list(paths), turns, warnings)


def malformed(record: Record) -> str | None:
    """What makes a turn record unusable (valid JSON, wrong shape), or None when it is fine.

    Only what the report reads is checked, so a record from a hand-edited or foreign file
    costs a warning rather than a traceback halfway through a chart.
    """
    backend = record.get("backend")
    if not isinstance(backend, Mapping) or not isinstance(backend.get("name"), str):
        return "no backend name"
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping):
        return "no metrics"
    for name in ("ttft_s", "decode_tokens_per_s", "e2e_s", "output_tokens"):
        value = metrics.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{name} is not a number"
    chunks = record.get("chunks")
    if not isinstance(chunks, list) or not all(
        isinstance(chunk, list)
        and len(chunk) >= 2
        and isinstance(chunk[0], int)
        and all(isinstance(part, str) for part in chunk[1:3])
        for chunk in chunks
    ):
        return "chunks are not [offset_ns, text] pairs"
    usage = record.get("usage")
    if usage is not None and not isinstance(usage, Mapping):
        return "usage is not an object"
    return None


def backend_names(records: Iterable[Record]) -> list[str]:
    """Backend names in order of first appearance: the order of colours, legends and tables."""
    return list(group_by_backend(records))


def metric(record: Record, name: str) -> float | None:
    """A figure of a turn's `metrics`, or None when it is missing or not a number."""
    value = (record.get("metrics") or {}).get(name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def turn_status(record: Record) -> str:
    """What became of a turn, in a word or two: "ok", "cancelled" or "error: <kind>"."""
    if is_error(record):
        error = record.get("error") or {}
        kind = error.get("kind") if isinstance(error, Mapping) else None
        kind = kind or (record.get("metrics") or {}).get("error_kind") or "failed"
        return f"error: {kind}"
    if record.get("cancelled"):
        return "cancelled"
    return "ok"


def shorten(text: str, width: int = PROMPT_WIDTH) -> str:
    """One line of at most `width` characters, with an ellipsis where it was cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class TurnRow:
    """One line of a per-turn table."""

    number: int
    """The turn's position among the reported turns, from 1."""
    backend: str
    mode: str
    prompt: str
    """Shortened to one line."""
    ttft_s: float | None
    decode_tokens_per_s: float | None
    output_tokens: int | None
    tokens_estimated: bool
    """The count is the client's estimate, not the server's usage."""
    e2e_s: float | None
    status: str


def turn_rows(records: Iterable[Record]) -> list[TurnRow]:
    """The per-turn table, in recorded order."""
    rows = []
    for number, record in enumerate(records, start=1):
        tokens = metric(record, "output_tokens")
        source = (record.get("metrics") or {}).get("output_tokens_source")
        rows.append(
            TurnRow(
                number=number,
                backend=backend_name(record),
                mode=str(record.get("mode", "?")),
                prompt=shorten(str(record.get("prompt") or "")),
                ttft_s=metric(record, "ttft_s"),
                decode_tokens_per_s=metric(record, "decode_tokens_per_s"),
                output_tokens=None if tokens is None else int(tokens),
                tokens_estimated=source == "estimate",
                e2e_s=metric(record, "e2e_s"),
                status=turn_status(record),
            )
        )
    return rows


def token_curve(
    record: Record, max_points: int = MAX_CURVE_POINTS
) -> tuple[list[float], list[float]]:
    """A turn's tokens received against seconds since its t0, from its recorded chunks.

    The line is flat at zero until the first chunk, so the wait for the first token shows as
    such. Each chunk's tokens are estimated from its text and, when the server reported usage,
    scaled so the line ends at the reported count (as the race timeline does). Long turns are
    thinned to `max_points` points at evenly spaced chunks, always keeping the first and the
    last; a kept point counts the tokens of the chunks skipped before it, so the line stays true.

    Returns:
        (seconds, cumulative tokens), equally long; both empty when no chunk arrived.
    """
    chunks = record.get("chunks") or ()
    if not chunks:
        return [], []
    # Text and reasoning both count, as in the live figures.
    texts = [chunk[1] + chunk[2] if len(chunk) > 2 else chunk[1] for chunk in chunks]
    keep = _spread(len(chunks), max(2, max_points - 2))
    times: list[float] = []
    counts: list[int] = []
    running = 0
    start = 0
    for index in keep:
        # One estimate of the joined text of the chunks since the last kept one, rather than
        # one per chunk: a 1,000-turn report would otherwise spend most of its time here.
        running += estimate_tokens("".join(texts[start : index + 1]))
        start = index + 1
        times.append(chunks[index][0] / 1e9)
        counts.append(running)
    usage = record.get("usage") or {}
    reported = usage.get("completion_tokens") if isinstance(usage, Mapping) else None
    scale = reported / running if isinstance(reported, int) and reported and running else 1.0
    xs = [0.0, times[0], *times]
    ys = [0.0, 0.0, *(count * scale for count in counts)]
    return xs, ys


def _spread(count: int, limit: int) -> Sequence[int]:
    """At most `limit` indices of `range(count)`, evenly spaced, first and last included."""
    if count <= limit:
        return range(count)
    step = (count - 1) / (limit - 1)
    return [round(i * step) for i in range(limit)]
