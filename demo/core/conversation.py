"""Chat messages and the request a backend is asked to stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message in OpenAI's shape."""

    role: Role
    content: str

    def to_wire(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything a backend needs for one streamed turn, independent of the wire format."""

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    """Extra request fields (a backend's configured `params`), merged into the request body."""


@dataclass(slots=True)
class Conversation:
    """A multi-turn history. Each backend in a race keeps its own."""

    system_prompt: str | None = None
    messages: list[Message] = field(default_factory=list)

    def request_for(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> ChatRequest:
        """The request for a new user prompt, with the history before it."""
        head = [Message("system", self.system_prompt)] if self.system_prompt else []
        return ChatRequest(
            messages=(*head, *self.messages, Message("user", prompt)),
            max_tokens=max_tokens,
            temperature=temperature,
        )

    def commit(self, prompt: str, reply: str) -> None:
        """Add a finished (or partial) exchange to the history."""
        self.messages.append(Message("user", prompt))
        if reply:
            self.messages.append(Message("assistant", reply))

    def clear(self) -> None:
        self.messages.clear()
