"""`latency-demo export SESSION --csv`: one row per turn, figures that read back exactly."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.cli import main
from demo.core.metrics import TurnMetrics
from demo.core.throttle import Feel
from demo.core.voice import VoiceFigures
from demo.lab.process import LabServer
from demo.sessions.export import COLUMNS, HEADER, to_csv
from demo.sessions.reader import load_session
from tests.support.turn_records import fixed_events, fixed_turn, lab_records, record_of
from tests.support.turn_records import write_session as write

FLOAT_COLUMNS = {
    "ttft_s": ("metrics", "ttft_s"),
    "decode_tokens_per_s": ("metrics", "decode_tokens_per_s"),
    "e2e_s": ("metrics", "e2e_s"),
    "chunk_gap_p50_s": ("metrics", "chunk_gap_p50_s"),
    "chunk_gap_p95_s": ("metrics", "chunk_gap_p95_s"),
    "chunk_gap_p99_s": ("metrics", "chunk_gap_p99_s"),
    "chunk_gap_max_s": ("metrics", "chunk_gap_max_s"),
    "feel_max_tokens_per_s": ("feel", "max_tokens_per_s"),
    "feel_extra_ttft_s": ("feel", "extra_ttft_s"),
    "shown_ttft_s": ("shown", "ttft_s"),
    "shown_decode_tokens_per_s": ("shown", "decode_tokens_per_s"),
    "shown_e2e_s": ("shown", "e2e_s"),
    "voice_speech_s": ("voice", "speech_s"),
    "voice_stt_s": ("voice", "stt_s"),
    "voice_stt_rtf": ("voice", "stt_rtf"),
    "voice_first_sentence_s": ("voice", "first_sentence_s"),
    "voice_tts_first_audio_s": ("voice", "tts_first_audio_s"),
    "voice_to_voice_s": ("voice", "voice_to_voice_s"),
}
INT_COLUMNS = {
    "race_id": ("race", "id"),
    "race_finish_place": ("race", "finish_place"),
    "output_tokens": ("metrics", "output_tokens"),
    "reasoning_tokens": ("metrics", "reasoning_tokens"),
    "prompt_tokens": ("metrics", "prompt_tokens"),
    "chunks": ("metrics", "chunks"),
    "error_status": ("error", "status"),
}
TEXT_COLUMNS = {
    "recorded_at": ("recorded_at",),
    "mode": ("mode",),
    "backend": ("backend", "name"),
    "backend_kind": ("backend", "kind"),
    "model": ("backend", "model"),
    "base_url": ("backend", "base_url"),
    "prompt": ("prompt",),
    "output_tokens_source": ("metrics", "output_tokens_source"),
    "finish_reason": ("metrics", "finish_reason"),
    "voice_transcript": ("voice", "transcript"),
    "error_kind": ("error", "kind"),
    "error": ("error", "message"),
    "request_id": ("request_id",),
    "text": ("text",),
}


def at(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


@pytest.fixture(scope="module")
def lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with LabServer() as server:
        records = lab_records(server.url, rounds=2)
    yield write(tmp_path_factory.mktemp("lab") / "races.jsonl", records)


def voice_turn() -> dict[str, Any]:
    """A spoken turn shown under a feel: every optional group of columns is filled."""
    events = fixed_events("slow", ttft_s=0.5, tokens_per_s=80.0, tokens=40, tokens_per_chunk=1)
    plain = record_of(events, backend="slow")
    shown = {**plain["metrics"], "ttft_s": 1.0 / 3.0, "decode_tokens_per_s": 40.000000000001}
    return record_of(
        events,
        backend="slow",
        prompt='He said "hi",\nthen left; 3,5 € — ok?',
        mode="voice",
        feel=Feel(max_tokens_per_s=40.0, extra_ttft_s=0.5),
        shown=TurnMetrics(**shown),
        voice=VoiceFigures(
            transcript="He said hi",
            speech_s=1.2345678901234567,
            stt_s=0.1,
            stt_rtf=0.081,
            ttft_s=0.5,
            first_sentence_s=0.7000000000000001,
            tts_first_audio_s=0.95,
            voice_to_voice_s=2.2,
        ),
    )


@pytest.fixture(scope="module")
def mixed_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = [
        voice_turn(),
        fixed_turn("local", ttft_s=0.14, tokens_per_s=42.0, tokens=30, error_after=5),
        fixed_turn("local", ttft_s=0.13, tokens_per_s=41.0, tokens=30, cancel_after=8),
    ]
    return write(tmp_path_factory.mktemp("mixed") / "mixed.jsonl", records)


def read_csv(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == HEADER
    return list(reader)


def check_round_trip(rows: list[dict[str, str]], records: list[dict[str, Any]]) -> None:
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        for column, path in FLOAT_COLUMNS.items():
            value = at(record, path)
            if value is None:
                assert row[column] == "", column
            else:
                assert float(row[column]) == value, column  # exact, not approximate
        for column, path in INT_COLUMNS.items():
            value = at(record, path)
            assert row[column] == ("" if value is None else str(value)), column
        for column, path in TEXT_COLUMNS.items():
            value = at(record, path)
            assert row[column] == ("" if value is None else value), column
        assert row["cancelled"] == ("true" if record["cancelled"] else "false")


def test_every_column_is_checked() -> None:
    covered = set(FLOAT_COLUMNS) | set(INT_COLUMNS) | set(TEXT_COLUMNS) | {"cancelled"}
    assert covered == {name for name, _ in COLUMNS}


def test_real_turns_round_trip_exactly(
    lab_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "turns.csv"
    assert main(["export", str(lab_session), "--csv", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    records = load_session(lab_session).turns
    rows = read_csv(out.read_text(encoding="utf-8"))
    check_round_trip(rows, records)
    assert [row["backend"] for row in rows] == ["fast", "slow", "fast", "slow"]
    assert [row["race_id"] for row in rows] == ["1", "1", "2", "2"]
    assert rows[0]["prompt"] == "What is the capital of Australia?"
    assert rows[2]["prompt"] == "Explain TTFT,\nbriefly."
    assert all(float(row["decode_tokens_per_s"]) > 0 for row in rows)


def test_voice_feel_errors_and_awkward_text_round_trip(
    mixed_session: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(mixed_session), "--csv"]) == 0
    printed = capsys.readouterr()
    rows = read_csv(printed.out)
    records = load_session(mixed_session).turns
    check_round_trip(rows, records)
    voice, failed, cancelled = rows
    assert voice["prompt"] == 'He said "hi",\nthen left; 3,5 € — ok?'
    assert voice["shown_ttft_s"] == repr(1.0 / 3.0)
    assert voice["voice_speech_s"] == "1.2345678901234567"
    assert voice["feel_max_tokens_per_s"] == "40.0" and voice["mode"] == "voice"
    assert failed["error_kind"] == "connection" and failed["error"] == "connection reset"
    assert failed["cancelled"] == "false" and failed["decode_tokens_per_s"] != ""
    assert cancelled["cancelled"] == "true" and cancelled["error"] == ""
    assert cancelled["shown_ttft_s"] == "" and cancelled["voice_stt_s"] == ""


def test_to_csv_writes_a_header_even_for_no_rows() -> None:
    assert to_csv([]).splitlines() == [",".join(HEADER)]


def test_several_sessions_are_exported_in_order(
    lab_session: Path, mixed_session: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(mixed_session), str(lab_session), "--csv"]) == 0
    rows = read_csv(capsys.readouterr().out)
    records = load_session(mixed_session).turns + load_session(lab_session).turns
    check_round_trip(rows, records)


# Refusals: one line, exit 2, nothing written or overwritten


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def test_an_existing_file_is_only_replaced_with_force(
    mixed_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "turns.csv"
    out.write_text("keep me", encoding="utf-8")
    assert main(["export", str(mixed_session), "--csv", "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"latency-demo: {out}: already exists (add --force to replace it)"
    assert out.read_text(encoding="utf-8") == "keep me"
    assert main(["export", str(mixed_session), "--csv", "--out", str(out), "--force"]) == 0
    assert len(read_csv(out.read_text(encoding="utf-8"))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["turns.csv"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "no such session file"),
        ("empty.jsonl", b"", "the file is empty"),
        (
            "new.jsonl",
            json.dumps({"type": "session", "schema_version": 2}).encode() + b"\n",
            "newer version",
        ),
        ("garbage.jsonl", b"\x00\x01 not json\n", "not a session file"),
    ],
)
def test_bad_input_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | None,
    message: str,
) -> None:
    session = tmp_path / name
    if content is not None:
        session.write_bytes(content)
    out = tmp_path / "out.csv"
    assert main(["export", str(session), "--csv", "--out", str(out)]) == 2
    printed = capsys.readouterr()
    assert message in one_line(printed.err) and printed.out == ""
    assert not out.exists()


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path), "--csv"]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"latency-demo: {tmp_path}: is a directory, not a session file"
    )


def test_an_unknown_extension_is_refused(
    mixed_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "turns.xlsx"
    assert main(["export", str(mixed_session), "--csv", "--out", str(out)]) == 2
    assert "use .csv" in one_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_corrupt_line_costs_only_its_row(
    mixed_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = mixed_session.read_bytes().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(b"".join([lines[0], lines[1], b'{"type": "turn", \n', *lines[2:]]))
    assert main(["export", str(damaged), "--csv"]) == 0
    printed = capsys.readouterr()
    assert "line 3 is not valid JSON: skipped" in one_line(printed.err)
    rows = read_csv(printed.out)
    check_round_trip(rows, load_session(mixed_session).turns)


def test_a_format_must_be_named(mixed_session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(mixed_session)])
    assert exit_.value.code == 2
    assert "--csv" in capsys.readouterr().err


def test_round_trip_holds_for_floats_with_long_reprs(tmp_path: Path) -> None:
    record = fixed_turn("fast", ttft_s=0.1, tokens_per_s=333.3, tokens=9)
    record["metrics"] = replace_metrics(record["metrics"], ttft_s=0.1 + 0.2, e2e_s=1e-7)
    rows = read_csv(to_csv([record]))
    assert float(rows[0]["ttft_s"]) == 0.1 + 0.2 and rows[0]["ttft_s"] == "0.30000000000000004"
    assert float(rows[0]["e2e_s"]) == 1e-7


def replace_metrics(metrics: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**metrics, **changes}
