"""Screen lag in a real terminal: when the end of a fast reply is really on screen.

The app runs in tmux (160×48, a private tmux server) as `latency-demo --config FILE --backend
NAME` does (`tui_host.py`, which also writes each turn's request id when the app quits). The prompt
is typed and sent with Enter through tmux, and the pane is read every ~3 ms through one tmux
control-mode client (no process per read). Every read is set against the lab server's send log,
on the same clock:

- end lag (text): the first read whose transcript ends with the reply's last 40 letters and
  digits − the server's `last_content_sent_ns`;
- end lag (status): the first read whose metrics panel says `done` − the same. "Same read"
  counts the trials where both showed first in the same read: the panel can say `done` a frame
  before the transcript has scrolled the last rows into view, so the text is what is measured;
- settled: the last change of the transcript after the end (the last block drawn as Markdown);
- CPU: the app process (all threads) from /proc between the first and last content send;
- typing at the end (separate trials): `x` typed every 20 ms from 300 ms before the expected end
  to 700 ms after it; each one's send → the first read showing it in the prompt field. Typing
  well after the end gives the idle baseline.

The same is done for the floor: `bare.py` printing each chunk to the terminal as it arrives.

Replies: the lab's Markdown answer (headings, lists, bold, quote) cycled to 2,000 tokens at 969
tokens/s and 5,000 tokens at 5,000 tokens/s, 5 tokens per chunk, and the lab's generic reply (prose
with two bold phrases: the lab has no purely plain answer) at the same paces.

Goals (from the issue): end lag ≤ 50 ms at 969 and at 5,000 tokens/s; ≤ 40 % of a core at 969
tokens/s; no input freeze > 50 ms when a reply ends.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field

from benchmarks.common import (
    PYTHON,
    REPO,
    Figure,
    at_most,
    check_idle,
    cli,
    cpu_seconds,
    finish,
    machine_state,
    median,
    pct,
    table,
)
from benchmarks.labkit import MARKDOWN_PROMPT, PLAIN_PROMPT, Lab, ServerTurn, isolated_env
from benchmarks.profiling import Recording, summary
from benchmarks.tmuxctl import Capture, Pane, Tmux
from benchmarks.tuikit import SIZE

POLL_S = 0.003
PANEL_COLUMN = 114
"""Where the metrics panel starts at 160 columns (the transcript is to its left)."""
BOTTOM_ROWS = 4
"""The prompt field (3 rows) and the footer."""
TAIL_CHARS = 40
SETTLE_S = 1.2
"""How long reads go on after the end, to see the last block drawn as Markdown."""
TYPE_EVERY_S = 0.02
TYPE_FROM_S = -0.3
TYPE_UNTIL_S = 0.7
BASELINE_KEYS = 10
END_WINDOW_NS = (100_000_000, 500_000_000)
"""Typed keys sent between 100 ms before and 500 ms after the last content send count as
"at the end"."""
DETECT_FROM_NS = 50_000_000
LAG_GOAL_MS = 50.0
CPU_GOAL = 40.0
FREEZE_GOAL_MS = 50.0
NOTES = {
    969: "notes: bare 4 ms, elia 1,790 ms, oterm 7,740 ms",
    5_000: "notes: bare 7 ms, elia 3,080 ms, oterm 9,820 ms",
}
_STATUS = re.compile(r"status\s+(\S+)")
_ALNUM = re.compile(r"[^0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Scenario:
    client: str
    """"tui" or "bare"."""
    content: str
    """"markdown" or "plain"."""
    rate: int
    tokens: int
    typing: bool = False

    @property
    def backend(self) -> str:
        return f"{self.content}{self.rate}"

    @property
    def prompt(self) -> str:
        return MARKDOWN_PROMPT if self.content == "markdown" else PLAIN_PROMPT

    @property
    def label(self) -> str:
        text = f"{self.client} {self.content} {self.tokens:,} @ {self.rate:,} t/s"
        return text + (" + typing" if self.typing else "")


TTFT_S = 0.24
TOKENS_PER_CHUNK = 5
PACES = ((969, 2_000), (5_000, 5_000))


def lab_overrides(rate: int, tokens: int) -> dict[str, float | int]:
    return {
        "tokens_per_s": rate,
        "output_tokens": tokens,
        "tokens_per_chunk": TOKENS_PER_CHUNK,
        "ttft_s": TTFT_S,
        "jitter_ms": 0,
    }


@dataclass
class TrialResult:
    scenario: Scenario
    text_lag_ms: float | None = None
    status_lag_ms: float | None = None
    done_lag_ms: float | None = None
    """Text visible − the server's `[DONE]` send."""
    settled_ms: float | None = None
    same_read: bool | None = None
    """Whether the last text and the panel's `done` first showed in the same read."""
    cpu_pct: float | None = None
    poll_ms: float | None = None
    """Median interval between reads."""
    typed: list[tuple[int, float | None]] = field(default_factory=list)
    """(send time, send → shown ms) of each typed key."""
    end_window: tuple[int, int] = (0, 0)
    poller_cpu_pct: float | None = None


def _transcript_rows(capture: Capture, whole: bool) -> list[str]:
    if whole:
        return capture.lines
    return [row[:PANEL_COLUMN] for row in capture.lines[1 : SIZE[1] - BOTTOM_ROWS]]


def transcript_alnum(capture: Capture, whole: bool) -> str:
    """The letters and digits of the transcript area (or of the whole pane), in order."""
    return _ALNUM.sub("", "".join(_transcript_rows(capture, whole)))


def status(capture: Capture) -> str | None:
    for row in capture.lines:
        found = _STATUS.search(row[PANEL_COLUMN:])
        if found:
            return found.group(1)
    return None


def typed_count(capture: Capture) -> int:
    runs = [len(r) for row in capture.lines[-BOTTOM_ROWS:] for r in re.findall("x+", row)]
    return max(runs, default=0)


def tail_of(text: str) -> str:
    return _ALNUM.sub("", text)[-TAIL_CHARS:]


class Bench:
    """One tmux server and one lab server for all trials."""

    def __init__(self, lab: Lab, tmux: Tmux, config: Path, profile: Path | None = None) -> None:
        self.lab = lab
        self.profile = profile
        """Where py-spy profiles of the app go, if anywhere."""
        self.tmux = tmux
        self.config = config
        self.env = isolated_env(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/root"),
                "LANG": os.environ.get("LANG", "C.UTF-8") or "C.UTF-8",
                "COLORTERM": "truecolor",
            },
            lab.dir / "home",
        )
        self.trials = 0

    def start(self, scenario: Scenario) -> tuple[Pane, Path]:
        self.trials += 1
        result = self.lab.dir / f"trial-{self.trials}.json"
        if scenario.client == "tui":
            argv = [
                PYTHON, str(REPO / "benchmarks" / "tui_host.py"), "--config", str(self.config),
                "--backend", scenario.backend, "--result", str(result),
            ]  # fmt: skip
            ready = "Answering:"
        else:
            argv = [
                PYTHON, str(REPO / "benchmarks" / "bare.py"), "--url", self.lab.url,
                "--prompt", scenario.prompt, "--result", str(result),
                "--lab", json.dumps(lab_overrides(scenario.rate, scenario.tokens)),
            ]  # fmt: skip
            ready = "ready"
        pane = self.tmux.spawn(argv, self.env, REPO)
        deadline = time.perf_counter() + 30
        while not any(ready in row for row in self.tmux.capture(pane).lines):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{scenario.label}: the pane never became ready")
            time.sleep(0.02)
        time.sleep(0.3)  # let start-up work (the lab warm-up worker, first paints) finish
        return pane, result

    def trial(self, scenario: Scenario) -> TrialResult:
        pane, result_path = self.start(scenario)
        if self.profile is None or scenario.client != "tui":
            return self._trial(scenario, pane, result_path)
        name = f"{scenario.content}-{scenario.rate}-{self.trials}"
        output = self.profile / f"{name}.txt"
        with Recording(pane.pid, output):
            outcome = self._trial(scenario, pane, result_path)
        print(f"\nprofile of {scenario.label} ({output}):\n{summary(output)}\n", flush=True)
        return outcome

    def _trial(self, scenario: Scenario, pane: Pane, result_path: Path) -> TrialResult:
        tmux = self.tmux
        captures: list[Capture] = []
        cpu: list[tuple[int, float]] = []
        typed_sent: list[int] = []
        if scenario.client == "tui":
            tmux.type(pane, scenario.prompt)
        chunks = -(-scenario.tokens // TOKENS_PER_CHUNK)
        expected_s = TTFT_S + (chunks - 1) * TOKENS_PER_CHUNK / scenario.rate
        enter_ns = tmux.keys(pane, "Enter")
        expected_end = enter_ns + int(expected_s * 1e9)
        type_from = expected_end + int(TYPE_FROM_S * 1e9)
        type_until = expected_end + int(TYPE_UNTIL_S * 1e9)
        baseline_from = type_until + 500_000_000
        next_key = type_from
        finished_ns: int | None = None
        deadline = enter_ns + int((expected_s + 20) * 1e9)
        poller0 = time.process_time()
        wall0 = time.perf_counter()
        while True:
            capture = tmux.capture(pane)
            captures.append(capture)
            used = cpu_seconds(pane.pid)
            if used is not None:
                cpu.append((capture.read_ns, used))
            now = time.perf_counter_ns()
            if finished_ns is None and self._finished(scenario, capture, result_path):
                finished_ns = capture.read_ns
            if scenario.typing and now >= next_key:
                if now <= type_until:
                    typed_sent.append(tmux.type(pane, "x"))
                    next_key += int(TYPE_EVERY_S * 1e9)
                elif finished_ns is not None and now >= baseline_from:
                    # Idle baseline: a few keys well after the end, 100 ms apart.
                    if sum(1 for t in typed_sent if t >= baseline_from) < BASELINE_KEYS:
                        typed_sent.append(tmux.type(pane, "x"))
                    next_key = now + 100_000_000
            if self._done(scenario, finished_ns, now, typed_sent, baseline_from):
                break
            if now > deadline:
                raise TimeoutError(f"{scenario.label}: the reply never finished on screen")
            time.sleep(POLL_S)
        poller_cpu = (time.process_time() - poller0) / (time.perf_counter() - wall0)
        if scenario.client == "tui":
            tmux.keys(pane, "C-q")
        else:
            tmux.keys(pane, "C-d")
        self._wait_gone(pane)
        return self._analyse(scenario, captures, cpu, typed_sent, result_path, poller_cpu)

    @staticmethod
    def _done(
        scenario: Scenario,
        finished_ns: int | None,
        now: int,
        typed_sent: list[int],
        baseline_from: int,
    ) -> bool:
        """Whether reading can stop: settled after the end, and every key typed and shown."""
        if finished_ns is None or now < finished_ns + int(SETTLE_S * 1e9):
            return False
        if not scenario.typing:
            return True
        baseline = [t for t in typed_sent if t >= baseline_from]
        return len(baseline) >= BASELINE_KEYS and now > baseline[-1] + 300_000_000

    @staticmethod
    def _finished(scenario: Scenario, capture: Capture, result_path: Path) -> bool:
        if scenario.client == "tui":
            return status(capture) in ("done", "error", "cancelled")
        return result_path.exists()

    def _wait_gone(self, pane: Pane) -> None:
        deadline = time.perf_counter() + 10
        while self.tmux.alive(pane):
            if time.perf_counter() > deadline:
                self.tmux.kill(pane)
                break
            time.sleep(0.05)

    def _analyse(
        self,
        scenario: Scenario,
        captures: list[Capture],
        cpu: list[tuple[int, float]],
        typed_sent: list[int],
        result_path: Path,
        poller_cpu: float,
    ) -> TrialResult:
        saved = json.loads(result_path.read_text(encoding="utf-8"))
        if scenario.client == "tui":
            if not saved or saved[0]["error"]:
                raise RuntimeError(f"{scenario.label}: the turn failed: {saved}")
            request_id, text = saved[0]["request_id"], saved[0]["text"]
        else:
            request_id, text = saved["request_id"], None
        server = self.lab.record(request_id)
        outcome = TrialResult(scenario, poller_cpu_pct=100 * poller_cpu)
        whole = scenario.client == "bare"
        if text is None:
            # The floor printed exactly what was sent: rebuild it from the TUI-free side.
            text = "".join(_tail_source(captures))
        tail = tail_of(text)
        views = [transcript_alnum(c, whole) for c in captures]
        last = server.last_sent_ns
        # A cycled answer repeats its tail once per cycle (≥ 260 ms apart here): only reads from
        # just before the last send on can show this one.
        shown = next(
            (
                c
                for c, v in zip(captures, views, strict=True)
                if c.read_ns >= last - DETECT_FROM_NS and v.endswith(tail)
            ),
            None,
        )
        if shown is not None:
            outcome.text_lag_ms = (shown.read_ns - last) / 1e6
            if server.done_sent_ns is not None:
                outcome.done_lag_ms = (shown.read_ns - server.done_sent_ns) / 1e6
        if not whole:
            done = next((c for c in captures if status(c) == "done"), None)
            if done is not None:
                outcome.status_lag_ms = (done.read_ns - last) / 1e6
                outcome.same_read = shown is done
        # Restyling the last block as Markdown changes how it looks, not its letters.
        looks = [_transcript_rows(c, whole) for c in captures]
        changes = [
            captures[i].read_ns
            for i in range(1, len(captures))
            if looks[i] != looks[i - 1] and captures[i].read_ns >= last
        ]
        if changes:
            outcome.settled_ms = (changes[-1] - last) / 1e6
        outcome.cpu_pct = _cpu_between(cpu, server)
        gaps = [(b.sent_ns - a.sent_ns) / 1e6 for a, b in itertools.pairwise(captures)]
        outcome.poll_ms = median(gaps)
        counts = [typed_count(c) for c in captures]
        for index, sent in enumerate(typed_sent):
            seen = next(
                (c.read_ns for c, n in zip(captures, counts, strict=True) if n > index), None
            )
            outcome.typed.append((sent, None if seen is None else (seen - sent) / 1e6))
        outcome.end_window = (last - END_WINDOW_NS[0], last + END_WINDOW_NS[1])
        return outcome


def _tail_source(captures: list[Capture]) -> list[str]:
    # The bare reader's own output, as the last read shows it, is its text.
    return captures[-1].lines


def _cpu_between(samples: list[tuple[int, float]], server: ServerTurn) -> float | None:
    before = [s for s in samples if s[0] <= server.first_sent_ns]
    after = [s for s in samples if s[0] >= server.last_sent_ns]
    if not before or not after:
        return None
    (t0, c0), (t1, c1) = before[-1], after[0]
    return 100 * (c1 - c0) / ((t1 - t0) / 1e9)


def scenarios(quick: bool) -> list[tuple[Scenario, int]]:
    floor, lag, typing = (1, 1, 1) if quick else (3, 5, 3)
    plan: list[tuple[Scenario, int]] = []
    for rate, tokens in PACES:
        plan.append((Scenario("bare", "markdown", rate, tokens), floor))
        plan.append((Scenario("tui", "markdown", rate, tokens), lag))
        plan.append((Scenario("tui", "plain", rate, tokens), lag))
        plan.append((Scenario("tui", "markdown", rate, tokens, typing=True), typing))
    return plan


def run(quick: bool, profile: Path | None = None) -> list[Figure]:
    results: list[TrialResult] = []
    with Lab() as lab:
        config = lab.config(
            {
                f"{content}{rate}": ("fast", lab_overrides(rate, tokens))
                for rate, tokens in PACES
                for content in ("markdown", "plain")
            }
        )
        with Tmux(lab.dir, *SIZE) as tmux:
            bench = Bench(lab, tmux, config, profile)
            for scenario, count in scenarios(quick):
                for index in range(count):
                    outcome = bench.trial(scenario)
                    results.append(outcome)
                    print(
                        f"  {scenario.label:<42} trial {index + 1}: text "
                        f"{_show(outcome.text_lag_ms)} ms, status {_show(outcome.status_lag_ms)} "
                        f"ms, settled {_show(outcome.settled_ms)} ms, CPU "
                        f"{_show(outcome.cpu_pct)} %, poll {_show(outcome.poll_ms, 1)} ms",
                        flush=True,
                    )
    return summarise(results)


def _show(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def summarise(results: list[TrialResult]) -> list[Figure]:
    figures: list[Figure] = []
    rows = []
    by_scenario: dict[Scenario, list[TrialResult]] = {}
    for outcome in results:
        by_scenario.setdefault(outcome.scenario, []).append(outcome)
    for scenario, trials in by_scenario.items():
        if scenario.typing:
            continue
        text = median(t.text_lag_ms for t in trials if t.text_lag_ms is not None)
        worst = max((t.text_lag_ms for t in trials if t.text_lag_ms is not None), default=None)
        rows.append(
            [
                scenario.label,
                len(trials),
                text,
                worst,
                median(t.status_lag_ms for t in trials if t.status_lag_ms is not None),
                _same(trials),
                median(t.done_lag_ms for t in trials if t.done_lag_ms is not None),
                median(t.settled_ms for t in trials if t.settled_ms is not None),
                median(t.cpu_pct for t in trials if t.cpu_pct is not None),
                median(t.poll_ms for t in trials if t.poll_ms is not None),
                median(t.poller_cpu_pct for t in trials if t.poller_cpu_pct is not None),
            ]
        )
        if scenario.client == "tui":
            figures.append(
                Figure(
                    "screen lag",
                    f"end lag, {scenario.content}, {scenario.tokens:,} @ {scenario.rate:,} t/s",
                    text,
                    "ms",
                    goal=f"≤ {LAG_GOAL_MS:g} ms",
                    met=at_most(LAG_GOAL_MS)(text),
                    note=f"median of {len(trials)}, worst {_show(worst)} ms; "
                    + NOTES[scenario.rate],
                )
            )
            if scenario.rate == 969:
                cpu = median(t.cpu_pct for t in trials if t.cpu_pct is not None)
                figures.append(
                    Figure(
                        "screen lag",
                        f"app CPU, {scenario.content} @ 969 t/s",
                        cpu,
                        "%",
                        goal=f"≤ {CPU_GOAL:g} %",
                        met=at_most(CPU_GOAL)(cpu),
                        note="of one core, whole process",
                    )
                )
        else:
            figures.append(
                Figure(
                    "screen lag",
                    f"end lag, floor (bare printer) @ {scenario.rate:,} t/s",
                    text,
                    "ms",
                    note=NOTES[scenario.rate],
                )
            )
    print()
    print(
        table(
            [
                "scenario", "trials", "end lag ms", "worst", "status lag", "same read",
                "vs [DONE]",
                "settled", "CPU %", "poll ms", "poller CPU %",
            ],
            rows,
            title="Screen lag in tmux 160×48 (medians; lag = shown − server's last content send)",
        )
    )  # fmt: skip
    rows = []
    for scenario, trials in by_scenario.items():
        if not scenario.typing:
            continue
        ending = [
            ms
            for t in trials
            for sent, ms in t.typed
            if ms is not None and t.end_window[0] <= sent <= t.end_window[1]
        ]
        idle = [ms for t in trials for ms in _baseline(t)]
        before = [
            ms for t in trials for sent, ms in t.typed if ms is not None and sent < t.end_window[0]
        ]
        missing = sum(1 for t in trials for _, ms in t.typed if ms is None)
        rows.append(
            [
                scenario.label, len(before), pct(before, 50), pct(before, 100),
                len(ending), pct(ending, 50), pct(ending, 100),
                len(idle), pct(idle, 50), pct(idle, 100), missing,
            ]
        )  # fmt: skip
        worst = pct(ending, 100)
        figures.append(
            Figure(
                "screen lag",
                f"typing at the reply end, {scenario.rate:,} t/s: key → shown max",
                worst,
                "ms",
                goal=f"≤ {FREEZE_GOAL_MS:g} ms",
                met=at_most(FREEZE_GOAL_MS)(worst),
                note=f"p50 {_show(pct(ending, 50))} ms; streaming before the end: max "
                f"{_show(pct(before, 100))} ms; idle p50 {_show(pct(idle, 50))} ms",
            )
        )
    print()
    print(
        table(
            [
                "scenario", "keys streaming", "p50 ms", "max ms", "keys at end", "p50 ms",
                "max ms", "keys idle", "p50 ms", "max ms", "never shown",
            ],
            rows,
            title="Typing while the reply ends (send → shown in the prompt field)",
        )
    )  # fmt: skip
    return figures


def _same(trials: list[TrialResult]) -> str | None:
    known = [t.same_read for t in trials if t.same_read is not None]
    return f"{sum(known)}/{len(known)}" if known else None


def _baseline(trial: TrialResult) -> list[float]:
    return [ms for sent, ms in trial.typed if ms is not None and sent > trial.end_window[1] + 5e8]


def main() -> None:
    parser = cli(__doc__.splitlines()[0])
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the app with py-spy into DIR and print where its time went",
    )
    args = parser.parse_args()
    check_idle(machine_state())
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    figures = run(args.quick, args.profile)
    finish(figures, args.summary)


if __name__ == "__main__":
    main()
