"""Everything voice for one run of the app: the ears (capture → turn detection → speech-to-text)
and the mouth (sentences → synthesis → speaker). UI-free: the TUI and `ask --mic-file` share it.

Work happens on threads of its own — the audio callbacks only copy and hand on, decoding and
synthesis run on workers — and results go out through a `VoiceListener`, whose methods may be
called from any thread and must not block (the TUI posts a message; the headless command sets an
event).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from demo.config import VoiceSettings
from demo.core.events import (
    AudioStarted,
    ContentChunk,
    SentenceReady,
    SpeechEnded,
    StreamDone,
    StreamError,
    StreamEvent,
    TranscriptReady,
    VoiceEvent,
)

if TYPE_CHECKING:
    from demo.voice.capture import AudioSource
    from demo.voice.playback import Speaker
    from demo.voice.speech import ReplySpeaker
    from demo.voice.stt import Transcriber
    from demo.voice.tts import Synthesizer
    from demo.voice.utterance import Utterance, UtteranceDetector


class VoiceListener(Protocol):
    """Where a voice session reports. Called from worker and audio threads: never block."""

    def voice_state(self, state: str) -> None: ...

    def voice_level(self, dbfs: float, speaking: bool) -> None: ...

    def voice_transcript(self, text: str, events: list[VoiceEvent]) -> None: ...

    def voice_problem(self, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class VoiceOptions:
    """What one run asks of voice, beyond the settings file."""

    mic_file: Path | None = None
    """A recording fed through the same pipeline at real-time pace: the virtual microphone."""
    speak: bool = True
    cache_dir: Path | None = None


class SpokenReply:
    """One reply spoken as it streams, its stages reported to whoever records the turn.

    `observe` sits on the reader thread of the reply's stream (see `Turn(observers=…)`): text is
    handed to the splitter the moment it is parsed, not a frame later when it is drawn. Without a
    mouth (muted, or no TTS) the splitter still runs, so the first-sentence figure exists anyway.
    """

    def __init__(self, mouth: ReplySpeaker | None, report: Callable[[VoiceEvent], None]) -> None:
        from demo.voice.sentences import SentenceSplitter

        self._mouth = mouth
        self._report = report
        self._splitter = SentenceSplitter() if mouth is None else None
        self._sentences = 0

    def observe(self, event: StreamEvent) -> None:
        if isinstance(event, ContentChunk) and event.text:
            if self._mouth is not None:
                self._mouth.feed(event.text)
            else:
                self._split(event.text, final=False)
        elif isinstance(event, StreamDone | StreamError):
            if isinstance(event, StreamDone) and event.cancelled:
                self.stop()
            elif self._mouth is not None:
                self._mouth.finish()
            else:
                self._split("", final=True)

    def _split(self, text: str, *, final: bool) -> None:
        assert self._splitter is not None
        pieces = self._splitter.flush() if final else self._splitter.feed(text)
        now = time.perf_counter_ns()
        for piece in pieces:
            self._report(SentenceReady(now, self._sentences, piece))
            self._sentences += 1

    def sentence_ready(self, index: int, text: str, t_ns: int) -> None:
        self._report(SentenceReady(t_ns, index, text))

    def first_audio(self, t_ns: int) -> None:
        self._report(AudioStarted(t_ns))

    def stop(self) -> None:
        if self._mouth is not None:
            self._mouth.stop()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every sentence has been synthesised and handed to the speaker."""
        return self._mouth.wait_idle(timeout) if self._mouth is not None else True


class VoiceSession:
    """Loads the speech models in the background and runs voice turns on demand."""

    def __init__(
        self, settings: VoiceSettings, listener: VoiceListener, options: VoiceOptions
    ) -> None:
        self.settings = settings
        self.options = options
        self._listener = listener
        self.hands_free = settings.hands_free
        self.muted = not (settings.speak and options.speak)
        self._transcriber: Transcriber | None = None
        self._synthesizer: Synthesizer | None = None
        self._speaker: Speaker | None = None
        self._source: AudioSource | None = None
        self._detector: UtteranceDetector | None = None
        self._reply: SpokenReply | None = None
        self._replies: list[ReplySpeaker] = []
        self._lock = threading.Lock()
        self._utterances: queue.SimpleQueue[Utterance | None] = queue.SimpleQueue()
        self._stt_ready = threading.Event()
        self._loaded = threading.Event()
        self.stt_problem: str | None = None
        self.tts_problem: str | None = None
        self._worker = threading.Thread(target=self._transcribe_loop, name="stt", daemon=True)

    # --- start-up ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load everything in the background; the UI is usable at once and says when voice is."""
        self._worker.start()
        threading.Thread(target=self._load, name="voice-load", daemon=True).start()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    @property
    def can_listen(self) -> bool:
        return self._stt_ready.is_set()

    @property
    def can_speak(self) -> bool:
        return self._speaker is not None and self._synthesizer is not None

    def _load(self) -> None:
        self._listener.voice_state("loading speech model…")
        try:
            self._load_ears()
        except Exception as exc:  # every failure here must leave typed input working
            self.stt_problem = _one_line(exc)
            self._listener.voice_problem(f"voice input unavailable: {self.stt_problem}")
        if self.options.speak and self.settings.speak:
            try:
                self._load_mouth()
            except Exception as exc:
                self.tts_problem = _one_line(exc)
                self._listener.voice_problem(f"spoken replies unavailable: {self.tts_problem}")
        self._loaded.set()
        self._listener.voice_state(self._idle_state())

    def _load_ears(self) -> None:
        from demo.paths import DIRS
        from demo.voice.models import locate_model
        from demo.voice.stt import Transcriber

        cache = self.options.cache_dir or Path(DIRS.user_cache_dir) / "models"
        location = locate_model(
            directory=self.settings.model_dir, name=self.settings.model, cache_dir=cache
        )
        transcriber = Transcriber(location, language=self.settings.language)
        transcriber.load()
        if not transcriber.ready:
            raise RuntimeError(transcriber.error or "the speech model did not load")
        self._transcriber = transcriber
        self._stt_ready.set()

    def _load_mouth(self) -> None:
        from demo.voice.playback import Speaker
        from demo.voice.tts import Synthesizer

        synthesizer = Synthesizer(voice=self.settings.tts_voice, rate=self.settings.tts_rate)
        synthesizer.start()
        try:
            speaker = Speaker(device=_device(self.settings.output_device))
        except Exception:
            synthesizer.close()
            raise
        self._synthesizer, self._speaker = synthesizer, speaker

    @property
    def idle_state(self) -> str:
        """What the voice bar says when nothing is being heard or transcribed."""
        return self._idle_state()

    def _idle_state(self) -> str:
        if not self.can_listen:
            return "voice off (typed input only)"
        return "hands-free: listening" if self._source else "ready: F5 to talk"

    # --- listening -----------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._source is not None

    def toggle_talk(self) -> None:
        """Push-to-talk for terminals that cannot report key release: press, speak, press."""
        if self.listening:
            self.stop_listening()
        else:
            self.listen()

    def listen(self) -> None:
        """Open the microphone (or the virtual one) and start detecting a turn."""
        if not self.can_listen:
            reason = self.stt_problem or "the speech model is still loading"
            self._listener.voice_problem(f"voice input unavailable: {reason}")
            return
        self.stop_speaking()  # starting to talk interrupts the reply
        from demo.voice.capture import FileSource, MicSource
        from demo.voice.utterance import UtteranceDetector

        transcriber = self._transcriber
        # The detector loads the VAD itself (on the capture thread, falling back to a loudness
        # gate without onnxruntime), and at each pause hands the audio so far to the transcriber,
        # so a turn that ends there has its transcript nearly ready.
        detector = UtteranceDetector(
            hands_free=self.hands_free,
            silence_s=self.settings.silence_s,
            on_pause=(lambda u: transcriber.prefetch(u.audio)) if transcriber else None,
        )
        source: AudioSource
        if self.options.mic_file is not None:
            source = FileSource(self.options.mic_file)
        else:
            source = MicSource(_device(self.settings.input_device))
        with self._lock:
            self._detector, self._source = detector, source
        try:
            source.start(self._on_block, self._on_source_end)
        except Exception as exc:
            with self._lock:
                self._detector = self._source = None
            self._listener.voice_problem(f"cannot open the microphone: {_one_line(exc)}")
            return
        self._listener.voice_state("listening…" if not self.hands_free else "hands-free: listening")

    def stop_listening(self, *, submit: bool = True) -> None:
        """End the turn now (the push-to-talk key again, or Esc with `submit=False`)."""
        with self._lock:
            detector, source = self._detector, self._source
            self._detector = self._source = None
        if source is None or detector is None:
            return
        utterance = detector.finish(time.perf_counter_ns())
        source.stop()
        if submit and utterance is not None:
            self._listener.voice_state("transcribing…")
            self._utterances.put(utterance)
        else:
            self._listener.voice_state(self._idle_state())

    def _on_block(self, block: Any, t_ns: int) -> None:
        from demo.voice.capture import level_dbfs

        detector = self._detector
        if detector is None:
            return
        was_speaking = detector.speaking
        utterance = detector.feed(block, t_ns)
        self._listener.voice_level(level_dbfs(block), detector.speaking)
        if detector.speaking and not was_speaking:
            self.stop_speaking()  # barge-in: the user started talking over the reply
        if utterance is not None:
            self._listener.voice_state("transcribing…")
            self._utterances.put(utterance)
            if self.options.mic_file is not None:
                # A recording holds one turn; stop it from outside the audio thread.
                threading.Thread(target=self.stop_listening, kwargs={"submit": False}).start()

    def _on_source_end(self) -> None:
        error = getattr(self._source, "error", None)
        if error:
            self._listener.voice_problem(f"cannot read the recording: {error}")
        self.stop_listening()

    def _transcribe_loop(self) -> None:
        while (utterance := self._utterances.get()) is not None:
            transcriber = self._transcriber
            if transcriber is None:
                continue
            try:
                transcript = transcriber.transcribe(utterance.audio)
            except Exception as exc:
                self._listener.voice_problem(f"speech-to-text failed: {_one_line(exc)}")
                continue
            ready = time.perf_counter_ns()
            events: list[VoiceEvent] = [
                SpeechEnded(utterance.speech_end_ns, utterance.speech_s),
                TranscriptReady(ready, transcript.text, transcript.audio_s, transcript.decode_s),
            ]
            self._listener.voice_state(self._idle_state())
            self._listener.voice_transcript(transcript.text.strip(), events)

    # --- speaking ------------------------------------------------------------------------------

    def spoken_reply(self, report: Callable[[VoiceEvent], None]) -> SpokenReply:
        """A reply to speak as it streams (or only to time, when muted or without TTS)."""
        from demo.voice.speech import ReplySpeaker

        self.stop_speaking()
        mouth = None
        holder: list[SpokenReply] = []
        if not self.muted and self._synthesizer is not None and self._speaker is not None:
            mouth = ReplySpeaker(
                self._synthesizer,
                self._speaker,
                on_sentence=lambda i, text, t: holder[0].sentence_ready(i, text, t),
                on_first_audio=lambda t: holder[0].first_audio(t),
            )
        reply = SpokenReply(mouth, report)
        holder.append(reply)
        self._reply = reply
        return reply

    def stop_speaking(self) -> None:
        """Barge-in: silence now (typing, Esc, talking, switching backend)."""
        reply = self._reply
        if reply is not None:
            reply.stop()
        if self._speaker is not None:
            self._speaker.stop()

    def wait_spoken(self, reply: SpokenReply, timeout: float) -> bool:
        """Block until `reply` has been played to the end (headless `--speak`, before exiting)."""
        deadline = time.monotonic() + timeout
        if not reply.wait_idle(timeout):
            return False
        speaker = self._speaker
        # The speaker offers no completion event; a command about to exit can afford to poll.
        while speaker is not None and speaker.playing:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self.stop_listening(submit=False)
        self.stop_speaking()
        self._utterances.put(None)
        if self._speaker is not None:
            self._speaker.close()
        if self._synthesizer is not None:
            self._synthesizer.close()


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
