"""The Transcript widget in a real (headless) Textual app, inspected through the rows it draws."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.strip import Strip

from demo.ui.widgets import transcript as transcript_module
from demo.ui.widgets._transcript_parts import Look, Stack
from demo.ui.widgets.transcript import Transcript

SIZE = (80, 24)
CONTENT_WIDTH = 76
"""80 columns minus the scrollbar gutter (2) and the padding (1 + 1)."""


class TranscriptApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Transcript()


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5) -> None:
    """Let the app run until `condition` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause()


def visible(transcript: Transcript) -> list[Strip]:
    return [transcript.render_line(y) for y in range(transcript.size.height)]


def visible_text(transcript: Transcript) -> list[str]:
    return ["".join(segment.text for segment in strip).rstrip() for strip in visible(transcript)]


def showing(transcript: Transcript, row: str) -> Callable[[], bool]:
    """A condition: `row` is one of the rows on screen."""
    return lambda: row in visible_text(transcript)


def row_with(transcript: Transcript, needle: str) -> Strip:
    for strip in visible(transcript):
        if needle in strip.text:
            return strip
    raise AssertionError(f"{needle!r} not on screen: {visible_text(transcript)}")


def style_of(strip: Strip, text: str) -> Style:
    for segment in strip:
        if text in segment.text:
            return segment.style or Style()
    raise AssertionError(f"{text!r} not in {strip.text!r}")


async def test_streamed_text_appears_as_it_arrives() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.add_prompt("What is latency?", label="you → fast")
        transcript.start_reply(label="fast · lab")
        shown = ""
        for piece in ["Latency ", "is the ", "time between ", "a request and ", "its answer."]:
            transcript.append(piece)
            shown += piece
            await wait_until(pilot, showing(transcript, shown.strip()))
        rows = visible_text(transcript)
        assert rows[:5] == ["you → fast", "What is latency?", "", "fast · lab", shown.strip()]
        assert transcript.reply_text == shown


async def test_markup_ansi_and_html_in_a_reply_are_shown_literally() -> None:
    hostile = "[bold]x[/bold] [link=http://e.x]y[/link] \x1b[31mred\x1b[0m \x9b2J <b>tag</b>"
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="\x1b[2Jlabel")
        transcript.append(hostile)
        await wait_until(pilot, lambda: any("red" in row for row in visible_text(transcript)))
        expected = "[bold]x[/bold] [link=http://e.x]y[/link] ␛[31mred␛[0m \ufffd2J <b>tag</b>"
        assert expected in visible_text(transcript)
        # Once finished, the block is rendered as Markdown: still literal.
        transcript.end_reply()
        await wait_until(pilot, lambda: not transcript.is_styling)
        await pilot.pause()
        assert expected in visible_text(transcript)
        assert "␛[2Jlabel" in visible_text(transcript)
        for strip in visible(transcript):
            for segment in strip:
                assert not any(
                    ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in segment.text
                )
                assert segment.style is None or segment.style.link is None
        assert not style_of(row_with(transcript, "[bold]x"), "[bold]x").bold
        assert transcript.reply_text == hostile
        # What the compositor puts on screen, not only what the widget hands it.
        screen = app.export_screenshot()
        assert "[bold]x[/bold]" in screen and "␛[31mred␛[0m" in screen
        assert "\x1b" not in screen and "\x9b" not in screen


async def test_markdown_entities_cannot_smuggle_control_characters() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="fast")
        transcript.append("a &#x202e;b &#27;[31m c &#x9b; d &amp; e")
        transcript.end_reply()
        await wait_until(pilot, showing(transcript, "a \ufffdb \ufffd[31m c \ufffd d & e"))


async def test_finished_blocks_are_styled_while_the_reply_streams() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="fast")
        transcript.append("Some **strong** words here.\n\n")
        await pilot.pause()
        # The open block is plain text: the Markdown markers are still there.
        assert "Some **strong** words here." in visible_text(transcript)
        transcript.append("Next paragraph, still **open**")
        await wait_until(pilot, lambda: "Some strong words here." in visible_text(transcript))
        assert style_of(row_with(transcript, "Some strong"), "strong").bold
        assert not style_of(row_with(transcript, "Some strong"), "Some").bold
        assert "Next paragraph, still **open**" in visible_text(transcript)


async def test_the_end_of_a_reply_renders_its_last_block_as_markdown() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="fast")
        transcript.append("## Heading\n\n- one\n- two\n\n```python\nx = 1\n```")
        # Finished blocks are rendered while the reply is open (paced, newest first)…
        await wait_until(pilot, lambda: "## Heading" not in visible_text(transcript))
        assert "```python" in visible_text(transcript)  # …the open one stays verbatim
        transcript.end_reply()
        await wait_until(pilot, lambda: "```python" not in visible_text(transcript))
        rows = visible_text(transcript)
        assert "Heading" in rows
        assert style_of(row_with(transcript, "Heading"), "Heading").bold
        assert any(row.strip() == "• one" for row in rows)
        code = row_with(transcript, "x = 1")
        assert style_of(code, "x").bgcolor is not None


async def test_while_a_reply_streams_markdown_is_rendered_one_block_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An interval longer than the test: only the pacing can hold the other blocks back.
    monkeypatch.setattr(transcript_module, "STYLE_INTERVAL_S", 60.0)
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="fast")
        transcript.append("# One\n\n# Two\n\n# Three\n\nstill typing")
        await wait_until(pilot, lambda: "# Three" not in visible_text(transcript))
        await pilot.pause(0.2)
        rows = visible_text(transcript)
        assert "# One" in rows and "# Two" in rows  # waiting their turn, shown plain
        transcript.end_reply()  # nothing streams any more: the rest are rendered at once
        await wait_until(pilot, lambda: not transcript.is_styling)
        assert not any(row.startswith("#") for row in visible_text(transcript))


async def test_code_in_an_open_block_is_shown_verbatim() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="fast")
        transcript.append("```python\ndef f(x):\n    return  x * 2   # **not bold**\n")
        await pilot.pause()
        rows = visible_text(transcript)
        assert rows[1:4] == ["```python", "def f(x):", "    return  x * 2   # **not bold**"]


async def test_reasoning_is_shown_dimmed_above_the_answer() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="thinker")
        transcript.append(reasoning="Let me think about ")
        transcript.append(reasoning="this.")
        transcript.append("The answer.")
        transcript.append(reasoning=" Still thinking.")
        await pilot.pause()
        rows = visible_text(transcript)
        assert rows[:4] == [
            "thinker",
            "Let me think about this. Still thinking.",
            "",
            "The answer.",
        ]
        reasoning = style_of(row_with(transcript, "Let me think"), "Let me think")
        expected = transcript.get_component_rich_style("transcript--reasoning")
        assert reasoning.italic and reasoning.color == expected.color
        assert transcript.reply_text == "The answer."


async def test_view_follows_the_stream_until_the_user_scrolls_up() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.focus()
        transcript.start_reply(label="fast")
        for number in range(30):
            transcript.append(f"line {number}\n")
            await pilot.pause()
            assert transcript.scroll_y == transcript.max_scroll_y
            assert f"line {number}" in visible_text(transcript)
        await pilot.press("pageup")
        await pilot.wait_for_scheduled_animations()
        await wait_until(pilot, lambda: transcript.scroll_y < transcript.max_scroll_y)
        where = transcript.scroll_y
        shown = visible_text(transcript)
        for number in range(30, 40):
            transcript.append(f"line {number}\n")
            await pilot.pause()
        await wait_until(pilot, lambda: transcript.virtual_size.height > 40)
        assert transcript.scroll_y == where
        assert visible_text(transcript) == shown
        await pilot.press("end")
        await pilot.wait_for_scheduled_animations()
        await wait_until(pilot, lambda: transcript.scroll_y == transcript.max_scroll_y)
        transcript.append("line 40\n")
        await wait_until(pilot, lambda: transcript.virtual_size.height > 42)
        await wait_until(pilot, lambda: transcript.scroll_y == transcript.max_scroll_y)
        assert "line 40" in visible_text(transcript)


async def test_a_new_prompt_brings_the_view_back_to_the_end() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.focus()
        transcript.start_reply(label="fast")
        transcript.append("".join(f"line {number}\n" for number in range(40)))
        transcript.end_reply()
        await wait_until(pilot, lambda: transcript.max_scroll_y > 0)
        await pilot.press("home")
        await pilot.wait_for_scheduled_animations()
        await wait_until(pilot, lambda: transcript.scroll_y == 0)
        transcript.add_prompt("next question", label="you")
        transcript.start_reply(label="fast")
        transcript.append("new answer")
        await wait_until(pilot, showing(transcript, "new answer"))
        assert transcript.scroll_y == transcript.max_scroll_y


async def test_end_reply_statuses_show_a_styled_note() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        cases = [
            ("done", None, None),
            ("cancelled", "cancelled — partial reply kept", "transcript--note-cancelled"),
            ("error", "HTTP 500: upstream failed", "transcript--note-error"),
            ("error", None, "transcript--note-error"),
        ]
        for number, (status, note, component) in enumerate(cases):
            transcript.clear()
            transcript.start_reply(label=f"reply {number}")
            transcript.append("Partial text")
            transcript.end_reply(status=status, note=note)
            await wait_until(pilot, lambda: not transcript.is_styling)
            await pilot.pause()
            rows = visible_text(transcript)
            if component is None:
                assert rows[:3] == [f"reply {number}", "Partial text", ""]
                continue
            shown = note or status
            assert rows[:3] == [f"reply {number}", "Partial text", shown]
            expected = transcript.get_component_rich_style(component).color
            assert style_of(row_with(transcript, shown), shown).color == expected


async def test_resize_rewraps_text_and_markdown() -> None:
    words = " ".join(f"word{number}" for number in range(40))
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="fast")
        transcript.append(f"**{words}**\n\n{words}")
        await wait_until(pilot, lambda: not transcript.is_styling)
        await pilot.pause()

        def content_rows() -> list[str]:
            return [row for row in visible_text(transcript) if row.startswith("word")]

        wide = content_rows()
        assert all(cell_len(row) <= CONTENT_WIDTH for row in wide)
        await pilot.resize_terminal(44, 24)
        await wait_until(pilot, lambda: transcript.scrollable_content_region.width == 40)
        await wait_until(pilot, lambda: not transcript.is_styling)
        await pilot.pause()
        narrow = content_rows()
        assert len(narrow) > len(wide)
        assert all(cell_len(row) <= 40 for row in narrow)
        assert " ".join(narrow).split() == words.split() * 2
        assert style_of(row_with(transcript, "word0"), "word0").bold


async def test_prompts_and_notices_are_styled_by_kind() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.add_prompt("**not markdown** [b]x[/b]", label="you → fast")
        transcript.add_notice("backend unreachable", level="error")
        transcript.add_notice("slow start", level="warning")
        await pilot.pause()
        rows = visible_text(transcript)
        assert rows[:6] == [
            "you → fast",
            "**not markdown** [b]x[/b]",
            "",
            "backend unreachable",
            "",
            "slow start",
        ]
        for text, component in [
            ("you → fast", "transcript--prompt-label"),
            ("backend unreachable", "transcript--notice-error"),
            ("slow start", "transcript--notice-warning"),
        ]:
            expected = transcript.get_component_rich_style(component).color
            assert style_of(row_with(transcript, text), text).color == expected


async def test_a_new_reply_ends_one_left_open_and_append_without_a_reply_is_ignored() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.append("nobody listens")
        transcript.start_reply(label="first")
        transcript.append("one")
        transcript.start_reply(label="second")
        transcript.append("two")
        await pilot.pause()
        rows = visible_text(transcript)
        assert rows[:7] == ["first", "one", "cancelled", "", "second", "two", ""]
        assert transcript.reply_text == "two"


async def test_clear_removes_everything() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.add_prompt("hello", label="you")
        transcript.start_reply(label="fast")
        transcript.append("text\n\nmore")
        await pilot.pause()
        transcript.clear()
        await pilot.pause()
        assert transcript.virtual_size.height == 0
        assert all(not row for row in visible_text(transcript))
        assert transcript.reply_text == ""
        transcript.append("ignored")
        assert transcript.virtual_size.height == 0


async def test_a_megabyte_chunk_without_newline_does_not_freeze_the_ui() -> None:
    chunk = ("lorem ipsum dolor sit amet " * 40_000)[:1_000_000]
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.start_reply(label="big")
        began = time.perf_counter()
        transcript.append(chunk)
        transcript.end_reply()
        elapsed = time.perf_counter() - began
        assert elapsed < 0.5, f"append + end_reply took {elapsed:.3f} s"
        await wait_until(pilot, lambda: not transcript.is_styling)
        await wait_until(pilot, lambda: transcript.scroll_y == transcript.max_scroll_y)
        tail = chunk.split()[-4:]
        assert " ".join(tail) in " ".join(visible_text(transcript))
        assert transcript.virtual_size.height > 1_000_000 // CONTENT_WIDTH
        assert len(transcript.reply_text) == 1_000_000


async def test_theme_change_restyles_rows() -> None:
    app = TranscriptApp()
    async with app.run_test(size=SIZE) as pilot:
        transcript = app.query_one(Transcript)
        transcript.add_prompt("hello", label="you")
        await pilot.pause()
        before = style_of(row_with(transcript, "you"), "you").color
        app.theme = "textual-light"

        def label_style() -> Style:
            return transcript.get_component_rich_style("transcript--prompt-label")

        await wait_until(pilot, lambda: label_style().color != before)
        await wait_until(
            pilot, lambda: style_of(row_with(transcript, "you"), "you").color == label_style().color
        )


class _Rows:
    """A part of a given height, for testing the stack on its own."""

    def __init__(self, height: int) -> None:
        self.height = height

    def row(self, row: int, look: Look) -> list[Segment]:
        return []

    def relayout(self, look: Look) -> None:
        pass


def test_stack_finds_every_row_as_parts_grow_and_are_inserted() -> None:
    rng = random.Random(7)
    stack = Stack()
    parts: list[_Rows] = []
    for _ in range(300):
        action = rng.random()
        if action < 0.4 or not parts:
            part = _Rows(rng.choice([0, 0, 1, 3, 10]))
            index = rng.randint(0, len(parts))
            parts.insert(index, part)
            stack.insert(index, part)
        else:
            index = rng.randrange(len(parts))
            parts[index].height = rng.choice([0, 1, 2, 7])
            stack.update(index)
        expected = [(part, row) for part in parts for row in range(part.height)]
        assert stack.height == len(expected)
        for row in rng.sample(range(len(expected)), min(10, len(expected))):
            assert stack.locate(row) == expected[row]
