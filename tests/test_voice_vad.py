"""Voice activity detection and turn detection on real (espeak-ng) speech.

Where a turn "really" ends is measured on the signal itself: the last sample louder than
−40 dBFS in the WAV espeak-ng wrote, placed on the virtual microphone's clock.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from demo.voice import utterance as utterance_module
from demo.voice.capture import SAMPLE_RATE, FileSource, read_audio
from demo.voice.utterance import (
    LEAD_PAD_S,
    TAIL_PAD_S,
    Utterance,
    UtteranceDetector,
)
from demo.voice.vad import FRAME, Vad, VadUnavailable
from tests.support.audio import (
    read_wav,
    silence,
    speak_to_wav,
    speech_bounds,
    tone,
    write_wav,
)

SENTENCE = "Please tell me the weather forecast for tomorrow morning."

# Where the hands-free turn may end relative to the real end of speech, beyond `silence_s`:
# - earlier by up to 0.1 s: the model may call the faint end of the last syllable (still above
#   −40 dBFS) non-speech a frame or two before the signal falls silent;
# - later by up to 0.15 s: the decision is made per 32 ms frame, and Silero keeps a speech
#   probability above 0.35 for a frame or two after the voice stops (hysteresis).
EARLY_S = 0.10
LATE_S = 0.15


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speak_to_wav(SENTENCE, tmp_path_factory.mktemp("speech") / "sentence.wav")


@pytest.fixture(scope="module")
def speech(speech_wav: Path) -> np.ndarray:
    """The sentence at 16 kHz, as the app reads it."""
    return read_audio(speech_wav)


def _true_bounds(wav: Path) -> tuple[float, float]:
    samples, rate = read_wav(wav)
    return speech_bounds(samples, rate)


def _run_file(
    source: FileSource, detector: UtteranceDetector
) -> tuple[list[tuple[Utterance, int]], Utterance | None]:
    """Play `source` into `detector` as the app does; (turns with the wall time each was
    returned, what `finish` gave at the end of the recording)."""
    turns: list[tuple[Utterance, int]] = []
    finished: list[Utterance | None] = []
    done = threading.Event()

    def on_block(block: np.ndarray, t_ns: int) -> None:
        found = detector.feed(block, t_ns)
        if found is not None:
            turns.append((found, time.perf_counter_ns()))

    def on_end() -> None:
        finished.append(detector.finish(time.perf_counter_ns()))
        done.set()

    source.start(on_block, on_end)
    assert done.wait(30), "the recording never ended"
    source.stop()
    return turns, finished[0]


def test_streamed_probabilities_equal_faster_whispers_whole_file_pass(
    speech: np.ndarray,
) -> None:
    from faster_whisper.vad import get_vad_model  # type: ignore[import-untyped]

    audio = np.concatenate([silence(0.3, SAMPLE_RATE), speech, silence(0.5, SAMPLE_RATE)])
    audio = audio[: len(audio) // FRAME * FRAME]
    reference = np.asarray(get_vad_model()(audio)).reshape(-1)

    vad = Vad()
    streamed: list[float] = []
    for begin in range(0, len(audio), 333):  # blocks that never line up with frames
        streamed.extend(vad.frame_probabilities(audio[begin : begin + 333]))

    assert len(streamed) == len(reference)
    np.testing.assert_allclose(streamed, reference, atol=1e-5)
    assert max(streamed) > 0.9 and min(streamed) < 0.05


def test_speech_probability_tracks_speech_and_silence(speech: np.ndarray) -> None:
    vad = Vad()
    quiet = [vad.speech_probability(f) for f in np.split(silence(0.64, SAMPLE_RATE), 20)]
    middle = len(speech) // 2
    talking = [
        vad.speech_probability(speech[i : i + FRAME])
        for i in range(middle - 10 * FRAME, middle + 10 * FRAME, FRAME)
    ]

    assert max(quiet) < 0.1
    assert np.mean(talking) > 0.8
    # A block that completes no frame repeats the last frame's probability.
    assert vad.speech_probability(np.zeros(100, dtype=np.float32)) == talking[-1]
    vad.reset()
    assert vad.speech_probability(np.zeros(100, dtype=np.float32)) == 0.0


def test_hands_free_turn_ends_silence_s_after_the_speech_in_real_time(
    speech_wav: Path,
) -> None:
    lead = 0.3
    start_s, end_s = _true_bounds(speech_wav)
    source = FileSource(speech_wav, lead_silence_s=lead, tail_silence_s=1.0)
    detector = UtteranceDetector(hands_free=True, silence_s=0.5, vad=Vad())

    turns, at_end = _run_file(source, detector)

    assert len(turns) == 1 and at_end is None
    turn, returned_ns = turns[0]
    assert source.started_ns is not None
    real_end_ns = source.started_ns + round((lead + end_s) * 1e9)
    real_start_ns = source.started_ns + round((lead + start_s) * 1e9)
    after_s = (turn.speech_end_ns - real_end_ns) / 1e9
    assert 0.5 - EARLY_S <= after_s <= 0.5 + LATE_S, after_s
    assert abs(turn.speech_start_ns - real_start_ns) / 1e9 <= 0.1
    assert turn.speech_s == pytest.approx(end_s - start_s, abs=0.15)
    # The decision is taken as the audio arrives: a frame's VAD step takes well under 1 ms, and
    # the bound only leaves room for a busy machine's scheduling. A detector slower than real
    # time would fall further behind with every block of a 4 s turn.
    assert 0 <= (returned_ns - turn.speech_end_ns) / 1e9 < 0.08
    # The turn's audio is the speech with bounded padding, not the trailing silence.
    assert len(turn.audio) / SAMPLE_RATE <= (end_s - start_s) + LEAD_PAD_S + TAIL_PAD_S + 0.07


@pytest.mark.parametrize("silence_s", [0.3, 1.0])
def test_the_silence_that_ends_a_turn_is_configurable(speech_wav: Path, silence_s: float) -> None:
    lead = 0.3
    _, end_s = _true_bounds(speech_wav)
    source = FileSource(speech_wav, realtime=False, lead_silence_s=lead, tail_silence_s=1.5)
    detector = UtteranceDetector(hands_free=True, silence_s=silence_s)

    turns, _ = _run_file(source, detector)

    assert len(turns) == 1
    assert source.started_ns is not None
    after_s = (turns[0][0].speech_end_ns - source.started_ns) / 1e9 - (lead + end_s)
    assert silence_s - EARLY_S <= after_s <= silence_s + LATE_S, after_s


def test_a_pause_shorter_than_silence_s_does_not_end_the_turn(speech: np.ndarray) -> None:
    begin, end = speech_bounds(speech, SAMPLE_RATE)
    voice = speech[round(begin * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
    gap = silence(0.35, SAMPLE_RATE)  # the real silence between the two sentences
    audio = np.concatenate([gap, voice, gap, voice, silence(1.0, SAMPLE_RATE)])
    detector = UtteranceDetector(hands_free=True, silence_s=0.6)

    turns = _feed_blocks(detector, audio)

    assert len(turns) == 1
    assert turns[0].speech_s == pytest.approx(2 * len(voice) / SAMPLE_RATE + 0.35, abs=0.1)


def test_two_turns_separated_by_a_long_pause_are_two_utterances(speech: np.ndarray) -> None:
    gap = silence(1.0, SAMPLE_RATE)
    audio = np.concatenate([gap, speech, gap, speech, gap])
    detector = UtteranceDetector(hands_free=True, silence_s=0.5)

    turns = _feed_blocks(detector, audio)

    assert len(turns) == 2
    assert turns[1].speech_start_ns > turns[0].speech_end_ns


def test_silence_and_a_steady_tone_are_not_speech() -> None:
    detector = UtteranceDetector(hands_free=True, silence_s=0.3)
    audio = np.concatenate([silence(1.0, SAMPLE_RATE), tone(1000, 1.0, SAMPLE_RATE, 0.3)])

    assert _feed_blocks(detector, audio) == []
    assert not detector.speaking
    assert detector.finish(time.perf_counter_ns()) is None


def test_speaking_follows_the_voice(speech: np.ndarray) -> None:
    detector = UtteranceDetector(hands_free=False)
    states: list[bool] = []
    audio = np.concatenate([silence(0.5, SAMPLE_RATE), speech, silence(0.5, SAMPLE_RATE)])
    t_ns = 0
    for begin in range(0, len(audio), FRAME):
        block = audio[begin : begin + FRAME]
        t_ns += round(len(block) * 1e9 / SAMPLE_RATE)
        detector.feed(block, t_ns)
        states.append(detector.speaking)

    assert not any(states[:10])
    assert any(states)
    assert not any(states[-8:])


def test_push_to_talk_returns_the_speech_trimmed_with_the_key_time(speech: np.ndarray) -> None:
    detector = UtteranceDetector(hands_free=False)
    audio = np.concatenate([silence(1.5, SAMPLE_RATE), speech, silence(1.5, SAMPLE_RATE)])

    assert _feed_blocks(detector, audio) == []  # push-to-talk never ends a turn by itself
    released = 123_456_789_000
    turn = detector.finish(released)

    assert turn is not None
    assert turn.speech_end_ns == released
    speech_s = len(speech) / SAMPLE_RATE
    assert speech_s - 0.2 <= len(turn.audio) / SAMPLE_RATE <= speech_s + LEAD_PAD_S + TAIL_PAD_S
    # The stamps are on the feeding clock (sample n at n / 16 kHz): speech starts after 1.5 s.
    voice_start_s, voice_end_s = speech_bounds(speech, SAMPLE_RATE)
    assert turn.speech_start_ns / 1e9 == pytest.approx(1.5 + voice_start_s, abs=0.07)
    assert turn.voice_end_ns / 1e9 == pytest.approx(1.5 + voice_end_s, abs=0.1)
    # And the detector starts afresh.
    assert detector.finish(released + 1) is None


def test_push_to_talk_with_nothing_said_gives_nothing() -> None:
    detector = UtteranceDetector(hands_free=False)
    _feed_blocks(detector, silence(2.0, SAMPLE_RATE))

    assert detector.finish(time.perf_counter_ns()) is None


def test_a_block_size_that_is_not_a_frame_gives_the_same_turn(speech: np.ndarray) -> None:
    audio = np.concatenate([silence(0.5, SAMPLE_RATE), speech, silence(1.0, SAMPLE_RATE)])
    whole = _feed_blocks(UtteranceDetector(hands_free=True), audio, block=FRAME)
    odd = _feed_blocks(UtteranceDetector(hands_free=True), audio, block=700)

    assert len(whole) == len(odd) == 1
    assert abs(whole[0].speech_end_ns - odd[0].speech_end_ns) <= 1_000
    np.testing.assert_array_equal(whole[0].audio, odd[0].audio)


def test_max_s_cuts_an_endless_turn(speech: np.ndarray) -> None:
    detector = UtteranceDetector(hands_free=True, silence_s=0.5, max_s=1.0)
    turns = _feed_blocks(detector, np.concatenate([silence(0.3, SAMPLE_RATE), speech]))

    assert turns, "a turn longer than max_s must end by itself"
    assert turns[0].speech_s <= 1.0 + 0.05


def test_without_a_vad_model_loudness_still_finds_the_turn(
    speech: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable() -> Vad:
        raise VadUnavailable("onnxruntime is not installed: pip install onnxruntime")

    monkeypatch.setattr(utterance_module, "Vad", unavailable)
    detector = UtteranceDetector(hands_free=True, silence_s=0.5)
    audio = np.concatenate([silence(0.5, SAMPLE_RATE), speech, silence(1.0, SAMPLE_RATE)])

    turns = _feed_blocks(detector, audio)

    assert len(turns) == 1
    assert turns[0].speech_s == pytest.approx(len(speech) / SAMPLE_RATE, abs=0.4)


def test_feed_and_finish_from_two_threads_do_not_tear_a_turn(speech: np.ndarray) -> None:
    detector = UtteranceDetector(hands_free=False)
    audio = np.concatenate([speech, speech, speech])
    stop = threading.Event()

    def feeder() -> None:
        t_ns = 0
        while not stop.is_set():
            for begin in range(0, len(audio), FRAME):
                t_ns += 32_000_000
                detector.feed(audio[begin : begin + FRAME], t_ns)

    thread = threading.Thread(target=feeder)
    thread.start()
    try:
        results = [detector.finish(time.perf_counter_ns()) for _ in range(200)]
    finally:
        stop.set()
        thread.join()
    for turn in results:
        if turn is not None:
            assert len(turn.audio) > 0 and turn.speech_s >= 0


def _feed_blocks(
    detector: UtteranceDetector, audio: np.ndarray, block: int = FRAME
) -> list[Utterance]:
    """Feed audio as a source would (stamps from a clock starting at 0); the turns returned."""
    turns = []
    for begin in range(0, len(audio), block):
        piece = audio[begin : begin + block]
        end_ns = round((begin + len(piece) - 1) * 1e9 / SAMPLE_RATE)
        found = detector.feed(piece, end_ns)
        if found is not None:
            turns.append(found)
    return turns


def test_float_and_stereo_recordings_feed_the_same_turn(speech_wav: Path, tmp_path: Path) -> None:
    samples, rate = read_wav(speech_wav)
    stereo = write_wav(tmp_path / "stereo.wav", np.stack([samples, samples], axis=1), rate,
                       float32=True)  # fmt: skip
    mono_turns, _ = _run_file(
        FileSource(speech_wav, realtime=False, tail_silence_s=1.0),
        UtteranceDetector(hands_free=True),
    )
    stereo_turns, _ = _run_file(
        FileSource(stereo, realtime=False, tail_silence_s=1.0), UtteranceDetector(hands_free=True)
    )

    assert len(mono_turns) == len(stereo_turns) == 1
    assert mono_turns[0][0].speech_s == pytest.approx(stereo_turns[0][0].speech_s, abs=0.07)


def test_a_pause_hands_over_the_turn_exactly_as_it_then_ends(speech: np.ndarray) -> None:
    pauses: list[Utterance] = []
    detector = UtteranceDetector(hands_free=True, silence_s=0.6, on_pause=pauses.append)
    audio = np.concatenate([silence(0.5, SAMPLE_RATE), speech, silence(1.0, SAMPLE_RATE)])

    turns = _feed_blocks(detector, audio)

    assert len(turns) == len(pauses) == 1
    pause, turn = pauses[0], turns[0]
    # Speech-to-text can start on these samples: they are the turn's, bit for bit.
    np.testing.assert_array_equal(pause.audio, turn.audio)
    assert (pause.speech_start_ns, pause.voice_end_ns) == (turn.speech_start_ns, turn.voice_end_ns)
    # Reported once the voice has stopped for pause_s, the rest of silence_s before the end.
    frame_s = FRAME / SAMPLE_RATE
    assert 0.3 <= (pause.speech_end_ns - turn.voice_end_ns) / 1e9 < 0.3 + frame_s
    assert (turn.speech_end_ns - pause.speech_end_ns) / 1e9 == pytest.approx(0.3, abs=frame_s)


def test_every_pause_is_reported_and_the_last_one_is_the_turn(speech: np.ndarray) -> None:
    begin, end = speech_bounds(speech, SAMPLE_RATE)
    voice = speech[round(begin * SAMPLE_RATE) : round(end * SAMPLE_RATE)]
    gap = silence(0.4, SAMPLE_RATE)
    pauses: list[Utterance] = []
    detector = UtteranceDetector(hands_free=True, silence_s=0.7, on_pause=pauses.append)

    turns = _feed_blocks(detector, np.concatenate([gap, voice, gap, voice, silence(1.0, 16_000)]))

    assert len(turns) == 1 and len(pauses) == 2
    assert len(pauses[0].audio) < len(turns[0].audio)
    np.testing.assert_array_equal(pauses[1].audio, turns[0].audio)


def test_push_to_talk_released_after_a_pause_matches_the_pause(speech: np.ndarray) -> None:
    pauses: list[Utterance] = []
    detector = UtteranceDetector(hands_free=False, on_pause=pauses.append)
    _feed_blocks(
        detector, np.concatenate([silence(0.5, SAMPLE_RATE), speech, silence(0.8, 16_000)])
    )

    turn = detector.finish(time.perf_counter_ns())

    assert turn is not None and len(pauses) == 1
    np.testing.assert_array_equal(pauses[0].audio, turn.audio)
