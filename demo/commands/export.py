"""`latency-demo export SESSION... --csv [--out FILE] [--force]`: one CSV row per turn.

The CSV goes to standard output unless `--out` names a file; an existing file is only replaced
with `--force`, and a failed export never leaves a partial file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from demo.commands.outfile import OutputError, check_target, write_atomically
from demo.sessions.export import to_csv
from demo.sessions.reader import SessionError
from demo.sessions.report import load_turns


def export(paths: Sequence[Path], out: Path | None = None, *, force: bool = False) -> int:
    """Run the command; returns the exit code.

    Args:
        paths: Session files, combined in order.
        out: The CSV file to write; None writes to standard output.
        force: Replace `out` if it exists.
    """
    try:
        if out is not None:
            check_target(out, force=force, suffixes=(".csv",))
        loaded = load_turns(paths)
    except (SessionError, OutputError) as exc:
        print(f"latency-demo: {exc}", file=sys.stderr)
        return 2
    for warning in loaded.warnings:
        print(f"latency-demo: warning: {warning}", file=sys.stderr)
    document = to_csv(loaded.turns)
    if out is None:
        return _to_stdout(document)
    try:
        write_atomically(out, document.encode())
    except OutputError as exc:
        print(f"latency-demo: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {out}: {len(loaded.turns)} turns.", file=sys.stderr)
    return 0


def _to_stdout(document: str) -> int:
    try:
        sys.stdout.write(document)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error, and no traceback at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0
