"""Incremental layout of streamed text: sanitising, word wrapping and Markdown block splitting.

A streamed reply only ever grows at its end, and the screen must keep up with thousands of tokens a
second. Everything here is built so that the cost of an append depends on the new text only,
never on what came before: greedy word wrap is prefix-stable (once a row is followed by another row
it is final), so only the last row of a line is ever wrapped again; and a Markdown block, once a
blank line and a non-indented line follow it outside a code fence, never changes again.

Pure Python with no UI imports, so the widget, the tests and the benchmark share it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from typing import Final

from rich.cells import get_character_cell_size, split_graphemes

TAB_SPACES: Final = "    "
"""Tabs become spaces: a terminal would move the cursor, breaking the cell arithmetic of rows."""

_CONTROL_PICTURES: dict[str, str] = {chr(code): chr(0x2400 + code) for code in range(0x20)}
_CONTROL_PICTURES.update(
    {
        "\t": TAB_SPACES,
        "\x7f": "\u2421",
        # Line and paragraph separators: shown as the "newline" picture, not as a line break.
        "\u2028": "\u2424",
        "\u2029": "\u2424",
    }
)
del _CONTROL_PICTURES["\n"]
for _code in range(0x80, 0xA0):
    # C1 controls (CSI, OSC, ...) have no control pictures; a replacement character is visible.
    _CONTROL_PICTURES[chr(_code)] = "\ufffd"
for _char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
    # Bidirectional overrides can make a terminal show text in an order other than the real one.
    _CONTROL_PICTURES[_char] = "\ufffd"

_CONTROL_RE: Final = re.compile("[" + "".join(map(re.escape, _CONTROL_PICTURES)) + "]")


def sanitize(text: str) -> str:
    """Make untrusted text safe to put on a terminal, keeping newlines.

    Control characters would be interpreted by the terminal (an ESC starts an escape sequence), so
    each is replaced by a visible stand-in: C0 controls by their Unicode control pictures (ESC shows
    as ␛), C1 controls and bidirectional overrides by �, tabs by spaces. CRLF becomes LF.
    """
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    if _CONTROL_RE.search(text) is None:
        return text
    return _CONTROL_RE.sub(lambda match: _CONTROL_PICTURES[match.group()], text)


class StreamSanitizer:
    """`sanitize` for text that arrives in pieces, where a CRLF may be split between two pieces."""

    def __init__(self) -> None:
        self._held_cr = False

    def feed(self, text: str) -> str:
        """Sanitise the next piece; a trailing CR waits until the next piece shows what follows."""
        if self._held_cr:
            text = "\r" + text
            self._held_cr = False
        if text.endswith("\r"):
            self._held_cr = True
            text = text[:-1]
        return sanitize(text)

    def flush(self) -> str:
        """The held-back CR, if any, as its visible stand-in (the stream ended after it)."""
        held, self._held_cr = self._held_cr, False
        return sanitize("\r") if held else ""


def _build_narrow() -> frozenset[str]:
    """Characters one cell wide that are common in prose (Latin, Greek, Cyrillic, punctuation).

    Checked against Rich (which Textual uses to measure) so the fast path agrees with the slow one.
    """
    ranges = [(0x20, 0x7E), (0xA0, 0x2FF), (0x370, 0x482), (0x400, 0x4FF), (0x2010, 0x2027)]
    ranges += [(0x2030, 0x205E), (0x2190, 0x21FF), (0x2500, 0x25FF)]
    candidates = (chr(code) for start, end in ranges for code in range(start, end + 1))
    return frozenset(char for char in candidates if get_character_cell_size(char) == 1)


_NARROW: Final = _build_narrow()
_NON_SPACE: Final = re.compile("[^ ]")


@cache
def _wide() -> frozenset[str]:
    """CJK characters two cells wide, built on first use (about 40 ms) since most text has none."""
    ranges = [(0x1100, 0x115F), (0x2E80, 0x303E), (0x3041, 0x33FF), (0x3400, 0x4DBF)]
    ranges += [(0x4E00, 0x9FFF), (0xA000, 0xA4CF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF)]
    ranges += [(0xFE30, 0xFE4F), (0xFF00, 0xFF60), (0xFFE0, 0xFFE6)]
    candidates = (chr(code) for start, end in ranges for code in range(start, end + 1))
    return frozenset(char for char in candidates if get_character_cell_size(char) == 2)


def _fit(line: str, pos: int, width: int) -> int:
    """The index just past the longest run of `line` from `pos` that fits in `width` cells.

    Always includes at least one grapheme, so wrapping makes progress even when a wide character is
    wider than the row. Rows made only of narrow characters (nearly all prose) or only of wide CJK
    characters are measured by set lookups in C; anything else is measured grapheme by grapheme.
    """
    end = pos + width
    window = line[pos:end]
    if (window.isascii() or _NARROW.issuperset(window)) and (
        end >= len(line) or line[end] in _NARROW
    ):
        return pos + len(window)
    half = pos + width // 2
    # The first character is checked first so that text without CJK never builds the wide set.
    if half > pos and "\u1100" <= line[pos] <= "\uffe6" and _wide().issuperset(line[pos:half]):
        following = line[half] if half < len(line) else ""
        if not following or following in _wide() or (width % 2 == 0 and following in _NARROW):
            return min(half, len(line))
    size = width + 8
    while True:
        spans, _ = split_graphemes(line[pos : pos + size])
        used = 0
        for start, stop, cells in spans:
            if used + cells > width:
                return pos + (start or stop)
            used += cells
        if pos + size >= len(line):
            return len(line)
        size *= 2


def wrap_line(
    line: str, width: int, start: int = 0, *, hard: bool = False
) -> list[tuple[int, int]]:
    """Greedy word wrap of one line (no newlines) into rows of at most `width` cells.

    Rows are `(start, end)` indices into `line`; the spaces at a soft break belong to no row. A word
    longer than a row always starts a row of its own and is split by cells, never packed after other
    words: that keeps the wrap prefix-stable, so a growing line can be re-wrapped from the start of
    its last row and give exactly the rows a full wrap would.

    Args:
        line: The text to wrap, without newlines or control characters.
        width: Row width in cells (at least 1 is used).
        start: Where to start wrapping: 0, or the start of a row of an earlier wrap of a prefix.
        hard: Split at exactly `width` cells, ignoring spaces (for code, which must stay verbatim).

    Returns:
        The rows from `start` to the end of the line; one empty row for an empty line.
    """
    width = max(1, width)
    length = len(line)
    pos = start
    if pos >= length:
        return [(pos, pos)]
    rows: list[tuple[int, int]] = []
    while True:
        limit = _fit(line, pos, width)
        if limit >= length:
            rows.append((pos, length))
            return rows
        end = -1 if hard else _soft_break(line, pos, limit)
        if end < 0:
            rows.append((pos, limit))
            pos = limit
            continue
        rows.append((pos, end))
        match = _NON_SPACE.search(line, end)
        if match is None:
            return rows
        pos = match.start()


def _soft_break(line: str, pos: int, limit: int) -> int:
    """End of the row at the last space that fits, or -1 if the row holds a single (long) word."""
    space = limit if line[limit] == " " else line.rfind(" ", pos, limit)
    if space <= pos:
        return -1
    end = space
    while end > pos and line[end - 1] == " ":
        end -= 1
    return end if end > pos else -1


class WrappedText:
    """Lines of text and their wrapped rows at one width, kept current as text is appended.

    Each line carries a tag (a style name for whoever draws it) and a hard-wrap flag. An empty last
    line has no rows: a trailing newline shows nothing until text follows it, so a stream does not
    flicker a blank row at every line break.
    """

    def __init__(self, width: int) -> None:
        self._width = max(1, width)
        self._lines: list[str] = []
        self._tags: list[str] = []
        self._hard: list[bool] = []
        self._rows: list[list[tuple[int, int]]] = []
        self._first_row: list[int] = []
        """Index of each line's first row; non-decreasing, so a row is found by bisection."""

    @classmethod
    def from_text(cls, text: str, width: int, tag: str = "") -> WrappedText:
        """Wrapped text built in one go (a prompt, a notice); `text` must be sanitised."""
        wrapped = cls(width)
        wrapped.append(text, tag)
        return wrapped

    @property
    def width(self) -> int:
        """The row width in cells."""
        return self._width

    @property
    def lines(self) -> list[str]:
        """The lines (read-only by convention: change them through the methods)."""
        return self._lines

    @property
    def height(self) -> int:
        """Number of rows."""
        if not self._lines:
            return 0
        return self._first_row[-1] + len(self._rows[-1])

    @property
    def last_line(self) -> str:
        """The text of the last line ("" when there is none)."""
        return self._lines[-1] if self._lines else ""

    def row(self, index: int) -> tuple[str, str]:
        """The text and tag of row `index`."""
        line_index = bisect_right(self._first_row, index) - 1
        start, end = self._rows[line_index][index - self._first_row[line_index]]
        return self._lines[line_index][start:end], self._tags[line_index]

    def append(self, text: str, tag: str = "") -> int:
        """Append text that may contain newlines, all lines soft-wrapped with one tag.

        Returns:
            The index of the first row that changed (`height` when none did).
        """
        first = self.height
        for number, piece in enumerate(text.split("\n")):
            if number:
                first = min(first, self.new_line(tag))
            if piece:
                first = min(first, self.extend_last(piece, tag, hard=False))
        return first

    def new_line(self, tag: str = "", *, hard: bool = False) -> int:
        """End the last line and start an empty one; returns the first changed row."""
        first = self.height
        if self._lines and not self._rows[-1]:
            # The previous last line was empty and hidden; now that a line follows, it shows.
            self._rows[-1] = [(0, 0)]
        self._first_row.append(self.height)
        self._lines.append("")
        self._tags.append(tag)
        self._hard.append(hard)
        self._rows.append([])
        return first

    def extend_last(self, text: str, tag: str, *, hard: bool) -> int:
        """Append text without newlines to the last line, setting its tag and wrap mode.

        Only the last row of the line is wrapped again, unless the wrap mode changed.

        Returns:
            The index of the first row that changed.
        """
        if not self._lines:
            self.new_line(tag, hard=hard)
        index = len(self._lines) - 1
        self._lines[index] += text
        rewrap_all = self._hard[index] != hard
        retagged = self._tags[index] != tag
        self._tags[index] = tag
        self._hard[index] = hard
        return self._rewrap_last(from_start=rewrap_all or retagged)

    def set_last_line(self, text: str, tag: str, *, hard: bool) -> int:
        """Replace the last line (to drop leading blank lines); returns the first changed row."""
        if not self._lines:
            self.new_line(tag, hard=hard)
        index = len(self._lines) - 1
        self._lines[index] = text
        self._tags[index] = tag
        self._hard[index] = hard
        return self._rewrap_last(from_start=True)

    def _rewrap_last(self, *, from_start: bool) -> int:
        index = len(self._lines) - 1
        line = self._lines[index]
        rows = self._rows[index]
        if not line:
            rows.clear()
            return self._first_row[index]
        start = 0
        if rows and not from_start:
            start = rows[-1][0]
            del rows[-1]
        else:
            rows.clear()
        first = self._first_row[index] + len(rows)
        rows.extend(wrap_line(line, self._width, start, hard=self._hard[index]))
        return first

    def split_off(self, count: int) -> WrappedText:
        """Move the first `count` lines, with their rows, into a new WrappedText and return it."""
        head = WrappedText(self._width)
        head._lines = self._lines[:count]
        head._tags = self._tags[:count]
        head._hard = self._hard[:count]
        head._rows = self._rows[:count]
        head._first_row = self._first_row[:count]
        offset = self._first_row[count] if count < len(self._lines) else self.height
        del self._lines[:count], self._tags[:count], self._hard[:count], self._rows[:count]
        self._first_row = [first - offset for first in self._first_row[count:]]
        return head

    def trim_trailing_blank_lines(self) -> None:
        """Drop blank lines at the end (a finished Markdown block does not show them)."""
        while self._lines and not self._lines[-1].strip():
            self._lines.pop()
            self._tags.pop()
            self._hard.pop()
            self._rows.pop()
            self._first_row.pop()

    def set_width(self, width: int) -> None:
        """Re-wrap every line for a new width."""
        self._width = max(1, width)
        first = 0
        for index, line in enumerate(self._lines):
            self._first_row[index] = first
            is_hidden = not line and index == len(self._lines) - 1
            rows = [] if is_hidden else wrap_line(line, self._width, hard=self._hard[index])
            self._rows[index] = rows
            first += len(rows)


TEXT: Final = "text"
"""Tag of a prose line in an open Markdown block."""
HEADING: Final = "heading"
"""Tag of an ATX heading line (`# ...`) in an open Markdown block."""
FENCE: Final = "fence"
"""Tag of a code fence's opening or closing line."""
CODE: Final = "code"
"""Tag of a line inside a code fence (hard-wrapped: code is shown verbatim)."""

_FENCE_OPEN: Final = re.compile(r"[ \t]*(?:(`{3,})[^`]*|(~{3,}).*)$")
_FENCE_CLOSE: Final = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*$")
_HEADING: Final = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")


@dataclass(frozen=True, slots=True)
class FinishedBlock:
    """A Markdown block that will not change any more."""

    source: str
    """Its Markdown source (sanitised), without trailing blank lines."""
    layout: WrappedText
    """Its rows as plain text, for showing until (or instead of) a styled rendering."""


class BlockStream:
    """Splits streamed Markdown into finished blocks and one open block.

    A block ends at a blank line followed by a non-indented line, never inside a code fence (an open
    fence keeps the block open until it closes). The open block is kept wrapped as tagged plain
    text (`open`); each finished block is handed out once, to be rendered as Markdown.
    """

    def __init__(self, width: int) -> None:
        self.open = WrappedText(width)
        """The open (last) block as wrapped plain text, its lines tagged TEXT/HEADING/FENCE/CODE."""
        self._fence: tuple[str, int] | None = None
        """The character and length of the fence open at the start of the last line."""
        self._previous_blank = False
        self._has_content = False
        """Whether the open block has a non-blank line before its last line."""

    def feed(self, text: str) -> tuple[list[FinishedBlock], int]:
        """Add sanitised text.

        Returns:
            The blocks this text finished, and the first row of `open` that changed (0 when a block
            finished, as the open block then starts afresh).
        """
        finished: list[FinishedBlock] = []
        first = self.open.height
        for number, piece in enumerate(text.split("\n")):
            if number:
                first = min(first, self._end_line())
            if not piece:
                continue
            if not self.open.last_line and self._starts_block(piece):
                finished.append(self._cut())
                first = 0
            line = self.open.last_line + piece
            tag = self._tag(line)
            first = min(first, self.open.extend_last(piece, tag, hard=tag in (FENCE, CODE)))
        return finished, first

    def finish(self) -> FinishedBlock | None:
        """End of the stream: the open block as a finished block (None if it is blank)."""
        if not self._has_content and not self.open.last_line.strip():
            self.open = WrappedText(self.open.width)
            return None
        layout = self.open
        layout.trim_trailing_blank_lines()
        self.open = WrappedText(layout.width)
        self._fence, self._previous_blank, self._has_content = None, False, False
        return FinishedBlock("\n".join(layout.lines), layout)

    def set_width(self, width: int) -> None:
        """Re-wrap the open block for a new width."""
        self.open.set_width(width)

    def _starts_block(self, piece: str) -> bool:
        """Whether a line starting with `piece` begins a new block (known from its first char)."""
        return (
            self._fence is None
            and self._previous_blank
            and self._has_content
            and not piece[0].isspace()
        )

    def _cut(self) -> FinishedBlock:
        """Finish everything but the (empty) last line as a block."""
        head = self.open.split_off(len(self.open.lines) - 1)
        head.trim_trailing_blank_lines()
        self._previous_blank = False
        self._has_content = False
        return FinishedBlock("\n".join(head.lines), head)

    def _tag(self, line: str) -> str:
        if self._fence is not None:
            return FENCE if self._closes_fence(line) else CODE
        if _FENCE_OPEN.match(line):
            return FENCE
        if _HEADING.match(line):
            return HEADING
        return TEXT

    def _closes_fence(self, line: str) -> bool:
        assert self._fence is not None
        match = _FENCE_CLOSE.match(line)
        if match is None:
            return False
        marker = match.group(1)
        char, length = self._fence
        return marker[0] == char and len(marker) >= length

    def _end_line(self) -> int:
        """The last line is complete: update the fence state and start a new line."""
        line = self.open.last_line
        blank = not line.strip()
        if self._fence is None:
            match = _FENCE_OPEN.match(line)
            if match is not None:
                marker = match.group(1) or match.group(2)
                self._fence = (marker[0], len(marker))
        elif self._closes_fence(line):
            self._fence = None
        if blank and not self._has_content:
            # Blank lines before any content (models often start with "\n\n") are not shown.
            return self.open.set_last_line("", TEXT, hard=False)
        self._previous_blank = blank
        self._has_content = self._has_content or not blank
        return self.open.new_line(TEXT)
