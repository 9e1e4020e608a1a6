"""`latency-demo report`: HTML, PNG and the terminal summary from real recorded turns.

The main session holds real races against the lab server (fast and slow profiles, short
replies), recorded by the app's own `turn_record` and `SessionWriter`; a second one holds
deterministic turns (a third backend, an error and a cancellation) fed to real `Turn`s.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.cli import main
from demo.lab.process import LabServer
from demo.sessions.charts import report_figure, series_id
from demo.sessions.reader import load_session
from demo.sessions.report import shorten, token_curve, turn_rows, turn_status
from demo.sessions.stats import summarize_turns
from demo.sessions.summary import figure_text
from tests.support.turn_records import fixed_turn, lab_records, write_session

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lab_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with LabServer() as server:
        records = lab_records(server.url, rounds=2)
    yield write_session(tmp_path_factory.mktemp("lab") / "races.jsonl", records)


@pytest.fixture(scope="module")
def fixed_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    records = [
        fixed_turn("local", ttft_s=0.12, tokens_per_s=40.0, tokens=30, tokens_per_chunk=1),
        fixed_turn("local", ttft_s=0.14, tokens_per_s=42.0, tokens=30, error_after=5),
        fixed_turn("local", ttft_s=0.13, tokens_per_s=41.0, tokens=30, cancel_after=8),
        fixed_turn("local", ttft_s=0.10, tokens_per_s=44.0, tokens=30, prompt="x" * 200),
    ]
    return write_session(tmp_path_factory.mktemp("fixed") / "local.jsonl", records)


def turns(*paths: Path) -> list[dict[str, Any]]:
    return [turn for path in paths for turn in load_session(path).turns]


def run(*argv: str | Path) -> int:
    return main([str(arg) for arg in argv])


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# The HTML report


def test_html_has_a_series_per_backend_in_every_chart_and_a_row_per_turn(
    lab_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert run("report", lab_session, "--out", out) == 0
    assert capsys.readouterr().out.startswith(f"Wrote {out}: 4 turns, 2 backends")
    page = out.read_text(encoding="utf-8")
    for kind in ("tokens", "ttft", "decode"):
        chart = re.search(rf'<figure id="{kind}-chart">(.*?)</figure>', page, re.DOTALL)
        assert chart is not None
        svg = chart.group(1)
        assert svg.startswith("<svg")
        for index in range(2):
            assert svg.count(f'id="{series_id(kind, index)}"') == 1
        assert f'id="{series_id(kind, 2)}"' not in svg
    legend = re.search(r'<figure id="tokens-chart">(.*?)</figure>', page, re.DOTALL)
    assert legend is not None
    legend_texts = re.findall(r"<text[^>]*>([^<]*)</text>", legend.group(1))
    assert "fast (2)" in legend_texts and "slow (2)" in legend_texts
    turns_table = page[page.index('<table class="turns">') :]
    assert turns_table.count("<tr>") == 1 + 4
    assert "What is the capital of Australia?" in turns_table
    assert "Explain TTFT, briefly." in turns_table  # the newline is folded into one line


def test_html_is_self_contained(lab_session: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert run("report", lab_session, "--out", out) == 0
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert not re.search(r"""\bsrc\s*=""", page)
    # Links and url() only point inside the page (the SVG's own markers and clip paths).
    assert re.findall(r"""href\s*=\s*["'](.)""", page) == ["#"] * page.count("href=")
    assert re.findall(r"url\((.)", page) == ["#"] * page.count("url(")
    assert "@import" not in page
    assert page.count("<svg") == 3


def test_several_session_files_combine(
    lab_session: Path, fixed_session: Path, tmp_path: Path
) -> None:
    out = tmp_path / "both.html"
    assert run("report", lab_session, fixed_session, "--out", out) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count('id="tokens-series-') == 3
    assert page.count('id="ttft-series-') == 3
    assert "local (4)" in page
    assert "error: connection" in page and "cancelled" in page


def test_the_summary_shows_each_backends_statistics(
    lab_session: Path, fixed_session: Path, tmp_path: Path
) -> None:
    records = turns(lab_session, fixed_session)
    stats = summarize_turns(records)
    out = tmp_path / "report.html"
    assert run("report", lab_session, fixed_session, "--out", out) == 0
    page = out.read_text(encoding="utf-8")
    summary = page[page.index("<h2>Per backend</h2>") : page.index("<h2>The race picture</h2>")]
    for name, backend in stats.items():
        block = summary[summary.index(f"</span>{name}</td>") :]
        row = re.findall(r"<td[^>]*>([^<]*)</td>", block)
        # turns, errors, "TTFT", then TTFT's mean, p50, p90, p99
        assert row[0] == str(backend.count)
        assert row[2] == "TTFT"
        quantiles = ("mean", "p50", "p90", "p99")
        assert row[3:7] == [figure_text("ttft_s", getattr(backend.ttft_s, q)) for q in quantiles]
    assert stats["local"].errors == 1 and stats["local"].cancelled == 1
    assert "1 (+1 cancelled)" in summary


# The PNG report


def test_png_is_one_picture_with_a_line_per_backend(
    lab_session: Path, fixed_session: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.png"
    assert run("report", lab_session, fixed_session, "--out", out) == 0
    width, height = png_size(out.read_bytes())
    assert 1000 <= width <= 3000 and 800 <= height <= 3000

    records = turns(lab_session, fixed_session)
    figure = report_figure(records)
    tokens = figure.axes[0]
    lines = [line for line in tokens.get_lines() if (line.get_gid() or "").startswith("tokens")]
    assert [line.get_gid() for line in lines] == [series_id("tokens", i) for i in range(3)]
    assert len({line.get_color() for line in lines}) == 3
    legend = tokens.get_legend()
    assert legend is not None
    assert [text.get_text() for text in legend.get_texts()] == ["fast (2)", "slow (2)", "local (4)"]
    # Each line holds every turn of its backend, one NaN-separated segment per turn.
    fast_x = lines[0].get_xdata()
    assert sum(1 for x in fast_x if x != x) == 1
    ttft, decode = figure.axes[1], figure.axes[2]
    for axes, kind in ((ttft, "ttft"), (decode, "decode")):
        gids = [c.get_gid() for c in axes.collections if c.get_gid()]
        assert gids == [series_id(kind, i) for i in range(3)]
        assert [t.get_text() for t in axes.get_yticklabels()] == ["fast", "slow", "local"]


def test_the_distributions_hold_only_completed_turns(fixed_session: Path) -> None:
    figure = report_figure(turns(fixed_session))
    ttft = figure.axes[1]
    (dots,) = [c for c in ttft.collections if c.get_gid() == series_id("ttft", 0)]
    shown = sorted(float(x) for x, _ in dots.get_offsets())
    assert shown == pytest.approx([0.10, 0.12])  # the failed and the cancelled turn are left out


# Curves and rows


def test_a_curve_waits_for_the_first_token_then_ends_at_the_reported_count(
    lab_session: Path,
) -> None:
    for record in turns(lab_session):
        times, counts = token_curve(record)
        assert times[0] == 0.0 and counts[0] == 0.0 and counts[1] == 0.0
        assert times[1] == pytest.approx(record["metrics"]["ttft_s"])
        assert counts[-1] == pytest.approx(record["usage"]["completion_tokens"])
        assert times[-1] == record["chunks"][-1][0] / 1e9
        assert all(a <= b for a, b in itertools.pairwise(times))
        assert all(a <= b for a, b in itertools.pairwise(counts))


def test_a_long_turn_is_thinned_but_keeps_its_first_and_last_chunk() -> None:
    record = fixed_turn("fast", ttft_s=0.2, tokens_per_s=1000.0, tokens=3000, tokens_per_chunk=3)
    assert len(record["chunks"]) == 1000
    times, counts = token_curve(record, max_points=50)
    assert len(times) == len(counts) == 50
    assert times[1] == times[2] == record["chunks"][0][0] / 1e9
    assert times[-1] == record["chunks"][-1][0] / 1e9
    assert counts[-1] == pytest.approx(3000)
    full_times, full_counts = token_curve(record, max_points=2000)
    assert len(full_times) == 1002
    # A thinned point counts every token up to its chunk, so it lies on the full curve.
    middle = times[25]
    assert counts[25] == pytest.approx(full_counts[full_times.index(middle, 2)], rel=0.01)


def test_rows_and_statuses(fixed_session: Path) -> None:
    records = turns(fixed_session)
    rows = turn_rows(records)
    assert [row.number for row in rows] == [1, 2, 3, 4]
    assert [row.status for row in rows] == ["ok", "error: connection", "cancelled", "ok"]
    assert [turn_status(r) for r in records] == [row.status for row in rows]
    assert rows[3].prompt == shorten("x" * 200) and len(rows[3].prompt) == 48
    assert rows[3].prompt.endswith("…")
    assert rows[0].ttft_s == records[0]["metrics"]["ttft_s"]
    assert rows[0].output_tokens == 30 and not rows[0].tokens_estimated


# The terminal summary


def test_without_out_it_prints_a_table_per_backend(
    lab_session: Path, fixed_session: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("report", lab_session, fixed_session) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    lines = printed.out.splitlines()
    assert lines[0] == f"8 turns from {lab_session}, {fixed_session}"
    stats = summarize_turns(turns(lab_session, fixed_session))
    for name, backend in stats.items():
        (ttft,) = [line for line in lines if line.split()[:2] == [name, "TTFT"]]
        for q in ("mean", "p50", "p90", "p99"):
            assert figure_text("ttft_s", getattr(backend.ttft_s, q)) in ttft
    assert any("1 error, 1 cancelled" in line for line in lines)
    assert any("2 turns" in line for line in lines)


# Bad input: one line, exit 2, nothing written


def holding(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def newer_schema(path: Path) -> Path:
    path.write_text(
        json.dumps({"type": "session", "schema_version": 99, "app_version": "9"}) + "\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.jsonl", "no such session file"),
        (lambda p: p, "is a directory"),
        (lambda p: holding(p / "empty.jsonl", b""), "the file is empty"),
        (lambda p: newer_schema(p / "new.jsonl"), "newer version"),
        (lambda p: write_session(p / "bare.jsonl", []), "no turns recorded"),
        (lambda p: holding(p / "notes.txt", b"hello\n"), "not a session file"),
    ],
    ids=["missing", "directory", "empty", "newer-schema", "no-turns", "not-a-session"],
)
@pytest.mark.parametrize("out", [None, "report.html", "report.png"])
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Any,
    message: str,
    out: str | None,
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    session = make(folder)
    target = tmp_path / out if out else None
    argv = ["report", session] + (["--out", target] if target else [])
    assert run(*argv) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    line = one_line(printed.err)
    assert line.startswith("latency-demo: ") and message in line
    assert target is None or not target.exists()


def test_corrupt_lines_are_skipped_with_a_warning(
    fixed_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = fixed_session.read_bytes().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    # A corrupt line in the middle and a torn last line, as a crash mid-write leaves it.
    damaged.write_bytes(b"".join([*lines[:2], b"{not json\n", *lines[2:4], lines[4][:40]]))
    out = tmp_path / "report.html"
    assert run("report", damaged, "--out", out) == 0
    printed = capsys.readouterr()
    warnings = printed.err.strip().splitlines()
    assert len(warnings) == 2
    assert "line 3 is not valid JSON: skipped" in warnings[0]
    assert "line 6 is incomplete" in warnings[1]
    assert "3 turns" in printed.out
    assert "<h2>Skipped</h2>" in out.read_text(encoding="utf-8")


def test_an_unknown_extension_is_refused_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.pdf"
    assert run("report", tmp_path / "missing.jsonl", "--out", out) == 2
    line = one_line(capsys.readouterr().err)
    assert "report.pdf" in line and ".html" in line and ".png" in line
    assert not out.exists()


def test_an_existing_report_is_kept_unless_forced(
    fixed_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    out.write_text("my notes", encoding="utf-8")
    assert run("report", fixed_session, "--out", out) == 2
    assert "add --force" in one_line(capsys.readouterr().err)
    assert out.read_text(encoding="utf-8") == "my notes"
    assert run("report", fixed_session, "--out", out, "--force") == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_the_console_script_reports_a_missing_file_without_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "demo", "report", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert one_line(done.stderr) == f"latency-demo: {missing}: no such session file"


def test_a_malformed_turn_record_is_skipped_with_a_warning(
    fixed_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = fixed_session.read_bytes().splitlines(keepends=True)
    odd = [
        {"type": "turn", "backend": {"name": "x"}, "metrics": {}, "chunks": [["soon", "hi"]]},
        {"type": "turn", "backend": "x", "metrics": {}, "chunks": []},
        {"type": "turn", "backend": {"name": "x"}, "metrics": {"ttft_s": "fast"}, "chunks": []},
    ]
    damaged = tmp_path / "odd.jsonl"
    damaged.write_bytes(b"".join([*lines, *(json.dumps(r).encode() + b"\n" for r in odd)]))
    out = tmp_path / "report.png"
    assert run("report", damaged, "--out", out) == 0
    warnings = capsys.readouterr().err.strip().splitlines()
    assert [w.rsplit("(", 1)[1] for w in warnings] == [
        "chunks are not [offset_ns, text] pairs): skipped",
        "no backend name): skipped",
        "ttft_s is not a number): skipped",
    ]
    assert f"{damaged}: turn 5 is malformed" in warnings[0]
    png_size(out.read_bytes())


def test_a_backend_without_a_single_token_and_a_wide_range_still_draw(tmp_path: Path) -> None:
    records = [
        fixed_turn("dead", ttft_s=0.3, tokens_per_s=50.0, tokens=10, error_after=0),
        fixed_turn("tortoise", ttft_s=2.0, tokens_per_s=5.0, tokens=12, tokens_per_chunk=1),
        fixed_turn("hare", ttft_s=0.05, tokens_per_s=20_000.0, tokens=3000, tokens_per_chunk=10),
    ]
    figure = report_figure(records)
    tokens, _, decode = figure.axes[:3]
    legend = tokens.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["dead (0)", "tortoise (1)", "hare (1)"]
    assert decode.get_xscale() == "log"  # 5 and 20,000 tokens/s on one axis
    session = write_session(tmp_path / "edge.jsonl", records)
    out = tmp_path / "edge.html"
    assert run("report", session, "--out", out) == 0
    assert "no completed turns" in out.read_text(encoding="utf-8")
