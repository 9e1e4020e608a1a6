"""The pieces a transcript is stacked from, each giving its rows as segments on demand.

Only rows on screen are ever turned into segments, and a part can tell which of its rows an append
changed, so the cost of a frame depends on what is new and what is visible, not on the length of
the conversation. Rows are kept as plain segment lists rather than `Strip`s: a strip carries seven
caches, and tens of thousands of long-lived objects would make every full garbage collection (and
so an occasional frame) slower as a reply grows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol

from rich.segment import Segment
from rich.style import Style

from demo.core.textwrap import FinishedBlock, WrappedText

from ._transcript_markdown import MarkdownLook

Row = list[Segment]
"""One row of a part, without the widget's base style or padding."""


@dataclass(frozen=True, slots=True)
class Look:
    """What rows depend on besides their text. A new Look (new width or styles) redraws them."""

    width: int
    """Content width in cells."""
    styles: Mapping[str, Style]
    """Rich style for each row tag (`prompt`, `code`, `note-error`, ...)."""
    markdown: MarkdownLook
    """Styles for finished Markdown blocks."""
    generation: int
    """Increases with every new Look, so renderings can tell whether they are current."""


class Part(Protocol):
    """Anything that can be stacked: a number of rows."""

    @property
    def height(self) -> int:
        """Number of rows."""
        ...

    def row(self, row: int, look: Look) -> Row:
        """Row `row` (0 <= row < height)."""
        ...

    def relayout(self, look: Look) -> None:
        """Adapt to a new Look (new width or styles)."""
        ...


class Blank:
    """Empty rows that separate entries."""

    def __init__(self, height: int = 1) -> None:
        self._height = height

    @property
    def height(self) -> int:
        """Number of rows."""
        return self._height

    def row(self, row: int, look: Look) -> Row:
        """An empty row."""
        return []

    def relayout(self, look: Look) -> None:
        """Nothing depends on the look."""


class TextPart:
    """Plain wrapped text, each row styled by its tag; optionally a blank row before or after."""

    def __init__(
        self, text: WrappedText, *, gap_before: bool = False, gap_after: bool = False
    ) -> None:
        self.text = text
        """The wrapped text shown."""
        self.gap_before = gap_before
        """Show a blank row before the text (when there is any text)."""
        self.gap_after = gap_after
        """Show a blank row after the text (when there is any text)."""

    @property
    def height(self) -> int:
        """Number of rows, gaps included."""
        height = self.text.height
        return height + self.gap_before + self.gap_after if height else 0

    def row(self, row: int, look: Look) -> Row:
        """Row `row` of the text (or a gap)."""
        row -= self.gap_before
        if row < 0 or row >= self.text.height:
            return []
        text, tag = self.text.row(row)
        return [Segment(text, look.styles.get(tag))]

    def part_row(self, text_row: int) -> int:
        """The part row showing row `text_row` of the text."""
        return text_row + self.gap_before

    def relayout(self, look: Look) -> None:
        """Re-wrap for the look's width."""
        if self.text.width != look.width:
            self.text.set_width(look.width)


class BlockPart:
    """A finished Markdown block: its Rich rendering once one exists, plain rows until then.

    The rendering is made in a worker thread (see `Transcript`), so a block is never rendered on
    the path that draws frames; `needs_styling` says whether the current look still lacks one.
    """

    def __init__(self, block: FinishedBlock, *, gap_before: bool, styleable: bool) -> None:
        self.block = block
        """The Markdown source and its plain layout."""
        self.styleable = styleable
        """False for blocks too large to render as Markdown (they stay plain)."""
        self.index = -1
        """Position in the owning entry's stack (fixed: later parts are added after it)."""
        self._gap = gap_before
        self._plain = TextPart(block.layout)
        self._styled: list[Row] | None = None
        self._styled_generation = -1

    @property
    def source(self) -> str:
        """The Markdown source of the block."""
        return self.block.source

    @property
    def is_styled(self) -> bool:
        """Whether the block shows its Markdown rendering."""
        return self._styled is not None

    @property
    def height(self) -> int:
        """Number of rows, the gap included."""
        body = len(self._styled) if self._styled is not None else self._plain.height
        return body + self._gap

    def needs_styling(self, look: Look) -> bool:
        """Whether a Markdown rendering for this look is still wanted."""
        return self.styleable and self._styled_generation != look.generation

    def set_styled(self, rows: list[Row], look: Look) -> None:
        """Show a Markdown rendering made for `look`."""
        self._styled = rows
        self._styled_generation = look.generation

    def row(self, row: int, look: Look) -> Row:
        """Row `row` of the block (or its gap)."""
        row -= self._gap
        if row < 0:
            return []
        if self._styled is not None:
            return self._styled[row]
        return self._plain.row(row, look)

    def relayout(self, look: Look) -> None:
        """Fall back to plain rows at the new width until a new rendering arrives."""
        if self._styled_generation != look.generation:
            self._styled = None
        self._plain.relayout(look)


class Stack:
    """Parts stacked vertically, with the first row of each kept for lookups by bisection.

    Heights are re-read only for parts reported as changed, and first rows are recomputed lazily
    from the earliest change, so growing the last part costs O(1).
    """

    def __init__(self) -> None:
        self.parts: list[Part] = []
        """The parts, top to bottom (add them through `append`/`insert`)."""
        self._heights: list[int] = []
        self._starts: list[int] = [0]
        self._stale_from = 0

    def __len__(self) -> int:
        return len(self.parts)

    def append(self, part: Part) -> int:
        """Add a part at the bottom; returns its index."""
        return self.insert(len(self.parts), part)

    def insert(self, index: int, part: Part) -> int:
        """Add a part before `index`; returns `index`."""
        self.parts.insert(index, part)
        self._heights.insert(index, part.height)
        self._starts.append(0)
        self._stale_from = min(self._stale_from, index)
        return index

    def clear(self) -> None:
        """Remove every part."""
        self.parts.clear()
        self._heights.clear()
        self._starts = [0]
        self._stale_from = 0

    def update(self, index: int) -> bool:
        """Re-read the height of part `index`; returns whether it changed."""
        height = self.parts[index].height
        if height == self._heights[index]:
            return False
        self._heights[index] = height
        self._stale_from = min(self._stale_from, index)
        return True

    def update_all(self) -> None:
        """Re-read every height (after a relayout)."""
        self._heights = [part.height for part in self.parts]
        self._stale_from = 0

    def _settle(self) -> None:
        stale, count = self._stale_from, len(self._heights)
        if stale < count:
            sums = accumulate(self._heights[stale:], initial=self._starts[stale])
            next(sums)
            self._starts[stale + 1 :] = sums
        self._stale_from = count

    @property
    def height(self) -> int:
        """Total number of rows."""
        self._settle()
        return self._starts[len(self._heights)]

    def start(self, index: int) -> int:
        """The first row of part `index`."""
        self._settle()
        return self._starts[index]

    def locate(self, row: int) -> tuple[Part, int]:
        """The part holding `row` (0 <= row < height), and the row within it."""
        self._settle()
        # The last part starting at or before `row`: parts with no rows are skipped over.
        index = bisect_right(self._starts, row, 0, len(self._heights)) - 1
        return self.parts[index], row - self._starts[index]
