"""The stats screen: the session so far, per backend, as `latency-demo report` summarises it.

It is built from turn records (the dicts a session file holds), not from live turns, so it shows
exactly what `report` would show for the same session and can be opened on any list of records.
The chart is the race timeline's: each backend's latest completed turn, tokens against time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from demo.core.units import rate, seconds
from demo.sessions.report import backend_names, token_curve, turn_rows
from demo.sessions.stats import backend_name, is_ok, summarize_turns
from demo.sessions.summary import summary_table
from demo.ui.widgets.timeline import Timeline, lane_colour

TIMELINE_POINTS = 400
"""Points per curve: the braille chart has at most a few hundred dot columns."""


def latest_completed(records: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each backend's most recent completed turn that streamed something."""
    latest: dict[str, Mapping[str, Any]] = {}
    for record in reversed(records):
        name = backend_name(record)
        if name not in latest and is_ok(record) and record.get("chunks"):
            latest[name] = record
    return latest


class StatsScreen(Screen[None]):
    """Per-backend figures of the session's turns, a chart and every turn."""

    DEFAULT_CSS = """
    StatsScreen #stats-title { height: 1; background: $panel; padding: 0 1; }
    StatsScreen #stats-summary { height: auto; padding: 0 1; }
    StatsScreen #stats-caption { height: 1; padding: 0 1; color: $text-muted; }
    StatsScreen #stats-timeline { height: 10; }
    StatsScreen #stats-turns { height: 1fr; min-height: 4; }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="latency.stats_close"),
    ]

    def __init__(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Show `records` (turn records as recorded, oldest first); the list is copied."""
        super().__init__()
        self.records = list(records)
        self.colours = {name: lane_colour(i) for i, name in enumerate(backend_names(records))}
        """A colour per backend in order of first appearance, as race lanes are coloured."""

    def compose(self) -> ComposeResult:
        count = len(self.records)
        backends = len(self.colours)
        yield Static(
            Text.assemble(
                ("Session statistics", "bold"),
                f"   {count} turn{'s' * (count != 1)}, {backends} backend{'s' * (backends != 1)}",
            ),
            id="stats-title",
        )
        if not self.records:
            yield Static(Text("No turns recorded yet.", style="dim"), id="stats-summary")
            yield Footer()
            return
        yield Static(summary_table(summarize_turns(self.records), self.colours), id="stats-summary")
        yield Static("Tokens over time: each backend's latest completed turn", id="stats-caption")
        yield Timeline(id="stats-timeline")
        yield DataTable(id="stats-turns", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        if not self.records:
            return
        timeline = self.query_one(Timeline)
        latest = latest_completed(self.records)
        timeline.set_lanes([(name, colour) for name, colour in self.colours.items()])
        for name, record in latest.items():
            times, counts = token_curve(record, TIMELINE_POINTS)
            timeline.set_curve(name, list(zip(times, counts, strict=True)))
        self._fill_turns(self.query_one(DataTable))

    def _fill_turns(self, table: DataTable[Any]) -> None:
        table.add_column("#")
        table.add_column("backend")
        table.add_column("mode")
        table.add_column("prompt")
        for label in ("TTFT", "decode", "tokens", "E2E"):
            table.add_column(Text(label, justify="right"))
        table.add_column("status")
        for row in turn_rows(self.records):
            tokens = "—" if row.output_tokens is None else f"{row.output_tokens:,}"
            if row.tokens_estimated and row.output_tokens is not None:
                tokens = "≈" + tokens
            status = Text(row.status, style="" if row.status == "ok" else "red")
            table.add_row(
                str(row.number),
                Text(row.backend, style=f"bold {self.colours[row.backend]}"),
                row.mode,
                row.prompt,
                *(
                    Text(value, justify="right")
                    for value in (
                        seconds(row.ttft_s),
                        rate(row.decode_tokens_per_s),
                        tokens,
                        seconds(row.e2e_s),
                    )
                ),
                status,
            )
        # The newest turn is the one just asked about.
        table.move_cursor(row=table.row_count - 1)
