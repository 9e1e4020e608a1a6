"""The per-backend summary table: the terminal's `report` output and the stats screen's table.

One table, three rows per backend (TTFT, decode speed, end-to-end), so it fits an 80-column
terminal however many backends there are.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.table import Table
from rich.text import Text

from demo.core.units import rate, seconds
from demo.sessions.stats import BackendStats, Distribution

FIGURES: tuple[tuple[str, str], ...] = (
    ("ttft_s", "TTFT"),
    ("decode_tokens_per_s", "decode"),
    ("e2e_s", "E2E"),
)
"""The summarised figures and their labels, in row order."""


def figure_text(name: str, value: float | None) -> str:
    """A figure written as the rest of the app writes it (ms/s, tok/s)."""
    return rate(value) if name == "decode_tokens_per_s" else seconds(value)


def _cell(name: str, value: float | None) -> str:
    """A table cell: decode speed without its unit (the row label carries it), to save width."""
    if name != "decode_tokens_per_s" or value is None:
        return figure_text(name, value)
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def outcome(stats: BackendStats) -> str:
    """How many turns failed or were cancelled, or "no errors"."""
    parts = []
    if stats.errors:
        parts.append(f"{stats.errors} error{'s' * (stats.errors != 1)}")
    if stats.cancelled:
        parts.append(f"{stats.cancelled} cancelled")
    return ", ".join(parts) or "no errors"


def summary_table(
    stats: Mapping[str, BackendStats], colours: Mapping[str, str] | None = None
) -> Table:
    """Count, errors and mean/p50/p90/p99 of TTFT, decode and E2E for every backend.

    The backend column holds the name, the number of turns and the errors on the backend's
    three rows, which keeps the table within 80 columns.

    Args:
        stats: Per-backend statistics (`demo.sessions.stats.summarize_turns`).
        colours: A colour per backend name, to match the charts beside the table.
    """
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("backend", no_wrap=True)
    table.add_column("figure", no_wrap=True)
    for heading in ("mean", "p50", "p90", "p99"):
        table.add_column(heading, justify="right", no_wrap=True)
    for index, (name, backend) in enumerate(stats.items()):
        colour = (colours or {}).get(name)
        failed = backend.errors + backend.cancelled
        lead = (
            Text(name, style=f"bold {colour}" if colour else "bold"),
            Text(f"{backend.count} turn{'s' * (backend.count != 1)}", style="dim"),
            Text(outcome(backend), style="red" if failed else "dim"),
        )
        for row, (field, label) in enumerate(FIGURES):
            figures: Distribution = getattr(backend, field)
            table.add_row(
                lead[row],
                "decode tok/s" if field == "decode_tokens_per_s" else label,
                *(_cell(field, getattr(figures, q)) for q in ("mean", "p50", "p90", "p99")),
                end_section=row == len(FIGURES) - 1 and index < len(stats) - 1,
            )
    return table
