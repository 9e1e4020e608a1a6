"""The entries of a conversation (prompt, reply, notice), each a stack of parts.

A reply streams: its text goes through a `BlockStream`, finished blocks become `BlockPart`s (plain
until their Markdown rendering arrives) and the open block stays wrapped plain text. Every method
that changes an entry returns the first row that changed, so the widget repaints only from there.
"""

from __future__ import annotations

from typing import Final

from demo.core.textwrap import (
    BlockStream,
    FinishedBlock,
    StreamSanitizer,
    WrappedText,
    sanitize,
)

from ._transcript_parts import Blank, BlockPart, Look, Part, Row, Stack, TextPart

MAX_STYLED_CHARS: Final = 64_000
"""Blocks longer than this stay plain: rendering them as Markdown would take ~250 ms of CPU."""

NOTICE_LEVELS: Final = ("info", "warning", "error")
"""Levels of a notice; anything else is shown as "info"."""
REPLY_STATUSES: Final = ("done", "cancelled", "error")
"""How a reply can end; anything else is shown as "done"."""


class Entry:
    """One item of the conversation: a stack of parts."""

    def __init__(self) -> None:
        self._stack = Stack()
        self.index = -1
        """Position in the transcript (set when added; entries are only ever appended)."""

    @property
    def height(self) -> int:
        """Number of rows."""
        return self._stack.height

    def row(self, row: int, look: Look) -> Row:
        """Row `row` of the entry."""
        part, part_row = self._stack.locate(row)
        return part.row(part_row, look)

    def relayout(self, look: Look) -> None:
        """Re-wrap every part for a new look."""
        for part in self._stack.parts:
            part.relayout(look)
        self._stack.update_all()

    def blocks(self) -> list[BlockPart]:
        """The Markdown blocks of the entry, top to bottom."""
        return [part for part in self._stack.parts if isinstance(part, BlockPart)]

    def part_changed(self, part: BlockPart) -> int:
        """A block's rendering arrived: re-read its height; returns its first row."""
        self._stack.update(part.index)
        return self._stack.start(part.index)

    def _add(self, part: Part) -> None:
        self._stack.append(part)


class PromptEntry(Entry):
    """A user prompt under a label (e.g. "you → fast"), shown as typed (never as Markdown)."""

    def __init__(self, text: str, label: str, look: Look) -> None:
        super().__init__()
        self._add(TextPart(WrappedText.from_text(sanitize(label), look.width, "prompt-label")))
        body = sanitize(text).rstrip()
        self._add(TextPart(WrappedText.from_text(body, look.width, "prompt")))
        self._add(Blank())


class NoticeEntry(Entry):
    """A one-off message from the app, styled by level."""

    def __init__(self, text: str, level: str, look: Look) -> None:
        super().__init__()
        tag = f"notice-{level if level in NOTICE_LEVELS else 'info'}"
        self._add(TextPart(WrappedText.from_text(sanitize(text).rstrip(), look.width, tag)))
        self._add(Blank())


class ReplyEntry(Entry):
    """A streamed reply: label, reasoning, Markdown blocks, the open block, then a status note.

    Parts, top to bottom: label, reasoning (dimmed, with a blank row after it), finished blocks
    (each but the first with a blank row before it), the open block, the note, a blank row.
    """

    def __init__(self, label: str, look: Look) -> None:
        super().__init__()
        self._raw: list[str] = []
        self._sanitizer = StreamSanitizer()
        self._reasoning_sanitizer = StreamSanitizer()
        self._stream = BlockStream(look.width)
        self._reasoning = TextPart(WrappedText(look.width), gap_after=True)
        self._open = TextPart(self._stream.open)
        self._note = TextPart(WrappedText(look.width))
        self._block_count = 0
        self._width = look.width
        self._add(TextPart(WrappedText.from_text(sanitize(label), look.width, "reply-label")))
        self._add(self._reasoning)
        self._add(self._open)
        self._add(self._note)
        self._add(Blank())
        self._open_index = 2

    @property
    def text(self) -> str:
        """The raw reply text, exactly as appended."""
        if len(self._raw) > 1:
            self._raw[:] = ["".join(self._raw)]
        return self._raw[0] if self._raw else ""

    def append(self, text: str, reasoning: str) -> tuple[int | None, list[BlockPart]]:
        """Add streamed text and reasoning.

        Returns:
            The first changed row (None if nothing changed), and blocks that were finished.
        """
        changed: list[tuple[int, int]] = []
        if reasoning:
            clean = self._reasoning_sanitizer.feed(reasoning)
            row = self._reasoning.text.append(clean, "reasoning")
            changed.append((1, self._reasoning.part_row(row)))
            self._stack.update(1)
        finished: list[BlockPart] = []
        if text:
            self._raw.append(text)
            clean = self._sanitizer.feed(text)
            blocks, row = self._stream.feed(clean)
            for block in blocks:
                part = self._insert_block(block)
                finished.append(part)
                changed.append((part.index, 0))
            if finished:
                self._open.gap_before = True
            changed.append((self._open_index, self._open.part_row(row)))
            self._stack.update(self._open_index)
        if not changed:
            return None, finished
        return min(self._stack.start(index) + row for index, row in changed), finished

    def end(self, status: str, note: str | None) -> tuple[int, list[BlockPart]]:
        """End the stream: the open block becomes a finished block; a note shows the status.

        Returns:
            The first changed row, and the last block (if any), to be rendered as Markdown.
        """
        first = self._stack.start(self._open_index)
        tail = self._reasoning_sanitizer.flush()
        if tail:
            row = self._reasoning.part_row(self._reasoning.text.append(tail, "reasoning"))
            self._stack.update(1)
            first = min(first, self._stack.start(1) + row)
        tail = self._sanitizer.flush()
        if tail:
            self._stream.feed(tail)
        finished: list[BlockPart] = []
        block = self._stream.finish()
        self._open.text = self._stream.open
        self._stack.update(self._open_index)
        if block is not None:
            finished.append(self._insert_block(block))
        if status not in REPLY_STATUSES:
            status = "done"
        default = "" if status == "done" else status
        line = sanitize(note).replace("\n", " ").strip() if note else default
        if line:
            self._note.text = WrappedText.from_text(line, self._width, f"note-{status}")
        self._stack.update(self._open_index + 1)
        return first, finished

    def relayout(self, look: Look) -> None:
        """Re-wrap for a new look; the open block is part of the stream, which re-wraps it."""
        self._width = look.width
        self._stream.set_width(look.width)
        super().relayout(look)

    def _insert_block(self, block: FinishedBlock) -> BlockPart:
        part = BlockPart(
            block,
            gap_before=self._block_count > 0,
            styleable=len(block.source) <= MAX_STYLED_CHARS,
        )
        part.index = self._stack.insert(self._open_index, part)
        self._open_index += 1
        self._block_count += 1
        return part
