"""Recording: what a session file holds, how it survives a crash, and what it never holds.

Turns come from the real lab server through the real client; the crash is a real `kill -9` of a
recording `latency-demo ask` process; the schema check uses the published JSON Schema.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from demo.backends.base import BackendSpec
from demo.backends.openai import OpenAIBackend
from demo.core.conversation import Conversation
from demo.core.runner import BackendRunner
from demo.core.turn import Turn
from demo.core.units import public_url
from demo.lab.process import LabServer
from demo.paths import ASSETS
from demo.sessions.reader import SessionError, load_session, read_header
from demo.sessions.record import SCHEMA_VERSION, turn_record
from demo.sessions.recorder import Recorder, sessions_dir
from demo.sessions.writer import SessionWriter

SCHEMA = json.loads((ASSETS / "session.schema.json").read_text())
SECRET = "sk-test-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


def validate(record: dict[str, object]) -> None:
    jsonschema.validate(record, SCHEMA)


async def real_turn(lab: str, prompt: str = "Say hello.", tokens: int = 40) -> Turn:
    spec = BackendSpec(
        name="fast", kind="local", model="fast", base_url=f"{lab}/v1",
        params={"lab": {"output_tokens": tokens}},
    )  # fmt: skip
    runner = BackendRunner(OpenAIBackend(spec))
    try:
        request = Conversation().request_for(prompt, max_tokens=200)
        turn = Turn(runner, prompt, request)
        await turn.run()
        return turn
    finally:
        runner.close()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "demo", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def config_for(tmp_path: Path, lab: str, **fields: str) -> Path:
    lines = ["[backends.box]", 'kind = "local"', f'base_url = "{lab}/v1"', 'model = "fast"']
    lines += [f'{key} = "{value}"' for key, value in fields.items()]
    lines.append("params = { lab = { output_tokens = 30 } }")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the record ------------------------------------------------------------------------------


async def test_a_turn_record_holds_every_chunk_and_every_figure(lab: str) -> None:
    turn = await real_turn(lab)
    result = turn.result()
    record = turn_record(turn, result)
    validate(record)
    assert record["backend"]["name"] == "fast" and record["backend"]["model"] == "fast"
    assert "".join(chunk[1] for chunk in record["chunks"]) == result.text == record["text"]
    offsets = [chunk[0] for chunk in record["chunks"]]
    assert offsets == sorted(offsets) and offsets[0] > 0
    ttft = result.metrics.ttft_s
    assert ttft is not None and offsets[0] / 1e9 == pytest.approx(ttft, abs=1e-9)
    assert record["metrics"]["decode_tokens_per_s"] == result.metrics.decode_tokens_per_s
    assert record["usage"]["completion_tokens"] == result.metrics.output_tokens == 40
    assert record["end_offset_ns"] >= offsets[-1]
    assert record["request"]["max_tokens"] == 200 and record["error"] is None
    assert record["cancelled"] is False and record["mode"] == "typed"


def test_base_urls_lose_credentials_and_query() -> None:
    assert public_url(f"https://user:{SECRET}@api.example.com/v1?key={SECRET}") == (
        "https://api.example.com/v1"
    )
    assert public_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


async def test_the_recorder_writes_a_header_then_a_line_per_turn_user_only(
    lab: str, tmp_path: Path
) -> None:
    path = tmp_path / "nested" / "s.jsonl"
    recorder = Recorder.open(path)
    turns = [await real_turn(lab, f"prompt {i}") for i in range(3)]
    for turn in turns:
        recorder.record(turn, turn.result())
    recorder.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert len(lines) == 4
    header = json.loads(lines[0])
    validate(header)
    assert header["schema_version"] == SCHEMA_VERSION and header["type"] == "session"
    session = load_session(path)
    assert [t["prompt"] for t in session.turns] == ["prompt 0", "prompt 1", "prompt 2"]
    assert session.warnings == []
    assert [r["prompt"] for r in recorder.records()] == ["prompt 0", "prompt 1", "prompt 2"]


async def test_record_appends_to_an_existing_session(lab: str, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    for prompt in ("first", "second"):
        recorder = Recorder.open(path)
        turn = await real_turn(lab, prompt)
        recorder.record(turn, turn.result())
        recorder.close()
    lines = path.read_text().splitlines()
    assert sum(json.loads(line)["type"] == "session" for line in lines) == 1
    assert [t["prompt"] for t in load_session(path).turns] == ["first", "second"]


async def test_without_a_file_turns_are_still_kept_for_the_stats(lab: str) -> None:
    recorder = Recorder.open(None, enabled=False)
    assert recorder.path is None
    turn = await real_turn(lab)
    recorder.record(turn, turn.result())
    assert [r["text"] for r in recorder.records()] == [turn.result().text]
    recorder.close()
    assert not sessions_dir().exists()


def test_default_files_are_new_per_run_in_the_user_data_dir(isolated_user_dirs: Path) -> None:
    first, second = Recorder.open(None), Recorder.open(None)
    try:
        assert first.path is not None and second.path is not None
        assert first.path != second.path
        assert first.path.parent == sessions_dir()
        assert str(sessions_dir()).startswith(str(isolated_user_dirs))
    finally:
        first.close()
        second.close()


# --- bad files -------------------------------------------------------------------------------


def test_a_file_that_is_not_a_session_is_never_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes\n")
    with pytest.raises(SessionError, match="not a session file"):
        SessionWriter(path)
    assert path.read_text() == "my precious notes\n"
    with pytest.raises(SessionError, match="directory"):
        SessionWriter(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such session file"),
        ("", "empty"),
        ("\n\n", "empty"),
        ("hello\n", "first line is not JSON"),
        ('{"type": "other"}\n', "no session header"),
        ('{"type": "session", "schema_version": 99}\n', "newer version"),
    ],
)
def test_unusable_files_are_refused_in_one_line(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "s.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SessionError, match=message) as error:
        load_session(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    if content is not None:
        assert path.read_text() == content  # nothing overwritten


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="directory"):
        load_session(tmp_path)
    with pytest.raises(SessionError, match="directory"):
        read_header(tmp_path)


async def test_corrupt_and_torn_lines_cost_only_themselves(lab: str, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    recorder = Recorder.open(path)
    for prompt in ("a", "b"):
        turn = await real_turn(lab, prompt)
        recorder.record(turn, turn.result())
    recorder.close()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + lines[1] + "{not json\n" + lines[2] + lines[2][: len(lines[2]) // 2])
    session = load_session(path)
    assert [t["prompt"] for t in session.turns] == ["a", "b"]
    assert len(session.warnings) == 2
    assert "line 3 is not valid JSON" in session.warnings[0]
    assert "line 5 is incomplete" in session.warnings[1]


# --- crash safety and secrets, through the real command ----------------------------------------


def test_kill_9_mid_turn_leaves_every_earlier_turn_intact(lab: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[backends.slowbox]\n"
        'kind = "local"\n'
        f'base_url = "{lab}/v1"\n'
        'model = "fast"\n'
        "params = { lab = { tokens_per_s = 200, output_tokens = 120, ttft_s = 0.05 } }\n"
    )
    path = tmp_path / "crash.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "demo", "--config", str(config), "ask", "Tell me a story.",
         "--backend", "slowbox", "--runs", "20", "--json", "--record", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        # Each turn's JSON line is printed right after it was queued for recording; once the
        # third is printed the fourth turn is streaming.
        for _ in range(3):
            assert process.stdout.readline()
        deadline = time.monotonic() + 30
        while len(path.read_bytes().splitlines()) < 4:  # header + 3 turns on disk
            assert time.monotonic() < deadline, "turns never reached the file"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    session = load_session(path)
    assert len(session.turns) >= 3
    for record in session.turns:
        validate(record)
        assert record["metrics"]["output_tokens"] == 120 and record["error"] is None
        assert "".join(chunk[1] for chunk in record["chunks"]) == record["text"]


def test_no_file_the_app_writes_holds_the_api_key(
    lab: str, tmp_path: Path, isolated_user_dirs: Path
) -> None:
    config = config_for(tmp_path, lab, api_key_env="LATENCY_TEST_KEY")
    env = {"LATENCY_TEST_KEY": SECRET}
    done = run_cli("--config", str(config), "ask", "Hi", "--backend", "box", "--json", env=env)
    assert done.returncode == 0, done.stderr
    # An endpoint that is down, with the key in its URL too: the error path is recorded as well.
    broken = tmp_path / "broken.toml"
    broken.write_text(
        "[backends.down]\n"
        'kind = "remote"\n'
        f'base_url = "http://127.0.0.1:9/v1?api_key={SECRET}"\n'
        'model = "m"\n'
        'api_key_env = "LATENCY_TEST_KEY"\n'
    )
    failed = run_cli("--config", str(broken), "ask", "Hi", "--backend", "down", "--json", env=env)
    assert failed.returncode == 1
    assert SECRET not in done.stdout + done.stderr + failed.stdout + failed.stderr
    written = [p for p in isolated_user_dirs.rglob("*") if p.is_file()]
    sessions = [p for p in written if p.suffix == ".jsonl"]
    assert len(sessions) == 2
    errors = [t["error"] for p in sessions for t in load_session(p).turns if t["error"]]
    assert len(errors) == 1
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
        assert SECRET[-12:].encode() not in path.read_bytes(), path


def test_no_record_writes_nothing(lab: str, tmp_path: Path, isolated_user_dirs: Path) -> None:
    config = config_for(tmp_path, lab)
    done = run_cli("--config", str(config), "ask", "Hi", "--backend", "box", "--no-record")
    assert done.returncode == 0, done.stderr
    assert not list(isolated_user_dirs.rglob("*.jsonl"))


def test_a_record_path_that_cannot_be_used_is_one_line_and_exit_2(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    done = run_cli("ask", "Hi", "--record", str(notes))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not a session file" in done.stderr
    assert "Traceback" not in done.stderr and notes.read_text() == "keep me\n"
    tui = run_cli("--record", str(tmp_path))
    assert tui.returncode == 2 and "directory" in tui.stderr and "Traceback" not in tui.stderr


async def test_the_tui_records_typed_and_race_turns(lab: str, tmp_path: Path) -> None:
    from demo.ui.app import LatencyApp
    from demo.ui.screens.stats import StatsScreen
    from tests.test_app import send, until, visible
    from tests.test_race_app import make_settings, open_race, race

    path = tmp_path / "tui.jsonl"
    recorder = Recorder.open(path)
    app = LatencyApp(make_settings(lab, output_tokens=30), backend="fast", recorder=recorder)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert "Recording this session to" in visible(app)
        await send(pilot, "One typed turn.")
        await until(pilot, lambda: len(app.chat.results) == 1)
        typed_text = app.chat.results[0].text
        screen = await open_race(pilot, ["fast", "slow"])
        await race(pilot, screen, "One race.")
        await until(pilot, lambda: screen.races == 1)
        await until(pilot, lambda: len(recorder.records()) == 3)
        await pilot.press("escape")  # leave the race for the chat
        await until(pilot, lambda: app.screen is app.chat)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, StatsScreen))
        assert isinstance(app.screen, StatsScreen)
        assert len(app.screen.records) == 3 and set(app.screen.colours) == {"fast", "slow"}
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.chat)
    recorder.close()
    session = load_session(path)
    typed, *raced = session.turns
    assert typed["mode"] == "typed" and typed["prompt"] == "One typed turn."
    assert typed["text"] == typed_text
    assert [t["mode"] for t in raced] == ["race", "race"]
    assert raced[0]["race"]["id"] == raced[1]["race"]["id"]
    assert {t["backend"]["name"]: t["race"]["place"] for t in raced} == {"fast": 1, "slow": 2}
    for record in session.turns:
        validate(record)

    # …and the same file plays back in replay mode, at its recorded pace, with no server.
    from demo.backends.replay import load_replay
    from demo.ui.replay_app import ReplayApp

    replay = ReplayApp(make_settings(lab, output_tokens=30), load_replay(path))
    async with replay.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: replay.screen is replay.replay)
        await pilot.press("enter")
        await until(pilot, lambda: len(replay.replay.results) == 1)
        recorded, result = replay.replay.results[0]
    assert result.text == typed_text and result.kind == "replay"
    assert recorded.metrics.ttft_s is not None
    assert result.metrics.ttft_s == pytest.approx(recorded.metrics.ttft_s, rel=0.05)


def test_a_headless_race_records_each_lane_with_its_race_and_place(
    lab: str, tmp_path: Path
) -> None:
    config = tmp_path / "race.toml"
    config.write_text(
        "".join(
            f'[backends.{name}]\nkind = "local"\nbase_url = "{lab}/v1"\nmodel = "{profile}"\n'
            "params = { lab = { output_tokens = 40 } }\n"
            for name, profile in (("hare", "fast"), ("tortoise", "slow"))
        )
    )
    path = tmp_path / "race.jsonl"
    done = run_cli(
        "--config", str(config), "ask", "Race!", "--backend", "hare", "--backend", "tortoise",
        "--json", "--runs", "2", "--record", str(path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    turns = load_session(path).turns
    assert [t["mode"] for t in turns] == ["race"] * 4
    # Lanes are written as each ends: the faster one first, in each race.
    assert [t["backend"]["name"] for t in turns] == ["hare", "tortoise"] * 2
    assert [t["race"]["place"] for t in turns] == [1, 2, 1, 2]
    assert [t["race"]["number"] for t in turns] == [1, 1, 2, 2]
    assert turns[0]["race"]["id"] == turns[1]["race"]["id"] != turns[2]["race"]["id"]
    for record in turns:
        validate(record)
        assert record["race"]["lanes"] == ["hare", "tortoise"]
