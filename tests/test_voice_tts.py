"""Text to speech through pyttsx3 and espeak-ng in a child process: the real engine, no doubles."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from demo.voice.tts import Synthesizer, TTSError, TTSUnavailable


@pytest.fixture(scope="module")
def synthesizer() -> Iterator[Synthesizer]:
    with Synthesizer() as synth:
        yield synth


def test_a_sentence_becomes_audible_speech_of_plausible_length(synthesizer: Synthesizer) -> None:
    speech = synthesizer.synthesize("The quick brown fox jumps over the lazy dog.")
    assert speech.text == "The quick brown fox jumps over the lazy dog."
    assert speech.sample_rate == 22050
    assert speech.samples.dtype == np.float32
    assert speech.samples.ndim == 1
    assert 1.0 <= speech.duration_s <= 5.0
    assert 0.1 < float(np.abs(speech.samples).max()) <= 1.0
    rms = float(np.sqrt(np.mean(speech.samples**2)))
    assert rms > 0.02  # speech, not near-silence
    assert 0 < speech.synth_s < 2.0


def test_longer_text_gives_longer_speech(synthesizer: Synthesizer) -> None:
    short = synthesizer.synthesize("Yes.")
    long = synthesizer.synthesize("Yes, and here is a much longer sentence with many more words.")
    assert long.duration_s > 2 * short.duration_s


def test_empty_text_is_silence_without_asking_the_engine(synthesizer: Synthesizer) -> None:
    speech = synthesizer.synthesize("   ")
    assert len(speech.samples) == 0
    assert speech.synth_s == 0.0


def test_voices_lists_the_engine_voices(synthesizer: Synthesizer) -> None:
    voices = synthesizer.voices()
    assert len(voices) > 10
    assert any(voice.endswith("/en") or voice.endswith("/en-us") for voice in voices)


def test_a_chosen_voice_and_rate_are_used() -> None:
    text = "This sentence is spoken at two different rates."
    with Synthesizer(voice="gmw/en-us", rate=120) as slow, Synthesizer(rate=320) as fast:
        assert slow.synthesize(text).duration_s > 1.5 * fast.synthesize(text).duration_s


def test_an_unknown_voice_is_refused_plainly() -> None:
    synth = Synthesizer(voice="no-such-voice")
    with pytest.raises(TTSError, match="unknown voice 'no-such-voice'") as caught:
        synth.start()
    assert not isinstance(caught.value, TTSUnavailable)
    assert not synth.running


def test_missing_espeak_data_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # espeak-ng looks for its data here first; an empty data folder is what a broken or partial
    # install looks like, and espeak-ng then exits the process that loaded it.
    (tmp_path / "espeak-ng-data").mkdir()
    monkeypatch.setenv("ESPEAK_DATA_PATH", str(tmp_path))
    synth = Synthesizer()
    with pytest.raises(TTSUnavailable) as caught:
        synth.start()
    message = str(caught.value)
    assert message.startswith("espeak-ng is not installed or not working")
    assert "phontab" in message  # espeak-ng's own complaint is passed on
    assert message.endswith("sudo apt-get install espeak-ng")
    assert not synth.running
    synth.close()


def test_missing_pyttsx3_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child sees a pyttsx3 that cannot be imported, as on a machine without the package.
    (tmp_path / "pyttsx3.py").write_text("raise ImportError('No module named pyttsx3')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(TTSUnavailable, match=r"pyttsx3 is not installed .*: pip install pyttsx3"):
        Synthesizer().start()


def test_a_crashed_engine_is_restarted_on_the_next_sentence() -> None:
    with Synthesizer() as synth:
        process = synth._process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
        speech = synth.synthesize("Still speaking after a crash.")
        assert speech.duration_s > 0.5
        assert synth._process is not None and synth._process.pid != process.pid


def test_close_ends_the_child_and_removes_its_files() -> None:
    synth = Synthesizer()
    synth.start()
    process = synth._process
    workdir = synth._workdir
    assert process is not None and workdir is not None and workdir.is_dir()
    started = time.perf_counter()
    synth.close()
    assert time.perf_counter() - started < 2.0
    assert process.poll() is not None
    assert not workdir.exists()
    synth.close()  # twice is fine
