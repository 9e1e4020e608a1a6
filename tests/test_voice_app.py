"""Voice turns end to end: the virtual microphone, real Whisper, real espeak-ng, the ALSA file
device as the speaker, and the real lab server — in the TUI (Pilot) and in `ask --mic-file`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot

from demo.config import AppSettings, load_settings
from demo.lab.process import LabServer
from demo.ui.app import LatencyApp
from demo.ui.widgets.transcript import Transcript
from demo.voice.session import VoiceOptions
from tests.support.audio import read_raw_s16, speak_to_wav

SIZE = (120, 40)
QUESTION = "What is the capital of Australia?"


@pytest.fixture(scope="module")
def lab_url() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def utterance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speak_to_wav(QUESTION, tmp_path_factory.mktemp("voice") / "question.wav")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def speaker_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "played.raw"
    monkeypatch.setenv("TEST_AUDIO_SPEAKER_RAW", str(path))
    return path


def make_settings(lab_url: str, **voice: object) -> AppSettings:
    settings = load_settings()
    backends = dict(settings.backends)
    for name in ("fast", "slow"):
        backends[name] = replace(backends[name], base_url=f"{lab_url}/v1")
    return replace(
        settings,
        backends=backends,
        max_tokens=80,
        voice=replace(settings.voice, **voice),  # type: ignore[arg-type]
    )


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await pilot.pause(0.02)


def played_seconds(path: Path) -> float:
    if not path.exists():
        return 0.0
    samples = read_raw_s16(path)
    loud = abs(samples) > 0.01
    return float(loud.sum()) / 22_050


async def test_a_spoken_turn_in_the_tui(
    lab_url: str, utterance: Path, model_cache: Path, speaker_file: Path
) -> None:
    app = LatencyApp(
        make_settings(lab_url),
        voice=VoiceOptions(mic_file=utterance, speak=True, cache_dir=model_cache),
    )
    async with app.run_test(size=SIZE) as pilot:
        voice = app.voice
        assert voice is not None
        await until(pilot, lambda: voice.wait_loaded(0))
        assert voice.can_listen, voice.stt_problem
        assert voice.can_speak, voice.tts_problem

        await pilot.press("f5")  # push-to-talk: the recording plays as the microphone
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert "capital" in result.prompt.lower() and "australia" in result.prompt.lower()
        assert "Canberra" in result.text
        assert "Canberra" in app.chat.query_one(Transcript).reply_text

        turn = app.chat.voice_turn
        assert turn is not None
        await until(
            pilot,
            lambda: (f := turn.voice_figures()) is not None and f.voice_to_voice_s is not None,
        )
        figures = turn.voice_figures()
        assert figures is not None
        stages = [
            figures.speech_s,
            figures.stt_s,
            figures.ttft_s,
            figures.first_sentence_s,
            figures.tts_first_audio_s,
            figures.voice_to_voice_s,
        ]
        assert all(stage is not None and stage >= 0 for stage in stages), figures
        assert figures.voice_to_voice_s >= figures.stt_s + figures.ttft_s  # type: ignore[operator]
        assert 1.0 < figures.speech_s < 6.0  # type: ignore[operator]
        assert figures.transcript == result.prompt

        reply = voice._reply
        assert reply is not None
        assert await asyncio.to_thread(reply.wait_idle, 30.0)
        speaker = voice._speaker
        assert speaker is not None
        await until(pilot, lambda: not speaker.playing)
        assert played_seconds(speaker_file) > 0.5


async def test_escape_stops_the_spoken_reply_within_100_ms(
    lab_url: str, model_cache: Path, speaker_file: Path
) -> None:
    app = LatencyApp(make_settings(lab_url), voice=VoiceOptions(speak=True, cache_dir=model_cache))
    async with app.run_test(size=SIZE) as pilot:
        voice = app.voice
        assert voice is not None
        await until(pilot, lambda: voice.wait_loaded(0))
        speaker = voice._speaker
        assert speaker is not None
        app.chat.submit("Explain how a wafer-scale chip makes LLM inference fast.")
        await until(pilot, lambda: speaker.playing)
        stopped: list[float] = []

        def watch() -> None:  # on a thread: the app's loop is what is being measured
            while speaker.playing:
                time.sleep(0.001)
            stopped.append(time.perf_counter())

        watcher = asyncio.create_task(asyncio.to_thread(watch))
        pressed = time.perf_counter()
        await pilot.press("escape")
        await asyncio.wait_for(watcher, 1.0)
        stopped_after = stopped[0] - pressed
        assert not speaker.playing
        assert stopped_after < 0.1, f"speech went on for {stopped_after * 1000:.0f} ms"


async def test_without_a_speech_model_typed_input_still_works(
    lab_url: str, tmp_path: Path, model_cache: Path
) -> None:
    empty = tmp_path / "no-model"
    empty.mkdir()
    app = LatencyApp(
        make_settings(lab_url, model_dir=empty),
        voice=VoiceOptions(speak=False, cache_dir=model_cache),
    )
    async with app.run_test(size=SIZE) as pilot:
        voice = app.voice
        assert voice is not None
        await until(pilot, lambda: voice.wait_loaded(0))
        assert not voice.can_listen
        assert voice.stt_problem and str(empty) in voice.stt_problem
        await pilot.press("f5")
        app.chat.submit(QUESTION)
        await until(pilot, lambda: len(app.chat.results) == 1)
        assert "Canberra" in app.chat.results[0].text
        rendered = app.chat.query_one(Transcript)
        shown = "\n".join(rendered.render_line(y).text for y in range(rendered.size.height))
        assert "voice input unavailable" in shown


def test_ask_with_a_mic_file_prints_every_voice_stage(
    lab_url: str, utterance: Path, model_cache: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[backends.lab]\nkind = "lab"\nmodel = "fast"\nbase_url = "{lab_url}/v1"\n')
    played = tmp_path / "played.raw"
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(model_cache.parent / "cache"),
        "TEST_AUDIO_SPEAKER_RAW": str(played),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo",
            "--config",
            str(config),
            "ask",
            "--backend",
            "lab",
            "--mic-file",
            str(utterance),
            "--speak",
            "--json",
            "--max-tokens",
            "60",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    turn = json.loads(result.stdout.strip().splitlines()[-1])
    assert "australia" in turn["transcript"].lower()
    assert "Canberra" in turn["text"]
    for field in (
        "speech_s",
        "stt_s",
        "ttft_s",
        "first_sentence_s",
        "tts_first_audio_s",
        "voice_to_voice_s",
    ):
        assert turn[field] is not None and turn[field] >= 0, field
    assert turn["voice_to_voice_s"] >= turn["stt_s"] + turn["ttft_s"]
    assert "Traceback" not in result.stderr
    assert played_seconds(played) > 0.5
