"""One lane of a race: which backend it is, its replies, its own live figures and its progress.

A pane is the `FiguresView` of its lane's `ReplyPump`: the pump writes the reply into the pane's
transcript and calls `show` with fresh figures about ten times a second, so each lane is measured
and drawn exactly as the single-backend chat is — side by side.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from demo.backends.base import BackendSpec
from demo.core.units import rate, seconds
from demo.ui.widgets.metrics_panel import PanelFigures
from demo.ui.widgets.transcript import Transcript

KIND_BADGE = {"lab": "black on #d7af5f", "remote": "black on #5fafd7", "local": "black on #87d787"}
"""Badge colours of the backend kinds, as in the backend bar."""


def ordinal(place: int) -> str:
    """1 → "1st", 2 → "2nd", 3 → "3rd", 4 → "4th"."""
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"


def status_of(figures: PanelFigures) -> str:
    """streaming…, showing… (a feel still holds text back), done, error or cancelled."""
    m = figures.metrics
    shown = figures.shown if figures.felt else None
    if shown is not None and m.finished:
        if not shown.finished:
            return "showing…"
        m = shown  # a cancel under a feel cuts what was shown, not what arrived
    if not m.finished:
        return "streaming…"
    if m.error:
        return "error"
    return "cancelled" if m.cancelled else "done"


def figures_line(figures: PanelFigures | None) -> Text:
    """The lane's true figures on one line: TTFT, tokens/s (live, then decode), E2E."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if figures is None:
        text.append("TTFT — · — tok/s · E2E —", style="dim")
        return text
    m = figures.metrics
    if figures.felt:
        text.append("true ", style="italic")
    text.append("TTFT ", style="dim")
    text.append(seconds(m.ttft_s), style="bold")
    text.append(" · ", style="dim")
    if m.finished:
        text.append("decode ", style="dim")
        text.append(rate(m.decode_tokens_per_s), style="bold")
    else:
        text.append("live ", style="dim")
        # Under a feel the live rate is the shown one, which the line below carries.
        text.append(rate(None if figures.felt else figures.live_rate))
    text.append(" · E2E ", style="dim")
    text.append(seconds(m.e2e_s) if m.finished else "—")
    return text


def shown_line(figures: PanelFigures) -> Text:
    """Under a feel, what was shown: the feel's label, then shown TTFT, tokens/s and E2E."""
    shown = figures.shown
    feel = figures.feel
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(feel.label() if feel is not None else "shown", style="italic yellow")
    if shown is None:
        return text
    text.append(": TTFT ", style="dim")
    text.append(seconds(shown.ttft_s), style="bold")
    text.append(" · ", style="dim")
    text.append(rate(shown.decode_tokens_per_s if shown.finished else figures.live_rate))
    text.append(" · E2E ", style="dim")
    text.append(seconds(shown.e2e_s) if shown.finished else "—")
    return text


_STATUS_STYLE = {"error": "bold red", "cancelled": "bold yellow", "done": "bold green"}


class LaneProgress(Widget):
    """Tokens so far against the best estimate of the total, and the lane's status, on one row.

    Textual's `ProgressBar` shows a percentage; a race wants the count itself beside the bar
    (and "≈" when it is an estimate), so the row is drawn here.
    """

    DEFAULT_CSS = """
    LaneProgress {
        height: 1;
        padding: 0 1;
    }
    """

    count: reactive[int] = reactive(0)
    total: reactive[int | None] = reactive(None)
    estimated: reactive[bool] = reactive(False)
    status: reactive[str] = reactive("idle")

    def __init__(self, colour: str) -> None:
        super().__init__()
        self.colour = colour

    def render(self) -> Text:
        count, total, status = self.count, self.total, self.status
        mark = "≈" if self.estimated else ""
        label = f" {mark}{count:,} tok" if total is None else f" {mark}{count:,} / {total:,} tok"
        tail = Text(no_wrap=True)
        tail.append(label)
        tail.append(" · ", style="dim")
        tail.append(status, style=_STATUS_STYLE.get(status, "italic"))
        width = max(0, self.content_size.width - tail.cell_len)
        filled = width if total is None and status == "done" else 0
        if total:
            filled = round(width * min(count, total) / total)
        text = Text(no_wrap=True, overflow="crop")
        text.append("━" * filled, style=Style(color=self.colour))
        text.append("─" * (width - filled), style="dim")
        text.append_text(tail)
        return text


class RacePane(Vertical):
    """A backend's lane: header, transcript, a line of figures and a line of progress."""

    DEFAULT_CSS = """
    RacePane {
        height: 1fr;
        width: 1fr;
    }
    RacePane > .race-pane--header {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    RacePane > Transcript {
        height: 1fr;
    }
    RacePane > .race-pane--figures {
        height: 1;
        padding: 0 1;
    }
    RacePane > .race-pane--shown {
        height: 1;
        padding: 0 1;
        display: none;
    }
    """

    place: reactive[int | None] = reactive(None)
    """Finish place in the current race (1 = first), once the lane has finished."""
    status: reactive[str] = reactive("idle", layout=False)
    """idle, streaming…, done, error or cancelled: the lane's current reply."""

    class Selected(Message):
        """The user clicked into or focused this pane: it is the one the feel controls act on."""

        def __init__(self, pane: RacePane) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, spec: BackendSpec, colour: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self.colour = colour
        self.figures: PanelFigures | None = None
        """The latest figures shown (None before the first turn)."""
        self._expected: int | None = None
        self.styles.border_left = ("thick", Color.parse(colour))

    @property
    def backend(self) -> str:
        return self.spec.name

    @property
    def transcript(self) -> Transcript:
        return self.query_one(Transcript)

    def compose(self) -> ComposeResult:
        yield Static(self._header(), classes="race-pane--header")
        yield Transcript()
        yield Static(figures_line(None), classes="race-pane--figures")
        yield Static(classes="race-pane--shown")
        yield LaneProgress(self.colour)

    # FiguresView (what the lane's ReplyPump calls)

    def start_turn(self, backend: str) -> None:
        """A new race begins for this lane: figures, place and progress start over."""
        self.figures = None
        self.place = None
        self.status = "streaming…"
        self.query_one(".race-pane--figures", Static).update(figures_line(None), layout=False)
        self._hide_shown()
        progress = self.query_one(LaneProgress)
        progress.count, progress.total, progress.estimated = 0, self._expected, False
        progress.status = self.status

    def show(self, figures: PanelFigures) -> None:
        """Fresh figures, ~10 times a second while streaming and once at the end.

        The pane's one-line rows never change height, so their updates skip the layout pass:
        with four panes refreshed ten times a second, reflowing the screen for each would cost
        more than the streaming text.
        """
        self.figures = figures
        m = figures.metrics
        self.status = status_of(figures)
        self.query_one(".race-pane--figures", Static).update(figures_line(figures), layout=False)
        shown = self.query_one(".race-pane--shown", Static)
        if shown.display != figures.felt:
            shown.display = figures.felt
        if figures.felt:
            shown.update(shown_line(figures), layout=False)
        progress = self.query_one(LaneProgress)
        progress.count = m.output_tokens
        progress.estimated = m.output_tokens_source == "estimate"
        # A complete reply is its own total; any other is measured against the estimate.
        progress.total = None if self.status == "done" else self._expected
        progress.status = self.status

    # What the race screen tells the pane

    def expect(self, total_tokens: int | None) -> None:
        """The best estimate of the reply's length: the first finished lane's, else max_tokens."""
        self._expected = total_tokens
        progress = self.query_one(LaneProgress)
        if progress.status == "streaming…":
            progress.total = total_tokens

    @property
    def expected(self) -> int | None:
        return self._expected

    def clear(self) -> None:
        """Forget the lane's replies (its history is cleared by the race)."""
        self.transcript.clear()
        self.figures = None
        self.place = None
        self.status = "idle"
        self.query_one(".race-pane--figures", Static).update(figures_line(None), layout=False)
        self._hide_shown()
        progress = self.query_one(LaneProgress)
        progress.count, progress.total, progress.estimated = 0, None, False
        progress.status = "idle"

    # Internals

    def _hide_shown(self) -> None:
        shown = self.query_one(".race-pane--shown", Static)
        if shown.display:
            shown.display = False

    def watch_place(self) -> None:
        self._refresh_header()

    def _refresh_header(self) -> None:
        if self.is_mounted:
            self.query_one(".race-pane--header", Static).update(self._header(), layout=False)

    def _header(self) -> Text:
        spec = self.spec
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.place is not None:
            text.append(f" {ordinal(self.place)} ", style=Style(color="black", bgcolor=self.colour))
            text.append(" ")
        text.append("━━ ", style=Style(color=self.colour, bold=True))
        text.append(spec.name, style=Style(color=self.colour, bold=True))
        text.append(" ")
        text.append(f" {spec.kind} ", style=KIND_BADGE.get(spec.kind, "reverse"))
        if spec.model != spec.name:
            text.append(f" {spec.model}", style="dim")
        missing = spec.missing_key()
        if missing:
            text.append(f"  set {missing} to race it", style="bold red")
        elif spec.description:
            text.append(f" · {spec.description}", style="dim")
        return text

    def on_descendant_focus(self, _: events.DescendantFocus) -> None:
        self.post_message(self.Selected(self))

    def on_click(self, _: events.Click) -> None:
        self.post_message(self.Selected(self))
