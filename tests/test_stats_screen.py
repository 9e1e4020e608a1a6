"""The stats screen, pushed on its own with fixed turn records (as the app will feed it)."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widgets import DataTable, Static

from demo.sessions.report import token_curve
from demo.sessions.stats import summarize_turns
from demo.sessions.summary import figure_text
from demo.ui.screens.stats import StatsScreen, latest_completed
from demo.ui.widgets.timeline import Timeline, lane_colour
from tests.support.turn_records import fixed_turn

SIZE = (120, 40)


def session_records() -> list[dict[str, Any]]:
    return [
        fixed_turn("fast", ttft_s=0.24, tokens_per_s=969.0, tokens=600, t0_ns=1_000_000_000),
        fixed_turn("slow", ttft_s=0.51, tokens_per_s=80.0, tokens=90, tokens_per_chunk=1),
        fixed_turn("fast", ttft_s=0.26, tokens_per_s=950.0, tokens=300, prompt="And Wellington?"),
        fixed_turn("slow", ttft_s=0.49, tokens_per_s=81.0, tokens=90, error_after=12),
    ]


class Host(App[None]):
    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__()
        self.records = records

    def on_mount(self) -> None:
        self.push_screen(StatsScreen(self.records))


def text_of(static: Static) -> str:
    return "\n".join(line.text for line in static.render_lines(static.region.reset_offset))


async def test_the_screen_shows_the_summary_the_chart_and_every_turn() -> None:
    records = session_records()
    app = Host(records)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        summary = text_of(screen.query_one("#stats-summary", Static))
        stats = summarize_turns(records)
        for name in ("fast", "slow"):
            assert name in summary
            assert figure_text("ttft_s", stats[name].ttft_s.p50) in summary
        assert "2 turns" in summary and "1 error" in summary

        timeline = screen.query_one(Timeline)
        # Each backend's latest completed turn: fast's second turn, slow's first (its second
        # failed), drawn exactly from their chunks.
        assert timeline.points("fast") == list(zip(*token_curve(records[2], 400), strict=True))
        assert timeline.points("slow") == list(zip(*token_curve(records[1], 400), strict=True))
        assert timeline.is_exact("fast") and timeline.is_exact("slow")
        assert screen.colours == {"fast": lane_colour(0), "slow": lane_colour(1)}

        table = screen.query_one(DataTable)
        assert table.row_count == 4
        last = [str(cell) for cell in table.get_row_at(3)]
        assert last[1] == "slow" and last[-1] == "error: connection"
        assert [str(c) for c in table.get_row_at(2)][3] == "And Wellington?"
        assert table.cursor_row == 3

        await pilot.press("escape")
        assert not isinstance(app.screen, StatsScreen)


async def test_an_empty_session_says_so() -> None:
    app = Host([])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        assert "No turns recorded yet." in text_of(screen.query_one("#stats-summary", Static))
        assert not screen.query(Timeline)


def test_latest_completed_skips_failed_and_empty_turns() -> None:
    records = session_records()
    latest = latest_completed(records)
    assert latest == {"slow": records[1], "fast": records[2]}


def test_the_records_are_copied() -> None:
    records = session_records()
    screen = StatsScreen(records)
    records.clear()
    assert len(screen.records) == 4
