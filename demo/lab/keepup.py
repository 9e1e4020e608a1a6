"""`python -m demo.lab.keepup`: does the lab server keep its pace at high token rates?

Streams long replies at given rates from a lab server in its own process, reads them with the
app's own client, and compares the server's logged send times with the timetable and with what
the client saw. A lab server that cannot keep up would make a fast provider look slow.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import dataclass

import httpx

from demo.backends.base import BackendSpec
from demo.backends.openai import OpenAIBackend
from demo.core.conversation import ChatRequest, Message
from demo.core.events import ContentChunk, ResponseStarted, StreamError
from demo.lab.process import LabServer

PROMPT = "Explain how a wafer-scale chip makes LLM inference fast."


@dataclass(frozen=True, slots=True)
class KeepUp:
    """One reply's pace as planned, as sent and as received."""

    target: float
    tokens: int
    chunks: int
    sent_rate: float
    """(tokens - first chunk's tokens) / (last send - first send), from the server's log."""
    received_rate: float
    """The same, from the client's arrival times."""
    max_late_ms: float
    """Largest delay of a send after its due time."""
    median_delivery_ms: float
    """Median time from a chunk's send to its arrival at the client."""


def _rate(tokens: int, first_tokens: int, first_ns: int, last_ns: int) -> float:
    span = last_ns - first_ns
    return (tokens - first_tokens) / (span / 1e9) if span > 0 else float("inf")


async def measure(base_url: str, rate: float, tokens: int, tokens_per_chunk: int) -> KeepUp:
    """Stream one reply of `tokens` tokens at `rate` tokens/s and compare the three timelines."""
    spec = BackendSpec(name="lab", kind="lab", model="fast", base_url=f"{base_url}/v1")
    backend = OpenAIBackend(spec)
    overrides = {
        "tokens_per_s": rate,
        "ttft_s": 0.05,
        "jitter_ms": 0,
        "tokens_per_chunk": tokens_per_chunk,
        "output_tokens": tokens,
        "seed": 1,
    }
    request = ChatRequest((Message("user", PROMPT),), extra={"lab": overrides})
    arrivals: list[int] = []
    request_id: str | None = None
    try:
        async for event in backend.stream(request):
            if isinstance(event, ContentChunk):
                arrivals.append(event.t_ns)
            elif isinstance(event, ResponseStarted):
                request_id = event.request_id
            elif isinstance(event, StreamError):
                raise RuntimeError(f"stream failed: {event.message}")
    finally:
        await backend.aclose()
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/lab/requests/{request_id}")
        record = response.json()
    chunks = record["chunks"]
    if len(chunks) != len(arrivals):
        raise RuntimeError(f"server sent {len(chunks)} chunks, client saw {len(arrivals)}")
    first = chunks[0]
    delivery = [arrived - c["sent_ns"] for arrived, c in zip(arrivals, chunks, strict=True)]
    return KeepUp(
        target=rate,
        tokens=record["output_tokens"],
        chunks=len(chunks),
        sent_rate=_rate(
            record["output_tokens"], first["tokens"], first["sent_ns"], chunks[-1]["sent_ns"]
        ),
        received_rate=_rate(record["output_tokens"], first["tokens"], arrivals[0], arrivals[-1]),
        max_late_ms=max(c["sent_ns"] - c["due_ns"] for c in chunks) / 1e6,
        median_delivery_ms=statistics.median(delivery) / 1e6,
    )


def main(argv: list[str] | None = None) -> int:
    """Measure each rate a few times against a fresh lab server and print a table."""
    parser = argparse.ArgumentParser(prog="python -m demo.lab.keepup", description=__doc__)
    parser.add_argument("--rates", default="2000,10000,50000", help="tokens/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each reply")
    parser.add_argument("--tokens-per-chunk", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="replies per rate")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",")]

    async def measure_all(base_url: str) -> None:
        print(
            f"{'target t/s':>11} {'tokens':>7} {'chunks':>6} {'sent t/s':>9} "
            f"{'received t/s':>12} {'max late ms':>11} {'median delivery ms':>18}"
        )
        for rate in rates:
            for _ in range(args.runs):
                tokens = max(1, round(rate * args.seconds))
                m = await measure(base_url, rate, tokens, args.tokens_per_chunk)
                print(
                    f"{m.target:>11,.0f} {m.tokens:>7} {m.chunks:>6} {m.sent_rate:>9,.0f} "
                    f"{m.received_rate:>12,.0f} {m.max_late_ms:>11.2f} "
                    f"{m.median_delivery_ms:>18.3f}"
                )

    with LabServer() as lab:
        asyncio.run(measure_all(lab.url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
