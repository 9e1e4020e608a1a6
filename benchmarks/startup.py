"""Start-up: from the command to the app's first frame in a real terminal (tmux, 160×48).

`latency-demo` is started on its offline default (the `fast` lab backend, so the embedded lab
server starts too, in parallel, as it does for a user) with empty user directories, in a new tmux
window; the window is read every ~2 ms through the control client until the top bar shows
"Latency Demo" (first frame) and the welcome line (the chat screen is up). A first, cold run
(interpreter and file caches) is reported apart; the figure is the median of the next five.

Goal (from the issue): command → first frame ≤ 1 s.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import os
import tempfile
import time

from benchmarks.common import (
    LATENCY_DEMO,
    REPO,
    Figure,
    check_idle,
    cli,
    finish,
    machine_state,
    median,
    table,
)
from benchmarks.labkit import isolated_env
from benchmarks.tmuxctl import Tmux
from benchmarks.tuikit import SIZE

POLL_S = 0.002
GOAL_S = 1.0


def trial(tmux: Tmux, script: Path) -> tuple[float, float]:
    """Seconds from the command to the first frame, and to the chat screen."""
    pane = tmux.spawn_script(script)
    first = ready = None
    deadline = time.perf_counter() + 30
    while ready is None:
        capture = tmux.capture(pane)
        if first is None and capture.lines and "Latency Demo" in capture.lines[0]:
            first = capture.read_ns
        if first is not None and any("Answering:" in row for row in capture.lines):
            ready = capture.read_ns
        if time.perf_counter() > deadline:
            raise TimeoutError("the app did not show its first frame within 30 s")
        time.sleep(POLL_S)
    tmux.keys(pane, "C-q")
    deadline = time.perf_counter() + 10
    while tmux.alive(pane):
        if time.perf_counter() > deadline:
            tmux.kill(pane)
            break
        time.sleep(0.05)
    assert first is not None
    return (first - pane.started_ns) / 1e9, (ready - pane.started_ns) / 1e9


def run(runs: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="latency-bench-") as scratch:
        env = isolated_env(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/root"),
                "LANG": os.environ.get("LANG", "C.UTF-8") or "C.UTF-8",
                "COLORTERM": "truecolor",
            },
            Path(scratch) / "home",
        )
        with Tmux(Path(scratch), *SIZE) as tmux:
            script = tmux.write_script([LATENCY_DEMO], env, REPO)
            times = [trial(tmux, script) for _ in range(runs + 1)]
    cold, warm = times[0], times[1:]
    rows = [["cold (first)", *cold]] + [[f"run {i + 1}", *t] for i, t in enumerate(warm)]
    first = median(t[0] for t in warm)
    rows.append(["median", first, median(t[1] for t in warm)])
    print()
    print(
        table(
            ["", "first frame s", "chat screen s"],
            rows,
            title="Start-up in tmux: `latency-demo` → first frame",
        )
    )
    return [
        Figure(
            "start-up",
            f"command → first frame, median of {len(warm)}",
            None if first is None else 1000 * first,
            "ms",
            goal=f"≤ {1000 * GOAL_S:,.0f} ms",
            met=None if first is None else first <= GOAL_S,
            note=f"cold first run {1000 * cold[0]:,.0f} ms",
        )
    ]


def main() -> None:
    args = cli(__doc__.splitlines()[0]).parse_args()
    check_idle(machine_state())
    finish(run(2 if args.quick else 5), args.summary)


if __name__ == "__main__":
    main()
