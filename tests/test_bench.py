"""`latency-demo bench` against the real lab server, and the statistics it is built on.

Backends come from a `--config` file whose model names select lab profiles (fast ≈ 969 tok/s,
slow ≈ 80 tok/s), with per-request `lab` overrides keeping every reply short.
"""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.cli import main
from demo.commands.bench import BenchError, load_prompts, plan
from demo.lab.content import suggested_prompts
from demo.lab.process import LabServer
from demo.sessions.reader import load_session
from demo.sessions.stats import (
    EMPTY,
    METRICS,
    distribution,
    metric_values,
    summarize_turns,
)
from tests.support.pty_capture import run_on_terminal

KEY_VARIABLE = "LATENCY_DEMO_BENCH_TEST_KEY"
TOKENS = 20


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


def backend(
    name: str, url: str, model: str, *, lab: Mapping[str, Any] | None = None, key: str = ""
) -> str:
    """One `[backends.NAME]` table of a config file."""
    lines = [f"[backends.{name}]", 'kind = "local"', f'base_url = "{url}"', f'model = "{model}"']
    if lab:
        inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in lab.items())
        lines.append(f"params = {{ lab = {{ {inline} }} }}")
    if key:
        lines.append(f'api_key_env = "{key}"')
    return "\n".join(lines) + "\n"


def config(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def two_labs(tmp_path: Path, lab: str, **overrides: Any) -> Path:
    """`zippy` (the fast profile) and `poky` (the slow one), both with short replies."""
    short = {"output_tokens": TOKENS, "ttft_s": 0.02, **overrides}
    return config(
        tmp_path,
        backend("zippy", f"{lab}/v1", "fast", lab=short),
        backend("poky", f"{lab}/v1", "slow", lab=short),
    )


def prompts_file(tmp_path: Path, *prompts: str) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n", encoding="utf-8")
    return path


def bench(cfg: Path, *args: str) -> list[str]:
    return ["--config", str(cfg), "bench", *args]


def sessions_dir(home: Path) -> Path:
    return home / "xdg_data_home" / "latency-demo" / "sessions"


def refused_url() -> str:
    """A loopback port nobody listens on, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def most_in_flight(lab: str, request_ids: list[str]) -> int:
    """The most requests the lab server was answering at one moment, from its own log."""
    edges: list[tuple[int, int]] = []
    with httpx.Client() as client:
        for request_id in request_ids:
            record = client.get(f"{lab}/lab/requests/{request_id}").raise_for_status().json()
            edges += [(record["received_ns"], 1), (record["done_sent_ns"], -1)]
    level = peak = 0
    for _, step in sorted(edges):  # at a tie an end sorts first: touching is not overlapping
        level += step
        peak = max(peak, level)
    return peak


# --- the statistics --------------------------------------------------------------------------


def turn(
    name: str,
    *,
    ttft: float | None = None,
    decode: float | None = None,
    e2e: float | None = None,
    tokens: int = 0,
    offsets_ms: tuple[float, ...] = (),
    error: str | None = None,
    cancelled: bool = False,
) -> dict[str, Any]:
    """A turn record with just what the statistics read."""
    return {
        "type": "turn",
        "backend": {"name": name, "kind": "lab", "model": name, "base_url": "x"},
        "chunks": [[int(ms * 1_000_000), "t"] for ms in offsets_ms],
        "metrics": {
            "ttft_s": ttft,
            "decode_tokens_per_s": decode,
            "e2e_s": e2e,
            "output_tokens": tokens,
            "error": error,
        },
        "error": {"kind": "connect", "message": error, "status": None} if error else None,
        "cancelled": cancelled,
    }


def test_a_distribution_interpolates_between_closest_ranks() -> None:
    figure = distribution([4.0, 1.0, 3.0, 2.0])
    # Positions (n-1)·q: p50 → 1.5, p90 → 2.7, p99 → 2.97 in the sorted [1, 2, 3, 4].
    assert figure.n == 4
    assert figure.mean == pytest.approx(2.5)
    assert figure.p50 == pytest.approx(2.5)
    assert figure.p90 == pytest.approx(3.7)
    assert figure.p99 == pytest.approx(3.97)
    assert (figure.min, figure.max) == (1.0, 4.0)
    assert distribution([]) == EMPTY and EMPTY.mean is None and EMPTY.p99 is None
    assert distribution([7.0]).as_json() == {
        "n": 1,
        "mean": 7.0,
        "p50": 7.0,
        "p90": 7.0,
        "p99": 7.0,
        "min": 7.0,
        "max": 7.0,
    }
    assert distribution([1.0, math.nan, math.inf]).n == 1


def test_turns_are_summarised_per_backend_from_completed_turns_only() -> None:
    records = [
        turn("b", ttft=0.5, decode=80.0, e2e=1.0, tokens=40, offsets_ms=(500, 520)),
        turn("a", ttft=0.1, decode=900.0, e2e=0.2, tokens=100, offsets_ms=(100, 110, 130)),
        turn("a", ttft=0.3, decode=700.0, e2e=0.4, tokens=50, offsets_ms=(300, 340)),
        turn("a", ttft=9.0, e2e=9.0, offsets_ms=(9000, 9999), error="refused"),
        turn("a", ttft=0.2, decode=1.0, e2e=5.0, tokens=3, offsets_ms=(200, 201), cancelled=True),
    ]
    stats = summarize_turns(records)

    assert list(stats) == ["b", "a"]  # order of first appearance
    a = stats["a"]
    assert (a.count, a.ok, a.errors, a.cancelled) == (4, 2, 1, 1)
    assert a.ttft_s.n == 2 and a.ttft_s.mean == pytest.approx(0.2)
    assert (a.ttft_s.min, a.ttft_s.max) == (0.1, 0.3)
    assert a.decode_tokens_per_s.mean == pytest.approx(800.0)
    assert a.e2e_s.p50 == pytest.approx(0.3)
    assert a.output_tokens.mean == pytest.approx(75.0)
    # Gaps within each completed turn (10 ms, 20 ms; 40 ms), never across turns.
    assert a.chunk_gap_s.n == 3
    assert a.chunk_gap_s.mean == pytest.approx(0.07 / 3)
    assert a.chunk_gap_s.p50 == pytest.approx(0.02)
    assert a.chunk_gap_s.max == pytest.approx(0.04)
    b = stats["b"]
    assert (b.count, b.ok, b.errors) == (1, 1, 0)
    assert b.chunk_gap_s.as_json()["mean"] == pytest.approx(0.02)

    doc = a.as_json()
    assert set(doc) == {"backend", "count", "ok", "errors", "cancelled", *METRICS}
    assert doc["ttft_s"]["n"] == 2
    assert json.loads(json.dumps(doc)) == doc


def test_metric_values_are_the_raw_figures_of_completed_turns() -> None:
    records = [
        turn("a", ttft=0.1, offsets_ms=(0, 5)),
        turn("a", ttft=0.2, error="boom"),
        turn("a", ttft=None),
    ]
    assert metric_values(records, "ttft_s") == [0.1]
    assert metric_values(records, "chunk_gap_s") == [pytest.approx(0.005)]
    with pytest.raises(ValueError, match="unknown figure"):
        metric_values(records, "speed")


# --- prompts ---------------------------------------------------------------------------------


def test_a_text_prompts_file_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    path = prompts_file(tmp_path, "# a comment", "", "  first prompt  ", "   # indented", "second")
    assert load_prompts(path) == ["first prompt", "second"]
    assert load_prompts(None) == [s.prompt for s in suggested_prompts()]


def test_a_json_lines_prompts_file_allows_prompts_over_several_lines(tmp_path: Path) -> None:
    sniffed = tmp_path / "prompts.txt"
    sniffed.write_text('{"prompt": "one\\ntwo"}\n\n{"prompt": "three", "id": 3}\n', "utf-8")
    assert load_prompts(sniffed) == ["one\ntwo", "three"]
    by_name = tmp_path / "prompts.jsonl"
    by_name.write_text('{"prompt": "[not text]"}\n', "utf-8")
    assert load_prompts(by_name) == ["[not text]"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("# only a comment\n\n", "no prompts in it"),
        ('{"prompt": "fine"}\n{"prompt": \n', "line 2 is not valid JSON"),
        ('{"prompt": "fine"}\n{"text": "no prompt"}\n', 'line 2 has no "prompt" string'),
        ('{"prompt": "   "}\n', 'line 1 has no "prompt" string'),
    ],
)
def test_a_bad_prompts_file_is_refused_in_one_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BenchError, match=message):
        load_prompts(path)
    with pytest.raises(BenchError, match="no such prompts file"):
        load_prompts(tmp_path / "absent.txt")
    with pytest.raises(BenchError, match="is a directory"):
        load_prompts(tmp_path)


def test_each_run_covers_every_prompt_before_the_next() -> None:
    jobs = plan(["a", "b"], ["p", "q"], 2)
    assert [(j.run, j.prompt_index, j.prompt) for j in jobs["a"]] == [
        (1, 0, "p"),
        (1, 1, "q"),
        (2, 0, "p"),
        (2, 1, "q"),
    ]
    assert {j.backend for j in jobs["b"]} == {"b"}


# --- the command against the lab -------------------------------------------------------------


def test_json_bench_of_two_backends_records_every_turn(
    tmp_path: Path, lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = two_labs(tmp_path, lab)
    prompts = prompts_file(tmp_path, "first question", "# skipped", "second question")
    session = tmp_path / "bench.jsonl"

    code = main(
        bench(
            cfg,
            *("--backend", "zippy", "--backend", "poky"),
            *("--runs", "3", "--prompts", str(prompts), "--json", "--record", str(session)),
        )
    )

    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["session"] == str(session) and doc["interrupted"] is False
    assert doc["planned_turns"] == 12 and doc["runs"] == 3 and doc["concurrency"] == 1
    assert doc["prompts"] == ["first question", "second question"]
    assert list(doc["backends"]) == ["zippy", "poky"]
    for name, stats in doc["backends"].items():
        assert (stats["count"], stats["ok"], stats["errors"], stats["cancelled"]) == (6, 6, 0, 0)
        for figure in METRICS:
            f = stats[figure]
            assert f["n"] >= 6, (name, figure)
            assert f["min"] <= f["p50"] <= f["p90"] <= f["p99"] <= f["max"], (name, figure)
            assert f["min"] <= f["mean"] <= f["max"], (name, figure)
        assert stats["output_tokens"]["mean"] == TOKENS
    fast, slow = doc["backends"]["zippy"], doc["backends"]["poky"]
    assert fast["decode_tokens_per_s"]["p50"] > 5 * slow["decode_tokens_per_s"]["p50"]
    assert slow["decode_tokens_per_s"]["p50"] == pytest.approx(80, rel=0.25)

    rows = doc["turns"]
    assert len(rows) == 12
    for name in ("zippy", "poky"):
        jobs = sorted((r["run"], r["prompt_index"]) for r in rows if r["backend"] == name)
        assert jobs == [(run, index) for run in (1, 2, 3) for index in (0, 1)]
    assert all(r["error"] is None and r["output_tokens_source"] == "usage" for r in rows)
    assert "text" not in rows[0]

    loaded = load_session(session)
    assert loaded.warnings == [] and len(loaded.turns) == 12
    assert {t["mode"] for t in loaded.turns} == {"bench"}
    assert sorted(t["request_id"] for t in loaded.turns) == sorted(r["request_id"] for r in rows)
    assert {t["prompt"] for t in loaded.turns} == {"first question", "second question"}
    # The file says what the run said: the same statistics come back from disk.
    from_disk = {name: s.as_json() for name, s in summarize_turns(loaded.turns).items()}
    assert from_disk == doc["backends"]
    assert session.stat().st_mode & 0o777 == 0o600
    assert "bench: zippy 6/6 turns, 0 errors" in out.err


def test_text_bench_prints_a_table_per_backend_and_the_session_file(
    tmp_path: Path, lab: str, capsys: pytest.CaptureFixture[str], isolated_user_dirs: Path
) -> None:
    cfg = two_labs(tmp_path, lab, output_tokens=5)

    code = main(bench(cfg, "--backend", "zippy"))

    out = capsys.readouterr().out
    assert code == 0
    files = list(sessions_dir(isolated_user_dirs).glob("bench-*.jsonl"))
    assert len(files) == 1
    assert out.rstrip().splitlines()[-1] == f"Session: {files[0]}"
    count = len(suggested_prompts())  # the default prompts, each once
    assert f"{count} turns · {count} completed · 0 errors" in out
    assert "zippy · local · fast" in out
    for label in ("TTFT", "decode", "E2E", "chunk gap", "output tokens"):
        assert label in out
    for column in ("mean", "p50", "p90", "p99"):
        assert column in out
    assert len(load_session(files[0]).turns) == count


def test_concurrency_keeps_that_many_requests_in_flight(
    tmp_path: Path, lab: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = two_labs(tmp_path, lab)
    prompts = prompts_file(tmp_path, "one", "two")
    peaks = {}
    for concurrency in (1, 2):
        code = main(
            bench(
                cfg,
                *("--backend", "poky", "--prompts", str(prompts), "--runs", "2"),
                *("--concurrency", str(concurrency), "--json", "--no-record"),
            )
        )
        assert code == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["session"] is None and doc["backends"]["poky"]["ok"] == 4
        peaks[concurrency] = most_in_flight(lab, [r["request_id"] for r in doc["turns"]])
    assert peaks == {1: 1, 2: 2}


def test_an_unreachable_backend_counts_every_turn_as_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, backend("gone", refused_url(), "m"))
    prompts = prompts_file(tmp_path, "hello?")
    session = tmp_path / "gone.jsonl"

    code = main(
        bench(
            cfg,
            *("--backend", "gone", "--prompts", str(prompts), "--runs", "3"),
            *("--json", "--record", str(session)),
        )
    )

    out = capsys.readouterr()
    assert code == 1
    stats = json.loads(out.out)["backends"]["gone"]
    assert (stats["count"], stats["ok"], stats["errors"]) == (3, 0, 3)
    assert stats["ttft_s"] == {
        "n": 0,
        "mean": None,
        "p50": None,
        "p90": None,
        "p99": None,
        "min": None,
        "max": None,
    }
    turns = load_session(session).turns
    assert len(turns) == 3 and all(t["error"]["kind"] == "connect" for t in turns)
    assert "Traceback" not in out.err


def test_a_missing_key_stops_the_bench_before_anything_is_sent(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated_user_dirs: Path,
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    with socket.socket() as trap:
        # A listener that never accepts: any connection attempt would wait in its backlog.
        trap.bind(("127.0.0.1", 0))
        trap.listen(8)
        url = f"http://127.0.0.1:{trap.getsockname()[1]}/v1"
        cfg = config(
            tmp_path, backend("open", url, "fast"), backend("keyed", url, "fast", key=KEY_VARIABLE)
        )
        code = main(bench(cfg, "--backend", "open", "--backend", "keyed"))
        trap.setblocking(False)
        with pytest.raises(BlockingIOError):
            trap.accept()

    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    assert out.err.strip().splitlines() == [
        f"latency-demo: keyed needs an API key: set the environment variable {KEY_VARIABLE}"
    ]
    assert not sessions_dir(isolated_user_dirs).exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "fast", "--backend", "fast"], "--backend fast is given more than once"),
        (["--backend", "fast", "--concurrency", "9"], "--concurrency is at most 8"),
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--backend", "fast", "--prompts", "/nonexistent/p.txt"], "no such prompts file"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], isolated_user_dirs: Path
) -> None:
    code = main(["bench", *extra])
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.err
    assert not sessions_dir(isolated_user_dirs).exists()


def test_ctrl_c_stops_the_bench_and_reports_what_was_measured(tmp_path: Path, lab: str) -> None:
    cfg = two_labs(tmp_path, lab)
    session = tmp_path / "stopped.jsonl"
    argv = bench(cfg, "--backend", "poky", "--runs", "50", "--json", "--record", str(session))
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        # Wait until two turns are on disk (the header is the first line).
        while not (session.exists() and session.read_bytes().count(b"\n") >= 3):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["interrupted"] is True
    stats = doc["backends"]["poky"]
    assert 2 <= stats["count"] < doc["planned_turns"] == 50 * len(suggested_prompts())
    assert stats["ok"] >= 2 and stats["errors"] == 0
    assert stats["count"] == len(doc["turns"]) == len(load_session(session).turns)


def test_a_terminal_gets_a_progress_bar(tmp_path: Path, lab: str) -> None:
    cfg = two_labs(tmp_path, lab, output_tokens=5)
    done, screen = run_on_terminal(
        [sys.executable, "-m", "demo", *bench(cfg, "--backend", "zippy", "--no-record")]
    )
    assert done.returncode == 0
    count = len(suggested_prompts())
    assert "\x1b[2K" in screen  # redrawn in place
    assert f"{count}/{count}" in screen and "0 errors" in screen
    assert "bench: " not in screen  # no plain progress lines on a terminal
    assert "Session:" not in done.stdout and "TTFT" in done.stdout
