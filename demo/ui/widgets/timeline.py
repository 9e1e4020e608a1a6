"""Tokens received against time since the race started: one line per backend, drawn in braille.

A ready-made plotting widget (textual-plotext) was measured at ~40 ms per refresh with four
series at 120×36 — far too slow beside four streaming panes — so this draws its own: each text
cell is a 2×4 braille dot grid, every series is evaluated once per dot column (a bisection into
its points), and a refresh costs about a millisecond whatever the number of points.

While a race streams, the screen samples each lane's token count at ≤10 Hz; when a lane ends its
line is redrawn from the turn's own chunk arrival times, so the final picture is exact.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from demo.core.events import ContentChunk, StreamEvent
from demo.core.metrics import estimate_tokens

LANE_COLOURS = ("#5fd7ff", "#ffaf5f", "#87d75f", "#d787ff")
"""One colour per lane, in lane order: the pane header and the timeline line share it."""

_BRAILLE_BASE = 0x2800
# Dot bits of a braille cell, indexed [column][row from the top].
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)

Point = tuple[float, float]
"""(seconds since the race started, tokens received by then)."""


def lane_colour(index: int) -> str:
    """The colour of the lane at `index` (colours repeat after four)."""
    return LANE_COLOURS[index % len(LANE_COLOURS)]


def arrival_curve(
    events: Iterable[StreamEvent | object], origin_ns: int, total_tokens: int | None = None
) -> list[Point]:
    """A turn's exact curve: cumulative tokens at each content chunk's arrival time.

    The curve stays at zero until the first chunk (so the wait for the first token reads as a
    flat line, not a slope). Per-chunk counts are estimates from the text; with `total_tokens`
    (the server's usage) they are scaled so the line ends at the reported count.

    Args:
        events: The turn's events in arrival order (other kinds are skipped).
        origin_ns: The race's start, on the same clock as the events.
        total_tokens: The server's token count, when it reported one.
    """
    arrivals: list[tuple[float, int]] = []
    running = 0
    for event in events:
        if isinstance(event, ContentChunk) and (event.text or event.reasoning):
            running += estimate_tokens(event.text) + estimate_tokens(event.reasoning)
            arrivals.append(((event.t_ns - origin_ns) / 1e9, running))
    if not arrivals:
        return []
    scale = total_tokens / running if total_tokens and running else 1.0
    points: list[Point] = [(0.0, 0.0), (arrivals[0][0], 0.0)]
    points.extend((t, count * scale) for t, count in arrivals)
    return points


def nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10ⁿ) ≥ `value`.

    Fine enough steps that the data fills most of the axis, round enough to read at a glance.
    """
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in _NICE_STEPS:
        if value <= step * magnitude * (1 + 1e-9):
            return step * magnitude
    return 10.0 * magnitude


@dataclass(slots=True)
class _Series:
    name: str
    colour: str
    times: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    exact: bool = False

    def at(self, t: float) -> float | None:
        """Tokens at time `t`, interpolated between points; None outside the data."""
        times = self.times
        if not times or t < times[0] or t > times[-1]:
            return None
        i = bisect.bisect_right(times, t)
        if i >= len(times):
            return self.counts[-1]
        t0, t1 = times[i - 1], times[i]
        c0, c1 = self.counts[i - 1], self.counts[i]
        if t1 <= t0:
            return c1
        return c0 + (c1 - c0) * (t - t0) / (t1 - t0)


class Timeline(Widget):
    """The race at a glance: who got tokens first, who got them faster, who finished first."""

    DEFAULT_CSS = """
    Timeline {
        height: 9;
        padding: 0 1;
    }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._series: dict[str, _Series] = {}

    # Public interface

    def set_lanes(self, lanes: Sequence[tuple[str, str]]) -> None:
        """Start over with one empty line per (name, colour)."""
        self._series = {name: _Series(name, colour) for name, colour in lanes}
        self.refresh()

    def reset(self) -> None:
        """Empty every line (a new race), keeping the lanes and their colours."""
        for series in self._series.values():
            series.times.clear()
            series.counts.clear()
            series.exact = False
        self.refresh()

    def sample(self, name: str, t_s: float, tokens: float) -> None:
        """Add a live sample; ignored once the lane's exact line is in, or if time went back."""
        series = self._series.get(name)
        if series is None or series.exact:
            return
        if series.times and t_s < series.times[-1]:
            return
        series.times.append(t_s)
        series.counts.append(tokens)
        self.refresh()

    def set_curve(self, name: str, points: Sequence[Point]) -> None:
        """Replace a lane's line by its exact curve (see `arrival_curve`)."""
        series = self._series.get(name)
        if series is None:
            return
        series.times = [t for t, _ in points]
        series.counts = [c for _, c in points]
        series.exact = True
        self.refresh()

    def points(self, name: str) -> list[Point]:
        """The points of a lane's line, oldest first."""
        series = self._series[name]
        return list(zip(series.times, series.counts, strict=True))

    def is_exact(self, name: str) -> bool:
        """Whether the lane's line is its exact final curve rather than live samples."""
        return self._series[name].exact

    # Drawing

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        return self.draw(width, height)

    def draw(self, width: int, height: int) -> Text:
        """The whole chart as text of `width` × `height` cells."""
        text = Text(no_wrap=True, overflow="crop", end="")
        text.append_text(self._legend())
        plot_rows = height - 3
        series = [s for s in self._series.values() if s.times]
        if plot_rows < 1 or width < 12:
            return text
        t_max = nice_ceiling(max((s.times[-1] for s in series), default=1.0))
        y_top = nice_ceiling(max((max(s.counts) for s in series), default=1.0))
        gutter = max(len(f"{y_top:,.0f}"), 1) + 1
        columns = width - gutter - 1
        cells = _raster(series, columns, plot_rows, t_max, y_top)
        axis = Style(dim=True)
        for row in range(plot_rows):
            text.append("\n")
            if row == 0:
                label = f"{y_top:,.0f}".rjust(gutter - 1) + " ┤"
            elif row == plot_rows // 2 and plot_rows >= 4:
                label = f"{y_top / 2:,.0f}".rjust(gutter - 1) + " ┤"
            else:
                label = " " * gutter + "│"
            text.append(label, style=axis)
            _append_row(text, cells[row])
        text.append("\n")
        text.append("0".rjust(gutter - 1) + " └" + "─" * columns, style=axis)
        text.append("\n")
        text.append_text(_time_labels(gutter + 1, columns, t_max))
        return text

    def _legend(self) -> Text:
        legend = Text()
        legend.append("tokens", style="dim")
        if not self._series:
            legend.append("   no race yet", style="dim")
        for series in self._series.values():
            legend.append("   ")
            legend.append("━━ ", style=Style(color=series.colour, bold=True))
            legend.append(series.name, style="bold")
            if series.counts:
                legend.append(f" {series.counts[-1]:,.0f}", style="dim")
        return legend


def _raster(
    series: Sequence[_Series], columns: int, rows: int, t_max: float, y_top: float
) -> list[list[tuple[int, str | None]]]:
    """Braille bits and colour of every plot cell, top row first."""
    cells: list[list[tuple[int, str | None]]] = [[(0, None)] * columns for _ in range(rows)]
    dots_x, dots_y = columns * 2, rows * 4
    for line in series:
        previous: int | None = None
        for x in range(dots_x):
            value = line.at((x + 0.5) / dots_x * t_max)
            if value is None:
                previous = None
                continue
            y = min(dots_y - 1, max(0, round(value / y_top * (dots_y - 1))))
            low, high = (y, y) if previous is None else (min(previous, y), max(previous, y))
            previous = y
            column, bit_column = divmod(x, 2)
            for dot in range(low, high + 1):
                row, bit_row = divmod(dots_y - 1 - dot, 4)
                bits, _ = cells[row][column]
                cells[row][column] = (bits | _DOTS[bit_column][bit_row], line.colour)
    return cells


def _append_row(text: Text, row: list[tuple[int, str | None]]) -> None:
    """One plot row, as runs of same-coloured characters (few spans, cheap to render)."""
    run: list[str] = []
    run_colour: str | None = None
    for bits, colour in row:
        colour = colour if bits else None
        if colour != run_colour and run:
            text.append("".join(run), style=Style(color=run_colour) if run_colour else None)
            run = []
        run_colour = colour
        run.append(chr(_BRAILLE_BASE + bits) if bits else " ")
    if run:
        text.append("".join(run), style=Style(color=run_colour) if run_colour else None)


def _time_labels(indent: int, columns: int, t_max: float) -> Text:
    """Seconds under the axis: 0, the middle and the end."""
    line = [" "] * (indent + columns)
    for fraction in (0.0, 0.5, 1.0):
        label = f"{_number(t_max * fraction)} s"
        position = indent + round(fraction * (columns - 1))
        start = min(max(0, position - len(label) // 2), len(line) - len(label))
        if fraction == 0.0:
            start = indent - 1
        line[start : start + len(label)] = list(label)
    return Text("".join(line), style="dim")


def _number(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value:,.0f}"
