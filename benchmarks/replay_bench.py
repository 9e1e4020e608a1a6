"""Replay fidelity: recorded lab turns replayed, chunk by chunk, against their recorded offsets.

Turns are recorded for real: the lab server (a child process) streams the profiles `fast` (969
t/s, 3 tokens per chunk, jitter 1 ms; 1,000-token replies, ~333 chunks) and `slow` (80 t/s, 1
token per chunk, jitter 4 ms; 240-token replies) to the app's own client on a `BackendRunner`,
each turn is written with `SessionWriter` exactly as the app records it, and the file is loaded
back with `load_session`. Then:

(a) Each turn is replayed through `ReplayBackend` on its own `BackendRunner`, consumed by a `Turn`
on this process's loop (as `ask` consumes one), at speed 1 and at speed 2. Per chunk: |replayed
offset − recorded offset ÷ speed| (offset = chunk stamp − the turn's t0); per turn: re-measured
TTFT, decode tokens/s and E2E against the recorded ones (× speed for rates, ÷ speed for times).

(b) `--tui` adds the same session played in the app headless (`latency-demo replay` as it runs:
`ReplayApp.run_test`, 160×48, "A" plays every turn): re-measured TTFT and decode against the
recorded ones, as the figures panel shows them (the pump draws every chunk on the way).

Goals (from the issue): each replayed chunk within 2 ms of its recorded offset (p95); a replayed
turn's TTFT and decode within 1 % of the recorded ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    Figure,
    at_most,
    check_idle,
    cli,
    finish,
    machine_state,
    median,
    pct,
    table,
)
from benchmarks.labkit import MARKDOWN_PROMPT, Lab, lab_params
from benchmarks.tuikit import SIZE, wait_until
from demo.backends.base import BackendSpec
from demo.backends.openai import OpenAIBackend
from demo.backends.replay import REPLAY_KIND, ReplayBackend
from demo.config import load_settings
from demo.core.conversation import ChatRequest, Conversation, Message
from demo.core.events import ContentChunk
from demo.core.runner import BackendRunner
from demo.core.turn import Turn
from demo.sessions.reader import Session, load_session
from demo.sessions.record import turn_record
from demo.sessions.writer import SessionWriter

PROFILES = {"fast": 1_000, "slow": 240}
"""Profile → reply length in tokens (a few hundred chunks each)."""
CHUNK_GOAL_MS = 2.0
FIGURE_GOAL = 0.01


@dataclass(frozen=True, slots=True)
class Replayed:
    """One recorded turn replayed once."""

    profile: str
    speed: float
    chunk_errors_ms: list[float]
    ttft_error: float
    """Re-measured TTFT ÷ (recorded ÷ speed) − 1."""
    decode_error: float
    e2e_error: float


def _prompt(profile: str, number: int) -> str:
    # A different prompt per turn, so each replay is matched to its own recording.
    return f"{MARKDOWN_PROMPT} ({profile} #{number})"


async def record(lab: Lab, path: Path, turns: int) -> None:
    """Record `turns` real lab turns per profile into the session file at `path`."""
    with SessionWriter(path) as writer:
        for profile, tokens in PROFILES.items():
            spec = BackendSpec(
                name=profile,
                kind="lab",
                model=profile,
                base_url=f"{lab.url}/v1",
                params={"lab": lab_params(output_tokens=tokens)},
            )
            runner = BackendRunner(OpenAIBackend(spec))
            try:
                for number in range(turns):
                    prompt = _prompt(profile, number)
                    request = Conversation().request_for(prompt, max_tokens=tokens + 100)
                    turn = Turn(runner, prompt, request)
                    result = await turn.run()
                    if result.metrics.error:
                        raise RuntimeError(f"recording failed: {result.metrics.error}")
                    writer.record(lambda t=turn, r=result: turn_record(t, r))
            finally:
                runner.close()


def _relative(measured: float | None, expected: float | None) -> float:
    if measured is None or expected is None or expected == 0:
        return float("nan")
    return measured / expected - 1


async def replay_all(session: Session, speed: float) -> list[Replayed]:
    """Replay every turn of `session` through a runner, one after another."""
    spec = BackendSpec(name="replay", kind=REPLAY_KIND, model="m", base_url=str(session.path))
    runner = BackendRunner(ReplayBackend(spec, session, speed))
    out: list[Replayed] = []
    try:
        for record in session.turns:
            prompt = record["prompt"]
            turn = Turn(runner, prompt, ChatRequest(messages=(Message("user", prompt),)))
            result = await turn.run()
            t0 = turn.accumulator.t0_ns
            assert t0 is not None
            offsets = [e.t_ns - t0 for e in turn.events if isinstance(e, ContentChunk)]
            expected = [chunk[0] / speed for chunk in record["chunks"]]
            if len(offsets) != len(expected):
                raise RuntimeError("a replay emitted a different number of chunks")
            m, r = result.metrics, record["metrics"]
            out.append(
                Replayed(
                    profile=record["backend"]["name"],
                    speed=speed,
                    chunk_errors_ms=[
                        abs(a - b) / 1e6 for a, b in zip(offsets, expected, strict=True)
                    ],
                    ttft_error=_relative(m.ttft_s, r["ttft_s"] / speed),
                    decode_error=_relative(m.decode_tokens_per_s, r["decode_tokens_per_s"] * speed),
                    e2e_error=_relative(m.e2e_s, r["e2e_s"] / speed),
                )
            )
    finally:
        runner.close()
    return out


async def replay_in_tui(session: Session) -> list[tuple[str, float, float]]:
    """Play the whole session in the app headless; (profile, TTFT error, decode error) per turn."""
    from demo.ui.replay_app import ReplayApp
    from demo.ui.screens.replay import ReplayScreen

    app = ReplayApp(load_settings(), session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: isinstance(app.screen, ReplayScreen), 10)
        screen = app.replay
        await pilot.press("a")
        await wait_until(lambda: screen.finished, 600, poll_s=0.05)
        return [
            (
                recorded.backend,
                _relative(result.metrics.ttft_s, recorded.metrics.ttft_s),
                _relative(result.metrics.decode_tokens_per_s, recorded.metrics.decode_tokens_per_s),
            )
            for recorded, result in screen.results
        ]


def _worst(values: list[float]) -> float | None:
    finite = [abs(v) for v in values if v == v]
    return max(finite) if finite else None


def summarise(runs: list[Replayed], tui: list[tuple[str, float, float]]) -> list[Figure]:
    rows: list[list[Any]] = []
    figures: list[Figure] = []
    for (profile, speed), group in _grouped(runs).items():
        errors = [e for run in group for e in run.chunk_errors_ms]
        p95 = pct(errors, 95)
        ttft = _worst([run.ttft_error for run in group])
        decode = _worst([run.decode_error for run in group])
        rows.append(
            [
                profile,
                f"×{speed:g}",
                len(group),
                len(errors),
                pct(errors, 50),
                p95,
                max(errors),
                100 * (median(abs(r.ttft_error) for r in group) or 0),
                100 * (ttft or 0),
                100 * (median(abs(r.decode_error) for r in group) or 0),
                100 * (decode or 0),
                100 * (_worst([run.e2e_error for run in group]) or 0),
            ]
        )
        name = f"{profile} ×{speed:g}"
        figures += [
            Figure(
                "replay",
                f"chunk offset error p95, {name}",
                p95,
                "ms",
                "≤ 2 ms",
                at_most(CHUNK_GOAL_MS)(p95),
            ),
            Figure(
                "replay",
                f"TTFT error, worst turn, {name}",
                100 * (ttft or 0),
                "%",
                "≤ 1 %",
                at_most(100 * FIGURE_GOAL)(100 * (ttft or 0)),
            ),
            Figure(
                "replay",
                f"decode error, worst turn, {name}",
                100 * (decode or 0),
                "%",
                "≤ 1 %",
                at_most(100 * FIGURE_GOAL)(100 * (decode or 0)),
            ),
        ]
    headers = [
        "profile",
        "speed",
        "turns",
        "chunks",
        "|Δ| p50 ms",
        "p95 ms",
        "max ms",
        "TTFT err p50 %",
        "worst %",
        "decode err p50 %",
        "worst %",
        "E2E err worst %",
    ]
    print()
    print(table(headers, rows, "(a) ReplayBackend on a runner, consumed by a Turn"))
    if tui:
        tui_rows = []
        for profile in PROFILES:
            group = [item for item in tui if item[0] == profile]
            ttft = _worst([item[1] for item in group])
            decode = _worst([item[2] for item in group])
            tui_rows.append([profile, len(group), 100 * (ttft or 0), 100 * (decode or 0)])
            figures += [
                Figure(
                    "replay",
                    f"TUI TTFT error, worst turn, {profile}",
                    100 * (ttft or 0),
                    "%",
                    "≤ 1 %",
                    at_most(100 * FIGURE_GOAL)(100 * (ttft or 0)),
                ),
                Figure(
                    "replay",
                    f"TUI decode error, worst turn, {profile}",
                    100 * (decode or 0),
                    "%",
                    "≤ 1 %",
                    at_most(100 * FIGURE_GOAL)(100 * (decode or 0)),
                ),
            ]
        print()
        print(
            table(
                ["profile", "turns", "TTFT err worst %", "decode err worst %"],
                tui_rows,
                "(b) `latency-demo replay` headless: figures panel against the recording",
            )
        )
    return figures


def _grouped(runs: list[Replayed]) -> dict[tuple[str, float], list[Replayed]]:
    groups: dict[tuple[str, float], list[Replayed]] = {}
    for run in runs:
        groups.setdefault((run.profile, run.speed), []).append(run)
    return groups


def main() -> None:
    parser = cli(__doc__.splitlines()[0])
    parser.add_argument(
        "--tui", action="store_true", help="also play the session in the app, headless"
    )
    args = parser.parse_args()
    check_idle(machine_state())
    turns = 2 if args.quick else 8
    with Lab() as lab:
        path = lab.dir / "recorded.jsonl"
        print(f"recording {turns} turns per profile…", flush=True)
        asyncio.run(record(lab, path, turns))
        session = load_session(path)
    # Everything below runs with no server at all.
    runs: list[Replayed] = []
    for speed in (1.0, 2.0):
        runs += asyncio.run(replay_all(session, speed))
    tui = asyncio.run(replay_in_tui(session)) if args.tui else []
    finish(summarise(runs, tui), args.summary)


if __name__ == "__main__":
    main()
