"""Audio in: the level meter, the virtual microphone's pacing and conversion, and the real
microphone path through PortAudio on ALSA's file-backed capture device."""

from __future__ import annotations

import builtins
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from demo.voice import capture
from demo.voice.capture import (
    SAMPLE_RATE,
    AudioUnavailable,
    FileSource,
    MicSource,
    level_dbfs,
    read_audio,
)
from demo.voice.devices import DeviceInfo, format_devices, list_devices
from demo.voice.utterance import UtteranceDetector
from tests.support.audio import (
    dominant_frequency,
    offline_transcriber,
    read_wav,
    resample,
    silence,
    speak_to_wav,
    tone,
    word_error_rate,
    write_raw_s16,
    write_wav,
)

MIC_SENTENCE = "How many people live in New York City?"


class Recorder:
    """A block handler that notes what arrived, and when (wall clock)."""

    def __init__(self, want_samples: int | None = None) -> None:
        self.blocks: list[np.ndarray] = []
        self.stamps: list[int] = []
        self.arrivals: list[int] = []
        self.samples = 0
        self.want = want_samples
        self.enough = threading.Event()
        self.ended = threading.Event()

    def on_block(self, block: np.ndarray, t_ns: int) -> None:
        self.arrivals.append(time.perf_counter_ns())
        self.blocks.append(block.copy())
        self.stamps.append(t_ns)
        self.samples += len(block)
        if self.want is not None and self.samples >= self.want:
            self.enough.set()

    def on_end(self) -> None:
        self.ended.set()

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, np.float32)


# --- the level meter ------------------------------------------------------------------------


def test_level_of_full_scale_square_wave_is_0_dbfs() -> None:
    square = np.tile(np.array([1.0, -1.0], dtype=np.float32), 256)
    assert level_dbfs(square) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("amplitude", "expected"),
    [(1.0, -3.0103), (0.1, -23.0103), (0.001, -63.0103)],
)
def test_level_of_a_sine_is_its_rms_in_dbfs(amplitude: float, expected: float) -> None:
    sine = tone(500, 0.064, SAMPLE_RATE, amplitude)  # a whole number of cycles
    assert level_dbfs(sine) == pytest.approx(expected, abs=0.01)


def test_level_of_silence_and_of_nothing_is_minus_infinity() -> None:
    assert level_dbfs(np.zeros(512, dtype=np.float32)) == -math.inf
    assert level_dbfs(np.zeros(0, dtype=np.float32)) == -math.inf


def test_level_is_capped_at_full_scale() -> None:
    assert level_dbfs(np.full(512, 3.0, dtype=np.float32)) == 0.0


# --- the virtual microphone -----------------------------------------------------------------


def test_file_source_paces_blocks_to_the_wall_clock(tmp_path: Path) -> None:
    seconds, lead, tail = 1.5, 0.2, 0.3
    left = tone(1000, seconds, 22_050, 0.6)
    right = tone(1000, seconds, 22_050, 0.2)
    wav = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 22_050)
    source = FileSource(wav, lead_silence_s=lead, tail_silence_s=tail)
    recorder = Recorder()

    source.start(recorder.on_block, recorder.on_end)
    assert recorder.ended.wait(10)
    ended_ns = time.perf_counter_ns()
    source.stop()

    started = source.started_ns
    assert started is not None
    # Stamps: exactly the absolute schedule, block k due when its last sample would be spoken.
    delivered = np.cumsum([len(b) for b in recorder.blocks])
    expected = [started + int(n) * 1_000_000_000 // SAMPLE_RATE for n in delivered]
    assert recorder.stamps == expected
    assert all(len(b) == 512 for b in recorder.blocks[:-1])
    # Arrivals: never early, and late by no more than scheduling noise.
    lateness_ms = [(a - s) / 1e6 for a, s in zip(recorder.arrivals, recorder.stamps, strict=True)]
    assert min(lateness_ms) >= 0
    # Bounds allow for a busy 2-core machine; an unpaced source would fail `min >= 0` at once.
    assert np.percentile(lateness_ms, 95) < 25 and max(lateness_ms) < 100
    # The whole recording took as long as it lasts.
    total_s = lead + seconds + tail
    assert (ended_ns - started) / 1e9 == pytest.approx(total_s, abs=0.1)
    assert delivered[-1] == round(lead * SAMPLE_RATE) + round(seconds * SAMPLE_RATE) + round(
        tail * SAMPLE_RATE
    )
    # Converted to 16 kHz mono: the tone keeps its pitch, the channels are averaged.
    audio = recorder.audio
    body = audio[round((lead + 0.1) * SAMPLE_RATE) : round((lead + seconds - 0.1) * SAMPLE_RATE)]
    assert dominant_frequency(body, SAMPLE_RATE) == pytest.approx(1000, abs=2)
    assert level_dbfs(body) == pytest.approx(20 * math.log10(0.4 / math.sqrt(2)), abs=0.1)
    assert np.all(audio[: round(lead * SAMPLE_RATE) - 32] == 0)
    assert np.all(audio[-round(tail * SAMPLE_RATE) + 32 :] == 0)


def test_file_source_matches_an_independent_resampling(tmp_path: Path) -> None:
    speech, rate = read_wav(speak_to_wav("Testing one two three.", tmp_path / "speech.wav"))
    float_wav = write_wav(tmp_path / "float.wav", resample(speech, rate, 44_100), 44_100,
                          float32=True)  # fmt: skip
    source = FileSource(float_wav, realtime=False, tail_silence_s=0.0)
    recorder = Recorder()

    source.start(recorder.on_block, recorder.on_end)
    assert recorder.ended.wait(10)

    reference = resample(speech, rate, SAMPLE_RATE)
    got = recorder.audio
    assert abs(len(got) - len(reference)) <= 2
    n = min(len(got), len(reference))
    # Two different resamplers (band-limited vs linear) agree closely on speech.
    error = got[:n] - reference[:n]
    assert 10 * math.log10(np.sum(reference[:n] ** 2) / np.sum(error**2)) > 20
    # Unpaced delivery is stamped on the recording's own clock all the same.
    assert source.started_ns is not None
    assert recorder.stamps[-1] - source.started_ns == len(got) * 1_000_000_000 // SAMPLE_RATE


def test_a_16_khz_wav_is_read_sample_exact(tmp_path: Path) -> None:
    samples = (np.random.default_rng(7).integers(-20_000, 20_000, 8000) / 32768).astype(np.float32)
    wav = write_wav(tmp_path / "exact.wav", samples, SAMPLE_RATE)

    np.testing.assert_array_equal(read_audio(wav), samples)


def test_stopping_a_file_source_stops_delivery_at_once(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "long.wav", tone(300, 5.0, SAMPLE_RATE), SAMPLE_RATE)
    source = FileSource(wav)
    recorder = Recorder(want_samples=5 * 512)

    source.start(recorder.on_block, recorder.on_end)
    assert recorder.enough.wait(5)
    source.stop()
    count = len(recorder.blocks)
    stopped_ns = time.perf_counter_ns()

    # stop() joined the delivery thread: nothing can arrive later, and on_end (for a recording
    # that ran out) never runs.
    assert all(a <= stopped_ns for a in recorder.arrivals)
    assert not recorder.ended.is_set()
    assert len(recorder.blocks) == count


def test_a_file_source_can_be_stopped_from_its_own_end_handler(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "short.wav", tone(300, 0.1, SAMPLE_RATE), SAMPLE_RATE)
    source = FileSource(wav, realtime=False, tail_silence_s=0.0)
    done = threading.Event()

    def on_end() -> None:
        source.stop()  # as the session's end-of-recording handler does
        done.set()

    source.start(lambda block, t_ns: None, on_end)
    assert done.wait(5)


def test_a_missing_recording_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(AudioUnavailable, match="no such recording"):
        FileSource(tmp_path / "nothing.wav").start(lambda block, t_ns: None)


def test_an_unreadable_recording_ends_with_the_reason(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio" * 100)
    source = FileSource(junk)
    recorder = Recorder()

    source.start(recorder.on_block, recorder.on_end)

    assert recorder.ended.wait(5)
    assert recorder.blocks == []
    assert source.error is not None and "junk.wav" in source.error


# --- the microphone, through PortAudio ------------------------------------------------------


@pytest.fixture
def mic_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "mic.raw"
    monkeypatch.setenv("TEST_AUDIO_MIC_RAW", str(path))
    return path


def test_microphone_path_captures_and_transcribes_a_spoken_utterance(
    mic_file: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    speech, rate = read_wav(speak_to_wav(MIC_SENTENCE, tmp_path / "utterance.wav"))
    recording = np.concatenate(
        [silence(0.5, SAMPLE_RATE), resample(speech, rate, SAMPLE_RATE), silence(0.5, SAMPLE_RATE)]
    )
    write_raw_s16(mic_file, recording)
    transcriber = offline_transcriber(tmp_path_factory.mktemp("models"))
    detector = UtteranceDetector(hands_free=False)
    recorder = Recorder(want_samples=len(recording))

    def on_block(block: np.ndarray, t_ns: int) -> None:
        # The device reads past the end of its file (silence, or junk): stop at the recording.
        if recorder.samples < len(recording):
            recorder.on_block(block, t_ns)
            detector.feed(block, t_ns)

    # ALSA's file device is not paced and loses input once its buffer wraps: a buffer longer
    # than the recording keeps every sample (a real microphone uses the default, "low").
    source = MicSource(latency=len(recording) / SAMPLE_RATE + 1.0)
    source.start(on_block)
    try:
        assert recorder.enough.wait(10), "the microphone delivered too little"
    finally:
        source.stop()
    released = time.perf_counter_ns()
    turn = detector.finish(released)

    assert source.device_rate == SAMPLE_RATE and source.overflows == 0
    # Every sample the device read came through unchanged (S16 → float32 is exact).
    captured = recorder.audio[: len(recording)]
    np.testing.assert_allclose(captured, np.round(recording * 32768) / 32768, atol=1.5 / 32768)
    assert all(len(b) == 512 for b in recorder.blocks)
    assert recorder.stamps == sorted(recorder.stamps)
    assert turn is not None and turn.speech_end_ns == released
    transcript = transcriber.transcribe(turn.audio)
    # espeak-ng's voice through Whisper base: this sentence comes back word for word here;
    # one wrong word in eight (0.125) is allowed, while a broken path (silence, lost blocks,
    # the wrong rate mangling the voice) gives half the words wrong or more.
    assert word_error_rate(MIC_SENTENCE, transcript.text) <= 0.125, transcript.text


def test_a_microphone_without_16_khz_is_captured_at_its_rate_and_converted(
    mic_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = np.concatenate(
        [silence(0.2, SAMPLE_RATE), tone(700, 1.0, SAMPLE_RATE, 0.5), silence(0.3, SAMPLE_RATE)]
    )
    write_raw_s16(mic_file, recording)
    # As if the device offered only 48 kHz: ALSA's plug layer turns the 16 kHz file into 48 kHz,
    # and the source must bring it back.
    monkeypatch.setattr(MicSource, "_choose_rate", lambda self, sd: 48_000)
    recorder = Recorder(want_samples=len(recording))
    source = MicSource(latency=3.0)

    source.start(recorder.on_block)
    try:
        assert recorder.enough.wait(10)
    finally:
        source.stop()

    assert source.device_rate == 48_000
    captured = recorder.audio[: len(recording)]
    # Two resamplers in a row (ALSA's up, FFmpeg's down) may shift the signal by a sample or two.
    errors = {}
    for lag in range(-8, 9):
        got = captured[max(0, lag) :]
        want = recording[max(0, -lag) :]
        n = min(len(got), len(want))
        errors[lag] = float(np.sum((got[:n] - want[:n]) ** 2))
    snr_db = 10 * math.log10(float(np.sum(recording**2)) / min(errors.values()))
    assert snr_db > 30
    assert dominant_frequency(captured[4000:18000], SAMPLE_RATE) == pytest.approx(700, abs=2)


def test_stopping_the_microphone_from_its_own_handler_does_not_hang(mic_file: Path) -> None:
    write_raw_s16(mic_file, silence(2.0, SAMPLE_RATE))
    source = MicSource(latency=3.0)
    stopped = threading.Event()

    def on_block(block: np.ndarray, t_ns: int) -> None:
        if not stopped.is_set():
            source.stop()
            stopped.set()

    source.start(on_block)
    assert stopped.wait(5)
    source.stop()  # and again, from the test: harmless


def test_an_unknown_input_device_is_reported_with_the_way_to_list_them() -> None:
    with pytest.raises(AudioUnavailable, match="latency-demo devices"):
        MicSource(device="no such microphone").start(lambda block, t_ns: None)


def test_missing_portaudio_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_portaudio(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_portaudio)
    with pytest.raises(AudioUnavailable, match=r"PortAudio is not installed.*libportaudio2"):
        MicSource().start(lambda block, t_ns: None)
    with pytest.raises(AudioUnavailable, match="libportaudio2"):
        list_devices()


def test_missing_sounddevice_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(AudioUnavailable, match="pip install sounddevice"):
        capture.load_sounddevice()


# --- devices --------------------------------------------------------------------------------


def test_devices_lists_the_test_device_as_default_input_and_output() -> None:
    devices = list_devices()

    default = [d for d in devices if d.default_in]
    assert len(default) == 1 and default[0].inputs >= 1
    assert any(d.default_out and d.outputs >= 1 for d in devices)
    table = format_devices(devices)
    assert default[0].name in table and "< default input" in table


def test_device_table_marks_defaults_and_aligns_columns() -> None:
    devices = [
        DeviceInfo(0, "Built-in Microphone", 2, 0, True, False, "ALSA", 48_000.0),
        DeviceInfo(11, "Speakers", 0, 2, False, True, "ALSA", 44_100.0),
    ]
    lines = format_devices(devices).splitlines()

    assert lines[1].startswith("<") and "Built-in Microphone" in lines[1] and "48 kHz" in lines[1]
    assert lines[2].startswith(" >") and "44.1 kHz" in lines[2]
    assert lines[1].index("Built-in") == lines[2].index("Speakers")
    assert format_devices([]) == "no audio devices found"
