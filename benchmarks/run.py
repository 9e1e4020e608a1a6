"""Run every benchmark, one at a time, and print one summary table against the issue's goals.

Each benchmark runs in a process of its own (so none inherits another's threads, caches or
garbage), prints its detailed tables as it goes, and hands its summary rows back in a file.
The whole suite takes about 8 minutes on a 2-core machine (`--quick`: about 2).

Figures are only worth keeping from an otherwise idle machine: the load and any busy process are
printed before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import datetime
import platform
import subprocess
import tempfile
import time

from benchmarks.common import (
    PYTHON,
    REPO,
    Figure,
    NeighbourMonitor,
    check_idle,
    load_figures,
    machine_state,
    summary_table,
)

BENCHMARKS = (
    "startup",
    "ceiling",
    "keypress",
    "accuracy",
    "screen_lag",
    "race_bench",
    "record_bench",
    "replay_bench",
    "report_bench",
)
EXTRA_ARGUMENTS = {"race_bench": ["--tui"], "replay_bench": ["--tui"]}
"""Options a benchmark takes when run from here (the race's four-pane app run is opt-in alone)."""
BUSY_NEIGHBOUR = 10.0
"""Other processes' CPU (% of a core) above which a run's figures are suspect."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials, to check it runs")
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help=f"some of {BENCHMARKS}"
    )
    args = parser.parse_args()
    chosen = args.only or list(BENCHMARKS)
    print(
        f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} · {platform.node()} · "
        f"Python {platform.python_version()} · {', '.join(_versions())}"
    )
    check_idle(machine_state())
    figures: list[Figure] = []
    failed: list[str] = []
    loads: dict[str, float] = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="latency-bench-") as scratch:
        for name in chosen:
            print(f"\n=== {name} ===", flush=True)
            summary = Path(scratch) / f"{name}.json"
            command = [PYTHON, str(REPO / "benchmarks" / f"{name}.py"), "--summary", str(summary)]
            command += EXTRA_ARGUMENTS.get(name, [])
            if args.quick:
                command.append("--quick")
            started = time.perf_counter()
            with NeighbourMonitor() as neighbours:
                code = subprocess.run(command, cwd=REPO, check=False).returncode
            other = neighbours.percent()
            loads[name] = other
            print(
                f"({name}: {time.perf_counter() - started:.0f} s; other processes used "
                f"{other:.0f} % of a core meanwhile)",
                flush=True,
            )
            if code != 0 or not summary.exists():
                failed.append(name)
                continue
            figures += load_figures(summary)
    print(f"\n=== summary ({time.perf_counter() - began:.0f} s) ===")
    print(summary_table(figures))
    missed = [f for f in figures if f.met is False]
    if failed:
        print(f"\nfailed to run: {', '.join(failed)}")
    print(f"\ngoals met: {sum(1 for f in figures if f.met)}, missed: {len(missed)}")
    print(
        "other processes' CPU during each benchmark (% of a core): "
        + ", ".join(f"{name} {load:.0f}" for name, load in loads.items())
    )
    if any(load > BUSY_NEIGHBOUR for load in loads.values()):
        print("WARNING: something else was using the CPU; these figures are not representative.")
    check_idle(machine_state())
    return 1 if failed else 0


def _versions() -> list[str]:
    from importlib.metadata import version

    return [f"{name} {version(name)}" for name in ("textual", "httpx", "httpx-sse", "rich")]


if __name__ == "__main__":
    raise SystemExit(main())
