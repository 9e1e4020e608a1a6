"""Turn records as CSV: one row per turn, every figure a spreadsheet or pandas needs.

Floats are written as Python writes them (the shortest text that reads back as the same float),
so a figure read back from the CSV equals the recorded one exactly. A missing figure is an empty
cell; booleans are `true`/`false`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Record = Mapping[str, Any]


def _at(*keys: str) -> Callable[[Record], Any]:
    """A reader of the value at a path of keys, None where any step is missing."""

    def read(record: Record) -> Any:
        value: Any = record
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    return read


def _metric(name: str) -> Callable[[Record], Any]:
    return _at("metrics", name)


COLUMNS: tuple[tuple[str, Callable[[Record], Any]], ...] = (
    ("recorded_at", _at("recorded_at")),
    ("mode", _at("mode")),
    ("race_id", _at("race", "id")),
    ("race_finish_place", _at("race", "finish_place")),
    ("backend", _at("backend", "name")),
    ("backend_kind", _at("backend", "kind")),
    ("model", _at("backend", "model")),
    ("base_url", _at("backend", "base_url")),
    ("prompt", _at("prompt")),
    ("ttft_s", _metric("ttft_s")),
    ("decode_tokens_per_s", _metric("decode_tokens_per_s")),
    ("e2e_s", _metric("e2e_s")),
    ("output_tokens", _metric("output_tokens")),
    ("output_tokens_source", _metric("output_tokens_source")),
    ("reasoning_tokens", _metric("reasoning_tokens")),
    ("prompt_tokens", _metric("prompt_tokens")),
    ("chunks", _metric("chunks")),
    ("chunk_gap_p50_s", _metric("chunk_gap_p50_s")),
    ("chunk_gap_p95_s", _metric("chunk_gap_p95_s")),
    ("chunk_gap_p99_s", _metric("chunk_gap_p99_s")),
    ("chunk_gap_max_s", _metric("chunk_gap_max_s")),
    ("finish_reason", _metric("finish_reason")),
    ("feel_max_tokens_per_s", _at("feel", "max_tokens_per_s")),
    ("feel_extra_ttft_s", _at("feel", "extra_ttft_s")),
    ("shown_ttft_s", _at("shown", "ttft_s")),
    ("shown_decode_tokens_per_s", _at("shown", "decode_tokens_per_s")),
    ("shown_e2e_s", _at("shown", "e2e_s")),
    ("voice_speech_s", _at("voice", "speech_s")),
    ("voice_stt_s", _at("voice", "stt_s")),
    ("voice_stt_rtf", _at("voice", "stt_rtf")),
    ("voice_first_sentence_s", _at("voice", "first_sentence_s")),
    ("voice_tts_first_audio_s", _at("voice", "tts_first_audio_s")),
    ("voice_to_voice_s", _at("voice", "voice_to_voice_s")),
    ("voice_transcript", _at("voice", "transcript")),
    ("error_kind", _at("error", "kind")),
    ("error_status", _at("error", "status")),
    ("error", _at("error", "message")),
    ("cancelled", _at("cancelled")),
    ("request_id", _at("request_id")),
    ("text", _at("text")),
)
"""Every column, in order, with how its cell is read from a turn record."""

HEADER: tuple[str, ...] = tuple(name for name, _ in COLUMNS)


def cell(value: Any) -> str | int | float:
    """A value as the csv module should write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return value  # csv writes floats with repr: they read back exactly
    return str(value)


def rows(records: Iterable[Record]) -> Iterable[list[str | int | float]]:
    """The CSV rows of `records`, header excluded."""
    for record in records:
        yield [cell(read(record)) for _, read in COLUMNS]


def to_csv(records: Iterable[Record]) -> str:
    """The whole CSV document: the header, then one row per turn."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows(records))
    return buffer.getvalue()
