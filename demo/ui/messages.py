"""Messages the UI's widgets and screens talk through."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from demo.core.events import VoiceEvent


@dataclass
class VoiceState(Message):
    """What the voice pipeline is doing: loading, listening, transcribing, ready, off."""

    state: str


@dataclass
class VoiceLevel(Message):
    """The microphone's level, ~30 times a second; only the newest one matters."""

    dbfs: float
    speaking: bool

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, VoiceLevel)


@dataclass
class VoiceTranscribed(Message):
    """A spoken turn became text: it is shown as the prompt and sent."""

    text: str
    events: list[VoiceEvent]


@dataclass
class VoiceProblem(Message):
    """Something voice cannot do here, said once, plainly."""

    text: str


@dataclass
class VoiceStage(Message):
    """A spoken-reply stage happened (sentence ready, first audio): refresh the figures."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, VoiceStage)
