"""Play synthesized speech through a callback-driven sounddevice stream, so it can be cut at once.

The stream runs only while there is something to play: it starts when speech is queued and stops
itself once the queue has drained, so an idle app holds no audio device and burns no CPU.
`stop()` (barge-in) clears the queue and aborts the stream, which discards what PortAudio still
has buffered: silence follows within one callback period.

Devices that consume samples faster than real time (ALSA's null and file devices, which the tests
use) would otherwise run the callback in a tight loop, finish a five-second sentence in
milliseconds and make every timing meaningless; the callback therefore never lets the audio handed
over run further ahead of the wall clock than the stream's own latency allows. On a real sound
card that limit is never reached, so the pacing costs nothing there.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from demo.voice.tts import Speech

log = logging.getLogger(__name__)

PREFERRED_RATE = 22050
"""espeak-ng's own rate: asking the device for it avoids resampling on the common path."""

AUDIBLE = 1e-3
"""Samples above this magnitude (-60 dBFS) count as sound for the first-audio timestamp."""

PACING_SLACK_S = 0.02
"""How far beyond the stream's latency the audio handed over may run ahead of the wall clock."""


class AudioUnavailable(Exception):
    """Audio cannot be played here; the message says what is missing and how to fix it."""


@dataclass(slots=True)
class _Utterance:
    samples: npt.NDArray[np.float32]
    position: int
    heard: bool
    """Whether its first audible sample has been handed to PortAudio."""
    on_first_audio: Callable[[int], None] | None


class Speaker:
    """A speech output that plays utterances in order and stops the moment it is told to.

    Args:
        device: a sounddevice output device (index or name substring); None for the default.
        on_first_audio: called with `time.perf_counter_ns()` from the audio thread when the first
            audible sample of each utterance is handed to PortAudio. Keep it cheap.

    Raises:
        AudioUnavailable: sounddevice, numpy or PortAudio is missing, or there is no usable
            output device.
    """

    def __init__(
        self,
        *,
        device: int | str | None = None,
        on_first_audio: Callable[[int], None] | None = None,
    ) -> None:
        self._sd, self._np = _load_modules()
        self._on_first_audio = on_first_audio
        self._queue: collections.deque[_Utterance] = collections.deque()
        self._lock = threading.Lock()
        """Guards the queue and `_active`; the audio callback takes it, so hold it briefly."""
        self._control = threading.Lock()
        """Serialises starting and aborting the stream."""
        self._active = False
        """Whether the callback is live and will keep pulling from the queue."""
        self._closed = False
        self._frames_output = 0
        self._pace_start = 0.0
        self._pace_frames = 0
        self._stream = self._open(device)
        self.sample_rate = int(self._stream.samplerate)
        """The stream's rate; speech at another rate is resampled when queued."""
        self._channels = int(self._stream.channels)
        self._max_lead_s = float(self._stream.latency) + PACING_SLACK_S

    def _open(self, device: int | str | None) -> Any:
        sd = self._sd
        try:
            info = sd.query_devices(device, kind="output")
        except (ValueError, sd.PortAudioError) as error:
            raise AudioUnavailable(
                f"no audio output device{'' if device is None else f' matching {device!r}'} "
                f"({error}); list devices with `python -m sounddevice`"
            ) from error
        channels = 1
        try:
            sd.check_output_settings(device, channels=1, dtype="float32")
        except (ValueError, sd.PortAudioError):
            channels = min(2, int(info["max_output_channels"])) or 1
        rate: float = PREFERRED_RATE
        try:
            sd.check_output_settings(device, channels=channels, samplerate=rate, dtype="float32")
        except (ValueError, sd.PortAudioError):
            rate = float(info["default_samplerate"])
        try:
            return sd.OutputStream(
                device=device,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                latency="low",
                callback=self._callback,
            )
        except (ValueError, sd.PortAudioError) as error:
            raise AudioUnavailable(
                f"could not open the audio output device {info['name']!r}: {error}"
            ) from error

    @property
    def playing(self) -> bool:
        """Whether speech is queued or still sounding."""
        with self._lock:
            if self._queue:
                return True
        return bool(self._stream.active)

    @property
    def frames_output(self) -> int:
        """Frames handed to PortAudio since the speaker opened, silence included."""
        return self._frames_output

    def play(self, speech: Speech, *, on_first_audio: Callable[[int], None] | None = None) -> None:
        """Queue `speech` after whatever is playing; returns at once.

        Args:
            speech: the utterance; resampled here if its rate differs from the stream's.
            on_first_audio: called like the constructor's callback, for this utterance only.
        """
        samples = self._resample(speech.samples, speech.sample_rate)
        if len(samples) == 0:
            return
        utterance = _Utterance(samples, 0, False, on_first_audio)
        with self._control:
            if self._closed:
                raise AudioUnavailable("the speaker is closed")
            with self._lock:
                self._queue.append(utterance)
                restart = not self._active
                self._active = True
            if restart:
                self._restart()

    def stop(self) -> None:
        """Barge-in: drop everything queued and silence the output now. Playing again works."""
        with self._control:
            with self._lock:
                self._queue.clear()
                self._active = False
            if not self._stream.stopped:
                self._stream.abort()

    def close(self) -> None:
        """Stop and release the device. Safe to call more than once."""
        self.stop()
        with self._control:
            if not self._closed:
                self._closed = True
                self._stream.close()

    def _restart(self) -> None:
        """Start the stream (the control lock is held): after a drain, or for the first time."""
        if not self._stream.stopped:
            # The callback ended the stream when the queue ran dry; let its last block play out.
            self._stream.stop()
        self._pace_start = 0.0
        self._pace_frames = 0
        try:
            self._stream.start()
        except self._sd.PortAudioError as error:
            with self._lock:
                self._queue.clear()
                self._active = False
            raise AudioUnavailable(f"the audio output stopped working: {error}") from error

    def _resample(self, samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
        import numpy as np

        samples = np.asarray(samples, dtype=np.float32)
        if rate == self.sample_rate or len(samples) == 0:
            return samples
        # Linear interpolation: espeak's speech has little energy near the band edge, and going
        # up to a device rate (the usual case) creates no aliasing.
        count = max(1, round(len(samples) * self.sample_rate / rate))
        source = np.arange(len(samples), dtype=np.float64)
        target = np.linspace(0.0, len(samples) - 1, count)
        return np.interp(target, source, samples).astype(np.float32)

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._pace(frames)
        now_ns = time.perf_counter_ns()
        heard: list[Callable[[int], None] | None] = []
        filled = 0
        with self._lock:
            while filled < frames and self._queue:
                utterance = self._queue[0]
                count = min(frames - filled, len(utterance.samples) - utterance.position)
                chunk = utterance.samples[utterance.position : utterance.position + count]
                outdata[filled : filled + count] = chunk[:, None]
                if not utterance.heard and self._np.any(self._np.abs(chunk) > AUDIBLE):
                    utterance.heard = True
                    heard.append(utterance.on_first_audio)
                utterance.position += count
                filled += count
                if utterance.position >= len(utterance.samples):
                    self._queue.popleft()
            outdata[filled:] = 0.0
            self._frames_output += frames
            finished = not self._queue
            if finished:
                self._active = False
        for callback in heard:
            for notify in (self._on_first_audio, callback):
                if notify is not None:
                    try:
                        notify(now_ns)
                    except Exception:
                        log.exception("first-audio callback failed")
        if finished:
            raise self._sd.CallbackStop

    def _pace(self, frames: int) -> None:
        """Hold the callback back while the output runs ahead of real time (see the module doc)."""
        now = time.perf_counter()
        if self._pace_frames == 0:
            self._pace_start = now
        ahead = self._pace_frames / self.sample_rate - (now - self._pace_start)
        if ahead > self._max_lead_s:
            time.sleep(ahead - self._max_lead_s)
        self._pace_frames += frames


def _load_modules() -> tuple[Any, Any]:
    """sounddevice and numpy, imported only when audio is wanted (the same checks as capture)."""
    from demo.voice.capture import load_sounddevice

    sounddevice = load_sounddevice()
    import numpy

    return sounddevice, numpy
