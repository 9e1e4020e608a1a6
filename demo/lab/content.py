"""What the lab server says: real answers to the suggested demo prompts, or a polite generic reply.

Latency is easier to feel on text worth reading, so the suggested prompts have hand-written
answers of different shapes (a long explanation, code, a list, one sentence). Anything else gets a
reply that says what the lab backend is, so nobody mistakes it for a model.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from demo.paths import ASSETS

DEFAULT_PATH = ASSETS / "lab" / "prompts.toml"
"""The shipped list of suggested prompts."""

QUOTE_LIMIT = 80
"""Longest piece of the user's message quoted back in the generic reply, in characters."""

_WORD = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~|#])")


class ContentError(ValueError):
    """The prompts file or an answer file is missing or malformed."""


@dataclass(frozen=True, slots=True)
class SuggestedPrompt:
    """A prompt the app offers, with a short title for the menu."""

    title: str
    prompt: str


@dataclass(frozen=True, slots=True)
class _Entry:
    suggestion: SuggestedPrompt
    answer: str
    keywords: frozenset[str]
    min_keywords: int


class ContentLibrary:
    """The suggested prompts and their answers, and the rule that picks an answer for a message."""

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self._entries = tuple(entries)
        self._by_prompt = {normalise(e.suggestion.prompt): e for e in reversed(self._entries)}

    @classmethod
    def load(cls, path: Path) -> ContentLibrary:
        """Read a prompts file and the answer files it names.

        Raises:
            ContentError: naming the file and the entry at fault.
        """
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ContentError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ContentError(f"{path}: not valid TOML: {exc}") from exc
        items = data.get("prompts")
        if not isinstance(items, list) or not items:
            raise ContentError(f"{path}: expected at least one [[prompts]] entry")
        return cls([_entry(path, index, item) for index, item in enumerate(items, 1)])

    def suggested_prompts(self) -> list[SuggestedPrompt]:
        """The prompts to offer, in file order."""
        return [entry.suggestion for entry in self._entries]

    def answer_for(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The reply to the last user message of a conversation."""
        text = last_user_text(messages)
        entry = self._by_prompt.get(normalise(text)) or self._by_keywords(text)
        return entry.answer if entry is not None else generic_reply(text)

    def _by_keywords(self, text: str) -> _Entry | None:
        words = set(_WORD.findall(text.casefold()))
        best: _Entry | None = None
        best_hits = 0
        for entry in self._entries:
            hits = len(words & entry.keywords)
            if hits >= entry.min_keywords and hits > best_hits:
                best, best_hits = entry, hits
        return best


def _entry(path: Path, index: int, item: object) -> _Entry:
    where = f"{path}: prompt #{index}"
    if not isinstance(item, dict):
        raise ContentError(f"{where} must be a table")
    unknown = sorted(set(item) - {"title", "prompt", "answer", "keywords", "min_keywords"})
    if unknown:
        raise ContentError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("title", "prompt", "answer"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ContentError(f"{where}: {key!r} must be a non-empty string")
    keywords = item.get("keywords", [])
    if not isinstance(keywords, list) or not all(
        isinstance(k, str) and _WORD.fullmatch(k) and k == k.casefold() for k in keywords
    ):
        raise ContentError(f"{where}: 'keywords' must be a list of single lower-case words")
    min_keywords = item.get("min_keywords", 2)
    if not isinstance(min_keywords, int) or isinstance(min_keywords, bool) or min_keywords < 1:
        raise ContentError(f"{where}: 'min_keywords' must be a whole number >= 1")
    answer_path = path.parent / item["answer"]
    try:
        answer = answer_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContentError(f"{where}: cannot read answer {answer_path}: {exc.strerror}") from exc
    if not answer.strip():
        raise ContentError(f"{where}: answer {answer_path} is empty")
    return _Entry(
        SuggestedPrompt(item["title"].strip(), item["prompt"].strip()),
        answer.rstrip("\n"),
        frozenset(keywords),
        min_keywords,
    )


def normalise(text: str) -> str:
    """A prompt reduced to what matters for an exact match: case, spacing, end punctuation."""
    return _SPACE.sub(" ", text.casefold()).strip().strip(".?!…").strip()


def message_text(message: Mapping[str, object]) -> str:
    """The text of a chat message, whether `content` is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


def last_user_text(messages: Sequence[Mapping[str, object]]) -> str:
    """The text of the last user message; empty when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A short, single-line, Markdown-inert rendering of user text, safe to echo back."""
    flat = _SPACE.sub(" ", "".join(c if c.isprintable() else " " for c in text)).strip()
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def generic_reply(text: str) -> str:
    """The reply to a message that matches no suggested prompt."""
    shown = quote(text)
    opening = (
        f"You asked: “{shown}”. I'm the offline lab backend of Latency Demo, so there is no "
        "language model behind me and I can't really answer that."
        if shown
        else "Your message was empty. I'm the offline lab backend of Latency Demo, so there is "
        "no language model behind me anyway."
    )
    return "\n\n".join(
        (
            opening,
            "What I can do is reply at exactly the speed of the provider this profile imitates. "
            "The server waits for the profile's time to first token, then streams tokens at its "
            "published output speed, with a little jitter between chunks the way a real network "
            "adds it. Every chunk's send time is logged, so the figures you see can be checked "
            "against what was really sent.",
            "Watch the numbers as this reply arrives. **Time to first token** decides whether a "
            "reply feels instant or sluggish; **tokens per second** decides whether the text "
            "outruns your eyes. Most people read about six tokens a second, so every profile here "
            "is faster than you can read, yet 80 and 969 tokens per second still feel very "
            "different on a long answer.",
            "To see real content at these speeds, try one of the suggested prompts: a long "
            "explanation, a code sample, a list, or a one-line answer. To talk to an actual model, "
            "configure a remote or local backend.",
        )
    )


@cache
def default_library() -> ContentLibrary:
    """The shipped prompts and answers, read once."""
    return ContentLibrary.load(DEFAULT_PATH)


def suggested_prompts() -> list[SuggestedPrompt]:
    """The shipped suggested prompts, in the order the app offers them."""
    return default_library().suggested_prompts()


def answer_for(messages: Sequence[Mapping[str, Any]]) -> str:
    """The shipped reply to the last user message of `messages` (OpenAI chat format)."""
    return default_library().answer_for(messages)
