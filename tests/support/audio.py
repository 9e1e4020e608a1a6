"""Audio for tests: speech made on the spot with espeak-ng, WAV and raw files, rates, and scoring.

Everything here is independent of the app's own audio code (its resampler is not the one under
test, its WAV writer covers formats the app must read), so a test that checks the app against
these helpers checks two implementations against each other.
"""

from __future__ import annotations

import math
import re
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from demo.voice.stt import Transcriber

Samples = npt.NDArray[np.float32]
"""float32 in [-1, 1]: shape (frames,) for mono, (frames, channels) otherwise."""

_SPEAK = """
import sys
import time
import pyttsx3

text, path, rate, voice = sys.argv[1:5]
engine = pyttsx3.init()
if rate:
    engine.setProperty("rate", int(rate))
if voice:
    engine.setProperty("voice", voice)
engine.save_to_file(text, path)
engine.runAndWait()
# pyttsx3's espeak driver can leave runAndWait while espeak-ng is still synthesizing on its own
# thread (the WAV is written when it finishes): exiting then loses the file, about one time in
# two for a long sentence. Wait for the driver to say it is done.
driver = getattr(getattr(engine, "proxy", None), "_driver", None)
deadline = time.monotonic() + 30
while getattr(driver, "_speaking", False) and time.monotonic() < deadline:
    time.sleep(0.005)
"""


def speak_to_wav(
    text: str, path: Path, *, rate: int | None = None, voice: str | None = None
) -> Path:
    """Speak `text` into a WAV file with pyttsx3's `save_to_file` (espeak-ng on Linux).

    Runs in a child process: pyttsx3's espeak driver keeps process-wide state that a test process
    should not inherit. espeak-ng writes 16-bit mono at 22,050 Hz.

    Args:
        rate: words per minute (espeak-ng's default is about 175).
        voice: a pyttsx3 voice id.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", _SPEAK, text, str(path), str(rate or ""), voice or ""],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0 or not path.is_file() or path.stat().st_size <= 44:
        raise RuntimeError(
            f"espeak-ng (through pyttsx3) made no speech for {text!r}: "
            f"exit {result.returncode}, {result.stderr.strip()[-400:]}"
        )
    return path


def read_wav(path: Path) -> tuple[Samples, int]:
    """(samples, rate) from a 16-bit PCM or 32-bit float WAV; mono comes back 1-D."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path} is not a WAV file")
    position = 12
    fmt: tuple[int, int, int, int] | None = None
    while position + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, position)
        body = data[position + 8 : position + 8 + size]
        if chunk == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            fmt = (tag, channels, rate, bits)
        elif chunk == b"data" and fmt is not None:
            tag, channels, rate, bits = fmt
            if tag == 1 and bits == 16:
                samples = np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0
            elif tag == 3 and bits == 32:
                samples = np.frombuffer(body, dtype="<f4").astype(np.float32)
            else:
                raise ValueError(f"{path}: unsupported WAV format {tag} with {bits} bits")
            samples = samples[: len(samples) // channels * channels].reshape(-1, channels)
            return (samples[:, 0].copy() if channels == 1 else samples), rate
        position += 8 + size + (size & 1)
    raise ValueError(f"{path} has no audio data")


def write_wav(path: Path, samples: Samples, rate: int, *, float32: bool = False) -> Path:
    """Write 16-bit PCM (default) or 32-bit float WAV; 2-D input is one channel per column."""
    frames = np.asarray(samples, dtype=np.float32)
    if frames.ndim == 1:
        frames = frames[:, None]
    channels = frames.shape[1]
    if float32:
        body = frames.astype("<f4").tobytes()
        tag, bits = 3, 32
    else:
        body = to_s16(frames).tobytes()
        tag, bits = 1, 16
    block = channels * bits // 8
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(body),
        b"WAVE",
        b"fmt ",
        16,
        tag,
        channels,
        rate,
        rate * block,
        block,
        bits,
        b"data",
        len(body),
    )
    path.write_bytes(header + body)
    return path


def to_s16(samples: Samples) -> npt.NDArray[np.int16]:
    """Float samples as little-endian 16-bit integers (clipped, rounded)."""
    scaled = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 32767 / 32768) * 32768.0
    return np.round(scaled).astype("<i2")


def write_raw_s16(path: Path, samples: Samples) -> Path:
    """Headerless S16_LE, as the ALSA file device's microphone reads it."""
    path.write_bytes(to_s16(samples).tobytes())
    return path


def read_raw_s16(path: Path, channels: int = 1) -> Samples:
    """Headerless S16_LE (as the ALSA file device's speaker writes it) as float samples."""
    raw = np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.float32) / 32768.0
    raw = raw[: len(raw) // channels * channels]
    return raw if channels == 1 else raw.reshape(-1, channels)


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Linear-interpolation resampling, channel by channel.

    Crude next to a band-limited resampler, and deliberately different from the app's: good
    enough for speech (little energy near the band edge), and an independent reference.
    """
    frames = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or len(frames) == 0:
        return frames.copy()
    count = max(1, round(len(frames) * to_rate / from_rate))
    source = np.arange(len(frames)) / from_rate
    target = np.arange(count) / to_rate
    if frames.ndim == 1:
        return np.interp(target, source, frames).astype(np.float32)
    return np.stack(
        [np.interp(target, source, frames[:, c]) for c in range(frames.shape[1])], axis=1
    ).astype(np.float32)


def silence(seconds: float, rate: int) -> Samples:
    return np.zeros(round(seconds * rate), dtype=np.float32)


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> Samples:
    """A sine wave, for checks where the exact signal matters."""
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * math.pi * frequency * t)).astype(np.float32)


def dominant_frequency(samples: Samples, rate: int) -> float:
    """The strongest frequency in a (mono) signal, to within rate / len(samples) Hz."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def speech_bounds(samples: Samples, rate: int, threshold: float = 0.01) -> tuple[float, float]:
    """(first, last) time in seconds at which a mono signal's magnitude exceeds `threshold`."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        raise ValueError("the signal is silent")
    return float(loud[0] / rate), float((loud[-1] + 1) / rate)


def normalise_words(text: str) -> list[str]:
    """Words for scoring: lower case, no punctuation, hyphenated words split."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("-", " "))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level edit distance."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, other in enumerate(hyp, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1] / len(ref)


_transcriber: Transcriber | None = None
_transcriber_lock = threading.Lock()


def offline_transcriber(cache_dir: Path) -> Transcriber:
    """One Whisper base model (from the offline packages) for the whole test run.

    Loading takes seconds, so every test module shares this one; the first caller's `cache_dir`
    is where the packages' parts are assembled.
    """
    global _transcriber
    with _transcriber_lock:
        if _transcriber is None:
            from demo.voice.models import locate_model
            from demo.voice.stt import Transcriber

            location = locate_model(directory=None, name="base", cache_dir=cache_dir)
            transcriber = Transcriber(location, language="en")
            transcriber.load()
            if not transcriber.ready:
                raise RuntimeError(f"the speech model did not load: {transcriber.error}")
            _transcriber = transcriber
        return _transcriber
