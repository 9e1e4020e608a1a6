"""Recording cost: the client ceiling with every turn recorded to a session file, and without.

The app (headless, as in `ceiling.py`) reads the lab at 2,000 and 10,000 tokens/s, and unpaced,
alternately with a `Recorder` writing to a file and with recording off. The figure is the change
in the decode rate the app measured (goal: recording costs ≤ 1 % of the ceiling), with the app's
CPU and the time the writer thread spent building and writing each turn's record (the work moved
off the UI loop — its size is what recording would cost if it ran there).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.ceiling import RATES as CEILING_RATES
from benchmarks.ceiling import UNPACED, backend_name, rates_config
from benchmarks.common import (
    Figure,
    at_most,
    check_idle,
    cli,
    finish,
    machine_state,
    median,
    table,
)
from benchmarks.labkit import MARKDOWN_PROMPT, Lab
from benchmarks.tuikit import SIZE, settings, type_prompt, wait_until
from demo.sessions import recorder as recorder_module
from demo.sessions.reader import load_session
from demo.sessions.record import turn_record
from demo.sessions.recorder import Recorder
from demo.ui.app import LatencyApp

RATES = tuple(r for r in CEILING_RATES if r[0] != 50_000)
"""The ceiling benchmark's rates the goal names (2,000 and 10,000 t/s), and unpaced."""
GOAL_COST = 0.01


@dataclass
class Trial:
    rate: int
    recording: bool
    client_tps: float
    server_tps: float
    cpu_pct: float
    build_ms: float | None
    chunks: int


BUILD_MS: list[float] = []
"""How long the writer thread spent building each record (timed by the wrapper below)."""


def _timed_turn_record(*args: Any, **kwargs: Any) -> dict[str, Any]:
    started = time.perf_counter()
    record = turn_record(*args, **kwargs)
    json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    BUILD_MS.append((time.perf_counter() - started) * 1000)
    return record


recorder_module.turn_record = _timed_turn_record  # type: ignore[assignment]


async def run_tui(lab: Lab, config: Path, rate: int, path: Path | None) -> Trial:
    recorder = Recorder.open(path, enabled=path is not None)
    app = LatencyApp(settings(config), backend=backend_name(rate), recorder=recorder)
    built = len(BUILD_MS)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        type_prompt(app, MARKDOWN_PROMPT)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await pilot.press("enter")
        await wait_until(lambda: app.chat.results, timeout=120)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        result = app.chat.results[0]
    recorder.close()
    if result.metrics.error or result.request_id is None:
        raise RuntimeError(f"the turn failed: {result.metrics.error}")
    if path is not None and load_session(path).turns[-1]["request_id"] != result.request_id:
        raise RuntimeError("the turn was not recorded")
    server = lab.record(result.request_id)
    return Trial(
        rate,
        path is not None,
        result.metrics.decode_tokens_per_s or 0.0,
        server.decode_tokens_per_s or 0.0,
        100 * cpu,
        BUILD_MS[-1] if len(BUILD_MS) > built else None,
        result.metrics.chunks,
    )


def run(trials: int) -> list[Figure]:
    results: list[Trial] = []
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="record-bench-") as scratch:
        config = rates_config(lab, RATES)
        for rate, _, _ in RATES:
            for index in range(trials):
                for recording in (False, True):  # interleaved, so drift hits both alike
                    path = Path(scratch) / f"{rate}-{index}.jsonl" if recording else None
                    trial = asyncio.run(run_tui(lab, config, rate, path))
                    results.append(trial)
                    print(
                        f"  {backend_name(rate):>9} recording={recording!s:<5} "
                        f"client {trial.client_tps:,.0f} t/s, server {trial.server_tps:,.0f} t/s, "
                        f"CPU {trial.cpu_pct:.0f} %",
                        flush=True,
                    )
    return summarise(results)


def summarise(results: list[Trial]) -> list[Figure]:
    rows = []
    figures = []
    for rate, _, _ in RATES:
        off = [t for t in results if t.rate == rate and not t.recording]
        on = [t for t in results if t.rate == rate and t.recording]
        tps_off = median(t.client_tps for t in off) or 0.0
        tps_on = median(t.client_tps for t in on) or 0.0
        cost = 1 - tps_on / tps_off if tps_off else None
        label = "unpaced" if rate == UNPACED else f"{rate:,} t/s"
        rows.append(
            [
                label,
                tps_off,
                tps_on,
                None if cost is None else f"{100 * cost:+.2f} %",
                f"{median(t.cpu_pct for t in off) or 0:.0f} %",
                f"{median(t.cpu_pct for t in on) or 0:.0f} %",
                median(t.chunks for t in on),
                f"{median(t.build_ms for t in on if t.build_ms is not None) or 0:.1f} ms",
            ]
        )
        goal = rate != UNPACED
        figures.append(
            Figure(
                "record",
                f"recording cost, TUI decode rate at {label}",
                None if cost is None else max(cost, 0.0),
                "ratio",
                goal=f"≤ {100 * GOAL_COST:.0f} %" if goal else "",
                met=at_most(GOAL_COST)(max(cost or 0.0, 0.0)) if goal else None,
                note=f"{tps_off:,.0f} → {tps_on:,.0f} t/s (medians; negative = faster)",
            )
        )
    print()
    print(
        table(
            [
                "tokens/s asked",
                "off t/s",
                "on t/s",
                "cost",
                "CPU off",
                "CPU on",
                "chunks",
                "record build+encode",
            ],
            rows,
            title="Recording on vs off, the app headless (medians)",
        )
    )
    return figures


def main() -> None:
    args = cli(__doc__.splitlines()[0]).parse_args()
    check_idle(machine_state())
    finish(run(2 if args.quick else 5), args.summary)


if __name__ == "__main__":
    main()
