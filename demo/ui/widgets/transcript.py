"""The conversation view: user prompts and streamed replies, drawn with Textual's Line API.

A reply may arrive at thousands of tokens a second, and the view must never make a fast backend
look slow. So a frame only costs what is new and what is visible:

- A reply is split into Markdown blocks as it streams. The open (last) block is plain text wrapped
  incrementally (only its last row is re-wrapped on append); a finished block is rendered as
  Markdown once, in a worker thread, and cached. Ending a reply renders only its last block.
- Rows are stacked entry by entry; `render_line` finds a row by bisection and draws it from cached
  strips, so only visible rows are ever turned into strips.
- Model output is untrusted: it is never parsed as Rich markup, and control characters (ESC, C1,
  bidirectional overrides) are replaced by visible stand-ins before anything else sees them.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, Final

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ._transcript_entries import Entry, NoticeEntry, PromptEntry, ReplyEntry
from ._transcript_markdown import MARKDOWN_COMPONENTS, markdown_look, render_markdown
from ._transcript_parts import BlockPart, Look, Stack

STYLE_INTERVAL_S: Final = 0.25
"""Shortest time between two Markdown renderings while a reply is streaming nearby."""
STYLE_POLL_S: Final = 0.05

ROW_TAGS: Final = (
    "prompt-label",
    "prompt",
    "reply-label",
    "reasoning",
    "text",
    "heading",
    "fence",
    "code",
    "note-done",
    "note-cancelled",
    "note-error",
    "notice-info",
    "notice-warning",
    "notice-error",
)
"""Tags of plain rows; each is styled by the component class `transcript--<tag>`."""

_DEFAULT_WIDTH: Final = 80


class Transcript(ScrollView, can_focus=True):
    """User prompts and streamed assistant replies, styled as Markdown while they stream.

    Stays scrolled to the end as content arrives, unless the user has scrolled up (scrolling back
    to the end, a new prompt or `clear` follow again). Focusable, so the usual scrolling keys work.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *(f"transcript--{tag}" for tag in ROW_TAGS),
        *MARKDOWN_COMPONENTS.values(),
    }

    DEFAULT_CSS = """
    Transcript {
        background: $surface;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-gutter: stable;
        padding: 0 1;

        & > .transcript--prompt-label { color: $text-accent; text-style: bold; }
        & > .transcript--prompt { color: $foreground; }
        & > .transcript--reply-label { color: $text-primary; text-style: bold; }
        & > .transcript--reasoning { color: $text-muted; text-style: italic; }
        & > .transcript--text { }
        & > .transcript--heading { color: $text-accent; text-style: bold; }
        & > .transcript--fence { color: $text-muted; }
        & > .transcript--code { color: $text-success; }
        & > .transcript--note-done { color: $text-muted; }
        & > .transcript--note-cancelled { color: $text-warning; }
        & > .transcript--note-error { color: $text-error; }
        & > .transcript--notice-info { color: $text-muted; }
        & > .transcript--notice-warning { color: $text-warning; }
        & > .transcript--notice-error { color: $text-error; text-style: bold; }
        & > .transcript--md-h1 { color: $text-accent; text-style: bold; }
        & > .transcript--md-h2 { color: $text-accent; text-style: bold underline; }
        & > .transcript--md-h3 { color: $text-primary; text-style: bold; }
        & > .transcript--md-h4 { color: $text-primary; text-style: italic; }
        & > .transcript--md-code { color: $text-success; }
        & > .transcript--md-link { color: $text-primary; }
        & > .transcript--md-link-url { color: $text-primary; text-style: underline; }
        & > .transcript--md-quote { color: $text-muted; text-style: italic; }
        & > .transcript--md-bullet { color: $text-accent; text-style: bold; }
        & > .transcript--md-rule { color: $text-muted; }
        & > .transcript--md-table-header { text-style: bold; }
    }
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create an empty transcript.

        Args:
            name: The name of the widget.
            id: The ID of the widget in the DOM.
            classes: The CSS classes of the widget.
            disabled: Whether the widget is disabled.
        """
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._entries = Stack()
        self._reply: ReplyEntry | None = None
        self._last_reply: ReplyEntry | None = None
        self._look = Look(_DEFAULT_WIDTH, {}, markdown_look({}, dark=True), 0)
        self._look_key: object = None
        self._base_style = Style()
        """The widget's own colours, under every row (computing it walks the DOM: kept here)."""
        self._style_queue: dict[BlockPart, Entry] = {}
        """Blocks waiting for a Markdown rendering; the newest is rendered first."""
        self._style_wanted = asyncio.Event()
        self._styling = False
        self._styled_at = float("-inf")
        """When the last Markdown rendering finished (the event loop's clock)."""

    # Public interface

    def add_prompt(self, text: str, *, label: str) -> None:
        """Show a user prompt under a label such as "you → fast".

        The user has just asked something, so the view goes back to the end and follows again.
        """
        self._add_entry(PromptEntry(text, label, self._look))
        if self.is_mounted:
            self.anchor()

    def start_reply(self, *, label: str) -> None:
        """Open a new streaming reply under a label such as "fast · lab".

        A reply still open is ended first, as cancelled.
        """
        if self._reply is not None:
            self.end_reply(status="cancelled")
        self._reply = ReplyEntry(label, self._look)
        self._last_reply = self._reply
        self._add_entry(self._reply)

    def append(self, text: str = "", reasoning: str = "") -> None:
        """Add text (and reasoning text) to the open reply; repaints only the rows that changed.

        Meant to be called at most once a frame with everything that arrived since the last one.
        Ignored when no reply is open.
        """
        reply = self._reply
        if reply is None or not (text or reasoning):
            return
        first_row, finished = reply.append(text, reasoning)
        self._queue_styling(reply, finished)
        self._entry_changed(reply, first_row)

    def end_reply(self, *, status: str = "done", note: str | None = None) -> None:
        """End the open reply; only its last block is left to render as Markdown.

        Args:
            status: "done", "cancelled" or "error"; styles the note.
            note: One line shown under the reply (e.g. the error message). Without one, a
                cancelled or failed reply says just that.
        """
        reply = self._reply
        if reply is None:
            return
        self._reply = None
        first_row, finished = reply.end(status, note)
        self._queue_styling(reply, finished)
        self._entry_changed(reply, first_row)

    def add_notice(self, text: str, *, level: str = "info") -> None:
        """Show a message from the app; `level` is "info", "warning" or "error"."""
        self._add_entry(NoticeEntry(text, level, self._look))

    def clear(self) -> None:
        """Remove everything, including any open reply."""
        self._entries.clear()
        self._reply = None
        self._last_reply = None
        self._style_queue.clear()
        self.virtual_size = Size(self._look.width, 0)
        self.refresh()
        if self.is_mounted:
            self.anchor()

    @property
    def reply_text(self) -> str:
        """The raw text of the open reply, or else of the last one ("" if there was none)."""
        reply = self._reply or self._last_reply
        return reply.text if reply is not None else ""

    @property
    def is_styling(self) -> bool:
        """Whether finished blocks are still waiting for their Markdown rendering."""
        return bool(self._style_queue) or self._styling

    # Textual hooks

    def on_mount(self) -> None:
        """Take the real width and styles, follow the end, and start the Markdown renderer."""
        self._update_look()
        self.anchor()
        self.run_worker(self._style_blocks(), name="transcript-markdown", exit_on_error=False)

    def on_resize(self) -> None:
        """A new width re-wraps every entry (Markdown is re-rendered in the background)."""
        self._update_look()

    def notify_style_update(self) -> None:
        """A theme or CSS change restyles every entry.

        Textual updates component styles only after this is called, so the look is rebuilt
        once the current message has been handled.
        """
        super().notify_style_update()
        if self.is_mounted:
            self.call_next(self._update_look)

    def render_line(self, y: int) -> Strip:
        """Draw row `y` of the view from the entry that holds it, on the widget's colours."""
        row = self.scroll_offset.y + y
        width = self._look.width
        base = self._base_style
        if row >= self._entries.height:
            return Strip.blank(width, base)
        entry, entry_row = self._entries.locate(row)
        assert isinstance(entry, Entry)
        segments = list(Segment.apply_style(entry.row(entry_row, self._look), base))
        length = Segment.get_line_length(segments)
        if length > width:
            # Only a single grapheme wider than the row can overflow it.
            return Strip(segments, length).crop(0, width)
        if length < width:
            segments.append(Segment(" " * (width - length), base))
        return Strip(segments, width)

    # Internals

    def _content_width(self) -> int:
        width = self.scrollable_content_region.width
        return width if width > 0 else self._look.width

    def _component_style(self, name: str) -> Style:
        """The style a component class sets itself, with colours resolved against the background.

        A partial style alone would lose translucent colours such as `$text-muted`.
        """
        full = self.get_component_rich_style(name)
        partial = self.get_component_rich_style(name, partial=True)
        colours = Style(
            color=full.color if partial.color is not None else None,
            bgcolor=full.bgcolor if partial.bgcolor is not None else None,
        )
        return colours + Style(
            bold=partial.bold,
            dim=partial.dim,
            italic=partial.italic,
            underline=partial.underline,
            strike=partial.strike,
            reverse=partial.reverse,
        )

    def _update_look(self) -> None:
        """Rebuild the look from the current width and styles; re-lay out if it changed."""
        base = self.rich_style
        if base != self._base_style:
            self._base_style = base
            self.refresh()
        width = self._content_width()
        styles = {tag: self._component_style(f"transcript--{tag}") for tag in ROW_TAGS}
        markdown_styles = {
            name: self._component_style(name) for name in set(MARKDOWN_COMPONENTS.values())
        }
        dark = self.app.current_theme.dark
        key = (width, tuple(styles.items()), tuple(sorted(markdown_styles.items())), dark)
        if key == self._look_key:
            return
        self._look_key = key
        self._look = Look(
            width, styles, markdown_look(markdown_styles, dark=dark), self._look.generation + 1
        )
        self._relayout()

    def _relayout(self) -> None:
        """Re-wrap every entry for the current look and queue all blocks for new renderings.

        Plain wrapping is fast (1–2 ms per 100 KB), so it is done at once; Markdown follows
        in the background, bottom first, since that is usually what is on screen.
        """
        look = self._look
        self._style_queue.clear()
        for entry in self._entries.parts:
            assert isinstance(entry, Entry)
            entry.relayout(look)
            self._queue_styling(entry, entry.blocks())
        self._entries.update_all()
        self.virtual_size = Size(look.width, self._entries.height)
        self.refresh()

    def _add_entry(self, entry: Entry) -> None:
        entry.index = self._entries.append(entry)
        self._entry_changed(entry, 0)

    def _is_current(self, entry: Entry) -> bool:
        index = entry.index
        return 0 <= index < len(self._entries) and self._entries.parts[index] is entry

    def _entry_changed(self, entry: Entry, first_row: int | None) -> None:
        """Resize the virtual area and repaint the visible rows from `first_row` of `entry` on."""
        if not self._is_current(entry):
            return
        moved = self._entries.update(entry.index)
        total = self._entries.height
        if self.virtual_size.height != total:
            self._resize_rows(total)
        if first_row is None:
            return
        start = self._entries.start(entry.index)
        # When the entry's height changed, every row below it moved too.
        end = total if moved else start + entry.height
        top = self.scroll_offset.y
        first, last = max(start + first_row, top), min(end, top + self.size.height)
        if last > first:
            self.refresh_lines(first, last - first)

    def _resize_rows(self, total: int) -> None:
        """Make the scrollable area `total` rows tall.

        Setting `virtual_size` asks Textual to lay out the whole screen again, and a reply grows
        by a row many times a second — with four race panes streaming, those layouts were most of
        the UI thread. While the vertical scrollbar is shown before and after, nothing outside
        this widget moves, so only the scrollbar's range and the scroll position are updated, and
        the view follows the end itself when it was at the end (what anchoring does in a layout).
        """
        size = Size(self._look.width, total)
        visible = self.scrollable_content_region.height
        if not (
            self.is_mounted
            and self.show_vertical_scrollbar
            and visible > 0
            and self.virtual_size.height > visible
            and total > visible
        ):
            self.virtual_size = size
            return
        following = self.is_anchored and self.scroll_y >= self.max_scroll_y
        self.set_reactive(Transcript.virtual_size, size)
        scrollbar = self.vertical_scrollbar
        scrollbar.window_virtual_size = total
        scrollbar.refresh()
        y = self.max_scroll_y if following else self.validate_scroll_y(self.scroll_y)
        self.set_reactive(Transcript.scroll_target_y, y)
        self.scroll_y = y

    def _queue_styling(self, entry: Entry, blocks: list[BlockPart]) -> None:
        look = self._look
        for block in blocks:
            if block.needs_styling(look):
                self._style_queue[block] = entry
        if self._style_queue:
            self._style_wanted.set()

    def _streaming_nearby(self) -> bool:
        """Whether a reply is streaming into this transcript or one beside it (a race pane)."""
        if self._reply is not None:
            return True
        try:
            return any(other._reply is not None for other in self.screen.query(Transcript))
        except Exception:  # not on a screen (yet, or any more)
            return False

    async def _pace_styling(self) -> None:
        """While replies stream, leave `STYLE_INTERVAL_S` after one Markdown rendering.

        A rendering runs on a thread that shares the interpreter lock with the loop that
        paints and with the threads that read and timestamp the streams: at thousands of tokens
        a second blocks finish faster than they can be rendered, and rendering them all then
        delayed both keys and timestamps by tens of milliseconds. Finished blocks stay plain
        until their turn; once nothing streams, the rest are rendered at once.
        """
        loop = asyncio.get_running_loop()
        due = self._styled_at + STYLE_INTERVAL_S
        while loop.time() < due and self._streaming_nearby():
            await asyncio.sleep(min(STYLE_POLL_S, due - loop.time()))

    async def _style_blocks(self) -> None:
        """Render queued blocks as Markdown in a thread, one at a time, newest first.

        The thread shares the GIL with the event loop, but the interpreter switches every 5 ms,
        so a long block delays a frame by milliseconds rather than freezing input.
        """
        while True:
            await self._style_wanted.wait()
            self._style_wanted.clear()
            while self._style_queue:
                if self._streaming_nearby():
                    await self._pace_styling()
                    if not self._style_queue:
                        break
                block, entry = self._style_queue.popitem()
                look = self._look
                if not block.needs_styling(look):
                    continue
                self._styling = True
                try:
                    strips = await asyncio.to_thread(
                        render_markdown, block.source, look.width, look.markdown
                    )
                    self._styled_at = asyncio.get_running_loop().time()
                except Exception as error:  # a rendering bug must leave the block plain, no more
                    block.styleable = False
                    self.log.error(f"Markdown rendering failed: {error!r}")
                    continue
                finally:
                    self._styling = False
                if look is self._look and self._is_current(entry):
                    block.set_styled(strips, look)
                    self._entry_changed(entry, entry.part_changed(block))
