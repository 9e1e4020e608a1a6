"""Turn detection: one spoken utterance cut out of a stream of audio blocks.

Hands-free, the turn ends once voice activity detection has heard speech and then `silence_s` of
non-speech. Push-to-talk, the turn is whatever was said between the key presses (or in the mic
file); voice activity detection then only trims the silence around it, which Whisper would
otherwise spend time on and sometimes "transcribe" as words that were never said.

Audio is judged in 512-sample frames (32 ms), whatever the block size, with hysteresis as in
faster-whisper's own VAD pass: a frame starts speech at probability ≥ 0.5 and continues it while
≥ 0.35, so one soft syllable does not end the turn.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from demo.voice.capture import SAMPLE_RATE, level_dbfs
from demo.voice.vad import FRAME, Vad, VadUnavailable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

THRESHOLD = 0.5
"""Speech probability at which a frame starts speech."""
NEG_THRESHOLD = 0.35
"""Speech probability below which a frame ends it (faster-whisper's default: threshold − 0.15)."""
ENERGY_GATE_DBFS = -45.0
"""Without a VAD model (onnxruntime missing), frames this loud count as speech."""
LEAD_PAD_S = 0.4
"""Audio kept before the first speech frame: Silero reacts a frame or two after a soft onset."""
TAIL_PAD_S = 0.3
"""Audio kept after the last speech frame, so a trailing consonant is not cut off."""
MIN_SPEECH_S = 0.1
"""Less speech than this (a click, a cough) is not a turn."""

FRAME_NS = FRAME * 1_000_000_000 // SAMPLE_RATE
_SAMPLE_NS = 1e9 / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class Utterance:
    """One turn's audio and when it happened (`perf_counter_ns()` times)."""

    audio: npt.NDArray[np.float32]
    """16 kHz mono: the speech with up to `LEAD_PAD_S` before and `TAIL_PAD_S` after it."""
    speech_start_ns: int
    """The first sample of the first speech frame."""
    speech_end_ns: int
    """The end of the turn: when voice activity detection decided it (hands-free: the last
    sample of the silence that ended it), or the key release / end of the recording."""
    speech_s: float
    """How long the person spoke: from the first to the end of the last speech frame."""
    voice_end_ns: int = 0
    """The last sample of the last speech frame: when the voice itself stopped."""


class UtteranceDetector:
    """Cuts turns out of a block stream. Thread-safe: blocks may arrive on a capture thread while
    the UI thread ends the turn.

    Args:
        hands_free: end turns on silence; otherwise only `finish` ends one.
        silence_s: the non-speech that ends a hands-free turn.
        vad: the detector to use; None makes one on the first block (on the capture thread, off
            the caller's) and falls back to a plain loudness gate if the model cannot load.
        max_s: a turn this long (from its first speech, or push-to-talk from the first block)
            ends there, so a stuck key or endless noise cannot grow without bound.
        on_pause: called (on the feeding thread, under the detector's lock: it must not block)
            once the speech has paused for `pause_s`, with the utterance exactly as it will be
            if the turn ends in this pause. Speech-to-text can start on it while the detector
            waits out the rest of `silence_s` (see `Transcriber.prefetch`).
        pause_s: how long a pause must be to report it; at least `TAIL_PAD_S`, because the
            utterance's audio runs that far past the speech.
    """

    def __init__(
        self,
        *,
        hands_free: bool,
        silence_s: float = 0.5,
        vad: Vad | None = None,
        max_s: float = 30.0,
        on_pause: Callable[[Utterance], None] | None = None,
        pause_s: float = TAIL_PAD_S,
    ) -> None:
        self.hands_free = hands_free
        self.silence_s = silence_s
        self.max_s = max_s
        self.on_pause = on_pause
        self.pause_s = max(pause_s, TAIL_PAD_S)
        self._vad = vad
        self._vad_failed = False
        self._lock = threading.Lock()
        self._lead_frames = round(LEAD_PAD_S * SAMPLE_RATE / FRAME)
        self._tail_frames = round(TAIL_PAD_S * SAMPLE_RATE / FRAME)
        self._frames: list[npt.NDArray[np.float32]] = []
        """The turn's 512-sample frames so far (hands-free and idle: only the lead-in)."""
        self._ends: list[int] = []
        """Each frame's last-sample time."""
        self._pending: npt.NDArray[np.float32]
        """Samples that do not fill a frame yet."""
        self._first_voiced: int | None = None
        self._last_voiced: int | None = None
        self._voiced_frames = 0
        self._voiced = False
        self._pause_reported = False
        self._reset_stream()

    @property
    def speaking(self) -> bool:
        """Whether the latest frame is speech (for the UI's meter, and barge-in)."""
        return self._voiced

    def feed(self, block: npt.NDArray[np.float32], t_ns: int) -> Utterance | None:
        """Take the next block (`t_ns`: its last sample); returns a turn when one ends here.

        Hands-free only, apart from `max_s`: push-to-talk turns end in `finish`.
        """
        import numpy as np

        with self._lock:
            samples = np.asarray(block, dtype=np.float32).reshape(-1)
            if self._pending.size:
                samples = np.concatenate([self._pending, samples])
            count = samples.size // FRAME
            self._pending = samples[count * FRAME :].copy()
            after = samples.size
            for index in range(count):
                frame = samples[index * FRAME : (index + 1) * FRAME]
                # The frame's last sample, counted back from the block's last one.
                end_ns = t_ns - round((after - (index + 1) * FRAME) * _SAMPLE_NS)
                utterance = self._step(frame, end_ns)
                if utterance is not None:
                    # Whatever followed in this block belongs to the next turn.
                    rest = samples[(index + 1) * FRAME : count * FRAME]
                    self._pending = np.concatenate([rest, self._pending])
                    return utterance
            return None

    def finish(self, t_ns: int) -> Utterance | None:
        """End the turn now (key press/release, or the recording ran out); None if it was silent.

        The detector is ready for a new turn afterwards.
        """
        with self._lock:
            utterance = None
            if self._first_voiced is not None and self._voiced_frames * FRAME_NS >= (
                MIN_SPEECH_S * 1e9
            ):
                utterance = self._cut(end_ns=t_ns, include_pending=True)
            self._reset_stream()
            return utterance

    def reset(self) -> None:
        """Drop everything heard so far (including the VAD's memory of it)."""
        with self._lock:
            self._reset_stream()

    def _reset_stream(self) -> None:
        import numpy as np

        self._frames = []
        self._ends = []
        self._pending = np.zeros(0, dtype=np.float32)
        self._first_voiced = None
        self._last_voiced = None
        self._voiced_frames = 0
        self._voiced = False
        self._pause_reported = False
        if self._vad is not None:
            self._vad.reset()

    def _reset_turn(self, keep: int) -> None:
        """After a turn: keep only the last `keep` frames, as the next turn's lead-in."""
        self._frames = self._frames[-keep:] if keep else []
        self._ends = self._ends[-keep:] if keep else []
        self._first_voiced = self._last_voiced = None
        self._voiced_frames = 0
        self._pause_reported = False

    def _step(self, frame: npt.NDArray[np.float32], end_ns: int) -> Utterance | None:
        probability = self._probability(frame)
        self._voiced = probability >= (NEG_THRESHOLD if self._voiced else THRESHOLD)
        self._frames.append(frame)
        self._ends.append(end_ns)
        index = len(self._frames) - 1
        if self._voiced:
            if self._first_voiced is None:
                self._first_voiced = index
            self._last_voiced = index
            self._voiced_frames += 1
            self._pause_reported = False
        elif self._last_voiced is not None and not self._pause_reported:
            self._report_pause(end_ns)
        if not self.hands_free:
            if (index + 1) * FRAME_NS >= self.max_s * 1e9:
                utterance = self._finish_if_speech(end_ns)
                self._reset_turn(0)
                return utterance
            return None
        if self._first_voiced is None:
            if len(self._frames) > self._lead_frames:
                del self._frames[0], self._ends[0]
            return None
        assert self._last_voiced is not None
        silence_ns = end_ns - self._ends[self._last_voiced]
        turn_ns = end_ns - self._ends[self._first_voiced] + FRAME_NS
        if silence_ns >= self.silence_s * 1e9 or turn_ns >= self.max_s * 1e9:
            utterance = self._finish_if_speech(end_ns)
            self._reset_turn(self._lead_frames)
            return utterance
        return None

    def _report_pause(self, end_ns: int) -> None:
        assert self._last_voiced is not None
        if self.on_pause is None or end_ns - self._ends[self._last_voiced] < self.pause_s * 1e9:
            return
        self._pause_reported = True
        if self._voiced_frames * FRAME_NS < MIN_SPEECH_S * 1e9:
            return
        try:
            self.on_pause(self._cut(end_ns=end_ns, include_pending=False))
        except Exception:
            log.exception("pause handler failed")

    def _finish_if_speech(self, end_ns: int) -> Utterance | None:
        if self._voiced_frames * FRAME_NS < MIN_SPEECH_S * 1e9:
            return None
        return self._cut(end_ns=end_ns, include_pending=False)

    def _cut(self, *, end_ns: int, include_pending: bool) -> Utterance:
        import numpy as np

        assert self._first_voiced is not None and self._last_voiced is not None
        begin = max(0, self._first_voiced - self._lead_frames)
        stop = min(len(self._frames), self._last_voiced + 1 + self._tail_frames)
        pieces = self._frames[begin:stop]
        if include_pending and stop == len(self._frames) and self._pending.size:
            pieces = [*pieces, self._pending]
        start_ns = self._ends[self._first_voiced] - round((FRAME - 1) * _SAMPLE_NS)
        voice_end_ns = self._ends[self._last_voiced]
        return Utterance(
            audio=np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32),
            speech_start_ns=start_ns,
            speech_end_ns=end_ns,
            speech_s=(voice_end_ns - start_ns) / 1e9,
            voice_end_ns=voice_end_ns,
        )

    def _probability(self, frame: npt.NDArray[np.float32]) -> float:
        if self._vad is None and not self._vad_failed:
            try:
                self._vad = Vad()
            except VadUnavailable as error:
                self._vad_failed = True
                log.warning("voice activity detection unavailable (%s); using loudness", error)
        if self._vad is not None:
            return self._vad.speech_probability(frame)
        return 1.0 if level_dbfs(frame) >= ENERGY_GATE_DBFS else 0.0
