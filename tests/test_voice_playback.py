"""Playback through the real PortAudio path, on ALSA's file-backed device (tests/support).

The speaker file receives raw S16_LE mono 22,050 Hz samples, exactly what PortAudio handed over.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from demo.voice.playback import AudioUnavailable, Speaker
from demo.voice.tts import Speech, Synthesizer

RATE = 22050


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


def played(path: Path) -> np.ndarray:
    """The samples the device wrote, as float32."""
    if not path.exists():
        return np.zeros(0, dtype=np.float32)
    return np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.float32) / 32768.0


def audible_span(samples: np.ndarray, threshold: float = 1e-3) -> tuple[int, int]:
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, 0)


def tone(seconds: float, frequency: float, rate: int = RATE, level: float = 0.5) -> Speech:
    t = np.arange(round(seconds * rate)) / rate
    samples = (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return Speech(samples, rate, f"{frequency:g} Hz", 0.0)


class FirstAudio:
    """Collects first-audio timestamps and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self._event = threading.Event()

    def __call__(self, t_ns: int) -> None:
        self.times.append(t_ns)
        self._event.set()

    def wait(self, timeout: float = 5.0) -> int:
        assert self._event.wait(timeout), "no first audio"
        self._event.clear()
        return self.times[-1]


@pytest.fixture
def speaker_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "speaker.raw"
    monkeypatch.setenv("TEST_AUDIO_SPEAKER_RAW", str(path))
    return path


@pytest.fixture
def first_audio() -> FirstAudio:
    return FirstAudio()


@pytest.fixture
def speaker(speaker_file: Path, first_audio: FirstAudio) -> Iterator[Speaker]:
    speaker = Speaker(on_first_audio=first_audio)
    yield speaker
    speaker.close()


@pytest.fixture(scope="module")
def synthesizer() -> Iterator[Synthesizer]:
    with Synthesizer() as synth:
        yield synth


def test_synthesized_speech_plays_on_the_device(
    synthesizer: Synthesizer, speaker: Speaker, speaker_file: Path, first_audio: FirstAudio
) -> None:
    speech = synthesizer.synthesize("Speech reaches the audio device.")
    queued = time.perf_counter_ns()
    speaker.play(speech)
    assert first_audio.wait() >= queued
    wait_until(lambda: not speaker.playing, timeout=10)

    out = played(speaker_file)
    start, end = audible_span(out)
    assert 0.5 <= (end - start) / RATE <= 5.0
    assert len(first_audio.times) == 1
    # What reached the device is the synthesized speech itself, to within 16-bit rounding.
    source_start, source_end = audible_span(speech.samples)
    source = speech.samples[source_start:source_end]
    assert end - start == len(source)
    assert np.max(np.abs(out[start:end] - source)) < 2e-4


def test_playback_keeps_real_time_pace_on_a_device_that_does_not(
    speaker: Speaker, speaker_file: Path
) -> None:
    # The file device swallows samples as fast as they come; unpaced, one second of audio would
    # be written in milliseconds and the callback would spin a core.
    started = time.perf_counter()
    speaker.play(tone(1.0, 440))
    wait_until(lambda: not speaker.playing)
    elapsed = time.perf_counter() - started
    assert elapsed >= 0.9
    assert len(played(speaker_file)) >= RATE


def test_utterances_play_in_order_without_gaps(speaker: Speaker, speaker_file: Path) -> None:
    speaker.play(tone(0.2, 300, level=0.2))
    speaker.play(tone(0.2, 600, level=0.6))
    wait_until(lambda: not speaker.playing)
    start, end = audible_span(played(speaker_file))
    out = played(speaker_file)[start:end]
    assert len(out) == pytest.approx(0.4 * RATE, abs=4)
    first, second = out[: len(out) // 2], out[len(out) // 2 :]
    assert np.abs(first).max() == pytest.approx(0.2, abs=0.01)
    assert np.abs(second).max() == pytest.approx(0.6, abs=0.01)


def test_other_rates_are_resampled_to_the_stream_rate(speaker: Speaker, speaker_file: Path) -> None:
    assert speaker.sample_rate == RATE
    speaker.play(tone(0.5, 200, rate=16000))
    wait_until(lambda: not speaker.playing)
    start, end = audible_span(played(speaker_file))
    assert (end - start) / RATE == pytest.approx(0.5, abs=0.01)


def test_each_utterance_reports_its_own_first_audio(
    speaker: Speaker, first_audio: FirstAudio
) -> None:
    mine: list[int] = []
    silence = Speech(np.zeros(2205, dtype=np.float32), RATE, "", 0.0)
    speaker.play(silence, on_first_audio=mine.append)
    speaker.play(tone(0.1, 500), on_first_audio=mine.append)
    speaker.play(tone(0.1, 700))
    wait_until(lambda: not speaker.playing)
    assert len(mine) == 1  # silence is never "first audio"
    assert len(first_audio.times) == 2
    assert mine[0] == first_audio.times[0] < first_audio.times[1]


def test_stop_silences_within_100_ms_and_the_speaker_stays_usable(
    synthesizer: Synthesizer, speaker: Speaker, speaker_file: Path, first_audio: FirstAudio
) -> None:
    speech = synthesizer.synthesize(
        "This is a long sentence that keeps on talking for several seconds, so that there is "
        "plenty of time to interrupt it in the middle."
    )
    assert speech.duration_s > 4
    played_from = time.perf_counter()
    speaker.play(speech)
    first_audio.wait()
    wait_until(lambda: speaker.frames_output > 0.3 * RATE)

    frames_at_stop = speaker.frames_output
    stop_called = time.perf_counter()
    speaker.stop()
    stopped = time.perf_counter()
    frames_after_stop = speaker.frames_output - frames_at_stop
    written = len(played(speaker_file))

    assert stopped - stop_called < 0.1
    assert frames_after_stop <= 0.1 * RATE  # at most what one callback had in hand
    assert not speaker.playing
    # Nothing ran ahead of the wall clock by more than 100 ms when speech was cut...
    assert written / RATE <= (stopped - played_from) + 0.1
    # ...and nothing more arrives afterwards.
    assert not threading.Event().wait(0.25)
    assert len(played(speaker_file)) == written
    assert written < 0.5 * len(speech.samples)

    speaker.play(tone(0.2, 440))
    first_audio.wait()
    wait_until(lambda: not speaker.playing)
    assert len(played(speaker_file)) >= written + 0.2 * RATE


def test_stop_and_close_are_safe_when_idle(speaker_file: Path) -> None:
    speaker = Speaker()
    speaker.stop()
    assert not speaker.playing
    speaker.close()
    speaker.close()
    with pytest.raises(AudioUnavailable, match="closed"):
        speaker.play(tone(0.1, 440))


# -- missing pieces ----------------------------------------------------------------------------


def test_a_missing_device_says_so(speaker_file: Path) -> None:
    with pytest.raises(AudioUnavailable, match="no audio output device matching 'no-such-card'"):
        Speaker(device="no-such-card")


class _Refuse(importlib.abc.MetaPathFinder):
    """Makes importing one module fail the way it fails on a machine without it."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            raise self.error
        return None


def test_missing_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    refuse = _Refuse("sounddevice", OSError("PortAudio library not found"))
    monkeypatch.setattr(sys, "meta_path", [refuse, *sys.meta_path])
    with pytest.raises(AudioUnavailable) as caught:
        Speaker()
    assert str(caught.value) == (
        "PortAudio is not installed (PortAudio library not found): "
        "sudo apt-get install libportaudio2"
    )


def test_missing_sounddevice_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(AudioUnavailable, match=r"sounddevice is not installed .*pip install"):
        Speaker()
