"""Voice-turn stage timings, from the voice events and the reply's own figures. Pure.

Stages (all on the same monotonic clock as the reply's chunks):

- `stt_s`: end of speech (VAD stop or key release) → transcript ready; with `speech_s` (the
  utterance length) and the real-time factor (decoding time ÷ utterance length);
- `ttft_s`: transcript sent → first token, as for a typed turn;
- `first_sentence_s`: first token → first speakable sentence ready;
- `tts_first_audio_s`: first sentence ready → first audio out;
- `voice_to_voice_s`: end of speech → first audio out — what a person in the room feels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from demo.core.events import AudioStarted, SentenceReady, SpeechEnded, TranscriptReady

Verdict = Literal["good", "fair", "poor"]

GOOD_BELOW_S = 1.0
FAIR_BELOW_S = 2.0


def verdict(voice_to_voice_s: float | None) -> Verdict | None:
    """Green under a second, amber under two, red above: how the round trip feels."""
    if voice_to_voice_s is None:
        return None
    if voice_to_voice_s < GOOD_BELOW_S:
        return "good"
    if voice_to_voice_s < FAIR_BELOW_S:
        return "fair"
    return "poor"


@dataclass(frozen=True, slots=True)
class VoiceFigures:
    """One voice turn's stage figures, in seconds; None for a stage that did not happen."""

    transcript: str | None
    speech_s: float | None
    stt_s: float | None
    stt_rtf: float | None
    ttft_s: float | None
    first_sentence_s: float | None
    tts_first_audio_s: float | None
    voice_to_voice_s: float | None

    @property
    def verdict(self) -> Verdict | None:
        return verdict(self.voice_to_voice_s)

    def as_json(self) -> dict[str, object]:
        return {
            "transcript": self.transcript,
            "speech_s": self.speech_s,
            "stt_s": self.stt_s,
            "stt_rtf": self.stt_rtf,
            "first_sentence_s": self.first_sentence_s,
            "tts_first_audio_s": self.tts_first_audio_s,
            "voice_to_voice_s": self.voice_to_voice_s,
        }


@dataclass(slots=True)
class VoiceAccumulator:
    """Collects a voice turn's stage events; the reply's t0 and first token come from its turn."""

    speech: SpeechEnded | None = None
    transcript: TranscriptReady | None = None
    first_sentence: SentenceReady | None = None
    first_audio: AudioStarted | None = None

    def feed(self, event: SpeechEnded | TranscriptReady | SentenceReady | AudioStarted) -> None:
        if isinstance(event, SpeechEnded):
            self.speech = event
        elif isinstance(event, TranscriptReady):
            self.transcript = event
        elif isinstance(event, SentenceReady):
            if self.first_sentence is None:
                self.first_sentence = event
        elif self.first_audio is None:
            self.first_audio = event

    def figures(self, *, t0_ns: int | None, first_token_ns: int | None) -> VoiceFigures:
        speech, transcript = self.speech, self.transcript
        sentence, audio = self.first_sentence, self.first_audio
        rtf = None
        if transcript is not None and transcript.audio_s > 0:
            rtf = transcript.decode_s / transcript.audio_s
        return VoiceFigures(
            transcript=transcript.text if transcript else None,
            speech_s=speech.speech_s if speech else None,
            stt_s=_span(speech.t_ns if speech else None, transcript.t_ns if transcript else None),
            stt_rtf=rtf,
            ttft_s=_span(t0_ns, first_token_ns),
            first_sentence_s=_span(first_token_ns, sentence.t_ns if sentence else None),
            tts_first_audio_s=_span(
                sentence.t_ns if sentence else None, audio.t_ns if audio else None
            ),
            voice_to_voice_s=_span(speech.t_ns if speech else None, audio.t_ns if audio else None),
        )


def _span(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None:
        return None
    return (end_ns - start_ns) / 1e9
