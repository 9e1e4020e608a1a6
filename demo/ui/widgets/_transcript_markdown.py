"""Finished Markdown blocks rendered to rows of segments by Rich, safe to run in a thread.

Rendering Markdown costs about 4 ms per KB, so a reply is never rendered whole: each block is
rendered once, when it is finished, away from the event loop.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Final

from markdown_it import MarkdownIt
from rich.console import Console
from rich.markdown import Markdown
from rich.segment import Segment
from rich.style import Style
from rich.theme import Theme

from demo.core.textwrap import sanitize

MARKDOWN_COMPONENTS: Final[dict[str, str]] = {
    "markdown.h1": "transcript--md-h1",
    "markdown.h1.border": "transcript--md-h1",
    "markdown.h2": "transcript--md-h2",
    "markdown.h3": "transcript--md-h3",
    "markdown.h4": "transcript--md-h4",
    "markdown.h5": "transcript--md-h4",
    "markdown.h6": "transcript--md-h4",
    "markdown.code": "transcript--md-code",
    "markdown.link": "transcript--md-link",
    "markdown.link_url": "transcript--md-link-url",
    "markdown.block_quote": "transcript--md-quote",
    "markdown.item.bullet": "transcript--md-bullet",
    "markdown.item.number": "transcript--md-bullet",
    "markdown.hr": "transcript--md-rule",
    "markdown.table.border": "transcript--md-rule",
    "markdown.table.header": "transcript--md-table-header",
}
"""Rich's Markdown style names, and the widget component class that styles each."""

_NEUTRAL: Final = ("markdown.list", "markdown.code_block")
"""Rich styles that default to ANSI cyan; cleared so the widget's colours show instead."""


@dataclass(frozen=True, slots=True)
class MarkdownLook:
    """How finished blocks look: Rich styles for Markdown elements, a Pygments theme for code."""

    theme: Theme
    code_theme: str


def markdown_look(styles: dict[str, Style], *, dark: bool) -> MarkdownLook:
    """A look from the widget's component styles (keyed by component class name)."""
    theme_styles: dict[str, Style] = {name: Style() for name in _NEUTRAL}
    for rich_name, component in MARKDOWN_COMPONENTS.items():
        theme_styles[rich_name] = styles.get(component, Style())
    return MarkdownLook(Theme(theme_styles), "monokai" if dark else "default")


_local = threading.local()


def _parser() -> MarkdownIt:
    """A parser per thread; raw HTML is disabled so that `<tag>` in a reply is shown as text."""
    parser: MarkdownIt | None = getattr(_local, "parser", None)
    if parser is None:
        parser = MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])
        _local.parser = parser
    return parser


class _LiteralMarkdown(Markdown):
    """Rich's Markdown, except that raw HTML shows as text (Rich would silently drop it)."""

    def __init__(self, markup: str, code_theme: str) -> None:
        super().__init__("", code_theme=code_theme, hyperlinks=False)
        self.markup = markup
        self.parsed = _parser().parse(markup)


def _safe(line: list[Segment]) -> list[Segment]:
    """The rendered line with control characters replaced again.

    Markdown entities such as `&#x202e;` decode to characters the sanitised source cannot contain.
    """
    cleaned = line
    for index, segment in enumerate(line):
        text = sanitize(segment.text)
        if text is not segment.text:
            if cleaned is line:
                cleaned = list(line)
            cleaned[index] = Segment(text, segment.style, segment.control)
    return cleaned


def _is_blank(line: list[Segment]) -> bool:
    return all(
        not segment.text.strip() and (segment.style is None or segment.style.bgcolor is None)
        for segment in line
    )


def render_markdown(source: str, width: int, look: MarkdownLook) -> list[list[Segment]]:
    """Render one block to rows of segments at `width`, without blank rows around it.

    Links are shown with their target (`text (url)`), never as hidden terminal hyperlinks, since
    the text is untrusted. Thread-safe: each call has its own Console.
    """
    console = Console(
        width=width,
        theme=look.theme,
        file=io.StringIO(),
        color_system="truecolor",
        force_terminal=True,
        legacy_windows=False,
        markup=False,
        emoji=False,
        highlight=False,
    )
    lines = console.render_lines(
        _LiteralMarkdown(source, look.code_theme), console.options.update(width=width), pad=False
    )
    start, end = 0, len(lines)
    while start < end and _is_blank(lines[start]):
        start += 1
    while end > start and _is_blank(lines[end - 1]):
        end -= 1
    return [_safe(line) for line in lines[start:end]]
