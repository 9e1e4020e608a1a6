"""What every benchmark shares: summary rows against goals, tables, and the machine's state.

Figures are only worth keeping when the machine was otherwise idle, so each run records the load
and the busiest other processes next to its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from demo.core.metrics import percentile

REPO = Path(__file__).resolve().parent.parent
"""The repository root, where the app's console script and the benchmarks live."""
PYTHON = sys.executable
LATENCY_DEMO = str(Path(sys.executable).with_name("latency-demo"))
"""The installed console script beside this interpreter (the venv's)."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Figure:
    """One line of the summary: a measured value and, when the issue sets one, its goal."""

    benchmark: str
    name: str
    value: float | None
    unit: str
    goal: str = ""
    """How the goal reads, e.g. "≤ 50 ms"; empty for figures given for context."""
    met: bool | None = None
    """Whether the goal was met; None when there is no goal."""
    note: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "—"
        if self.unit == "%":
            return f"{self.value:.1f} %"
        if self.unit == "ratio":
            return f"{100 * self.value:.1f} %"
        if abs(self.value) >= 100:
            return f"{self.value:,.0f} {self.unit}".strip()
        return f"{self.value:.2f} {self.unit}".strip()


def at_most(limit: float) -> Callable[[float | None], bool | None]:
    def check(value: float | None) -> bool | None:
        return None if value is None else value <= limit

    return check


def at_least(limit: float) -> Callable[[float | None], bool | None]:
    def check(value: float | None) -> bool | None:
        return None if value is None else value >= limit

    return check


def median(values: Iterable[float]) -> float | None:
    items = list(values)
    return statistics.median(items) if items else None


def pct(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0–100), interpolated; None for no values."""
    return percentile(list(values), q)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], title: str = "") -> str:
    """A plain-text table with right-aligned numbers, for terminals and the README alike."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    numeric = [
        all(_is_number(row[i]) for row in cells if row[i] not in ("", "—")) and bool(cells)
        for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("%").strip())
    except ValueError:
        return False
    return True


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a whole process (all its threads), from /proc; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return None
    # Fields after the command name start at field 3 (state); utime and stime are fields 14, 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class MachineState:
    """How busy the machine was when a benchmark ran."""

    load_1m: float
    cores: int
    busy: list[tuple[int, float, str]]
    """Other processes using a noticeable share of a core: (pid, % of a core, command)."""

    def describe(self) -> str:
        text = f"load average {self.load_1m:.2f} on {self.cores} cores"
        if self.busy:
            text += "; busy: " + ", ".join(
                f"{command[:40]} ({share:.0f} %)" for _, share, command in self.busy
            )
        else:
            text += "; no other busy process"
        return text


def cli(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="fewer trials, for checking that it runs"
    )
    parser.add_argument(
        "--summary", type=Path, metavar="FILE", help="also write the summary rows here as JSON"
    )
    return parser


def finish(figures: list[Figure], summary: Path | None) -> None:
    """Print the summary rows, and save them for `run.py`."""
    print()
    print(summary_table(figures))
    if summary is not None:
        summary.write_text(json.dumps([asdict(f) for f in figures], indent=1), encoding="utf-8")


def summary_table(figures: Iterable[Figure]) -> str:
    rows = []
    for figure in figures:
        verdict = "" if figure.met is None else ("met" if figure.met else "MISSED")
        rows.append(
            [figure.benchmark, figure.name, figure.shown(), figure.goal, verdict, figure.note]
        )
    return table(["benchmark", "figure", "value", "goal", "", "note"], rows)


def load_figures(path: Path) -> list[Figure]:
    return [Figure(**row) for row in json.loads(path.read_text(encoding="utf-8"))]


@dataclass(frozen=True, slots=True)
class Process:
    """One process as /proc shows it."""

    start: int
    """When it started, in clock ticks since boot (tells a reused pid from its predecessor)."""
    cpu_s: float
    parent: int
    command: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every process at one moment."""

    taken: int
    """In clock ticks since boot, like `Process.start`."""
    processes: dict[int, Process]

    @classmethod
    def take(cls) -> Snapshot:
        with open("/proc/uptime", encoding="ascii") as handle:
            taken = int(float(handle.read().split()[0]) * CLOCK_TICKS)
        found: dict[int, Process] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rpartition(")")[2].split()
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read(300).replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            # After the command name: state is field 3, ppid 4, utime 14, stime 15, start 22.
            cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            found[int(entry)] = Process(int(fields[19]), cpu, int(fields[1]), command.strip())
        return cls(taken, found)

    def used_since(self, before: Snapshot, pid: int) -> float:
        """CPU seconds `pid` used since `before` (all of it if it started since)."""
        process = self.processes[pid]
        previous = before.processes.get(pid)
        if previous is not None and previous.start == process.start:
            return max(0.0, process.cpu_s - previous.cpu_s)
        return process.cpu_s if process.start >= before.taken else 0.0

    def family(self, root: int) -> set[int]:
        """`root`, the benchmarks' private tmux servers, and everything descending from them."""
        processes = self.processes
        heads = {root} | {pid for pid, p in processes.items() if "latency-bench-" in p.command}
        family: set[int] = set()
        for pid in processes:
            chain: list[int] = []
            current = pid
            while current > 1 and current not in family and current not in heads:
                chain.append(current)
                current = processes[current].parent if current in processes else 0
            if current in family or current in heads:
                family.update(chain)
                family.add(current)
        return family


class NeighbourMonitor:
    """Watches, on a thread of its own, how much CPU processes outside the benchmark use.

    Every half second it reads each process's CPU time from /proc and charges the increase to
    the benchmark when the process descends from this one or from one of the benchmarks' private
    tmux servers (the app runs as a tmux pane, not as our child), and to "others" otherwise. CPU
    a process used in its last half second before exiting is missed.
    """

    INTERVAL_S = 0.5

    def __init__(self) -> None:
        self._others = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="neighbours", daemon=True)
        self._began = time.perf_counter()

    def __enter__(self) -> NeighbourMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def percent(self) -> float:
        """Others' CPU so far, in % of one core."""
        return 100 * self._others / max(1e-9, time.perf_counter() - self._began)

    def _watch(self) -> None:
        before = Snapshot.take()
        while not self._stop.wait(self.INTERVAL_S):
            now = Snapshot.take()
            ours = now.family(os.getpid())
            self._others += sum(
                now.used_since(before, pid) for pid in now.processes if pid not in ours
            )
            before = now


def machine_state(sample_s: float = 1.0, threshold: float = 5.0) -> MachineState:
    """Sample every process's CPU over `sample_s` and list those above `threshold` % of a core."""
    before = Snapshot.take()
    time.sleep(sample_s)
    after = Snapshot.take()
    ours = after.family(os.getpid()) | {os.getppid()}
    busy = []
    for pid, process in after.processes.items():
        if pid in ours:
            continue
        share = 100 * after.used_since(before, pid) / sample_s
        if share >= threshold:
            busy.append((pid, share, process.command or f"[{pid}]"))
    busy.sort(key=lambda item: -item[1])
    return MachineState(os.getloadavg()[0], os.cpu_count() or 1, busy)


def speed_check(rounds: int = 15) -> float:
    """Milliseconds a fixed piece of pure-Python work takes (the median of `rounds`).

    The machine is a VM whose host may be busy with other guests, which no tool inside it sees
    (no steal time is reported), yet every figure here slows down with it. This number moves
    with it too: compare it between runs before comparing their figures.
    """
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        squares: dict[int, str] = {}
        for i in range(60_000):
            squares[i] = str(i * i)
        "".join(squares.values()).count("7")
        took.append(time.perf_counter() - began)
    return 1000 * statistics.median(took)


def check_idle(state: MachineState) -> None:
    """Say so loudly when other work competes for the CPU: such figures are not worth keeping.

    Only processes busy right now count: the load average trails by a minute and still shows
    the benchmark that ran before this one.
    """
    print(f"machine: {state.describe()}; speed check {speed_check():.1f} ms", flush=True)
    if state.busy:
        print("WARNING: the machine is not idle; these figures are not representative.", flush=True)
