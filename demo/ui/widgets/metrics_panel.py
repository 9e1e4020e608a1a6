"""The instrument panel: this turn's figures beside the previous turn's, and a speed trace."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from demo.core.metrics import TurnMetrics
from demo.core.units import rate, seconds, server_timing, tokens
from demo.core.voice import VoiceFigures
from demo.ui.widgets.rate_trace import RateTrace


@dataclass(frozen=True, slots=True)
class PanelFigures:
    """What one column of the panel shows: a turn's figures and the live rate while streaming."""

    backend: str
    metrics: TurnMetrics
    live_rate: float | None = None


def _row_values(figures: PanelFigures | None) -> list[Text]:
    if figures is None:
        return [Text("—", style="dim")] * 8
    m = figures.metrics
    live = figures.live_rate if not m.finished else m.decode_tokens_per_s
    status = "streaming…"
    if m.finished:
        status = "cancelled" if m.cancelled else ("error" if m.error else "done")
    token_style = "" if m.output_tokens_source == "usage" else "italic"
    return [
        Text(figures.backend, style="bold"),
        Text(seconds(m.ttft_s), style="bold"),
        Text(rate(live)),
        Text(rate(m.decode_tokens_per_s) if m.finished else "—", style="bold"),
        Text(tokens(m.output_tokens, m.output_tokens_source), style=token_style),
        Text(seconds(m.e2e_s) if m.finished else "—"),
        Text(
            f"{seconds(m.chunk_gap_p50_s)} / {seconds(m.chunk_gap_p95_s)}"
            if m.chunk_gap_p50_s is not None
            else "—"
        ),
        Text(status, style="red" if m.error else ("yellow" if m.cancelled else "dim")),
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


class MetricsPanel(Vertical):
    """Reads like an instrument: fixed rows, current turn against the previous one."""

    DEFAULT_CSS = """
    MetricsPanel {
        width: 46;
        padding: 0 1;
        border-left: vkey $primary 30%;
    }
    MetricsPanel #figures { height: auto; }
    MetricsPanel #server { height: auto; color: $text-muted; margin-top: 1; }
    MetricsPanel #voice { height: auto; margin-top: 1; }
    MetricsPanel #spark-label { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._current: PanelFigures | None = None
        self._previous: PanelFigures | None = None
        self._trace: list[float] = []

    def compose(self) -> ComposeResult:
        yield Static(id="figures")
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

    def show(self, figures: PanelFigures) -> None:
        """Update the current column; called at most ~10×/s while streaming."""
        self._current = figures
        m = figures.metrics
        sample = figures.live_rate if not m.finished else m.decode_tokens_per_s
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
        table.add_row(Text(""), Text("this turn", style="underline"), Text("previous"))
        now = _row_values(self._current)
        before = _row_values(self._previous)
        for label, current, previous in zip(_LABELS, now, before, strict=True):
            table.add_row(label, current, previous)
        self.query_one("#figures", Static).update(table)
