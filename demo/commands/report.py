"""`latency-demo report SESSION... [--out report.html | report.png]`.

Without `--out` it prints the per-backend summary; with it, writes a self-contained HTML page or
one PNG picture. Every refusal is one line on stderr and exit 2, and happens before anything is
written, so a bad input never costs an existing report.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from demo.commands.outfile import OutputError, check_target, write_atomically
from demo.sessions.reader import SessionError
from demo.sessions.report import LoadedTurns, backend_names, load_turns

FORMATS = (".html", ".htm", ".png")


def report(paths: Sequence[Path], out: Path | None = None, *, force: bool = False) -> int:
    """Run the command; returns the exit code.

    Args:
        paths: Session files, combined in order.
        out: Where to write the report; None prints the summary instead.
        force: Replace `out` if it exists.
    """
    try:
        if out is not None:
            check_target(out, force=force, suffixes=FORMATS)
        loaded = load_turns(paths)
    except (SessionError, OutputError) as exc:
        print(f"latency-demo: {exc}", file=sys.stderr)
        return 2
    for warning in loaded.warnings:
        print(f"latency-demo: warning: {warning}", file=sys.stderr)
    if out is None:
        print_summary(loaded)
        return 0
    try:
        write_atomically(out, render(loaded, out.suffix.lower()))
    except OutputError as exc:
        print(f"latency-demo: {exc}", file=sys.stderr)
        return 2
    names = backend_names(loaded.turns)
    print(f"Wrote {out}: {len(loaded.turns)} turns, {len(names)} backends ({', '.join(names)}).")
    return 0


def render(loaded: LoadedTurns, suffix: str) -> bytes:
    """The report file's bytes for a format (`.html`, `.htm` or `.png`)."""
    if suffix == ".png":
        from demo.sessions.charts import png_bytes, report_figure

        return png_bytes(report_figure(loaded.turns))
    from demo.sessions.report_html import render_html

    return render_html(loaded).encode()


def print_summary(loaded: LoadedTurns) -> None:
    """The terminal summary: where the turns came from, then the per-backend table."""
    from rich.console import Console
    from rich.text import Text

    from demo.sessions.stats import summarize_turns
    from demo.sessions.summary import summary_table

    console = Console(highlight=False)
    sources = ", ".join(str(path) for path in loaded.paths)
    # Paths stay whole on one line (copyable), however narrow the terminal.
    console.print(
        Text.assemble((f"{len(loaded.turns)} turns", "bold"), f" from {sources}"), soft_wrap=True
    )
    console.print(summary_table(summarize_turns(loaded.turns)))
    console.print(
        Text(
            "Figures over completed turns. TTFT: request sent → first content; decode: tokens "
            "after the first chunk ÷ first → last chunk; E2E: request sent → end of stream.",
            style="dim",
        )
    )
