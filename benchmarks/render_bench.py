"""Render-path figures for the Transcript widget, measured in a headless Textual app.

Feeds replies the way the app does (one `append` per 33 ms frame with all text due by then; the
first token and the end of the stream flushed at once) and reports:

- CPU % of the process while streaming (`time.process_time` deltas; includes the Markdown thread);
- per-frame cost: `append` plus the screen update that follows it (layout, compositor, strips);
- frame latency: from the `append` call to the end of the next screen update (includes the wait
  for Textual's 60 Hz update timer), p50 / p99;
- end lag: from the moment the last token was due to the end of the screen update showing it;
- the longest event-loop stall while streaming and while the reply ends (what input would feel);
- `end_reply` on a 15,000-token reply, and a 1 MB chunk without a newline.

Headless mode skips only the final write to the terminal (done by Textual's output thread).

Full garbage collections (about 12 ms in this process) show up as the p99 frames and stalls;
`--gc-freeze` shows the figures when the app calls `gc.freeze()` once after starting.

Run: `.venv/bin/python benchmarks/render_bench.py` (add `--quick` for a shorter run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen

from demo.ui.widgets.transcript import Transcript

FRAME_S = 1 / 30
DEBUG = False
SIZE = (120, 40)

MARKDOWN_TEXT = """\
## Why time to first token and tokens per second both matter

When a model streams its answer, **two different clocks** decide how fast it *feels*. The first is
the time to first token: the wait between pressing Enter and seeing anything at all. The second is
the output speed, usually given in tokens per second, which decides how quickly the rest of the
answer fills the screen once it has started.

### What each one depends on

- **Time to first token** depends on queueing at the provider, the length of the prompt (it must
  be processed before generation starts) and the network round trip.
- **Output speed** depends on the model size, the hardware, the batch size the provider runs,
  and whether tricks such as speculative decoding are used.
- A *reasoning* model adds a third clock: it may think for seconds before the visible answer
  begins, even when its raw output speed is high.

A slow first token with a fast stream feels like a hiccup; a fast first token with a slow stream
feels like reading over someone's shoulder while they type.

### Measuring it yourself

Take the timestamps where the bytes arrive, not where the text is drawn:

```python
import time

import httpx


def measure(url: str, payload: dict) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    tokens = 0
    with httpx.stream("POST", url, json=payload, timeout=60) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if first is None:
                first = time.perf_counter()
            tokens += 1
    ended = time.perf_counter()
    return first - started, tokens / (ended - first)
```

1. Send the same prompt several times and keep the median, since single runs are noisy.
2. Count tokens with the provider's `usage` field when it is reported, not by splitting text.
3. Compare providers at the **same** prompt length and the same `max_tokens`.

> A figure without its conditions is an anecdote: note the model, the prompt length, the time
> of day and the region next to every number you keep.

#### Typical figures

| provider kind | first token | output speed |
|---|---|---|
| wafer-scale inference | 0.2 s | ~970 tokens/s |
| GPU cloud, batch 1 | 0.5 s | 70-100 tokens/s |
| small model on a laptop | 0.1 s | 70-95 tokens/s |

Keep in mind that a terminal can only show so much: at a thousand tokens per second a whole
screen of text arrives in well under a second, so the display itself must not become the
bottleneck. Draw only what changed, and only what is visible.

"""

PLAIN_TEXT = re.sub(r"[#*`>|_\[\]]", "", MARKDOWN_TEXT).replace("\n", " ")
_TOKEN = re.compile(r" ?[A-Za-z]{1,6}|\d| ?[^\sA-Za-z\d]|\s+")


def tokens_of(text: str, count: int) -> list[str]:
    """`count` BPE-like tokens (word pieces of up to 6 letters, digits, punctuation)."""
    pieces = _TOKEN.findall(text)
    tokens: list[str] = []
    while len(tokens) < count:
        tokens.extend(pieces)
    return tokens[:count]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class UpdateClock:
    """Records when each screen update ends and how long it took, by wrapping the update timer."""

    ends: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    waiters: list[tuple[float, asyncio.Future[float]]] = field(default_factory=list)

    def install(self) -> None:
        original = Screen._on_timer_update
        clock = self

        def timed(screen: Screen[Any]) -> None:
            began = time.perf_counter()
            original(screen)
            ended = time.perf_counter()
            clock.ends.append(ended)
            clock.durations.append(ended - began)
            for after, future in clock.waiters[:]:
                if began >= after and not future.done():
                    future.set_result(ended)
                    clock.waiters.remove((after, future))

        Screen._on_timer_update = timed  # type: ignore[method-assign,assignment]

    def next_update_after(self, moment: float) -> asyncio.Future[float]:
        """A future resolved with the end time of the first update that starts after `moment`."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.append((moment, future))
        return future


class StallMeter:
    """Measures the longest gap between wake-ups of a 2 ms ticker: what input would wait for."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.002)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.002)
            last = now

    def start(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._tick())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return self.longest


class BenchApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Transcript()


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


async def stream(
    app: BenchApp, clock: UpdateClock, tokens: list[str], rate: float, label: str
) -> dict[str, float]:
    """Stream `tokens` at `rate` tokens/s into a new reply, paced by 33 ms frames."""
    transcript = app.query_one(Transcript)
    transcript.add_prompt("Explain time to first token versus tokens per second.", label="you")
    transcript.start_reply(label=label)
    await wait_for(lambda: not transcript.is_styling)
    await asyncio.sleep(0.1)

    count = len(tokens)
    appends: list[float] = []
    latencies: list[float] = []
    work: list[float] = []
    sent = 0
    frame = 0
    stall = StallMeter()
    stall.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    start = wall0
    last_due = start + (count - 1) / rate
    end_lag = 0.0
    while sent < count:
        now = time.perf_counter()
        due = count if now >= last_due else min(count, int((now - start) * rate) + 1)
        if due > sent:
            text = "".join(tokens[sent:due])
            began = time.perf_counter()
            transcript.append(text)
            final = due == count
            if final:
                transcript.end_reply(status="done")
            appended = time.perf_counter()
            sent = due
            updated = await clock.next_update_after(appended)
            appends.append(appended - began)
            latencies.append(updated - began)
            work.append(appended - began + clock.durations[-1])
            if final:
                end_lag = updated - last_due
                break
        frame += 1
        wake = min(start + frame * FRAME_S, last_due)
        await asyncio.sleep(max(0.0, wake - time.perf_counter()))
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    longest_stall = stall.stop()
    stall.start()
    await wait_for(lambda: not transcript.is_styling)
    settle_stall = stall.stop()
    if DEBUG:
        print("work ms:", " ".join(f"{1000 * w:.0f}" for w in work))
    tenth = max(1, len(work) // 10)
    return {
        "cpu_pct": 100 * cpu,
        "frames": len(work),
        "append_p50_ms": 1000 * percentile(appends, 0.5),
        "work_p50_ms": 1000 * percentile(work, 0.5),
        "work_p99_ms": 1000 * percentile(work, 0.99),
        "work_first10pct_p50_ms": 1000 * statistics.median(work[:tenth]),
        "work_last10pct_p50_ms": 1000 * statistics.median(work[-tenth:]),
        "latency_p50_ms": 1000 * percentile(latencies, 0.5),
        "latency_p99_ms": 1000 * percentile(latencies, 0.99),
        "end_lag_ms": 1000 * end_lag,
        "max_stall_ms": 1000 * longest_stall,
        "stall_after_end_ms": 1000 * settle_stall,
    }


async def timed_call(
    app: BenchApp, clock: UpdateClock, call: Callable[[], None]
) -> tuple[float, float]:
    """Wall time of `call`, and from its start to the end of the screen update that shows it."""
    began = time.perf_counter()
    call()
    ended = time.perf_counter()
    updated = await clock.next_update_after(ended)
    return ended - began, updated - began


async def end_of_long_reply(
    app: BenchApp, pilot: Pilot[None], clock: UpdateClock, text: str, count: int
) -> dict[str, float]:
    """`end_reply` on a long reply, then a resize that re-renders all of it."""
    transcript = app.query_one(Transcript)
    transcript.start_reply(label="long")
    tokens = tokens_of(text, count)
    step = 500
    for index in range(0, count, step):
        transcript.append("".join(tokens[index : index + step]))
        await asyncio.sleep(0)
    await wait_for(lambda: not transcript.is_styling)
    stall = StallMeter()
    stall.start()
    await asyncio.sleep(0.05)
    call, shown = await timed_call(app, clock, lambda: transcript.end_reply(status="done"))
    began = time.perf_counter()
    await wait_for(lambda: not transcript.is_styling)
    styled = time.perf_counter() - began
    await asyncio.sleep(0.05)
    end_stall = stall.stop()
    stall.start()
    width, height = SIZE
    began = time.perf_counter()
    await pilot.resize_terminal(width - 20, height)
    await wait_for(lambda: not transcript.is_styling)
    restyled = time.perf_counter() - began
    await pilot.resize_terminal(width, height)
    await wait_for(lambda: not transcript.is_styling)
    return {
        "reply_chars": len(transcript.reply_text),
        "end_reply_call_ms": 1000 * call,
        "end_reply_shown_ms": 1000 * shown,
        "last_block_styled_ms": 1000 * styled,
        "max_stall_at_end_ms": 1000 * end_stall,
        "resize_all_styled_ms": 1000 * restyled,
        "max_stall_resize_ms": 1000 * stall.stop(),
    }


async def one_megabyte(app: BenchApp, clock: UpdateClock, text: str) -> dict[str, float]:
    """A 1 MB chunk with no newline: append, update, end, and the longest stall."""
    transcript = app.query_one(Transcript)
    transcript.start_reply(label="1 MB")
    stall = StallMeter()
    stall.start()
    await asyncio.sleep(0.05)
    append, shown = await timed_call(app, clock, lambda: transcript.append(text))
    end, end_shown = await timed_call(app, clock, lambda: transcript.end_reply(status="done"))
    await wait_for(lambda: not transcript.is_styling)
    await asyncio.sleep(0.05)
    return {
        "append_ms": 1000 * append,
        "append_shown_ms": 1000 * shown,
        "end_reply_ms": 1000 * end,
        "end_shown_ms": 1000 * end_shown,
        "max_stall_ms": 1000 * stall.stop(),
    }


def show(title: str, figures: dict[str, float]) -> None:
    print(f"\n{title}")
    for key, value in figures.items():
        print(f"  {key:<26} {value:>10.1f}")


async def run(quick: bool, freeze: bool) -> None:
    clock = UpdateClock()
    clock.install()
    app = BenchApp()
    async with app.run_test(headless=True, size=SIZE) as pilot:
        await pilot.pause()
        if freeze:
            # What an app can do once started: exempt startup objects from full collections.
            gc.collect()
            gc.freeze()
        transcript = app.query_one(Transcript)
        cases: list[tuple[str, str, int, float]] = []
        for kind, text in (("Markdown", MARKDOWN_TEXT), ("plain", PLAIN_TEXT)):
            for count, rate in ((2_000, 969.0), (5_000, 5_000.0)):
                cases.append((kind, text, count, rate))
        if not quick:
            cases += [("Markdown", MARKDOWN_TEXT, count, 5_000.0) for count in (200, 15_000)]
        for kind, text, count, rate in cases:
            transcript.clear()
            await pilot.pause()
            figures = await stream(app, clock, tokens_of(text, count), rate, "bench")
            show(f"{kind}: {count:,} tokens at {rate:,.0f} tokens/s", figures)
        transcript.clear()
        for kind, text in (("Markdown", MARKDOWN_TEXT), ("one-paragraph", PLAIN_TEXT)):
            transcript.clear()
            figures = await end_of_long_reply(app, pilot, clock, text, 15_000)
            show(f"end_reply on a 15,000-token {kind} reply, then resize", figures)
        transcript.clear()
        words = ("lorem ipsum dolor sit amet consectetur " * 30_000)[:1_000_000]
        show("1 MB chunk without newline (words)", await one_megabyte(app, clock, words))
        transcript.clear()
        show("1 MB chunk without newline or space", await one_megabyte(app, clock, "x" * 1_000_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 15,000-token stream")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="call gc.freeze() after startup (see module doc)"
    )
    arguments = parser.parse_args()
    asyncio.run(run(arguments.quick, arguments.gc_freeze))


if __name__ == "__main__":
    main()
