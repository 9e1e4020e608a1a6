"""Text to speech with pyttsx3, run in a child process of its own.

pyttsx3 is not thread-safe, its espeak driver keeps process-wide state, and espeak-ng calls
`exit()` when its data files are missing, so synthesis lives in a dedicated child process: a
crash there becomes an exception here instead of the app vanishing. The child writes each sentence
to a WAV file with `save_to_file` + `runAndWait` (pyttsx3's `say()` shells out to `aplay` on Linux,
blocks, and cannot be stopped); this side reads the samples and plays them itself.

Run as a script (`python tts.py --serve`), this module is that child; it then imports nothing
from the app, so it starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

START_TIMEOUT_S = 30.0
"""Start-up of the child (interpreter, pyttsx3, the voice, one warm-up sentence)."""

SYNTH_TIMEOUT_S = 30.0
"""One sentence; espeak-ng needs milliseconds, so this only catches a hung child."""

WARM_UP_TEXT = "Ready."

ESPEAK_HINT = "sudo apt-get install espeak-ng"


class TTSError(Exception):
    """Speech synthesis failed."""


class TTSUnavailable(TTSError):
    """Speech synthesis cannot run here; the message says what is missing and how to install it."""


@dataclass(frozen=True, slots=True, eq=False)
class Speech:
    """One synthesized utterance, ready to play."""

    samples: npt.NDArray[np.float32]
    """Mono samples in [-1, 1]."""
    sample_rate: int
    text: str
    synth_s: float
    """Wall time from asking for the sentence to having its samples, in seconds."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0


class Synthesizer:
    """Speaks text into samples through pyttsx3 in a child process.

    Args:
        voice: a pyttsx3 voice id (see `voices()`); None keeps the engine's default.
        rate: speaking rate in words per minute; None keeps the engine's default.
    """

    def __init__(self, *, voice: str | None = None, rate: int | None = None) -> None:
        self.voice = voice
        self.rate = rate
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._workdir: Path | None = None
        self._log: IO[bytes] | None = None
        self._counter = 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Spawn the child and synthesize one warm-up sentence, so the first real one is fast.

        Raises:
            TTSUnavailable: pyttsx3 or espeak-ng (or the platform's speech engine) is missing.
            TTSError: the engine runs but rejected the settings (an unknown voice, say).
        """
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self.running:
            return
        self._stop_locked()
        if importlib.util.find_spec("pyttsx3") is None:
            raise TTSUnavailable("pyttsx3 is not installed: pip install pyttsx3")
        self._workdir = Path(tempfile.mkdtemp(prefix="latency-demo-tts-"))
        self._log = open(self._workdir / "engine.log", "w+b")  # noqa: SIM115 (closed in _stop)
        self._replies = queue.Queue()
        self._process = subprocess.Popen(
            # -P: the script's folder (demo/voice) must not shadow top-level modules in the child.
            [sys.executable, "-P", str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            close_fds=True,
        )
        self._reader = threading.Thread(
            target=_read_replies,
            args=(self._process.stdout, self._replies),
            name="tts-replies",
            daemon=True,
        )
        self._reader.start()
        try:
            reply = self._request(
                {
                    "op": "init",
                    "voice": self.voice,
                    "rate": self.rate,
                    "warm_up": WARM_UP_TEXT,
                    "path": str(self._workdir / "warm-up.wav"),
                },
                timeout=START_TIMEOUT_S,
                starting=True,
            )
        except BaseException:
            self._stop_locked()
            raise
        if not reply.get("ok"):
            self._stop_locked()
            kind = TTSUnavailable if reply.get("unavailable") else TTSError
            raise kind(str(reply.get("message")))

    def synthesize(self, text: str) -> Speech:
        """Speak `text` into samples. Blocks for the synthesis; call it from a worker thread.

        Starts (or restarts, after a crash) the child if needed.
        """
        import numpy as np

        started = time.perf_counter()
        if not text.strip():
            return Speech(np.zeros(0, dtype=np.float32), 22050, text, 0.0)
        with self._lock:
            self._start_locked()
            assert self._workdir is not None
            self._counter += 1
            path = self._workdir / f"{self._counter}.wav"
            reply = self._request(
                {"op": "synth", "text": text, "path": str(path)}, timeout=SYNTH_TIMEOUT_S
            )
        if not reply.get("ok"):
            raise TTSError(f"speech synthesis failed: {reply.get('message')}")
        try:
            samples, rate = _read_wav(path)
        finally:
            path.unlink(missing_ok=True)
        return Speech(samples, rate, text, time.perf_counter() - started)

    def voices(self) -> list[str]:
        """The voice ids the engine offers (for the `voice` setting)."""
        with self._lock:
            self._start_locked()
            reply = self._request({"op": "voices"}, timeout=SYNTH_TIMEOUT_S)
        if not reply.get("ok"):
            raise TTSError(f"could not list voices: {reply.get('message')}")
        return [str(voice) for voice in reply.get("voices", [])]

    def close(self) -> None:
        """Stop the child and remove its files. Safe to call more than once."""
        with self._lock:
            self._stop_locked()

    def _request(
        self, message: dict[str, Any], *, timeout: float, starting: bool = False
    ) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()
        except OSError:
            pass  # The child is gone; its exit is reported below.
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            self._stop_locked()
            raise TTSError(f"the speech engine did not answer within {timeout:g} s") from None
        if reply is not None:
            return reply
        # The child exited: espeak-ng calls exit() when it cannot initialise.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        detail = self._log_tail()
        code = process.returncode
        self._stop_locked()
        if starting:
            raise TTSUnavailable(_engine_missing_message(f"exit code {code}; {detail}"))
        raise TTSError(f"the speech engine stopped (exit code {code}): {detail}")

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return " / ".join(lines[-3:]) or "no message"

    def _stop_locked(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.write(b'{"op": "quit"}\n')
                    process.stdin.flush()
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def _read_replies(stream: IO[bytes] | None, replies: queue.Queue[dict[str, Any] | None]) -> None:
    """Forward each reply line of the child; None marks its end."""
    assert stream is not None
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            try:
                replies.put(json.loads(line))
            except json.JSONDecodeError:
                continue
    replies.put(None)


def _read_wav(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """Samples of a PCM WAV file as float32 mono in [-1, 1], and its sample rate."""
    import numpy as np

    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            width = wav.getsampwidth()
            channels = wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise TTSError(f"could not read the synthesized audio: {error}") from error
    if width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        samples = np.frombuffer(frames, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise TTSError(f"unsupported WAV sample width: {width} bytes")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32), rate


def _engine_missing_message(detail: str) -> str:
    """What to install when the platform's speech engine would not start."""
    if sys.platform.startswith("linux"):
        return f"espeak-ng is not installed or not working ({detail}): {ESPEAK_HINT}"
    if sys.platform == "darwin":
        return f"the macOS speech engine could not start ({detail}): pip install pyobjc"
    if sys.platform == "win32":
        return f"the Windows speech engine could not start ({detail}): pip install comtypes"
    return f"no speech engine could start ({detail})"


# -- the child process ---------------------------------------------------------------------


class _EngineMissing(Exception):
    pass


def _serve() -> None:
    """Answer one JSON request per line on stdin with one JSON reply per line."""
    # Only replies may reach the parent's pipe: anything the driver prints goes to the log.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    engine: Any = None
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "quit":
            break
        try:
            if op == "init":
                engine = _init_engine(request)
                reply: dict[str, Any] = {"ok": True}
            elif engine is None:
                reply = {"ok": False, "message": "the engine is not initialised"}
            elif op == "synth":
                _save(engine, request["text"], request["path"])
                reply = {"ok": True}
            elif op == "voices":
                reply = {"ok": True, "voices": [v.id for v in engine.getProperty("voices")]}
            else:
                reply = {"ok": False, "message": f"unknown request {op!r}"}
        except _EngineMissing as error:
            reply = {"ok": False, "unavailable": True, "message": str(error)}
        except Exception as error:
            reply = {"ok": False, "message": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


def _init_engine(request: dict[str, Any]) -> Any:
    try:
        import pyttsx3  # type: ignore[import-untyped]
    except ImportError as error:
        raise _EngineMissing(f"pyttsx3 is not installed ({error}): pip install pyttsx3") from error
    try:
        engine = pyttsx3.init()
    except Exception as error:
        raise _EngineMissing(_engine_missing_message(f"{type(error).__name__}: {error}")) from error
    if request.get("voice"):
        known = [voice.id for voice in engine.getProperty("voices")]
        if request["voice"] not in known:
            raise ValueError(f"unknown voice {request['voice']!r}; the engine offers {len(known)}")
        engine.setProperty("voice", request["voice"])
    if request.get("rate"):
        engine.setProperty("rate", int(request["rate"]))
    _save(engine, request["warm_up"], request["path"])
    path = Path(request["path"])
    with wave.open(str(path), "rb") as wav:
        if wav.getnframes() == 0:
            raise _EngineMissing(_engine_missing_message("it produced no audio"))
    path.unlink()
    return engine


def _save(engine: Any, text: str, path: str) -> None:
    engine.save_to_file(text, path)
    engine.runAndWait()
    # pyttsx3's espeak driver can return from runAndWait before the file is complete (seen in a
    # fresh process for long sentences); its driver says when it has really finished.
    driver = getattr(getattr(engine, "proxy", None), "_driver", None)
    deadline = time.monotonic() + 30
    while getattr(driver, "_speaking", False) and time.monotonic() < deadline:
        time.sleep(0.002)
    if not Path(path).exists():
        raise RuntimeError("the engine wrote no audio file")


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
