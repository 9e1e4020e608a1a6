"""The one backend protocol. The UI and the commands only ever see this.

Like Harlequin's adapters, every concrete backend hides behind a small interface: callers ask for a
stream of typed events for a request and never learn which implementation produced it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from demo.core.conversation import ChatRequest
from demo.core.events import StreamEvent

BackendKind = Literal["remote", "local", "lab", "replay"]


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """A named backend as configured: where it is and how to call it. Never holds a key."""

    name: str
    kind: BackendKind
    model: str
    base_url: str | None = None
    """None for a lab backend served by the embedded lab server."""
    api_key_env: str | None = None
    """The environment variable the key is read from; the key itself is never stored."""
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    description: str = ""

    def missing_key(self, environ: dict[str, str] | None = None) -> str | None:
        """The key variable this backend needs but the environment lacks, if any."""
        import os

        env = os.environ if environ is None else environ
        if self.api_key_env and not env.get(self.api_key_env):
            return self.api_key_env
        return None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long to wait, in seconds, before a turn is failed."""

    connect_s: float = 10.0
    first_byte_s: float = 60.0
    """From sending the request to the response headers."""
    stall_s: float = 30.0
    """Between any two reads of the response body once it has started."""


@runtime_checkable
class Backend(Protocol):
    """Streams chat replies as typed, timestamped events.

    `stream` never raises for network or server faults: it ends with a `StreamError` instead, so
    every consumer handles failure the same way. Cancelling the consuming task closes the
    connection at once; the runner, not the backend, reports the cancellation.
    """

    @property
    def spec(self) -> BackendSpec: ...

    @property
    def base_url(self) -> str: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
