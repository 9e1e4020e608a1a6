"""The HTML report: one self-contained file, charts inlined as SVG, readable on a projector.

No scripts, fonts, stylesheets or images are fetched: the page is the file, so it can be mailed,
opened offline or dropped into a slide deck as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

from demo import __version__
from demo.core.units import rate, seconds
from demo.sessions.charts import chart_figures, colours_for, svg_text
from demo.sessions.report import LoadedTurns, Record, backend_names, turn_rows
from demo.sessions.stats import BackendStats, summarize_turns
from demo.sessions.summary import FIGURES, figure_text

_STYLE = """
body { font: 18px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       margin: 2rem auto; max-width: 1200px; padding: 0 1.5rem; }
h1 { font-size: 2rem; margin-bottom: .2rem; }
h2 { font-size: 1.35rem; margin-top: 2.2rem; }
.meta, .note { color: #555; font-size: .9rem; }
figure { margin: 1rem 0; }
figure svg { width: 100%; height: auto; }
.pair { display: flex; flex-wrap: wrap; gap: 1rem; }
.pair figure { flex: 1 1 480px; margin: 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #e2e2e2; text-align: right; }
th { background: #f4f4f6; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
td.bad { color: #c62828; }
tr.first td { border-top: 2px solid #bbb; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px;
          margin-right: .4em; vertical-align: baseline; }
.turns { font-size: .85rem; }
"""


def render_html(loaded: LoadedTurns, generated: datetime | None = None) -> str:
    """The whole report page for the turns of one or more session files."""
    records = loaded.turns
    names = backend_names(records)
    colours = colours_for(names)
    figures = chart_figures(records)
    charts = {kind: svg_text(figure, salt=kind) for kind, figure in figures.items()}
    sources = ", ".join(escape(str(path)) for path in loaded.paths)
    when = (generated or datetime.now()).strftime("%Y-%m-%d %H:%M")
    recorded = _recorded_span(records)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Latency report: {escape(', '.join(names))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Latency report</h1>",
        f'<p class="meta">{len(records)} turns from {sources}{recorded}. '
        f"Made by latency-demo {escape(__version__)} on {when}.</p>",
        "<h2>Per backend</h2>",
        _summary_table(summarize_turns(records), colours),
        '<p class="note">Figures over completed turns (errors and cancelled turns are counted, '
        "not measured). TTFT: request sent → first content. Decode: tokens after the first "
        "chunk ÷ first → last chunk. E2E: request sent → end of stream.</p>",
        "<h2>The race picture</h2>",
        f'<figure id="tokens-chart">{charts["tokens"]}</figure>',
        '<div class="pair">',
        f'<figure id="ttft-chart">{charts["ttft"]}</figure>',
        f'<figure id="decode-chart">{charts["decode"]}</figure>',
        "</div>",
        "<h2>Every turn</h2>",
        _turn_table(records, colours),
    ]
    if loaded.warnings:
        items = "".join(f"<li>{escape(warning)}</li>" for warning in loaded.warnings)
        parts.append(f'<h2>Skipped</h2><ul class="note">{items}</ul>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _recorded_span(records: Sequence[Record]) -> str:
    stamps = sorted(str(r["recorded_at"]) for r in records if r.get("recorded_at"))
    if not stamps:
        return ""
    first, last = stamps[0][:16].replace("T", " "), stamps[-1][:16].replace("T", " ")
    span = first if first == last else f"{first} – {last}"
    return f", recorded {escape(span)}"


def _swatch(name: str, colours: Mapping[str, str]) -> str:
    return f'<span class="swatch" style="background:{colours[name]}"></span>{escape(name)}'


def _summary_table(stats: Mapping[str, BackendStats], colours: Mapping[str, str]) -> str:
    head = (
        '<tr><th class="text">backend</th><th>turns</th><th>errors</th>'
        '<th class="text">figure</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th></tr>'
    )
    rows = []
    for name, backend in stats.items():
        problems = backend.errors + backend.cancelled
        errors = f"{backend.errors}" + (
            f" (+{backend.cancelled} cancelled)" if backend.cancelled else ""
        )
        for index, (field, label) in enumerate(FIGURES):
            figures = getattr(backend, field)
            values = "".join(
                f"<td>{escape(figure_text(field, getattr(figures, q)))}</td>"
                for q in ("mean", "p50", "p90", "p99")
            )
            if index == 0:
                span = len(FIGURES)
                lead = (
                    f'<td class="text" rowspan="{span}">{_swatch(name, colours)}</td>'
                    f'<td rowspan="{span}">{backend.count}</td>'
                    f'<td rowspan="{span}"{" class=bad" if problems else ""}>{errors}</td>'
                )
                rows.append(f'<tr class="first">{lead}<td class="text">{label}</td>{values}</tr>')
            else:
                rows.append(f'<tr><td class="text">{label}</td>{values}</tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def _turn_table(records: Sequence[Record], colours: Mapping[str, str]) -> str:
    head = (
        '<tr><th>#</th><th class="text">backend</th><th class="text">mode</th>'
        '<th class="text">prompt</th><th>TTFT</th><th>decode</th><th>tokens</th><th>E2E</th>'
        '<th class="text">status</th></tr>'
    )
    rows = []
    for row in turn_rows(records):
        tokens = "—" if row.output_tokens is None else f"{row.output_tokens:,}"
        if row.tokens_estimated and row.output_tokens is not None:
            tokens = "≈" + tokens
        status_class = "text" if row.status == "ok" else "text bad"
        rows.append(
            f"<tr><td>{row.number}</td>"
            f'<td class="text">{_swatch(row.backend, colours)}</td>'
            f'<td class="text">{escape(row.mode)}</td>'
            f'<td class="text">{escape(row.prompt)}</td>'
            f"<td>{seconds(row.ttft_s)}</td><td>{rate(row.decode_tokens_per_s)}</td>"
            f"<td>{tokens}</td><td>{seconds(row.e2e_s)}</td>"
            f'<td class="{status_class}">{escape(row.status)}</td></tr>'
        )
    return f'<table class="turns">{head}{"".join(rows)}</table>'
