"""`latency-demo ask PROMPT --backend A --backend B …`: one prompt raced on 2–4 backends, headless.

Each lane streams on its backend's own runner (its own thread, loop and connection pool) and is
timestamped there, so a lane is measured in a race exactly as it would be alone. This module only
sends the lanes' requests together, waits for all of them on one loop, and reports: a JSON object
per lane as it finishes and a summary object, or the replies in finish order and the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from demo.backends.hub import BackendHub
from demo.commands.ask import _print_figures, backend_names, open_recorder, read_prompt
from demo.config import RACE_MAX_LANES, AppSettings
from demo.core.events import StreamWarning
from demo.core.race import Race, RaceSummary, summarize
from demo.core.runner import BackendRunner
from demo.core.turn import Turn, TurnResult
from demo.core.units import rate, seconds
from demo.lab.process import LabServerError
from demo.sessions.record import race_record
from demo.sessions.recorder import Recorder

STATUS_INTERVAL_S = 0.1
"""How often the live status lines are redrawn: often enough to look live, rarely enough to cost
nothing next to the streams."""

BATCH_INTERVAL_S = 1 / 60
"""How often each lane's pending events are taken on the command's loop. Stamps are taken on the
lanes' own threads as bytes arrive, so this delays only when a figure is folded in, never what
it says."""

_SINGLE_BACKEND_OPTIONS = (
    ("base_url", "--base-url"),
    ("model", "--model"),
    ("api_key_env", "--api-key-env"),
)

LaneSink = Callable[[TurnResult, int | None], None]
"""Called as each lane finishes, with its result and finish place (None if it did not finish)."""


def usage_error(args: argparse.Namespace) -> str | None:
    """Why these arguments cannot make a race, in one line; None when they can."""
    names = backend_names(args)
    for attribute, option in _SINGLE_BACKEND_OPTIONS:
        if getattr(args, attribute, None):
            return f"{option} works with a single --backend, not with several"
    repeated = [name for index, name in enumerate(names) if name in names[:index]]
    if repeated:
        return f"--backend {repeated[0]} is given more than once; each backend races once"
    if len(names) > RACE_MAX_LANES:
        # The race screen's limit, kept headless so a race reads the same in both.
        return f"a race takes 2 to {RACE_MAX_LANES} backends, got {len(names)}"
    if getattr(args, "mic_file", None) is not None:
        return "--mic-file is not supported with several backends"
    return None


def race(settings: AppSettings, args: argparse.Namespace) -> int:
    """Run `args.runs` races of the prompt on every `--backend`; returns the exit code.

    Nothing is sent unless every lane can be: an unknown backend or a missing key stops the
    command before any request goes out.
    """
    problem = usage_error(args)
    if problem is not None:
        print(f"latency-demo: {problem}", file=sys.stderr)
        return 2
    prompt = read_prompt(args)
    if prompt is None:
        return 2
    names = backend_names(args)
    specs = {name: settings.backend(name) for name in names}
    missing = [
        f"{spec.name} needs an API key: set the environment variable {variable}"
        for spec in specs.values()
        if (variable := spec.missing_key())
    ]
    if missing:
        print(f"latency-demo: {'; '.join(missing)}", file=sys.stderr)
        return 2
    hub = BackendHub(specs, settings.timeouts)
    try:
        # Runners are built first so each primes its HTTP stack on its own thread while the lab
        # server (if a lane needs it) starts; then every lane is ready and none gets a head start.
        runners = [hub.runner(name) for name in names]
        for name in names:
            hub.warm_up(name)
        if any(spec.kind == "lab" and spec.base_url is None for spec in specs.values()):
            # A lab that fails to start is reported by each of its lanes, as in a single ask.
            with contextlib.suppress(LabServerError):
                hub.lab.wait_ready()
        recorder = open_recorder(args)
        try:
            results = asyncio.run(_races(runners, settings, prompt, args, recorder))
        finally:
            recorder.close()
    finally:
        hub.close()
    return 1 if any(_status(result) != "done" for result in results) else 0


async def _races(
    runners: Sequence[BackendRunner],
    settings: AppSettings,
    prompt: str,
    args: argparse.Namespace,
    recorder: Recorder,
) -> list[TurnResult]:
    results: list[TurnResult] = []
    max_tokens = args.max_tokens or settings.max_tokens
    status_out = sys.stderr if sys.stderr.isatty() else None
    for number in range(1, args.runs + 1):
        # Each run is a fresh conversation on every lane, as repeated single turns are.
        lanes = Race(runners, settings.system_prompt)
        printer = _Printer(number, args.runs, args.json)
        finished = _recording(lanes, race_record(lanes.names, number), recorder, printer.lane)
        with _cancel_on_interrupt(lanes):
            outcome = await run_race(
                lanes,
                prompt,
                max_tokens=max_tokens,
                temperature=settings.temperature,
                on_finished=finished,
                status_out=status_out,
            )
        summary = summarize(outcome)
        printer.summary(outcome, summary)
        results.extend(outcome)
        if any(result.metrics.cancelled for result in outcome):
            break
    return results


def _recording(
    lanes: Race, race: dict[str, object], recorder: Recorder, then: LaneSink
) -> LaneSink:
    """Record each lane as it ends (a crash mid-race keeps the lanes already done), then `then`."""

    def finished(result: TurnResult, place: int | None) -> None:
        turn = next(lane.turn for lane in lanes.lanes if lane.name == result.backend)
        if turn is not None:
            recorder.record_lane(turn, result, race, place)
        then(result, place)

    return finished


async def run_race(
    lanes: Race,
    prompt: str,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    on_finished: LaneSink | None = None,
    status_out: TextIO | None = None,
) -> list[TurnResult]:
    """Send `prompt` on every lane at once and wait until all have ended.

    Each lane is consumed in a task of its own, so a lane that errs or stalls never holds up
    the others' results.

    Args:
        lanes: The race; each lane's reply is added to its own history.
        prompt: What every lane is asked.
        max_tokens: Cap on each reply's length.
        temperature: Sampling temperature, if set.
        on_finished: Called on this loop as each lane ends, in the order they end.
        status_out: A terminal to keep one live status line per lane on, or None.

    Returns:
        Every lane's result, in the order they ended.
    """
    turns = lanes.turns(prompt, max_tokens=max_tokens, temperature=temperature)
    status = _LiveStatus(status_out, turns) if status_out is not None else None
    ended: list[TurnResult] = []
    places = iter(range(1, len(turns) + 1))

    async def consume(turn: Turn) -> None:
        async for batch in turn.batches():
            for event in batch:
                if isinstance(event, StreamWarning):
                    _warn(f"{turn.backend_name}: warning: {event.message}", status)
            if not turn.accumulator.finished:
                # Events pile up meanwhile and are taken in one batch, so a reader thread rarely
                # has to wake this loop (a cross-thread write) from its hot path.
                await asyncio.sleep(BATCH_INTERVAL_S)
        result = turn.result()
        lanes.commit(result)
        ended.append(result)
        if on_finished is not None:
            on_finished(result, next(places) if _status(result) == "done" else None)

    lanes.start(turns)
    ticker = asyncio.create_task(status.run()) if status is not None else None
    try:
        await asyncio.gather(*(consume(turn) for turn in turns))
    finally:
        if ticker is not None and status is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            status.draw()
    return ended


@contextlib.contextmanager
def _cancel_on_interrupt(lanes: Race) -> Iterator[None]:
    """Ctrl+C cancels every lane (partial replies are kept); a second Ctrl+C interrupts."""
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        lanes.cancel()
        loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError):
        # No signal handlers off the main thread or on some platforms: Ctrl+C then interrupts.
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _warn(message: str, status: _LiveStatus | None) -> None:
    if status is not None:
        status.above(message)
    else:
        print(message, file=sys.stderr, flush=True)


def _status(result: TurnResult) -> str:
    m = result.metrics
    if m.error:
        return "error"
    if m.cancelled:
        return "cancelled"
    return "done"


def _ordinal(place: int) -> str:
    return f"{place}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(place, 'th') }"


class _Printer:
    """Writes one race's results: JSON lines as lanes finish, or readable blocks at the end."""

    def __init__(self, number: int, runs: int, as_json: bool) -> None:
        self.number = number
        self.runs = runs
        self.as_json = as_json

    def lane(self, result: TurnResult, place: int | None) -> None:
        if self.as_json:
            record = {**result.as_json(), "race": self.number, "finish_place": place}
            print(json.dumps(record, ensure_ascii=False), flush=True)

    def summary(self, results: Sequence[TurnResult], summary: RaceSummary) -> None:
        if self.as_json:
            record = {**summary.as_json(), "race": self.number}
            print(json.dumps(record, ensure_ascii=False), flush=True)
            return
        out = sys.stdout
        if self.runs > 1:
            print(f"\n=== race {self.number} of {self.runs} ===", file=out)
        by_name = {result.backend: result for result in results}
        finished = [by_name[name] for name in summary.order]
        unfinished = [result for result in results if result.backend not in summary.order]
        for place, result in enumerate([*finished, *unfinished], 1):
            label = _ordinal(place) if place <= len(finished) else _status(result)
            print(f"\n── {result.backend} · {label} ──", file=out)
            if result.text:
                print(result.text, file=out)
            _print_figures(result, out)
        print("", file=out)
        for line in summary.lines():
            print(line, file=out)
        out.flush()


class _LiveStatus:
    """One line per lane on a terminal, redrawn in place while the race runs.

    Only figures the lanes have already folded in are read, on the loop that consumes them, so
    drawing costs the streams nothing.
    """

    def __init__(self, out: TextIO, turns: Sequence[Turn]) -> None:
        self._out = out
        self._turns = list(turns)
        self._width = max(len(turn.backend_name) for turn in turns)
        self._drawn = False

    async def run(self) -> None:
        while True:
            self.draw()
            await asyncio.sleep(STATUS_INTERVAL_S)

    def draw(self) -> None:
        self._out.write(self._home() + "".join(f"\x1b[2K{self._line(t)}\n" for t in self._turns))
        self._out.flush()
        self._drawn = True

    def above(self, message: str) -> None:
        """Print a message above the status lines, which are then drawn again below it."""
        self._out.write(f"{self._home()}\x1b[J{message}\n")
        self._drawn = False
        self.draw()

    def _home(self) -> str:
        return f"\x1b[{len(self._turns)}F" if self._drawn else ""

    def _line(self, turn: Turn) -> str:
        acc = turn.accumulator
        count, source = acc.output_tokens()
        approx = " " if source == "usage" else "≈"
        if acc.finished:
            m = acc.snapshot()
            state = "error" if m.error else "cancelled" if m.cancelled else "done"
            speed = rate(m.decode_tokens_per_s)
            tail = f" · E2E {seconds(m.e2e_s)}"
            if m.error:
                tail += f" · {m.error}"
        else:
            state = "streaming" if acc.first_ns is not None else "waiting"
            speed = rate(acc.live_tokens_per_s(time.perf_counter_ns()))
            tail = ""
        ttft = "—"
        if acc.first_ns is not None and acc.t0_ns is not None:
            ttft = seconds((acc.first_ns - acc.t0_ns) / 1e9)
        name = turn.backend_name.ljust(self._width)
        return f"{name}  {state:<9}  {approx}{count:>6,} tokens  {speed:>13}  TTFT {ttft:>7}{tail}"
