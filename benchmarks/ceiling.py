"""Client ceiling: how fast a stream each client can read before it becomes the bottleneck.

The lab server streams at 2,000, 10,000 and 50,000 tokens/s into three clients in turn:

- bare: httpx + httpx-sse in this process, nothing else (`bare.py`) — the floor;
- ask: `latency-demo ask --json` as a subprocess;
- tui: the app headless (`LatencyApp.run_test`, 160×48), prompt typed and sent with Enter, the
  figures read from `app.chat.results`.

Each client's decode rate is taken as it measured it, and checked against the rate the server's
log shows it achieved for the same request. A client that cannot keep up makes the server wait
on a full socket, so both fall together; the ratio to the bare reader is the figure that matters.

Goal (from the issue): the TUI keeps ≥ 98 % of the bare reader's rate at 10,000 tokens/s.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks import bare
from benchmarks.common import (
    LATENCY_DEMO,
    Figure,
    at_least,
    check_idle,
    cli,
    finish,
    machine_state,
    median,
    table,
)
from benchmarks.labkit import MARKDOWN_PROMPT, Lab, isolated_env, lab_params
from benchmarks.tuikit import SIZE, settings, type_prompt, wait_until
from demo.ui.app import LatencyApp

UNPACED = 10_000_000
"""The lab's top pace: it sends as fast as it can, so the slower side sets the rate."""
RATES = ((2_000, 5, 3.0), (10_000, 5, 3.0), (50_000, 10, 2.0), (UNPACED, 10, 0.05))
"""(tokens/s, tokens per chunk, seconds of reply at that pace)."""
CLIENTS = ("bare", "ask", "tui")
GOAL_RATE = 10_000
GOAL_RATIO = 0.98


@dataclass(frozen=True, slots=True)
class Trial:
    client: str
    rate: int
    client_tps: float | None
    server_tps: float | None
    tokens: int
    expected_tokens: int
    cpu_pct: float | None
    """CPU of the client process while the reply streamed (bare and tui only: in-process)."""


def backend_name(rate: int) -> str:
    return f"b{rate}"


def rates_config(lab: Lab, rates: Sequence[tuple[int, int, float]]) -> Path:
    """A config file with one `fast`-profile backend per (rate, tokens per chunk, seconds)."""
    return lab.config(
        {
            backend_name(rate): (
                "fast",
                lab_params(
                    rate,
                    output_tokens=int(rate * seconds),
                    tokens_per_chunk=per_chunk,
                    ttft_s=0.05,
                    jitter_ms=0,
                ),
            )
            for rate, per_chunk, seconds in rates
        }
    )


def run_bare(lab: Lab, rate: int, per_chunk: int, tokens: int) -> Trial:
    body = bare.request_body(
        "fast",
        MARKDOWN_PROMPT,
        lab_params(
            rate, output_tokens=tokens, tokens_per_chunk=per_chunk, ttft_s=0.05, jitter_ms=0
        ),
    )
    with bare.client() as http:
        bare.read(http, lab.url, bare.request_body("fast", "hi", {"output_tokens": 1, "ttft_s": 0}))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = bare.read(http, lab.url, body)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    server = lab.record(result.request_id)
    return Trial(
        "bare",
        rate,
        result.decode_tokens_per_s,
        server.decode_tokens_per_s,
        result.usage_tokens,
        tokens,
        100 * cpu,
    )


def run_ask(lab: Lab, config: Path, rate: int, tokens: int) -> Trial:
    done = subprocess.run(
        [
            LATENCY_DEMO,
            "ask",
            MARKDOWN_PROMPT,
            "--config",
            str(config),
            "--backend",
            backend_name(rate),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=isolated_env(dict(os.environ), lab.dir / "home"),
    )
    if done.returncode != 0:
        raise RuntimeError(f"ask failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    turn = json.loads(done.stdout.splitlines()[-1])
    server = lab.record(turn["request_id"])
    return Trial(
        "ask",
        rate,
        turn["decode_tokens_per_s"],
        server.decode_tokens_per_s,
        turn["output_tokens"],
        tokens,
        None,
    )


async def run_tui(lab: Lab, config: Path, rate: int, tokens: int) -> Trial:
    app = LatencyApp(settings(config), backend=backend_name(rate))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        type_prompt(app, MARKDOWN_PROMPT)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await pilot.press("enter")
        await wait_until(lambda: app.chat.results, timeout=120)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        result = app.chat.results[0]
    if result.metrics.error or result.request_id is None:
        raise RuntimeError(f"the TUI's turn failed: {result.metrics.error}")
    server = lab.record(result.request_id)
    return Trial(
        "tui",
        rate,
        result.metrics.decode_tokens_per_s,
        server.decode_tokens_per_s,
        result.metrics.output_tokens,
        tokens,
        100 * cpu,
    )


def run(trials: int) -> tuple[list[Trial], list[Figure]]:
    results: list[Trial] = []
    with Lab() as lab:
        config = rates_config(lab, RATES)
        for rate, per_chunk, seconds in RATES:
            tokens = int(rate * seconds)
            for index in range(trials):
                # Interleaved, so drift on the machine spreads over every client alike.
                for client in CLIENTS:
                    if client == "bare":
                        trial = run_bare(lab, rate, per_chunk, tokens)
                    elif client == "ask":
                        trial = run_ask(lab, config, rate, tokens)
                    else:
                        trial = asyncio.run(run_tui(lab, config, rate, tokens))
                    results.append(trial)
                    print(
                        f"  {rate:>8} t/s  {client:<4} trial {index + 1}: client "
                        f"{trial.client_tps or 0:,.0f} t/s, "
                        f"server {trial.server_tps or 0:,.0f} t/s",
                        flush=True,
                    )
    return results, summarise(results)


def summarise(results: list[Trial]) -> list[Figure]:
    rows = []
    figures: list[Figure] = []
    for rate, _, _ in RATES:
        floor = median(t.client_tps or 0 for t in results if t.rate == rate and t.client == "bare")
        for client in CLIENTS:
            mine = [t for t in results if t.rate == rate and t.client == client]
            client_tps = median(t.client_tps or 0 for t in mine)
            server_tps = median(t.server_tps or 0 for t in mine)
            ratio = client_tps / floor if client_tps and floor else None
            agree = client_tps / server_tps - 1 if client_tps and server_tps else None
            complete = all(t.tokens == t.expected_tokens for t in mine)
            cpu = median(t.cpu_pct for t in mine if t.cpu_pct is not None)
            rows.append(
                [
                    "unpaced" if rate == UNPACED else f"{rate:,}",
                    client,
                    client_tps,
                    server_tps,
                    None if agree is None else f"{100 * agree:+.2f} %",
                    None if ratio is None else f"{100 * ratio:.1f} %",
                    None if cpu is None else f"{cpu:.0f} %",
                    "yes" if complete else "NO",
                ]
            )
            if client == "bare":
                continue
            goal = rate == GOAL_RATE and client == "tui"
            figures.append(
                Figure(
                    "ceiling",
                    f"{client} ÷ bare reader, "
                    + ("unpaced" if rate == UNPACED else f"at {rate:,} t/s"),
                    ratio,
                    "ratio",
                    goal=f"≥ {100 * GOAL_RATIO:.0f} %" if goal else "",
                    met=at_least(GOAL_RATIO)(ratio) if goal else None,
                    note=f"{client_tps or 0:,.0f} vs {floor or 0:,.0f} t/s",
                )
            )
    print()
    print(
        table(
            [
                "tokens/s asked",
                "client",
                "client t/s",
                "server t/s",
                "client vs server",
                "÷ bare",
                "client CPU",
                "complete",
            ],
            rows,
            title="Client ceiling (medians; decode rate as each client measured it)",
        )
    )
    return figures


def main() -> None:
    args = cli(__doc__.splitlines()[0]).parse_args()
    check_idle(machine_state())
    _, figures = run(1 if args.quick else 3)
    finish(figures, args.summary)


if __name__ == "__main__":
    main()
