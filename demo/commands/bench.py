"""`latency-demo bench`: many fresh single turns per backend, summarised as distributions.

Every (backend, prompt, run) is one new single-turn conversation, so no reply depends on an
earlier one. Backends are benchmarked one after another, never at the same time, so they cannot
compete for the client's CPU or the network; within a backend up to `--concurrency` requests are
in flight at once, each on its own connection of the backend's pool. Every turn is streamed and
timestamped on the backend's runner thread exactly as in `ask`, recorded into a session file, and
summarised by `demo.sessions.stats` — the same code that summarises a session file later.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.config import AppSettings
from demo.core.conversation import Conversation
from demo.core.runner import BackendRunner
from demo.core.turn import Turn, TurnResult
from demo.core.units import rate, seconds
from demo.lab.process import LabServerError
from demo.sessions.recorder import Recorder
from demo.sessions.stats import BackendStats, Distribution, summarize_backend, summarize_turns

MAX_CONCURRENCY = 8
"""Requests in flight per backend. Each needs a connection of its own, and a backend's pool
holds eight (`OpenAIBackend`); more would wait for a free one and could time out waiting."""

BATCH_INTERVAL_S = 1 / 60
"""How often a turn's pending events are taken on the command's loop. Stamps are taken on the
runner thread as bytes arrive, so this only spares the reader thread a wake-up per chunk."""

TICK_S = 0.1
"""How often the progress display is refreshed."""

PLAIN_PROGRESS_S = 2.0
"""How often a progress line is printed when standard error is not a terminal."""

PIPE_WIDTH = 120
"""Columns the tables may use when standard output is not a terminal."""

JSONL_SUFFIXES = (".jsonl", ".ndjson")

ROW_FIELDS = (
    "ttft_s",
    "decode_tokens_per_s",
    "e2e_s",
    "output_tokens",
    "output_tokens_source",
    "prompt_tokens",
    "chunks",
    "chunk_gap_p50_s",
    "chunk_gap_p99_s",
    "chunk_gap_max_s",
    "finish_reason",
    "error",
    "error_kind",
    "cancelled",
    "request_id",
)
"""The figures of each turn in `--json`'s `turns` rows (names as in `ask --json`)."""


class BenchError(Exception):
    """Arguments or a prompts file the bench cannot run with; the message is one line."""


@dataclass(frozen=True, slots=True)
class Job:
    """One turn to run: a prompt, on a backend, for the n-th time."""

    backend: str
    prompt_index: int
    """Index into the bench's prompt list (from 0)."""
    run: int
    """Which repetition (from 1)."""
    prompt: str


@dataclass(slots=True)
class BenchRun:
    """What a bench measured, interrupted or not."""

    planned: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


# --- prompts ---------------------------------------------------------------------------------


def default_prompts() -> list[str]:
    """The lab's suggested prompts: answered with real text of varied shapes."""
    from demo.lab.content import suggested_prompts

    return [suggestion.prompt for suggestion in suggested_prompts()]


def load_prompts(path: Path | None) -> list[str]:
    """The prompts of a prompts file, or the default ones without a file.

    A file holds one prompt per line (blank lines and `#` comments skipped), or is JSON Lines of
    `{"prompt": ...}` objects (which allows prompts spanning lines): `.jsonl`/`.ndjson` files, or
    any whose first line that counts starts with `{`.

    Raises:
        BenchError: the file is missing, unreadable, malformed or holds no prompt.
    """
    if path is None:
        return default_prompts()
    if not path.exists():
        raise BenchError(f"{path}: no such prompts file")
    if path.is_dir():
        raise BenchError(f"{path}: is a directory, not a prompts file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read it ({exc.strerror})") from None
    lines = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    as_json = path.suffix.lower() in JSONL_SUFFIXES or bool(lines and lines[0][1].startswith("{"))
    prompts = (
        [_json_prompt(path, n, line) for n, line in lines] if as_json else [p for _, p in lines]
    )
    if not prompts:
        raise BenchError(
            f'{path}: no prompts in it (one per line, or JSON Lines of {{"prompt": ...}})'
        )
    return prompts


def _json_prompt(path: Path, number: int, line: str) -> str:
    try:
        item = json.loads(line)
    except ValueError:
        raise BenchError(f"{path}: line {number} is not valid JSON") from None
    prompt = item.get("prompt") if isinstance(item, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        raise BenchError(f'{path}: line {number} has no "prompt" string')
    return prompt


def plan(names: Sequence[str], prompts: Sequence[str], runs: int) -> dict[str, list[Job]]:
    """Every backend's jobs: each prompt once per run, runs outermost (a run covers all prompts
    before the next begins, so an interrupted bench still has every prompt measured)."""
    return {
        name: [
            Job(name, index, run, prompt)
            for run in range(1, runs + 1)
            for index, prompt in enumerate(prompts)
        ]
        for name in names
    }


# --- progress --------------------------------------------------------------------------------


class BenchProgress(Protocol):
    """Where progress goes while the bench runs."""

    def advance(self, backend: str, *, error: bool) -> None: ...

    def tick(self) -> None: ...

    def close(self) -> None: ...


class _Bar:
    """A rich progress bar per backend, on a terminal."""

    def __init__(self, out: TextIO, totals: Mapping[str, int]) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=Console(file=out),
            # Refreshed from the command's loop: no refresh thread competing with the readers.
            auto_refresh=False,
        )
        self._tasks = {
            name: self._progress.add_task(name, total=total, errors=0)
            for name, total in totals.items()
        }
        self._errors = dict.fromkeys(totals, 0)
        self._progress.start()

    def advance(self, backend: str, *, error: bool) -> None:
        self._errors[backend] += error
        self._progress.update(self._tasks[backend], advance=1, errors=self._errors[backend])

    def tick(self) -> None:
        self._progress.refresh()

    def close(self) -> None:
        self._progress.refresh()
        self._progress.stop()


class _Lines:
    """A progress line now and then, for logs and pipes."""

    def __init__(self, out: TextIO, totals: Mapping[str, int]) -> None:
        self._out = out
        self._totals = dict(totals)
        self._done = dict.fromkeys(totals, 0)
        self._errors = dict.fromkeys(totals, 0)
        self._current: str | None = None
        self._start = time.monotonic()
        self._next = self._start + PLAIN_PROGRESS_S

    def advance(self, backend: str, *, error: bool) -> None:
        self._current = backend
        self._done[backend] += 1
        self._errors[backend] += error
        if self._done[backend] == self._totals[backend]:
            self._print(backend)

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next and self._current is not None:
            self._next = now + PLAIN_PROGRESS_S
            if self._done[self._current] < self._totals[self._current]:
                self._print(self._current)

    def _print(self, backend: str) -> None:
        elapsed = time.monotonic() - self._start
        print(
            f"bench: {backend} {self._done[backend]}/{self._totals[backend]} turns, "
            f"{self._errors[backend]} errors ({elapsed:.1f} s)",
            file=self._out,
            flush=True,
        )

    def close(self) -> None:
        pass


def progress_for(out: TextIO, totals: Mapping[str, int]) -> BenchProgress:
    """A bar on a terminal, plain lines otherwise."""
    return _Bar(out, totals) if out.isatty() else _Lines(out, totals)


# --- running ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _State:
    stopped: bool = False
    active: set[Turn] = field(default_factory=set)

    def stop(self) -> None:
        self.stopped = True
        for turn in list(self.active):
            turn.cancel()


def row(job: Job, result: TurnResult) -> dict[str, Any]:
    """One turn as a `--json` row: which job it was and its figures."""
    figures = result.as_json()
    return {
        "backend": job.backend,
        "prompt_index": job.prompt_index,
        "run": job.run,
        **{name: figures[name] for name in ROW_FIELDS},
    }


async def _consume(turn: Turn) -> TurnResult:
    async for _ in turn.batches():
        if not turn.accumulator.finished:
            # Events pile up meanwhile and are taken in one batch.
            await asyncio.sleep(BATCH_INTERVAL_S)
    return turn.result()


async def _run_backend(
    runner: BackendRunner,
    jobs: Sequence[Job],
    *,
    settings: AppSettings,
    max_tokens: int | None,
    concurrency: int,
    state: _State,
    recorder: Recorder,
    progress: BenchProgress,
    rows: list[dict[str, Any]],
) -> None:
    pending = iter(jobs)

    async def worker() -> None:
        # Workers share one iterator, so at most `concurrency` jobs are ever in flight.
        for job in pending:
            if state.stopped:
                return
            request = Conversation(settings.system_prompt).request_for(
                job.prompt, max_tokens=max_tokens, temperature=settings.temperature
            )
            turn = Turn(runner, job.prompt, request)
            state.active.add(turn)
            try:
                turn.start()
                result = await _consume(turn)
            finally:
                state.active.discard(turn)
            recorder.record(turn, result, mode="bench")
            rows.append(row(job, result))
            progress.advance(job.backend, error=result.metrics.error is not None)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)))))


@contextlib.contextmanager
def _stop_on_interrupt(state: _State) -> Iterator[None]:
    """Ctrl+C stops the bench (turns in flight are cancelled); a second one interrupts."""
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        state.stop()
        loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, interrupted)
    except (NotImplementedError, RuntimeError, ValueError):
        yield  # no handler off the main thread: Ctrl+C then interrupts outright
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def run_bench(
    runners: Mapping[str, BackendRunner],
    jobs: Mapping[str, Sequence[Job]],
    *,
    settings: AppSettings,
    max_tokens: int | None,
    concurrency: int,
    recorder: Recorder,
    progress: BenchProgress,
) -> BenchRun:
    """Run every backend's jobs, one backend after another, and record every turn.

    Args:
        runners: Each backend's runner, by name (the order they are benchmarked in).
        jobs: Each backend's jobs, by name.
        settings: For the system prompt and temperature.
        max_tokens: Cap on each reply's length.
        concurrency: Requests in flight per backend, at most.
        recorder: Receives every finished turn (mode "bench").
        progress: Told of every finished turn.

    Returns:
        The per-turn rows in the order turns finished, and whether Ctrl+C stopped the run.
    """
    state = _State()
    outcome = BenchRun(planned=sum(len(j) for j in jobs.values()))

    async def ticker() -> None:
        while True:
            progress.tick()
            await asyncio.sleep(TICK_S)

    ticking = asyncio.create_task(ticker())
    try:
        with _stop_on_interrupt(state):
            for name, runner in runners.items():
                if state.stopped:
                    break
                await _run_backend(
                    runner,
                    jobs[name],
                    settings=settings,
                    max_tokens=max_tokens,
                    concurrency=concurrency,
                    state=state,
                    recorder=recorder,
                    progress=progress,
                    rows=outcome.rows,
                )
    finally:
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
        progress.close()
    outcome.interrupted = state.stopped
    return outcome


# --- reporting -------------------------------------------------------------------------------


def fine_seconds(value: float | None) -> str:
    """A short duration, with the precision chunk gaps of a few milliseconds need."""
    if value is None:
        return "—"
    if value < 0.01:
        return f"{value * 1000:.2f} ms"
    return seconds(value)


def _count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


_FIGURES = (
    ("TTFT", "ttft_s", seconds),
    ("decode", "decode_tokens_per_s", rate),
    ("E2E", "e2e_s", seconds),
    ("chunk gap", "chunk_gap_s", fine_seconds),
    ("output tokens", "output_tokens", _count),
)


def summary_line(stats: BackendStats) -> str:
    """How many turns a backend's statistics stand on, and what became of the rest."""
    line = f"{stats.count} turns · {stats.ok} completed · {stats.errors} errors"
    return line + (f" · {stats.cancelled} cancelled" if stats.cancelled else "")


def stats_table(stats: BackendStats, spec: BackendSpec | None = None) -> Table:
    """One backend's statistics as a table: a row per figure, mean and percentiles across."""
    title = stats.backend if spec is None else f"{stats.backend} · {spec.kind} · {spec.model}"
    table = Table(title=title, title_justify="left")
    table.add_column("figure", no_wrap=True)
    for column in ("mean", "p50", "p90", "p99", "n"):
        table.add_column(column, justify="right")
    for label, name, shown in _FIGURES:
        figure: Distribution = getattr(stats, name)
        table.add_row(
            label,
            shown(figure.mean),
            shown(figure.p50),
            shown(figure.p90),
            shown(figure.p99),
            str(figure.n),
        )
    return table


def _token_note(rows: Sequence[Mapping[str, Any]]) -> str | None:
    completed = [r for r in rows if not r["error"] and not r["cancelled"]]
    estimated = sum(1 for r in completed if r["output_tokens_source"] == "estimate")
    if not estimated:
        return None
    return (
        f"output tokens estimated for {estimated} of {len(completed)} turns "
        "(the server reported no usage)"
    )


def document(
    stats: Mapping[str, BackendStats],
    outcome: BenchRun,
    *,
    prompts: Sequence[str],
    args: argparse.Namespace,
    max_tokens: int | None,
    session: Path | None,
) -> dict[str, Any]:
    """The `--json` document: the settings, per-backend statistics and every turn's row."""
    return {
        "session": str(session) if session is not None else None,
        "interrupted": outcome.interrupted,
        "planned_turns": outcome.planned,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "max_tokens": max_tokens,
        "prompts": list(prompts),
        "backends": {name: value.as_json() for name, value in stats.items()},
        "turns": outcome.rows,
    }


# --- the command -----------------------------------------------------------------------------


def _check(settings: AppSettings, args: argparse.Namespace) -> dict[str, BackendSpec]:
    """The backends to bench, once everything that would stop the bench has been ruled out."""
    names: list[str] = list(args.backend or [])
    if not names:
        raise BenchError("bench needs at least one --backend")
    repeated = [name for index, name in enumerate(names) if name in names[:index]]
    if repeated:
        raise BenchError(f"--backend {repeated[0]} is given more than once")
    if args.concurrency > MAX_CONCURRENCY:
        raise BenchError(
            f"--concurrency is at most {MAX_CONCURRENCY} (one connection per request in flight)"
        )
    specs = {name: settings.backend(name) for name in names}
    missing = [
        f"{spec.name} needs an API key: set the environment variable {variable}"
        for spec in specs.values()
        if (variable := spec.missing_key())
    ]
    if missing:
        raise BenchError("; ".join(missing))
    return specs


def bench(settings: AppSettings, args: argparse.Namespace) -> int:
    """Run the bench the command line describes; returns the exit code.

    Nothing is sent (and no session file is made) unless every backend can be benchmarked: an
    unknown backend, a missing key or a bad prompts file stops the command first.
    """
    try:
        specs = _check(settings, args)
        prompts = load_prompts(args.prompts)
    except BenchError as exc:
        print(f"latency-demo: {exc}", file=sys.stderr)
        return 2
    recorder = Recorder.open(args.record, enabled=not args.no_record, prefix="bench")
    max_tokens: int | None = args.max_tokens or settings.max_tokens
    jobs = plan(list(specs), prompts, args.runs)
    hub = BackendHub(specs, settings.timeouts)
    try:
        # Runners first, so each primes its HTTP stack while the lab server (if needed) starts.
        runners = {name: hub.runner(name) for name in specs}
        for name in specs:
            hub.warm_up(name)
        if any(spec.kind == "lab" and spec.base_url is None for spec in specs.values()):
            # A lab that fails to start is reported by each of its turns.
            with contextlib.suppress(LabServerError):
                hub.lab.wait_ready()
        progress = progress_for(sys.stderr, {name: len(j) for name, j in jobs.items()})
        outcome = asyncio.run(
            run_bench(
                runners,
                jobs,
                settings=settings,
                max_tokens=max_tokens,
                concurrency=args.concurrency,
                recorder=recorder,
                progress=progress,
            )
        )
    finally:
        hub.close()
        recorder.close()
    failure = recorder.take_error()
    if failure is not None:
        print(f"latency-demo: {failure}", file=sys.stderr)
    records = recorder.records()
    measured = summarize_turns(records)
    stats = {name: measured.get(name) or summarize_backend(name, []) for name in specs}
    _report(
        stats,
        outcome,
        specs=specs,
        prompts=prompts,
        args=args,
        max_tokens=max_tokens,
        session=recorder.path,
    )
    if outcome.interrupted:
        return 130
    return 1 if any(value.errors for value in stats.values()) else 0


def _report(
    stats: Mapping[str, BackendStats],
    outcome: BenchRun,
    *,
    specs: Mapping[str, BackendSpec],
    prompts: Sequence[str],
    args: argparse.Namespace,
    max_tokens: int | None,
    session: Path | None,
) -> None:
    if args.json:
        doc = document(
            stats, outcome, prompts=prompts, args=args, max_tokens=max_tokens, session=session
        )
        print(json.dumps(doc, ensure_ascii=False), flush=True)
        if session is not None:
            print(f"session: {session}", file=sys.stderr)
        return
    out = sys.stdout
    # Off a terminal rich would assume 80 columns and wrap the tables; a log has room.
    console = Console(file=out, highlight=False, width=None if out.isatty() else PIPE_WIDTH)
    if outcome.interrupted:
        console.print(f"Interrupted: {len(outcome.rows)} of {outcome.planned} turns ran.")
    for name, value in stats.items():
        rows = [r for r in outcome.rows if r["backend"] == name]
        console.print(stats_table(value, specs.get(name)))
        console.print(summary_line(value), markup=False)
        note = _token_note(rows)
        if note is not None:
            console.print(note, markup=False)
        console.print()
    errors = [r for r in outcome.rows if r["error"]]
    for first in errors[:3]:
        console.print(f"error ({first['backend']}): {first['error']}", markup=False)
    if len(errors) > 3:
        console.print(f"… and {len(errors) - 3} more errors")
    if session is not None:
        console.print(f"Session: {session}", markup=False, soft_wrap=True)
