"""`latency-demo ask`, unchanged, plus a probe that records each turn's absolute timestamps.

`ask --json` prints durations (TTFT, E2E) but no clock readings, so its first-chunk stamp cannot be
set against the lab server's send log from outside. This runs the very same command line
(`demo.cli.main`) with `Turn.result` wrapped to append, per turn, the request id, t0 and the first
and last content chunk's `perf_counter_ns` to the JSON-lines file named by `LATENCY_BENCH_PROBE`.
Nothing the command prints or measures changes.

Usage: `python benchmarks/ask_probe.py ask PROMPT --json ...` (the arguments of `latency-demo`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from demo.cli import main as cli_main
from demo.core.events import ContentChunk, RequestSent
from demo.core.turn import Turn, TurnResult

PROBE_VARIABLE = "LATENCY_BENCH_PROBE"


def install(path: Path) -> None:
    """Wrap `Turn.result` so every finished turn's stamps are appended to `path`."""
    original = Turn.result

    def result(self: Turn) -> TurnResult:
        outcome = original(self)
        chunks = [
            e.t_ns for e in self.events if isinstance(e, ContentChunk) and (e.text or e.reasoning)
        ]
        sent = [e.t_ns for e in self.events if isinstance(e, RequestSent)]
        with path.open("a", encoding="utf-8") as handle:
            record = {
                "request_id": outcome.request_id,
                "t0_ns": sent[-1] if sent else None,
                "first_ns": chunks[0] if chunks else None,
                "last_ns": chunks[-1] if chunks else None,
            }
            handle.write(json.dumps(record) + "\n")
        return outcome

    Turn.result = result  # type: ignore[method-assign]


def main() -> int:
    install(Path(os.environ[PROBE_VARIABLE]))
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
