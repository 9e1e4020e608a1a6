"""The typed, timestamped events every backend produces.

A turn is one stream of these events. The metrics, the UI, the headless commands (and later the
recorder) all consume the same stream, so every figure the app shows can be recomputed from it.

Every timestamp is `time.perf_counter_ns()` (a monotonic clock shared by every process on the
machine on Linux), taken where the event was produced: a chunk's time is when its bytes were parsed
off the socket, never when it was rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ErrorKind = Literal[
    "config",
    "auth",
    "not_found",
    "rate_limit",
    "server",
    "http",
    "connect",
    "dns",
    "timeout",
    "stall",
    "reset",
    "protocol",
    "provider",
    "internal",
]


@dataclass(frozen=True, slots=True)
class RequestSent:
    """Taken immediately before the request bytes are handed to the transport: t0 of the turn."""

    t_ns: int
    backend: str
    model: str
    base_url: str
    params: dict[str, object] = field(default_factory=dict)
    """Request parameters other than the messages (temperature, max_tokens, extra fields)."""


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """The response status line and headers arrived."""

    t_ns: int
    status: int
    content_type: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContentChunk:
    """One SSE event that carried text. A chunk may carry several tokens."""

    t_ns: int
    text: str = ""
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the server (`usage` of the final chunk)."""

    t_ns: int
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class ServerTiming:
    """Provider-side timings, in seconds, as reported in-band (Groq, Cerebras, llama.cpp)."""

    t_ns: int
    provider: str
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class StreamWarning:
    """Something was wrong but the stream went on (a malformed chunk was skipped)."""

    t_ns: int
    message: str


@dataclass(frozen=True, slots=True)
class StreamError:
    """The turn failed. Terminal: nothing follows it. `message` is one line, free of secrets."""

    t_ns: int
    kind: ErrorKind
    message: str
    status: int | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The stream ended normally (or was cancelled). Terminal: nothing follows it."""

    t_ns: int
    finish_reason: str | None = None
    cancelled: bool = False
    saw_done_marker: bool = True
    """False when the server closed the stream without `data: [DONE]` (noted, not an error)."""


StreamEvent = (
    RequestSent
    | ResponseStarted
    | ContentChunk
    | Usage
    | ServerTiming
    | StreamWarning
    | StreamError
    | StreamDone
)
"""Any event of a turn's stream."""

TerminalEvent = StreamError | StreamDone


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The speaker stopped: VAD decided the turn ended, or push-to-talk was released."""

    t_ns: int
    speech_s: float
    """How long the captured utterance is."""


@dataclass(frozen=True, slots=True)
class TranscriptReady:
    """Speech-to-text finished; the transcript becomes the prompt."""

    t_ns: int
    text: str
    audio_s: float
    decode_s: float


@dataclass(frozen=True, slots=True)
class SentenceReady:
    """A piece of the reply is complete enough to be spoken."""

    t_ns: int
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class AudioStarted:
    """The first sound of the spoken reply was handed to the audio device."""

    t_ns: int


VoiceEvent = SpeechEnded | TranscriptReady | SentenceReady | AudioStarted
"""The stages a voice turn adds to the turn's event stream."""
