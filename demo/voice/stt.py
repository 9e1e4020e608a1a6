"""Speech to text with faster-whisper on the CPU, tuned for one short spoken turn.

A turn arrives already cut by voice activity detection, so faster-whisper's own VAD pass is off;
there is one window and no previous text, so timestamps and conditioning are off; greedy decoding
(beam 1, no temperature fallback) costs a fraction of beam search and loses little on clear
speech.

The big saving is the encoder window. Whisper's encoder always reads 30 s of audio, padding a
short turn with silence, and on two cores that fixed pass is most of the time a 4 s turn takes
(~0.5 s of ~0.7 s). CTranslate2's encoder also accepts a shorter input, so a turn is encoded in a
window only a few seconds longer than itself (whisper.cpp's `audio_ctx` does the same). Cut too
close, Whisper sometimes loops on a phrase; with `WINDOW_MARGIN_S` of trailing silence it
transcribes as it does with the full window, and a result that still looks like a loop (it fills
the token allowance, or compresses too well) is decoded again with the full 30 s window.

Speculative decoding (`prefetch`) goes further: turn detection reports a pause in speech before
it knows the pause ends the turn, decoding starts then, and when the turn does end there the
transcript is ready at about the moment the silence is confirmed.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from demo.voice.capture import SAMPLE_RATE
from demo.voice.models import ModelLocation

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

FRAMES_PER_S = 100
"""Whisper's log-mel frames per second of audio (a 10 ms hop)."""
FULL_WINDOW_FRAMES = 3000
"""The window Whisper was trained on: 30 s."""
WINDOW_MARGIN_S = 5.0
"""Silence the shortened encoder window keeps after the turn's audio (see the module doc).

Measured on 13 espeak-ng utterances of 1–9 s: word error rate 11.9 % with 5 s, 12.6 % with the
full window, 15–24 % with 1–3 s, and no gain with 8 s."""
WINDOW_STEP_FRAMES = 100
"""Windows are rounded up to whole seconds, so similar turns share the encoder's work shapes."""
TOKENS_PER_S = 12.0
"""A token allowance far above any speaking rate (English runs at ~4 tokens per second)..."""
TOKEN_ALLOWANCE = 16
"""...plus this many, for very short turns; filling it means the decoder was looping."""
MAX_COMPRESSION = 2.4
"""Text that compresses better than this is repetition (Whisper's own fallback threshold)."""

WARM_UP_S = 1.0
"""The first decode allocates CTranslate2's buffers; `load` does it on quiet noise instead."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said, and what it cost."""

    text: str
    audio_s: float
    decode_s: float
    """Wall time of the whole decode, features to text."""
    window_s: float = 30.0
    """The encoder window used, in seconds of audio (30 s is Whisper's full window)."""
    retried: bool = False
    """Whether the shortened window's result looked like a loop and was decoded again."""
    prefetched: bool = False
    """Whether it was decoded speculatively, during the pause that ended the turn."""

    @property
    def rtf(self) -> float:
        """Real-time factor: decode time over audio length (below 1 is faster than speech)."""
        return self.decode_s / self.audio_s if self.audio_s > 0 else 0.0


class Transcriber:
    """A loaded Whisper model that turns one utterance at a time into text.

    Args:
        location: where the model is (see `demo.voice.models.locate_model`).
        language: the spoken language's code, or None to detect it per turn.
        compute_type: CTranslate2's weight type; int8 is fastest on CPUs.
        cpu_threads: decoding threads. 0 chooses: one with the fitted window, whose decoder
            steps are too small to share between cores (on this 2-core machine one thread
            decodes a 4.5 s turn in ~0.21 s, two in ~0.30 s), and which leaves a core to the UI
            and the audio; every core with the full window, where two threads do help.
        short_window: encode a turn in a window fitted to it rather than the full 30 s.
    """

    def __init__(
        self,
        location: ModelLocation,
        *,
        language: str | None = "en",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        short_window: bool = True,
    ) -> None:
        self.location = location
        self.language = language
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads or (1 if short_window else _available_cores())
        self.short_window = short_window
        self.load_s: float | None = None
        """How long `load` took (model, warm-up decode, VAD model), once it has succeeded."""
        self._model: Any = None
        self._error: str | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        """Serialises use of the model."""
        self._prefetch_lock = threading.Lock()
        self._prefetch: _Prefetch | None = None

    @property
    def ready(self) -> bool:
        """Whether `transcribe` can be called."""
        return self._ready.is_set()

    @property
    def error(self) -> str | None:
        """Why loading failed, in words for the user (with how to fix it); None otherwise."""
        return self._error

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loaded (True) or `timeout` passes (False)."""
        return self._ready.wait(timeout)

    def load(self) -> None:
        """Load the model and warm it up. Blocking, so run it off the UI thread; never raises:
        on failure `ready` stays False and `error` says why.
        """
        started = time.perf_counter()
        try:
            model_class = _windowed_model_class()
        except (ImportError, OSError) as error:  # OSError: a native library did not load
            self._error = f"faster-whisper is not installed ({error}): pip install faster-whisper"
            return
        try:
            model = model_class(
                self.location.path_or_name,
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=1,
                local_files_only=self.location.source != "hub",
            )
        except Exception as error:
            self._error = (
                f"the speech model did not load from {self.location.path_or_name}: {error}"
            )
            return
        with self._lock:
            self._model = model
            try:
                self._warm_up()
            except Exception as error:
                self._model = None
                self._error = f"the speech model does not run: {error}"
                return
        self._preload_vad()
        self.load_s = time.perf_counter() - started
        self._error = None
        self._ready.set()

    def transcribe(self, audio: npt.NDArray[np.float32]) -> Transcript:
        """The text of one utterance (16 kHz mono float32). Blocking; calls are serialised.

        If these exact samples were handed to `prefetch`, that result is returned (after waiting
        for it, if it is still being decoded) and marked `prefetched`.

        Raises:
            RuntimeError: the model is not loaded.
        """
        samples = _samples(audio)
        key = _key(samples)
        with self._prefetch_lock:
            job = (
                self._prefetch if self._prefetch is not None and self._prefetch.key == key else None
            )
        if job is not None:
            job.done.wait()
            if job.transcript is not None:
                return replace(job.transcript, prefetched=True)
        with self._lock:
            return self._transcribe_locked(samples)

    def prefetch(self, audio: npt.NDArray[np.float32]) -> None:
        """Start decoding `audio` in the background; `transcribe` of the same samples gets it.

        Speculative decoding: a pause in speech may be the end of the turn, so decoding starts
        while turn detection waits out the rest of its silence. If the turn does end there,
        `transcribe` finds the result ready or nearly so; if the speaker carries on, it is never
        used. Only the latest prefetch is kept, and one superseded before it starts is skipped.
        Returns at once and never raises (on failure `transcribe` simply decodes again).
        """
        if not self.ready:
            return
        samples = _samples(audio)
        job = _Prefetch(_key(samples))
        with self._prefetch_lock:
            self._prefetch = job
        threading.Thread(
            target=self._run_prefetch, args=(job, samples), name="stt-prefetch", daemon=True
        ).start()

    def _run_prefetch(self, job: _Prefetch, samples: npt.NDArray[np.float32]) -> None:
        try:
            with self._lock:
                with self._prefetch_lock:
                    current = self._prefetch is job
                if current:
                    job.transcript = self._transcribe_locked(samples)
        except Exception:
            log.exception("speculative decoding failed")
        finally:
            job.done.set()

    def _transcribe_locked(self, samples: npt.NDArray[np.float32]) -> Transcript:
        if self._model is None:
            raise RuntimeError(self._error or "the speech model is not loaded")
        started = time.perf_counter()
        audio_s = samples.size / SAMPLE_RATE
        if samples.size == 0:
            return Transcript("", 0.0, 0.0)
        window = self._window_frames(samples.size) if self.short_window else None
        if window is None:
            text, _ = self._decode(samples, None, None)
            return Transcript(text, audio_s, time.perf_counter() - started)
        allowance = math.ceil(TOKENS_PER_S * audio_s) + TOKEN_ALLOWANCE
        text, looped = self._decode(samples, window, allowance)
        if looped:
            log.info("short-window decode looked like a loop; decoding the full window")
            text, _ = self._decode(samples, None, None)
            return Transcript(text, audio_s, time.perf_counter() - started, retried=True)
        return Transcript(
            text, audio_s, time.perf_counter() - started, window_s=window / FRAMES_PER_S
        )

    def _window_frames(self, samples: int) -> int | None:
        """The encoder window for this many samples, or None when it would be the full one."""
        frames = samples * FRAMES_PER_S / SAMPLE_RATE + WINDOW_MARGIN_S * FRAMES_PER_S
        window = math.ceil(frames / WINDOW_STEP_FRAMES) * WINDOW_STEP_FRAMES
        return window if window < FULL_WINDOW_FRAMES else None

    def _decode(
        self, samples: npt.NDArray[np.float32], window: int | None, allowance: int | None
    ) -> tuple[str, bool]:
        """(text, whether it looks like a decoding loop). The model lock is held."""
        model = self._model
        model.window_frames = window
        try:
            segments, _info = model.transcribe(
                samples,
                language=self.language,
                task="transcribe",
                beam_size=1,
                best_of=1,
                temperature=0.0,
                condition_on_previous_text=False,
                without_timestamps=True,
                word_timestamps=False,
                vad_filter=False,
                max_new_tokens=allowance,
            )
            # The segments come from a lazy generator: decoding happens while it is read.
            pieces = list(segments)
        finally:
            model.window_frames = None
        text = "".join(segment.text for segment in pieces).strip()
        tokens = sum(len(segment.tokens) for segment in pieces)
        looped = any(segment.compression_ratio > MAX_COMPRESSION for segment in pieces) or (
            allowance is not None and tokens >= allowance
        )
        return text, looped

    def _warm_up(self) -> None:
        import numpy as np

        noise = np.random.default_rng(0).normal(0.0, 1e-3, round(WARM_UP_S * SAMPLE_RATE))
        samples = noise.astype(np.float32)
        window = self._window_frames(samples.size) if self.short_window else None
        self._decode(samples, window, None)
        if window is not None and not self._model.windows_used:
            log.warning("this faster-whisper ignores the short encoder window; using 30 s")
            self.short_window = False

    def _preload_vad(self) -> None:
        """Hands-free listening needs the VAD model too: load it now, off the UI thread."""
        from demo.voice.vad import VadUnavailable, preload

        try:
            preload()
        except VadUnavailable as error:
            log.warning("voice activity detection unavailable: %s", error)


@dataclass(slots=True)
class _Prefetch:
    """A speculative decode: which samples, and (once `done`) its result if it ran."""

    key: bytes
    done: threading.Event = field(default_factory=threading.Event)
    transcript: Transcript | None = None


def _samples(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    import numpy as np

    return np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))


def _key(samples: npt.NDArray[np.float32]) -> bytes:
    """Identifies an utterance's samples (a few hundred microseconds for a 10 s turn)."""
    digest = hashlib.blake2b(samples.tobytes(), digest_size=16)
    return digest.digest() + samples.size.to_bytes(8, "little")


def _windowed_model_class() -> type:
    """faster-whisper's `WhisperModel`, with the encoder's input cut to `window_frames`.

    faster-whisper pads every window's features to 30 s before `encode`; cutting them there
    keeps everything else it does (prompt, suppressed tokens, no-speech detection) unchanged.
    """
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        window_frames: int | None = None
        windows_used = 0
        """How many encodes the window shortened: proof the override is still being called."""

        def encode(self, features: Any) -> Any:
            window = self.window_frames
            if window is not None and features.shape[-1] > window:
                features = features[..., :window]
                self.windows_used += 1
            return super().encode(features)

    return WindowedWhisperModel


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
