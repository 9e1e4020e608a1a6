"""The instrument panel: this turn's figures beside the previous turn's, and a speed trace.

When a recorded turn is replayed, the right-hand column shows the figures it was recorded with
instead, so the re-measured figures can be read against them row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from demo.core.metrics import TurnMetrics
from demo.core.throttle import Feel
from demo.core.units import rate, seconds, server_timing, tokens
from demo.core.voice import VoiceFigures
from demo.ui.widgets.rate_trace import RateTrace


@dataclass(frozen=True, slots=True)
class PanelFigures:
    """What one column of the panel shows: a turn's figures and the live rate while streaming."""

    backend: str
    metrics: TurnMetrics
    live_rate: float | None = None
    """Tokens/s over the last second of what is shown (of what arrives, without a feel)."""
    shown: TurnMetrics | None = None
    """Figures of what was shown, when a feel held the reply back."""
    feel: Feel | None = None

    @property
    def felt(self) -> bool:
        """True when a feel changed how this turn was shown."""
        return self.feel is not None and self.feel.active


def _status(figures: PanelFigures) -> Text:
    m = figures.metrics
    if figures.felt and figures.shown is not None and m.finished and not figures.shown.finished:
        return Text("showing…", style="dim")
    if figures.felt and figures.shown is not None and figures.shown.finished:
        m = figures.shown  # a cancel under a feel cuts what was shown, not what arrived
    if not m.finished:
        return Text("streaming…", style="dim")
    if m.cancelled:
        return Text("cancelled", style="yellow")
    if m.error:
        return Text("error", style="red")
    return Text("done", style="dim")


def _gaps(m: TurnMetrics) -> Text:
    if m.chunk_gap_p50_s is None:
        return Text("—")
    return Text(f"{seconds(m.chunk_gap_p50_s)} / {seconds(m.chunk_gap_p95_s)}")


def _row_values(figures: PanelFigures | None) -> list[Text]:
    if figures is None:
        return [Text("—", style="dim")] * 8
    m = figures.metrics
    live = figures.live_rate if not m.finished else m.decode_tokens_per_s
    token_style = "" if m.output_tokens_source == "usage" else "italic"
    return [
        Text(figures.backend, style="bold"),
        Text(seconds(m.ttft_s), style="bold"),
        Text(rate(live)),
        Text(rate(m.decode_tokens_per_s) if m.finished else "—", style="bold"),
        Text(tokens(m.output_tokens, m.output_tokens_source), style=token_style),
        Text(seconds(m.e2e_s) if m.finished else "—"),
        _gaps(m),
        _status(figures),
    ]


def _felt_row_values(figures: PanelFigures | None) -> list[Text]:
    """The rows of `_FELT_LABELS`: true and shown side by side (the same without a feel)."""
    if figures is None:
        return [Text("—", style="dim")] * len(_FELT_LABELS)
    m = figures.metrics
    s = figures.shown if figures.felt and figures.shown is not None else m
    live = figures.live_rate if not s.finished else s.decode_tokens_per_s
    token_style = "" if m.output_tokens_source == "usage" else "italic"
    return [
        Text(figures.backend, style="bold"),
        Text(seconds(m.ttft_s), style="bold"),
        Text(seconds(s.ttft_s), style="bold"),
        Text(rate(live)),
        Text(rate(m.decode_tokens_per_s) if m.finished else "—", style="bold"),
        Text(rate(s.decode_tokens_per_s) if s.finished else "—", style="bold"),
        Text(tokens(m.output_tokens, m.output_tokens_source), style=token_style),
        Text(seconds(m.e2e_s) if m.finished else "—"),
        Text(seconds(s.e2e_s) if s.finished else "—"),
        _gaps(m),
        _status(figures),
    ]


_VERDICT_STYLE = {"good": "green", "fair": "yellow", "poor": "red"}

_LABELS = (
    "backend",
    "TTFT",
    "live tok/s",
    "decode",
    "tokens",
    "E2E",
    "gap p50/p95",
    "status",
)

_FELT_LABELS = (
    "backend",
    "TTFT (true)",
    "TTFT (shown)",
    "live (shown)",
    "decode (true)",
    "decode (shown)",
    "tokens",
    "E2E (true)",
    "E2E (shown)",
    "gap p50/p95",
    "status",
)
"""The rows while a feel is in play: every timing twice, as it arrived and as it was shown."""


class MetricsPanel(Vertical):
    """Reads like an instrument: fixed rows, current turn against the previous one."""

    DEFAULT_CSS = """
    MetricsPanel {
        width: 46;
        padding: 0 1;
        border-left: vkey $primary 30%;
    }
    MetricsPanel #figures { height: auto; }
    MetricsPanel #feel { height: auto; color: $warning; }
    MetricsPanel #server { height: auto; color: $text-muted; margin-top: 1; }
    MetricsPanel #voice { height: auto; margin-top: 1; }
    MetricsPanel #spark-label { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._current: PanelFigures | None = None
        self._previous: PanelFigures | None = None
        self._reference: PanelFigures | None = None
        self._reference_label = "recorded"
        self._trace: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(id="figures")
        yield Static(id="feel")
        yield Static(id="voice")
        yield Static(id="server")
        yield Static("tokens/s this reply", id="spark-label")
        yield RateTrace(id="trace")

    def on_mount(self) -> None:
        self.show_voice(None)
        self._render_table()

    def start_turn(self, backend: str) -> None:
        """A new turn begins: the last one becomes the 'previous' column."""
        if self._current is not None:
            self._previous = self._current
        self._current = None
        self._trace = []
        self.query_one(RateTrace).samples = ()
        self.query_one("#server", Static).update("")
        self.show_voice(None)
        self._render_table()

    def compare_with(self, figures: PanelFigures | None, label: str = "recorded") -> None:
        """Show `figures` in the right-hand column instead of the previous turn's.

        Args:
            figures: What to read this turn against (a replayed turn's recorded figures);
                None goes back to showing the previous turn.
            label: The column's heading.
        """
        self._reference = figures
        self._reference_label = label
        self._render_table()

    def show(self, figures: PanelFigures) -> None:
        """Update the current column; called at most ~10×/s while streaming."""
        self._current = figures
        m = figures.metrics
        traced = figures.shown if figures.felt and figures.shown is not None else m
        sample = figures.live_rate if not traced.finished else traced.decode_tokens_per_s
        if sample is not None:
            self._trace.append(sample)
            self.query_one(RateTrace).samples = tuple(self._trace)
        server = self.query_one("#server", Static)
        if m.server_timing:
            server.update(Text(server_timing(m.server_timing)))
        self._render_table()

    def show_voice(self, figures: VoiceFigures | None) -> None:
        """The voice stages of the current turn, voice-to-voice coloured by how it feels."""
        panel = self.query_one("#voice", Static)
        panel.display = figures is not None
        if figures is None:
            return
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        rtf = f" (RTF {figures.stt_rtf:.2f})" if figures.stt_rtf is not None else ""
        rows = [
            ("speech", seconds(figures.speech_s)),
            ("speech → text", seconds(figures.stt_s) + rtf),
            ("token → sentence", seconds(figures.first_sentence_s)),
            ("sentence → audio", seconds(figures.tts_first_audio_s)),
        ]
        for label, value in rows:
            table.add_row(label, value)
        style = _VERDICT_STYLE.get(figures.verdict or "", "")
        table.add_row(
            Text("voice → voice", style="bold"),
            Text(seconds(figures.voice_to_voice_s), style=f"bold {style}".strip()),
        )
        panel.update(table)

    def _render_table(self) -> None:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(justify="right", no_wrap=True, style="dim")
        current, previous = self._current, self._previous
        heading = "previous"
        if self._reference is not None:
            previous, heading = self._reference, self._reference_label
        table.add_row(Text(""), Text("this turn", style="underline"), Text(heading))
        felt = any(f is not None and f.felt for f in (current, previous))
        labels, values = (_FELT_LABELS, _felt_row_values) if felt else (_LABELS, _row_values)
        for label, now, before in zip(labels, values(current), values(previous), strict=True):
            table.add_row(label, now, before)
        self.query_one("#figures", Static).update(table)
        feel = self.query_one("#feel", Static)
        feel.display = felt
        if felt:
            label = current.feel.label() if current and current.feel and current.felt else "off"
            feel.update(Text(f"feel: {label}"))
