"""Replay in the TUI, driven with Pilot: replay mode, and recordings picked as backends.

The session is recorded from real lab turns (the lab server runs as a child process) and written
as the app writes it; the app then replays it with no server at all.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static

from demo.backends.replay import load_replay, sessions_dir
from demo.config import AppSettings, load_settings
from demo.core.units import seconds
from demo.lab.process import LabServer
from demo.sessions.reader import Session
from demo.sessions.record import race_record
from demo.sessions.writer import SessionWriter
from demo.ui import screens
from demo.ui.app import LatencyApp
from demo.ui.replay_app import ReplayApp
from demo.ui.screens.pickers import BackendPicker
from demo.ui.screens.race import RaceScreen
from demo.ui.screens.race_setup import RaceSetup
from demo.ui.screens.replay import ReplayScreen
from demo.ui.widgets.metrics_panel import MetricsPanel
from demo.ui.widgets.transcript import Transcript
from tests.support.recording import lab_spec, record_turn

SIZE = (120, 40)
AUSTRALIA = "What is the capital of Australia?"
WAFER = "Explain how a wafer-scale chip makes LLM inference fast."
RACED = "Why does time to first token matter so much?"
LONG = "Tell me about measuring a stream."


@pytest.fixture(scope="module")
def lab_url() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory, lab_url: str) -> Path:
    """fast (100 chunks), slow (30), a longer slow reply, and a race of fast against slow."""
    path = tmp_path_factory.mktemp("sessions") / "evening.jsonl"

    async def record() -> None:
        with SessionWriter(path) as writer:
            await record_turn(writer, lab_spec(lab_url, "fast", 300), AUSTRALIA)
            await record_turn(writer, lab_spec(lab_url, "slow", 30), WAFER)
            await record_turn(writer, lab_spec(lab_url, "slow", 100), LONG)
            race = race_record(["fast", "slow"], 1)
            await record_turn(
                writer, lab_spec(lab_url, "fast", 90), RACED, race={**race, "place": 1}
            )
            await record_turn(
                writer, lab_spec(lab_url, "slow", 20), RACED, race={**race, "place": 2}
            )

    asyncio.run(record())
    return path


@pytest.fixture
def session(session_file: Path) -> Session:
    return load_replay(session_file)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app run until `condition` holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await pilot.pause(0.01)


def text_of(widget: Widget) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def replay_screen(app: ReplayApp) -> ReplayScreen:
    return app.replay


async def test_replay_mode_plays_turns_beside_their_recorded_figures(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screens.replay, "RACE_HOLD_S", 0.3)
    app = ReplayApp(load_settings(), session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
        screen = replay_screen(app)
        transcript = screen.query_one(Transcript)
        assert "Replaying 5 recorded turns (1 race) from evening.jsonl" in text_of(transcript)
        assert [len(play.turns) for play in screen.plays] == [1, 1, 1, 2]

        await pilot.press("enter")
        await until(pilot, lambda: len(screen.results) == 1)
        recorded, result = screen.results[0]
        assert result.text == session.turns[0]["text"] and result.backend == "fast"
        assert result.kind == "replay"
        assert result.metrics.ttft_s == pytest.approx(recorded.metrics.ttft_s, rel=0.03)
        assert result.metrics.decode_tokens_per_s == pytest.approx(
            recorded.metrics.decode_tokens_per_s, rel=0.03
        )
        figures = text_of(screen.query_one(MetricsPanel).query_one("#figures", Static))
        assert "this turn" in figures and "recorded" in figures and "previous" not in figures
        ttft_row = next(line for line in figures.splitlines() if line.strip().startswith("TTFT"))
        assert seconds(recorded.metrics.ttft_s) in ttft_row  # recorded…
        assert seconds(result.metrics.ttft_s) in ttft_row  # …beside re-measured
        await until(pilot, lambda: "recorded → replayed: TTFT" in text_of(transcript))
        assert not screen.playing and not screen.finished

        # A plays the rest: the slow turns, then the race on the race screen.
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, RaceScreen))
        race = app.screen
        assert isinstance(race, RaceScreen)
        await until(pilot, lambda: race.racing or race.races > 0)
        assert [pane.backend for pane in race.panes] == ["fast", "slow"]
        await until(pilot, lambda: screen.finished, timeout=30)
        assert app.screen is screen
        lanes = [turn.backend for turn, _ in screen.results]
        assert lanes == ["fast", "slow", "slow", "fast", "slow"]
        for recorded, result in screen.results:
            assert result.text == session.turns[recorded.index]["text"]
            assert result.metrics.e2e_s == pytest.approx(recorded.metrics.e2e_s, rel=0.05)
        await until(pilot, lambda: "replay finished" in text_of(transcript))
        assert "race replayed: fast → slow" in text_of(transcript)
        assert "replay finished" in text_of(screen.query_one("#replay-bar", Static))


async def test_escape_stops_the_turn_and_playing_all(session: Session) -> None:
    app = ReplayApp(load_settings(), session, speed=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReplayScreen))
        screen = replay_screen(app)
        screen.position = 2  # the longer slow reply comes next, then the race
        await pilot.press("a")
        transcript = screen.query_one(Transcript)
        await until(pilot, lambda: len(transcript.reply_text) > 10)
        await pilot.press("escape")
        await until(pilot, lambda: len(screen.results) == 1)
        recorded, result = screen.results[0]
        assert result.metrics.cancelled and not recorded.cancelled
        assert 0 < len(result.text) < len(session.turns[2]["text"])
        # At twice the speed the first token came in half the recorded time.
        assert result.metrics.ttft_s == pytest.approx(recorded.metrics.ttft_s / 2, rel=0.05)
        await pilot.pause(0.3)
        assert not screen.playing and not screen.finished and len(screen.results) == 1
        assert screen.position == 3 and isinstance(app.screen, ReplayScreen)


def settings_with_lab(lab_url: str) -> AppSettings:
    settings = load_settings()
    backends = dict(settings.backends)
    for name in ("fast", "slow"):
        backends[name] = replace(
            backends[name], base_url=f"{lab_url}/v1", params={"lab": {"output_tokens": 300}}
        )
    return replace(settings, backends=backends)


def keep_in_sessions_dir(session_file: Path, name: str) -> Path:
    directory = sessions_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(session_file, directory / name))


async def test_a_recorded_session_is_picked_as_the_backend(
    session_file: Path, session: Session, lab_url: str
) -> None:
    keep_in_sessions_dir(session_file, "yesterday.jsonl")
    (sessions_dir() / "future.jsonl").write_text('{"type":"session","schema_version":99}\n')
    app = LatencyApp(settings_with_lab(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+b")
        await until(pilot, lambda: isinstance(app.screen, BackendPicker))
        picker = app.screen
        assert isinstance(picker, BackendPicker)
        options = picker.query_one(OptionList)
        offered = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "replay:yesterday" in offered and "replay:future" in offered

        picker.dismiss("replay:future")  # unreadable: said so, and nothing changes
        await until(pilot, lambda: any("newer version" in n.message for n in app._notifications))
        assert app.chat.backend == "fast"

        await pilot.press("ctrl+b")
        await until(pilot, lambda: isinstance(app.screen, BackendPicker))
        app.screen.dismiss("replay:yesterday")
        await until(pilot, lambda: app.chat.backend == "replay:yesterday")
        field = app.chat.query_one("#prompt", Input)
        field.value = WAFER
        field.focus()
        await pilot.press("enter")
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.kind == "replay" and result.text == session.turns[1]["text"]
        expected = session.turns[1]["metrics"]["ttft_s"]
        assert result.metrics.ttft_s == pytest.approx(expected, rel=0.03)


async def test_a_recording_races_a_live_backend_on_the_race_screen(
    session_file: Path, session: Session, lab_url: str
) -> None:
    keep_in_sessions_dir(session_file, "last-night.jsonl")
    app = LatencyApp(settings_with_lab(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, RaceSetup))
        setup = app.screen
        assert isinstance(setup, RaceSetup)
        assert "replay:last-night" in setup._specs
        setup.dismiss(["replay:last-night", "fast"])
        await until(pilot, lambda: isinstance(app.screen, RaceScreen))
        race = app.screen
        assert isinstance(race, RaceScreen)
        assert race.submit(AUSTRALIA)
        await until(pilot, lambda: race.races == 1)
        replayed, live = race.results["replay:last-night"], race.results["fast"]
        assert replayed.kind == "replay" and replayed.text == session.turns[0]["text"]
        assert live.kind == "lab" and live.metrics.output_tokens == 300
        expected = session.turns[0]["metrics"]["ttft_s"]
        assert replayed.metrics.ttft_s == pytest.approx(expected, rel=0.03)
