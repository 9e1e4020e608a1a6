"""Audio in: the microphone, and a recording fed into the same pipeline at real-time pace.

Both sources hand float32 mono blocks at 16 kHz, each stamped with the `perf_counter_ns()` time of
its last sample, to a handler that runs on a thread of the source's own. It never runs on
PortAudio's callback thread: that callback only copies the block and queues it, so whatever the
handler does (voice activity detection, the level meter, the UI) cannot make the device drop
samples.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from demo.voice.playback import AudioUnavailable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "SAMPLE_RATE",
    "AudioSource",
    "AudioUnavailable",
    "BlockHandler",
    "FileSource",
    "MicSource",
    "level_dbfs",
    "load_sounddevice",
    "read_audio",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""What Whisper and the Silero VAD both expect: everything captured is delivered at this rate."""

BlockHandler = Callable[["npt.NDArray[np.float32]", int], None]
"""Receives a float32 mono block at 16 kHz and the `perf_counter_ns()` time of its last sample."""

PORTAUDIO_HINT = "sudo apt-get install libportaudio2"

MAX_BUFFER_AGE_S = 1.0
"""PortAudio's buffer timestamps are trusted only when they put the block this recently."""

MAX_QUEUED_S = 10.0
"""Audio waiting for the handler beyond this is dropped (and counted), so a stalled handler or a
device that runs faster than real time cannot grow memory without bound."""


class AudioSource(Protocol):
    """Where a turn's audio comes from: the microphone or a recording."""

    def start(self, on_block: BlockHandler, on_end: Callable[[], None] | None = None) -> None:
        """Begin delivering blocks to `on_block`; `on_end` runs if the source ends by itself."""
        ...

    def stop(self) -> None:
        """Stop delivering; no block is handed on once this returns (unless called from one)."""
        ...


def level_dbfs(block: npt.NDArray[np.float32]) -> float:
    """The block's RMS level in dB relative to full scale, for the input meter.

    A full-scale square wave reads 0 dBFS and a full-scale sine about −3 dBFS; silence (or an
    empty block) reads −inf. Levels are capped at 0 so a clipping microphone pins the meter
    instead of overflowing it.
    """
    import numpy as np

    if block.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
    if rms <= 0.0:
        return -math.inf
    return min(0.0, 20.0 * math.log10(rms))


def read_audio(path: Path, rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """A recording as float32 mono at `rate`: any format FFmpeg reads, any rate, any channels.

    Channels are averaged (not FFmpeg's −3 dB downmix, which can push two loud channels past full
    scale); the rate is converted by FFmpeg's band-limited resampler, through PyAV, which comes
    with faster-whisper.

    Raises:
        AudioUnavailable: PyAV is not installed.
        ValueError: the file cannot be read as audio.
    """
    import numpy as np

    av = _load_av()
    try:
        container = av.open(str(path))
    except (OSError, av.error.FFmpegError) as error:
        raise ValueError(f"cannot read {path} as audio: {error}") from error
    try:
        if not container.streams.audio:
            raise ValueError(f"{path} holds no audio")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
        pieces: list[npt.NDArray[np.float32]] = []
        try:
            for frame in container.decode(stream):
                pieces.extend(out.to_ndarray() for out in resampler.resample(frame))
            pieces.extend(out.to_ndarray() for out in resampler.resample(None))
        except av.error.FFmpegError as error:
            raise ValueError(f"cannot decode {path}: {error}") from error
    finally:
        container.close()
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    planar = np.concatenate(pieces, axis=1)
    return np.ascontiguousarray(planar.mean(axis=0), dtype=np.float32)


class MicSource:
    """The microphone, through a sounddevice `InputStream` at 16 kHz mono.

    Devices that cannot capture at 16 kHz (raw hardware devices often offer only 44.1 or 48 kHz)
    are opened at their own rate and resampled on the delivery thread.

    Args:
        device: a sounddevice input device (index or name substring); None for the default.
        block_ms: block length; 32 ms is one Silero VAD frame (512 samples at 16 kHz).
        latency: PortAudio's input buffering, in seconds or "low"/"high". Keep "low" for a
            microphone: a larger buffer lets the device deliver in bursts, which delays the end
            of a turn. ALSA's file-backed test device, which is not paced, loses input unless
            its buffer holds the whole recording, so tests give it seconds.
    """

    def __init__(
        self,
        device: int | str | None = None,
        block_ms: int = 32,
        *,
        latency: float | str = "low",
    ) -> None:
        self.device = device
        self.block_ms = block_ms
        self.latency = latency
        self.overflows = 0
        """Blocks PortAudio reported as having lost input (the device ran out of buffer)."""
        self.dropped = 0
        """Blocks dropped because the handler fell more than `MAX_QUEUED_S` behind."""
        self.device_rate: int = SAMPLE_RATE
        self._max_queued = 1
        self._last_t_ns = 0
        self._stream: Any = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self, on_block: BlockHandler, on_end: Callable[[], None] | None = None) -> None:
        """Open the device and start capturing.

        Raises:
            AudioUnavailable: PortAudio is missing, there is no input device, or it cannot open.
        """
        sd = load_sounddevice()
        with self._lock:
            if self._stream is not None:
                raise RuntimeError("the microphone is already started")
            self.device_rate = self._choose_rate(sd)
            convert = _Resampler(self.device_rate) if self.device_rate != SAMPLE_RATE else None
            self._stopping.clear()
            self._queue = queue.SimpleQueue()
            self._max_queued = max(1, round(MAX_QUEUED_S * 1000 / self.block_ms))
            self._last_t_ns = 0
            try:
                stream = sd.InputStream(
                    device=self.device,
                    samplerate=self.device_rate,
                    channels=1,
                    dtype="float32",
                    blocksize=self.device_rate * self.block_ms // 1000,
                    latency=self.latency,
                    callback=self._callback,
                    finished_callback=self._finished,
                )
            except (ValueError, sd.PortAudioError) as error:
                raise AudioUnavailable(f"cannot open the microphone: {error}") from error
            thread = threading.Thread(
                target=self._deliver,
                args=(on_block, on_end, convert),
                name="mic-delivery",
                daemon=True,
            )
            thread.start()
            try:
                stream.start()
            except sd.PortAudioError as error:
                self._stopping.set()
                self._queue.put(_STOP)
                thread.join()
                stream.close()
                raise AudioUnavailable(f"the microphone did not start: {error}") from error
            self._stream, self._thread = stream, thread

    def stop(self) -> None:
        """Close the device. Safe to call more than once, and from the handler itself."""
        with self._lock:
            stream, thread = self._stream, self._thread
            self._stream = self._thread = None
            self._stopping.set()
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:
                log.exception("closing the microphone failed")
        self._queue.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _choose_rate(self, sd: Any) -> int:
        try:
            info = sd.query_devices(self.device, kind="input")
        except (ValueError, sd.PortAudioError) as error:
            which = "" if self.device is None else f" matching {self.device!r}"
            raise AudioUnavailable(
                f"no audio input device{which} ({error}); list them with `latency-demo devices`"
            ) from error
        try:
            sd.check_input_settings(
                self.device, channels=1, dtype="float32", samplerate=SAMPLE_RATE
            )
        except (ValueError, sd.PortAudioError):
            return int(info["default_samplerate"])
        return SAMPLE_RATE

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        now = time.perf_counter_ns()
        if status.input_overflow:
            self.overflows += 1
        # The last sample's age, from PortAudio's own clock: when the device reports it, the block
        # is stamped with when it was captured rather than when the callback got round to it.
        # Some devices report erratic buffer times, so the stamps are kept from running backwards.
        adc = time_info.inputBufferAdcTime
        age = time_info.currentTime - adc - (frames - 1) / self.device_rate
        t_ns = now - int(age * 1e9) if adc > 0 and 0.0 <= age < MAX_BUFFER_AGE_S else now
        t_ns = self._last_t_ns = max(t_ns, self._last_t_ns)
        if self._queue.qsize() >= self._max_queued:
            self.dropped += 1
            return
        self._queue.put((indata[:, 0].copy(), t_ns))

    def _finished(self) -> None:
        self._queue.put(_ENDED)

    def _deliver(
        self,
        on_block: BlockHandler,
        on_end: Callable[[], None] | None,
        convert: _Resampler | None,
    ) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or self._stopping.is_set():
                return
            if item is _ENDED:
                if on_end is not None:
                    _call_safely(on_end)
                return
            block, t_ns = item
            if convert is not None:
                block = convert(block)
                if block.size == 0:
                    continue
            _call_safely(on_block, block, t_ns)


class FileSource:
    """The virtual microphone: a recording delivered block by block as if someone were speaking.

    Block k (counting from 1) is handed on at `started_ns + k × block`, an absolute schedule, so a
    late wake-up never pushes later blocks back and the stream keeps real time exactly; each block
    is stamped with that due time, the moment its last sample would have been spoken. With
    `realtime=False` blocks go out as fast as the handler takes them, stamped on the same
    (then future) schedule, so durations measured from the stamps still match the recording.

    Args:
        path: a WAV (any rate, mono or stereo, 16-bit or float) or anything else FFmpeg reads.
        realtime: pace delivery to the wall clock.
        block_ms: block length.
        lead_silence_s: silence before the recording, as if the microphone opened early.
        tail_silence_s: silence after it, so voice activity detection can see the turn end.
    """

    def __init__(
        self,
        path: Path,
        *,
        realtime: bool = True,
        block_ms: int = 32,
        lead_silence_s: float = 0.0,
        tail_silence_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.block_frames = SAMPLE_RATE * block_ms // 1000
        self.lead_silence_s = lead_silence_s
        self.tail_silence_s = tail_silence_s
        self.started_ns: int | None = None
        """When `start` ran: sample n of the delivered stream is due at this + n / 16 kHz."""
        self.error: str | None = None
        """Why the recording could not be played, if it could not (`on_end` still runs)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_block: BlockHandler, on_end: Callable[[], None] | None = None) -> None:
        """Start playing the recording into `on_block` from a thread of its own.

        Decoding happens on that thread, not the caller's; it takes a few milliseconds, well
        inside the first block's due time.

        Raises:
            AudioUnavailable: the recording does not exist.
        """
        if not self.path.is_file():
            raise AudioUnavailable(f"no such recording: {self.path}")
        if self._thread is not None:
            raise RuntimeError("the recording is already playing")
        self._stop.clear()
        self.started_ns = time.perf_counter_ns()
        self._thread = threading.Thread(
            target=self._run, args=(on_block, on_end, self.started_ns), name="mic-file", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering now; `on_end` is not called. Safe from the handler itself."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(
        self, on_block: BlockHandler, on_end: Callable[[], None] | None, start_ns: int
    ) -> None:
        import numpy as np

        try:
            audio = read_audio(self.path)
        except Exception as error:
            self.error = f"cannot play {self.path}: {error}"
            log.error("%s", self.error)
            audio = np.zeros(0, dtype=np.float32)
        else:
            lead = np.zeros(round(self.lead_silence_s * SAMPLE_RATE), dtype=np.float32)
            tail = np.zeros(round(self.tail_silence_s * SAMPLE_RATE), dtype=np.float32)
            audio = np.concatenate([lead, audio, tail])
        size = self.block_frames
        for begin in range(0, len(audio), size):
            end = min(begin + size, len(audio))
            due_ns = start_ns + end * 1_000_000_000 // SAMPLE_RATE
            if self._wait_until(due_ns):
                return
            _call_safely(on_block, audio[begin:end], due_ns)
        if not self._stop.is_set() and on_end is not None:
            _call_safely(on_end)

    def _wait_until(self, due_ns: int) -> bool:
        """Sleep until `due_ns` (when pacing); True when stopped meanwhile."""
        if not self.realtime:
            return self._stop.is_set()
        while (remaining := due_ns - time.perf_counter_ns()) > 0:
            if self._stop.wait(remaining / 1e9):
                return True
        return self._stop.is_set()


class _Resampler:
    """Streaming rate conversion to 16 kHz for devices that capture at another rate.

    Keeps FFmpeg's filter state between blocks, so block edges add no clicks.
    """

    def __init__(self, rate: int) -> None:
        av = _load_av()
        self._av = av
        self._rate = rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def __call__(self, block: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        import numpy as np

        frame = self._av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
        frame.sample_rate = self._rate
        out = [piece.to_ndarray()[0] for piece in self._resampler.resample(frame)]
        if not out:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


_STOP = object()
_ENDED = object()


def _call_safely(function: Callable[..., None], *args: Any) -> None:
    """Handlers run on a source's thread: one failing must not end the capture."""
    try:
        function(*args)
    except Exception:
        log.exception("audio handler failed")


def load_sounddevice() -> Any:
    """sounddevice (and numpy, which it needs), imported only when the microphone is wanted."""
    try:
        import numpy  # noqa: F401
    except ImportError as error:
        raise AudioUnavailable(f"numpy is not installed ({error}): pip install numpy") from error
    try:
        import sounddevice  # type: ignore[import-untyped]
    except ImportError as error:
        raise AudioUnavailable(
            f"sounddevice is not installed ({error}): pip install sounddevice"
        ) from error
    except OSError as error:
        raise AudioUnavailable(f"PortAudio is not installed ({error}): {PORTAUDIO_HINT}") from error
    except Exception as error:  # PortAudio is there but failed to initialise
        raise AudioUnavailable(f"PortAudio could not start: {error}") from error
    return sounddevice


def _load_av() -> Any:
    try:
        import av
    except ImportError as error:
        raise AudioUnavailable(
            f"PyAV is not installed ({error}): pip install av (faster-whisper installs it)"
        ) from error
    return av
