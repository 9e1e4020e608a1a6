"""Replaying recorded sessions: the replay backend on a real runner, `replay:PATH`, the CLI.

The session files are recorded from real turns: the lab server (a child process) streams real
replies to the real client, each turn is written by `SessionWriter` exactly as the app records
it, and the file is loaded back as the app loads it. A fault server supplies a real HTTP error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.backends.replay import (
    REPLAY_KIND,
    ReplayBackend,
    is_replay,
    load_replay,
    recent_sessions,
    sessions_dir,
    with_recent,
)
from demo.cli import main
from demo.config import ConfigError, load_settings
from demo.core.conversation import ChatRequest, Message
from demo.core.events import ContentChunk, ResponseStarted, StreamError
from demo.core.metrics import percentile
from demo.core.runner import BackendRunner
from demo.core.turn import Turn
from demo.lab.process import LabServer
from demo.sessions.playback import playlist, recorded_turns
from demo.sessions.reader import Session, SessionError, load_session
from demo.sessions.record import race_record
from demo.sessions.writer import SessionWriter
from tests.support import FaultServer, error_reply
from tests.support.recording import lab_spec, record_turn

AUSTRALIA = "What is the capital of Australia?"
WAFER = "Explain how a wafer-scale chip makes LLM inference fast."
TTFT = "Why does time to first token matter so much?"
LIMITED = "Please reply with plain prose."
CANCELLED = "Tell me about measuring a stream."


@pytest.fixture(scope="module")
def lab_url() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory, lab_url: str) -> Path:
    """Five real turns: fast (100 chunks), slow (40), fast again, an HTTP 429, a cancelled one."""
    path = tmp_path_factory.mktemp("sessions") / "night.jsonl"

    async def record() -> None:
        with FaultServer() as faults:
            limited = faults.scenario(
                error_reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "2"})
            )
            with SessionWriter(path) as writer:
                await record_turn(writer, lab_spec(lab_url, "fast", 300), AUSTRALIA)
                await record_turn(writer, lab_spec(lab_url, "slow", 40), WAFER)
                await record_turn(writer, lab_spec(lab_url, "fast", 60), TTFT)
                spec = BackendSpec(name="limited", kind="remote", model="m", base_url=limited)
                await record_turn(writer, spec, LIMITED)
                await record_turn(
                    writer, lab_spec(lab_url, "slow", 200), CANCELLED, cancel_after_chunks=6
                )

    asyncio.run(record())
    return path


@pytest.fixture(scope="module")
def session(session_file: Path) -> Session:
    return load_session(session_file)


def replay_spec_for(session: Session) -> BackendSpec:
    return BackendSpec(name="replay:night", kind=REPLAY_KIND, model="m", base_url=str(session.path))


async def replay(session: Session, prompt: str, speed: float = 1.0) -> Turn:
    """Replay the turn that answers `prompt` through a real runner thread, as the app would."""
    runner = BackendRunner(ReplayBackend(replay_spec_for(session), session, speed))
    try:
        turn = Turn(runner, prompt, ChatRequest(messages=(Message("user", prompt),)))
        async with asyncio.timeout(15):
            await turn.run()
    finally:
        runner.close()
    return turn


def chunk_errors_ms(turn: Turn, recorded: dict[str, Any], speed: float = 1.0) -> list[float]:
    """|replayed offset − recorded offset ÷ speed| of every chunk, in ms."""
    t0 = turn.accumulator.t0_ns
    assert t0 is not None
    offsets = [e.t_ns - t0 for e in turn.events if isinstance(e, ContentChunk)]
    expected = [chunk[0] / speed for chunk in recorded["chunks"]]
    assert len(offsets) == len(expected)
    return [abs(a - b) / 1e6 for a, b in zip(offsets, expected, strict=True)]


@pytest.mark.parametrize(("index", "prompt"), [(0, AUSTRALIA), (1, WAFER)])
async def test_each_chunk_comes_back_at_its_recorded_offset(
    session: Session, index: int, prompt: str
) -> None:
    recorded = session.turns[index]
    assert len(recorded["chunks"]) >= 40  # a real stream of many chunks was recorded
    turn = await replay(session, prompt)
    result = turn.result()
    assert result.text == recorded["text"]
    assert [e.text for e in turn.events if isinstance(e, ContentChunk)] == [
        chunk[1] for chunk in recorded["chunks"]
    ]
    errors = chunk_errors_ms(turn, recorded)
    p95 = percentile(errors, 95)
    assert p95 is not None and p95 <= 5.0, f"chunk offset error p95 {p95:.2f} ms"
    m, r = result.metrics, recorded["metrics"]
    assert m.ttft_s == pytest.approx(r["ttft_s"], rel=0.02)
    assert m.decode_tokens_per_s == pytest.approx(r["decode_tokens_per_s"], rel=0.02)
    assert m.e2e_s == pytest.approx(r["e2e_s"], rel=0.02)
    assert m.output_tokens == r["output_tokens"] and m.output_tokens_source == "usage"
    assert m.chunks == r["chunks"] and m.finish_reason == r["finish_reason"] == "stop"
    assert result.kind == "replay" and result.backend == "replay:night"


async def test_speed_two_halves_every_timing(session: Session) -> None:
    recorded = session.turns[0]
    turn = await replay(session, AUSTRALIA, speed=2.0)
    m, r = turn.result().metrics, recorded["metrics"]
    assert m.ttft_s == pytest.approx(r["ttft_s"] / 2, rel=0.03)
    assert m.e2e_s == pytest.approx(r["e2e_s"] / 2, rel=0.03)
    assert m.decode_tokens_per_s == pytest.approx(r["decode_tokens_per_s"] * 2, rel=0.03)
    p95 = percentile(chunk_errors_ms(turn, recorded, speed=2.0), 95)
    assert p95 is not None and p95 <= 5.0


async def test_a_recorded_error_is_replayed_as_that_error(session: Session) -> None:
    recorded = session.turns[3]
    assert recorded["error"]["kind"] == "rate_limit" and recorded["error"]["status"] == 429
    turn = await replay(session, LIMITED)
    terminal = turn.events[-1]
    assert isinstance(terminal, StreamError)
    assert (terminal.kind, terminal.message, terminal.status) == (
        "rate_limit",
        recorded["error"]["message"],
        429,
    )
    assert any(isinstance(e, ResponseStarted) for e in turn.events)
    m = turn.result().metrics
    assert m.error == recorded["metrics"]["error"] and m.error_kind == "rate_limit"
    assert m.ttft_s is None and m.output_tokens == 0
    assert m.e2e_s == pytest.approx(recorded["metrics"]["e2e_s"], abs=0.005)


async def test_a_cancelled_turn_ends_where_it_was_cancelled(session: Session) -> None:
    recorded = session.turns[4]
    assert recorded["cancelled"] and 6 <= len(recorded["chunks"]) < 50
    turn = await replay(session, CANCELLED)
    m = turn.result().metrics
    assert m.cancelled and m.error is None
    assert turn.result().text == recorded["text"]
    assert m.e2e_s == pytest.approx(recorded["metrics"]["e2e_s"], rel=0.02)


async def test_a_prompt_is_answered_with_its_own_recorded_reply(session: Session) -> None:
    turn = await replay(session, TTFT)
    assert turn.result().text == session.turns[2]["text"]
    assert turn.result().text != session.turns[0]["text"]


def test_prompt_matching_then_recorded_order_wrapping_around(session: Session) -> None:
    # Turn 5 is turn 0 again with another reply: the same prompt asked twice in the recording.
    again = {**session.turns[0], "text": "Canberra, again.", "chunks": [[1_000_000, "Canberra"]]}
    doubled = dataclasses.replace(session, turns=[*session.turns, again])
    backend = ReplayBackend(replay_spec_for(doubled), doubled)

    def ask(prompt: str) -> int:
        return backend.pick(ChatRequest(messages=(Message("user", prompt),))).index

    assert ask(TTFT) == 2
    assert ask("something never recorded") == 3  # the turn after the last one played
    assert ask(AUSTRALIA) == 0
    assert ask(AUSTRALIA) == 5  # the first unused turn with that prompt
    assert ask(AUSTRALIA) == 0  # all used: the least used again
    assert ask("another new prompt") == 1
    assert [ask("?") for _ in range(5)] == [2, 3, 4, 5, 0]  # in order, wrapping around
    history = ChatRequest(
        messages=(Message("user", WAFER), Message("assistant", "…"), Message("user", TTFT))
    )
    assert backend.pick(history).index == 2  # the last user message is what was asked


def test_a_speed_must_be_positive(session: Session) -> None:
    for speed in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            ReplayBackend(replay_spec_for(session), session, speed)


def test_turns_that_cannot_be_replayed_are_skipped_with_a_warning(
    session: Session, tmp_path: Path
) -> None:
    broken = dict(session.turns[1])
    broken["chunks"] = [["soon", "text"]]
    mixed = dataclasses.replace(session, turns=[session.turns[0], broken, {"type": "turn"}])
    turns, warnings = recorded_turns(mixed)
    assert [turn.index for turn in turns] == [0]
    assert len(warnings) == 2 and "turn 2 cannot be replayed (a malformed chunk" in warnings[0]
    nothing = dataclasses.replace(session, turns=[{"type": "turn"}])
    with pytest.raises(SessionError, match="no turn in it can be replayed"):
        ReplayBackend(replay_spec_for(nothing), nothing)


def test_race_lanes_are_gathered_into_one_play(session: Session) -> None:
    race = race_record(["fast", "slow"], 1)
    lanes = [
        {**session.turns[0], "mode": "race", "race": {**race, "place": 1}},
        {**session.turns[1], "mode": "race", "race": {**race, "place": 2}},
    ]
    odd = race_record(["fast", "fast"], 2)  # a lane named twice cannot be raced again
    twins = [{**session.turns[2], "race": odd}, {**session.turns[2], "race": odd}]
    mixed = dataclasses.replace(
        session, turns=[session.turns[2], lanes[0], session.turns[3], lanes[1], *twins]
    )
    plays = playlist(recorded_turns(mixed)[0])
    assert [[turn.index for turn in play.turns] for play in plays] == [[0], [1, 3], [2], [4], [5]]
    assert [play.is_race for play in plays] == [False, True, False, False, False]


# `replay:PATH` as a backend name


def test_replay_names_resolve_to_session_files(session_file: Path, tmp_path: Path) -> None:
    settings = load_settings()
    spec = settings.backend(f"replay:{session_file}")
    assert is_replay(spec) and spec.name == f"replay:{session_file}"
    assert spec.base_url == str(session_file)
    assert settings.backends[spec.name] is spec  # kept, so every screen can find it
    assert "5 recorded turns" in spec.description

    # A bare name is looked up among the sessions recorded by default.
    directory = sessions_dir()
    directory.mkdir(parents=True)
    shutil.copy(session_file, directory / "last-night.jsonl")
    assert settings.backend("replay:last-night").base_url == str(directory / "last-night.jsonl")
    with pytest.raises(ConfigError, match="no such session file"):
        settings.backend("replay:nowhere")
    with pytest.raises(ConfigError, match="unknown backend 'nowhere'"):
        settings.backend("nowhere")


def test_a_session_file_is_read_once_while_unchanged(session_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.jsonl"
    shutil.copy(session_file, copy)
    first = load_replay(copy)
    assert load_replay(copy) is first
    with copy.open("a", encoding="utf-8") as handle:  # it grows while being recorded into
        handle.write(json.dumps(first.turns[0]) + "\n")
    grown = load_replay(copy)
    assert grown is not first and len(grown.turns) == len(first.turns) + 1


def test_the_pickers_offer_the_newest_sessions(session_file: Path) -> None:
    directory = sessions_dir()
    directory.mkdir(parents=True)
    for number in range(12):
        path = directory / f"session-{number:02}.jsonl"
        shutil.copy(session_file, path)
        os.utime(path, (1_700_000_000 + number, 1_700_000_000 + number))
    (directory / "notes.txt").write_text("not a session")
    newest = recent_sessions()
    assert [path.name for path in newest] == [f"session-{n:02}.jsonl" for n in range(11, 1, -1)]
    settings = load_settings()
    settings.backend("replay:session-11")  # already chosen once: listed once
    specs = with_recent(settings.backends.values())
    names = [spec.name for spec in specs]
    assert names[: len(settings.backends)] == list(settings.backends)
    assert names.count("replay:session-11") == 1
    assert names[len(settings.backends) :] == [f"replay:session-{n:02}" for n in range(10, 1, -1)]
    assert all(is_replay(spec) for spec in specs[len(settings.backends) :])


def test_the_hub_builds_a_replay_backend_for_a_replay_spec(session_file: Path) -> None:
    settings = load_settings()
    spec = settings.backend(f"replay:{session_file}")
    hub = BackendHub({spec.name: spec})
    try:
        backend = hub.runner(spec.name).backend
        assert isinstance(backend, ReplayBackend) and len(backend.turns) == 5
    finally:
        hub.close()


# The command line


def lab_config(tmp_path: Path, lab_url: str, tokens: int = 300) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[backends.fast]\nbase_url = "{lab_url}/v1"\n'
        f"params = {{ lab = {{ output_tokens = {tokens} }} }}\n",
        encoding="utf-8",
    )
    return path


def test_a_recording_races_a_live_backend_headless(
    session: Session, session_file: Path, tmp_path: Path, lab_url: str, capsys: Any
) -> None:
    config = lab_config(tmp_path, lab_url)
    name = f"replay:{session_file}"
    args = ["ask", AUSTRALIA, "--backend", name, "--backend", "fast", "--json", "--no-record"]
    code = main([*args, "--config", str(config)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    lanes = {record["backend"]: record for record in map(json.loads, out[:2])}
    summary = json.loads(out[2])
    assert set(lanes) == {name, "fast"} and summary["summary"] == "race"
    replayed, recorded = lanes[name], session.turns[0]
    assert replayed["kind"] == "replay" and replayed["text"] == recorded["text"]
    assert replayed["ttft_s"] == pytest.approx(recorded["metrics"]["ttft_s"], rel=0.03)
    assert lanes["fast"]["kind"] == "lab" and lanes["fast"]["output_tokens"] == 300


def test_ask_replays_a_session_and_tells_what_it_skipped(
    session_file: Path, tmp_path: Path, capsys: Any
) -> None:
    lines = session_file.read_text(encoding="utf-8").splitlines()
    torn = tmp_path / "torn.jsonl"
    torn.write_text("\n".join([lines[0], lines[1], "{not json", lines[3]]) + "\n")
    code = main(["ask", TTFT, "--backend", f"replay:{torn}", "--json", "--no-record"])
    captured = capsys.readouterr()
    assert code == 0
    record = json.loads(captured.out.splitlines()[0])
    assert record["text"] == json.loads(lines[3])["text"]
    assert f"{torn}: line 3 is not valid JSON: skipped" in captured.err


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such session file"),
        ("directory", "is a directory, not a session file"),
        ("empty", "the file is empty"),
        ("newer", "written by a newer version of the app (schema 99"),
        ("header only", "no turns recorded in it yet, nothing to replay"),
        ("all corrupt", "no turn in it can be replayed"),
        ("not a session", "not a session file"),
    ],
)
def test_bad_session_files_cost_one_line_and_exit_2(
    session_file: Path, tmp_path: Path, capsys: Any, case: str, message: str
) -> None:
    header = session_file.read_text(encoding="utf-8").splitlines()[0]
    path = {
        "missing": lambda: tmp_path / "missing.jsonl",
        "directory": lambda: tmp_path,
        "empty": lambda: write(tmp_path / "empty.jsonl"),
        "newer": lambda: write(tmp_path / "n.jsonl", '{"type":"session","schema_version":99}'),
        "header only": lambda: write(tmp_path / "h.jsonl", header),
        "all corrupt": lambda: write(tmp_path / "c.jsonl", header, "{torn", '{"type":"turn"}'),
        "not a session": lambda: write(tmp_path / "x.jsonl", '{"hello": 1}'),
    }[case]()
    before = path.read_bytes() if path.is_file() else None
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("latency-demo: warning:")]
    assert len(errors) == 1 and errors[0].startswith(f"latency-demo: {path}: {message}")
    assert "Traceback" not in err
    assert (path.read_bytes() if path.is_file() else None) == before  # nothing rewritten
    # The same file named as a backend is refused the same way, before anything is sent.
    assert main(["ask", "hi", "--backend", f"replay:{path}", "--no-record"]) == 2
    assert message in capsys.readouterr().err


def test_the_console_script_refuses_a_missing_session_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo", "replay", str(tmp_path / "gone.jsonl"), "--speed", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stderr == f"latency-demo: {tmp_path / 'gone.jsonl'}: no such session file\n"
    assert result.stdout == ""


@pytest.mark.parametrize("speed", ["0", "-2", "fast", "inf"])
def test_a_speed_that_is_not_positive_is_refused(
    session_file: Path, capsys: Any, speed: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", str(session_file), "--speed", speed])
    assert exited.value.code == 2
    assert "argument --speed" in capsys.readouterr().err
