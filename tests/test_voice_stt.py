"""Speech to text: espeak-ng speaks known sentences, faster-whisper (base, int8) writes them back.

The model is the real one from the offline packages, assembled and loaded once for the session.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from demo.voice import stt
from demo.voice.capture import SAMPLE_RATE, read_audio
from demo.voice.models import ModelLocation
from demo.voice.stt import Transcriber
from tests.support.audio import (
    normalise_words,
    offline_transcriber,
    speak_to_wav,
    word_error_rate,
)

SENTENCES = [
    "Please tell me the weather forecast for tomorrow morning in London.",
    "Can you write a short poem about the sea and the moon, please?",
    "How many people live in New York City?",
    "Give me three ideas for a healthy breakfast before work.",
]

# Word error rate allowed over all four sentences (39 words). Measured here: 0 to 2 wrong words
# in total, depending on the decoder's window (espeak-ng's formant voice is harder for Whisper
# than a person: "three" sometimes comes back "free"). 0.15 allows 5 wrong words; the failures
# this guards against are far above it: half the audio lost gives ~0.45, silence or the wrong
# model 1.0.
MAX_WER = 0.15


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    return offline_transcriber(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    folder = tmp_path_factory.mktemp("spoken")
    return [
        read_audio(speak_to_wav(text, folder / f"{index}.wav"))
        for index, text in enumerate(SENTENCES)
    ]


def _corpus_wer(texts: list[str]) -> float:
    errors = sum(
        word_error_rate(ref, hyp) * len(normalise_words(ref))
        for ref, hyp in zip(SENTENCES, texts, strict=True)
    )
    return errors / sum(len(normalise_words(ref)) for ref in SENTENCES)


def test_the_offline_packages_give_a_loaded_model(transcriber: Transcriber) -> None:
    assert transcriber.ready and transcriber.error is None
    assert transcriber.location.source == "package"
    assert (Path(transcriber.location.path_or_name) / "model.bin").stat().st_size > 100_000_000
    assert transcriber.load_s is not None and transcriber.load_s > 0


def test_round_trip_word_error_rate(transcriber: Transcriber, spoken: list[np.ndarray]) -> None:
    transcripts = [transcriber.transcribe(audio) for audio in spoken]

    texts = [t.text for t in transcripts]
    assert _corpus_wer(texts) <= MAX_WER, texts
    for transcript, audio in zip(transcripts, spoken, strict=True):
        assert transcript.audio_s == pytest.approx(len(audio) / SAMPLE_RATE)
        assert transcript.decode_s > 0
        assert transcript.rtf == pytest.approx(transcript.decode_s / transcript.audio_s)
        # A few seconds of speech is encoded in a window fitted to it, not Whisper's 30 s.
        assert transcript.window_s < 10 and not transcript.retried


def test_the_short_window_transcribes_as_well_as_the_full_one(
    transcriber: Transcriber, spoken: list[np.ndarray]
) -> None:
    short = [transcriber.transcribe(audio).text for audio in spoken]
    transcriber.short_window = False
    try:
        full = [transcriber.transcribe(audio) for audio in spoken]
    finally:
        transcriber.short_window = True

    assert all(t.window_s == 30.0 for t in full)
    assert _corpus_wer(short) <= _corpus_wer([t.text for t in full]) + 0.05


def test_a_decode_that_runs_away_is_redone_with_the_full_window(
    transcriber: Transcriber, spoken: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no token allowance left, every short-window decode "fills" it, as a loop would.
    monkeypatch.setattr(stt, "TOKENS_PER_S", 0.0)
    monkeypatch.setattr(stt, "TOKEN_ALLOWANCE", 2)

    transcript = transcriber.transcribe(spoken[0])

    assert transcript.retried and transcript.window_s == 30.0
    assert word_error_rate(SENTENCES[0], transcript.text) <= 0.2, transcript.text


def test_silence_and_faint_noise_transcribe_to_nothing(transcriber: Transcriber) -> None:
    quiet = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    hiss = np.random.default_rng(3).normal(0, 0.003, 2 * SAMPLE_RATE).astype(np.float32)

    assert transcriber.transcribe(quiet).text == ""
    assert transcriber.transcribe(hiss).text == ""
    assert transcriber.transcribe(np.zeros(0, dtype=np.float32)).text == ""


def test_calls_from_several_threads_are_serialised_and_all_correct(
    transcriber: Transcriber, spoken: list[np.ndarray]
) -> None:
    expected = [transcriber.transcribe(audio).text for audio in spoken[:3]]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            results[index] = transcriber.transcribe(spoken[index]).text
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert [results[i] for i in range(3)] == expected


def test_language_detection_when_no_language_is_set(
    transcriber: Transcriber, spoken: list[np.ndarray]
) -> None:
    transcriber.language = None
    try:
        text = transcriber.transcribe(spoken[2]).text
    finally:
        transcriber.language = "en"

    assert word_error_rate(SENTENCES[2], text) <= 0.25, text


def test_transcribing_before_loading_is_an_error() -> None:
    idle = Transcriber(ModelLocation("/nowhere", "directory"))

    assert not idle.ready
    with pytest.raises(RuntimeError, match="not loaded"):
        idle.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))


def test_a_bad_model_folder_fails_to_load_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.bin").write_bytes(b"not a model")
    (broken / "config.json").write_text("{}")
    failing = Transcriber(ModelLocation(str(broken), "directory"))

    failing.load()  # never raises: the app calls it from a background thread

    assert not failing.ready and not failing.wait_ready(0)
    assert failing.error is not None and str(broken) in failing.error


def test_missing_faster_whisper_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    missing = Transcriber(ModelLocation("/nowhere", "directory"))

    missing.load()

    assert not missing.ready
    assert missing.error is not None and "pip install faster-whisper" in missing.error


def _count_decodes(transcriber: Transcriber, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = transcriber._decode

    def counting(
        samples: np.ndarray, window: int | None, allowance: int | None
    ) -> tuple[str, bool]:
        calls.append(len(samples))
        return real(samples, window, allowance)

    monkeypatch.setattr(transcriber, "_decode", counting)
    return calls


def test_a_prefetched_turn_is_not_decoded_again(
    transcriber: Transcriber, spoken: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = transcriber.transcribe(spoken[1]).text
    decodes = _count_decodes(transcriber, monkeypatch)

    transcriber.prefetch(spoken[1])
    transcript = transcriber.transcribe(spoken[1].copy())  # equal samples, another array

    assert transcript.prefetched and transcript.text == expected
    assert decodes == [len(spoken[1])]
    # Other audio is decoded as usual.
    other = transcriber.transcribe(spoken[2])
    assert not other.prefetched and len(decodes) == 2


def test_a_superseded_prefetch_is_skipped(
    transcriber: Transcriber, spoken: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = _count_decodes(transcriber, monkeypatch)

    with transcriber._lock:  # the model is busy: both prefetches wait for it
        transcriber.prefetch(spoken[0])
        transcriber.prefetch(spoken[3])
    latest = transcriber.transcribe(spoken[3])
    earlier = transcriber.transcribe(spoken[0])

    assert latest.prefetched and not earlier.prefetched
    assert sorted(decodes) == sorted([len(spoken[3]), len(spoken[0])])
