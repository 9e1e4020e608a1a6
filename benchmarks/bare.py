"""The floor: the least a client can do to read a stream — httpx and httpx-sse, nothing else.

Every content chunk is timestamped the moment its event is parsed, like the app does, and the
decode rate uses the app's definition (usage tokens less the first chunk's share by characters,
over first → last chunk), so the two can be compared figure for figure.

As a script it streams one reply to the terminal (printing each chunk as it arrives) and writes
its figures to a JSON file: the floor for the screen-lag benchmark in tmux.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
from httpx_sse import connect_sse


@dataclass(frozen=True, slots=True)
class BareResult:
    """One streamed reply as the bare reader saw it (times are `perf_counter_ns`)."""

    request_id: str
    t0_ns: int
    first_ns: int
    last_ns: int
    done_ns: int
    usage_tokens: int
    first_chars: int
    chars: int
    chunks: int

    @property
    def decode_tokens_per_s(self) -> float | None:
        span = self.last_ns - self.first_ns
        if span <= 0 or self.chars == 0:
            return None
        first_share = self.usage_tokens * self.first_chars / self.chars
        return (self.usage_tokens - first_share) / (span / 1e9)

    @property
    def ttft_s(self) -> float:
        return (self.first_ns - self.t0_ns) / 1e9


def request_body(
    model: str, prompt: str, lab: dict[str, Any], max_tokens: int = 1_000_000
) -> dict[str, Any]:
    """A streaming chat request with usage, as the app sends it."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "lab": lab,
    }


def read(
    client: httpx.Client, base_url: str, body: dict[str, Any], echo: TextIO | None = None
) -> BareResult:
    """Stream one reply; with `echo`, write each chunk's text to it as it arrives."""
    now = time.perf_counter_ns
    first_ns = last_ns = 0
    first_chars = chars = chunks = 0
    usage_tokens = 0
    loads = json.loads
    t0_ns = now()
    with connect_sse(client, "POST", f"{base_url}/v1/chat/completions", json=body) as source:
        source.response.raise_for_status()
        request_id = source.response.headers["x-request-id"]
        for event in source.iter_sse():
            t_ns = now()
            data = event.data
            if data == "[DONE]":
                break
            chunk = loads(data)
            choices = chunk.get("choices")
            if choices:
                text = choices[0].get("delta", {}).get("content")
                if text:
                    if echo is not None:
                        echo.write(text)
                        echo.flush()
                    if not chunks:
                        first_ns, first_chars = t_ns, len(text)
                    last_ns = t_ns
                    chars += len(text)
                    chunks += 1
            usage = chunk.get("usage")
            if usage:
                usage_tokens = usage["completion_tokens"]
        done_ns = now()
    return BareResult(
        request_id, t0_ns, first_ns, last_ns, done_ns, usage_tokens, first_chars, chars, chunks
    )


def client() -> httpx.Client:
    """A client like the app's: no read timeout to speak of, a kept-alive connection."""
    return httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))


def main() -> None:
    parser = argparse.ArgumentParser(description="Stream one lab reply to the terminal.")
    parser.add_argument("--url", required=True, help="the lab server's base URL")
    parser.add_argument("--model", default="fast")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--lab", default="{}", help="the `lab` overrides, as JSON")
    parser.add_argument("--result", type=Path, required=True, help="write the figures here")
    args = parser.parse_args()
    body = request_body(args.model, args.prompt, json.loads(args.lab))
    with client() as http:
        # A first small request opens the connection, as the app's prime does.
        read(http, args.url, request_body(args.model, "hi", {"output_tokens": 1, "ttft_s": 0}))
        # Start when told (a line on stdin), so the benchmark is watching when the reply begins.
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
        result = read(http, args.url, body, echo=sys.stdout)
    args.result.write_text(json.dumps(asdict(result)), encoding="utf-8")
    # Stay on screen until the benchmark closes the pane.
    sys.stdin.read()


if __name__ == "__main__":
    main()
