"""The lab server as the benchmarks use it: a child process, its send log, and config files.

The lab server logs when it sent every chunk (`GET /lab/requests/{id}`), on the same monotonic
clock (`time.perf_counter_ns`, CLOCK_MONOTONIC on Linux) every process on the machine reads, so
a client's timestamps can be compared with the server's directly.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from demo.lab.process import LabServer

MARKDOWN_PROMPT = "Explain how a wafer-scale chip makes LLM inference fast."
"""Answered with the lab's long Markdown answer (headings, lists, bold, a quote)."""
PLAIN_PROMPT = "Please reply with plain prose."
"""Matches no suggested prompt, so the lab answers with its generic reply: four paragraphs of
prose whose only Markdown is two bold phrases (the lab has no purely plain answer)."""


@dataclass(frozen=True, slots=True)
class ServerTurn:
    """What the lab server really sent for one request (times are `perf_counter_ns`)."""

    request_id: str
    received_ns: int
    first_sent_ns: int
    last_sent_ns: int
    done_sent_ns: int | None
    tokens: int
    first_tokens: int
    chunks: int
    sent_ns: tuple[int, ...]
    due_ns: tuple[int, ...]

    @property
    def decode_tokens_per_s(self) -> float | None:
        """The rate the server achieved: tokens after the first chunk ÷ first→last send."""
        span = self.last_sent_ns - self.first_sent_ns
        return (self.tokens - self.first_tokens) / (span / 1e9) if span > 0 else None

    @property
    def late_ns(self) -> list[int]:
        """How late each chunk went out against its timetable."""
        return [s - d for s, d in zip(self.sent_ns, self.due_ns, strict=True)]

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> ServerTurn:
        chunks = record["chunks"]
        if not chunks:
            raise ValueError(f"request {record['id']} sent no content")
        return cls(
            request_id=record["id"],
            received_ns=record["received_ns"],
            first_sent_ns=record["first_content_sent_ns"],
            last_sent_ns=record["last_content_sent_ns"],
            done_sent_ns=record["done_sent_ns"],
            tokens=record["output_tokens"],
            first_tokens=chunks[0]["tokens"],
            chunks=len(chunks),
            sent_ns=tuple(c["sent_ns"] for c in chunks),
            due_ns=tuple(c["due_ns"] for c in chunks),
        )


def lab_params(
    tokens_per_s: float | None = None,
    *,
    output_tokens: int | None = None,
    tokens_per_chunk: int | None = None,
    ttft_s: float | None = None,
    jitter_ms: float | None = None,
) -> dict[str, Any]:
    """The `lab` overrides of a request body; what is left out keeps the profile's value."""
    given = {
        "tokens_per_s": tokens_per_s,
        "output_tokens": output_tokens,
        "tokens_per_chunk": tokens_per_chunk,
        "ttft_s": ttft_s,
        "jitter_ms": jitter_ms,
    }
    return {key: value for key, value in given.items() if value is not None}


class Lab:
    """A lab server in a child process, with a client for its request log.

    Also writes the `--config` files that point the app's backends at it.
    """

    def __init__(self) -> None:
        self.server = LabServer()
        self._client: httpx.Client | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="latency-bench-")
        self.dir = Path(self._dir.name)
        """A scratch directory that lives as long as the lab (configs, result files)."""

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def __enter__(self) -> Self:
        self.server.start()
        self._client = httpx.Client(base_url=self.server.url, timeout=10.0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._client is not None:
            self._client.close()
        self.server.stop()
        self._dir.cleanup()

    def record(self, request_id: str) -> ServerTurn:
        """The server's log of one request (it must have finished sending)."""
        assert self._client is not None, "use Lab as a context manager"
        response = self._client.get(f"/lab/requests/{request_id}")
        response.raise_for_status()
        return ServerTurn.from_json(response.json())

    def config(self, backends: dict[str, tuple[str, dict[str, Any]]], name: str = "bench") -> Path:
        """Write a `--config` file with lab backends served by this lab server.

        Args:
            backends: backend name → (lab profile, `lab` overrides). A name that is also a
                profile (`fast`, `slow`) replaces the built-in backend of that name.
            name: The file's stem, so several configs can live side by side.
        """
        lines = ["[app]", "max_tokens = 1000000", ""]
        for backend, (profile, overrides) in backends.items():
            lines += [
                f"[backends.{backend}]",
                'kind = "lab"',
                f"model = {json.dumps(profile)}",
                f"base_url = {json.dumps(self.url + '/v1')}",
            ]
            if overrides:
                inline = ", ".join(f"{k} = {json.dumps(v)}" for k, v in overrides.items())
                lines.append(f"params = {{ lab = {{ {inline} }} }}")
            lines.append("")
        path = self.dir / f"{name}.toml"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


def isolated_env(base: dict[str, str], home: Path) -> dict[str, str]:
    """An environment whose user directories are scratch ones, so no personal config is read."""
    env = dict(base)
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[variable] = str(home / variable.lower())
    return env
