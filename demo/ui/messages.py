"""Messages the UI's widgets and screens talk through."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class PromptSubmitted(Message):
    """The user sent a prompt (typed, or picked from the suggestions)."""

    text: str


@dataclass
class BackendChosen(Message):
    """The user picked a backend to continue the conversation on."""

    name: str
