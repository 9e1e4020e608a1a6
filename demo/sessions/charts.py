"""The report's charts, drawn with matplotlib: the race picture and two distributions per backend.

matplotlib takes half a second to import, so only the `report` command imports this module, and
figures are plain `Figure` objects rendered by Agg (PNG) or the SVG backend: no pyplot, no
global state, no display needed.

Every turn's tokens-over-time curve is one segment of a single line per backend (segments are
separated by NaN), so a 1,000-turn session draws four lines rather than a thousand artists, and
the legend, the SVG and a test can all find one series per backend.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from demo.sessions.report import MAX_CURVE_POINTS, Record, backend_names, token_curve
from demo.sessions.stats import group_by_backend, metric_values, summarize_turns
from demo.sessions.summary import figure_text

REPORT_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#d62728",
    "#8c564b",
    "#e377c2",
    "#17becf",
)
"""Backend colours on white paper, in the same hue order as the TUI's lane colours."""

CURVE_POINT_BUDGET = 60_000
"""Points of all the tokens-over-time curves together; beyond it each turn gets fewer points, so
a long session's report stays a few MB at most and renders in well under a second."""

MIN_CURVE_POINTS = 24
"""The fewest points a turn's curve is thinned to, however many turns there are."""

_DISTRIBUTIONS = (
    ("ttft_s", "Time to first token", "seconds", "ttft"),
    ("decode_tokens_per_s", "Decode speed", "tokens/s (excluding the first chunk)", "decode"),
)
_GOLDEN = 0.6180339887498949
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def colours_for(names: Iterable[str]) -> dict[str, str]:
    """A colour per backend, by order of first appearance (colours repeat after eight)."""
    return {name: REPORT_COLOURS[i % len(REPORT_COLOURS)] for i, name in enumerate(names)}


def series_id(kind: str, index: int) -> str:
    """The SVG id of backend `index`'s series in chart `kind` ("tokens", "ttft" or "decode")."""
    return f"{kind}-series-{index}"


def points_per_turn(turns: int) -> int:
    """How many points each turn's curve keeps when `turns` curves share the budget."""
    if turns <= 0:
        return MAX_CURVE_POINTS
    return max(MIN_CURVE_POINTS, min(MAX_CURVE_POINTS, CURVE_POINT_BUDGET // turns))


def draw_tokens(ax: Axes, records: Sequence[Record], colours: Mapping[str, str]) -> None:
    """Cumulative tokens against seconds from each turn's request: one colour per backend."""
    per_turn = points_per_turn(len(records))
    handles = []
    groups = group_by_backend(records)
    for index, (name, group) in enumerate(groups.items()):
        xs: list[float] = []
        ys: list[float] = []
        drawn = 0
        for record in group:
            times, counts = token_curve(record, per_turn)
            if not times:
                continue
            if xs:
                xs.append(math.nan)
                ys.append(math.nan)
            xs.extend(times)
            ys.extend(counts)
            drawn += 1
        colour = colours[name]
        # Many overlapping turns read as a band whose density shows the spread.
        alpha = min(1.0, max(0.15, 3.0 / max(drawn, 1) ** 0.5))
        width = 1.6 if drawn <= 3 else 0.9
        ax.plot(xs, ys, color=colour, alpha=alpha, linewidth=width, gid=series_id("tokens", index))
        handles.append(Line2D([], [], color=colour, linewidth=2.5, label=f"{name} ({drawn})"))
    ax.set_title("Tokens over time, one line per turn", loc="left", fontweight="bold")
    ax.set_xlabel("seconds since the request was sent")
    ax.set_ylabel("tokens received")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    # Outside the plot: a fast backend's lines fill the top left, where a legend would go.
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        title="backend (turns)",
        frameon=False,
    )


def draw_distribution(
    ax: Axes,
    records: Sequence[Record],
    colours: Mapping[str, str],
    figure: str,
    *,
    title: str,
    unit: str,
    kind: str,
) -> None:
    """A box (quartiles, whiskers to 1.5 IQR) over every completed turn's value, per backend.

    Args:
        figure: The metric (`ttft_s` or `decode_tokens_per_s`).
        title: The chart's title.
        unit: The value axis label.
        kind: The chart's name in SVG ids.
    """
    groups = group_by_backend(records)
    names = list(groups)
    low, high = math.inf, 0.0
    for index, name in enumerate(names):
        values = metric_values(groups[name], figure)
        position = index + 1
        colour = colours[name]
        if not values:
            ax.text(
                0.02,
                position,
                "no completed turns",
                transform=ax.get_yaxis_transform(),
                verticalalignment="center",
                color="#777777",
            )
            continue
        low, high = min(low, *values), max(high, *values)
        ax.boxplot(
            [values],
            positions=[position],
            orientation="horizontal",
            widths=0.55,
            showfliers=False,
            patch_artist=True,
            boxprops={"facecolor": colour, "alpha": 0.25, "edgecolor": colour},
            medianprops={"color": colour, "linewidth": 2},
            whiskerprops={"color": colour},
            capprops={"color": colour},
        )
        # Every turn as a dot, spread vertically by a fixed sequence so reruns draw the same.
        spread = [position + ((k * _GOLDEN) % 1.0 - 0.5) * 0.4 for k in range(len(values))]
        ax.scatter(
            values, spread, s=9, color=colour, alpha=0.6, linewidths=0, gid=series_id(kind, index)
        )
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.set_ylim(len(names) + 0.6, 0.4)
    if high > 0 and low > 0 and high / low > 30:
        ax.set_xscale("log")
    elif high > 0:
        ax.set_xlim(left=0)
    ax.set_title(title, loc="left", fontweight="bold")
    ax.set_xlabel(unit)
    ax.grid(True, axis="x", alpha=0.3)


FONT_SIZE = 11
"""Points; the charts are shown scaled to a page or slide width, so a little above default."""


def chart_figures(records: Sequence[Record]) -> dict[str, Figure]:
    """The three charts as separate figures (the HTML report lays them out itself)."""
    with matplotlib.rc_context({"font.size": FONT_SIZE}):
        return _chart_figures(records)


def _chart_figures(records: Sequence[Record]) -> dict[str, Figure]:
    colours = colours_for(backend_names(records))
    rows = max(1, len(colours))
    tokens = Figure(figsize=(11, 5.2), layout="constrained")
    draw_tokens(tokens.add_subplot(), records, colours)
    figures = {"tokens": tokens}
    for figure, title, unit, kind in _DISTRIBUTIONS:
        chart = Figure(figsize=(5.6, 1.6 + 0.6 * rows), layout="constrained")
        draw_distribution(
            chart.add_subplot(), records, colours, figure, title=title, unit=unit, kind=kind
        )
        figures[kind] = chart
    return figures


def report_figure(records: Sequence[Record]) -> Figure:
    """The PNG report: the race picture, both distributions and a per-backend table."""
    with matplotlib.rc_context({"font.size": FONT_SIZE}):
        return _report_figure(records)


def _report_figure(records: Sequence[Record]) -> Figure:
    names = backend_names(records)
    colours = colours_for(names)
    rows = max(1, len(names))
    figure = Figure(figsize=(13, 9.5 + 0.45 * rows), layout="constrained")
    grid = figure.add_gridspec(3, 2, height_ratios=[5, 1.3 + 0.5 * rows, 0.9 + 0.3 * rows])
    draw_tokens(figure.add_subplot(grid[0, :]), records, colours)
    for column, (metric, title, unit, kind) in enumerate(_DISTRIBUTIONS):
        draw_distribution(
            figure.add_subplot(grid[1, column]),
            records,
            colours,
            metric,
            title=title,
            unit=unit,
            kind=kind,
        )
    _draw_table(figure.add_subplot(grid[2, :]), records, colours)
    return figure


def _draw_table(ax: Axes, records: Sequence[Record], colours: Mapping[str, str]) -> None:
    """Per-backend medians; the per-turn table does not fit a picture and is left to the HTML."""
    ax.axis("off")
    header = ["backend", "turns", "errors", "TTFT p50", "TTFT p90", "decode p50", "E2E p50"]
    cells = []
    for stats in summarize_turns(records).values():
        cells.append(
            [
                stats.backend,
                str(stats.count),
                str(stats.errors + stats.cancelled),
                figure_text("ttft_s", stats.ttft_s.p50),
                figure_text("ttft_s", stats.ttft_s.p90),
                figure_text("decode_tokens_per_s", stats.decode_tokens_per_s.p50),
                figure_text("e2e_s", stats.e2e_s.p50),
            ]
        )
    table = ax.table(cellText=cells, colLabels=header, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    table.scale(1, 1.4)
    for row, line in enumerate(cells, start=1):
        table[row, 0].get_text().set_color(colours[line[0]])
        table[row, 0].get_text().set_fontweight("bold")
    ax.set_title(
        "Per backend (errors include cancelled turns). Every turn's figures: "
        "--out report.html, or export --csv",
        loc="left",
        fontsize=9,
        color="#555555",
    )


def svg_text(figure: Figure, salt: str = "report") -> str:
    """The figure as an `<svg>` element to inline in HTML: text kept as text, ids reproducible.

    Args:
        salt: Distinguishes the ids of figures inlined in the same page.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": FONT_SIZE}
    ):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # The RDF metadata block only names matplotlib; a page holding three charts needs none.
    return _METADATA.sub("", text[text.index("<svg") :], count=1)


def png_bytes(figure: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG (Agg)."""
    buffer = io.BytesIO()
    # Tick labels are made when the figure is drawn, so the font size applies here too.
    with matplotlib.rc_context({"font.size": FONT_SIZE}):
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
