"""Builds backends from their specs and owns what they share (the embedded lab server).

The UI and the commands ask the hub for a runner by backend name and never learn whether a real
provider, a local server, the lab or a recorded session is behind it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from demo.backends.base import Backend, BackendKind, BackendSpec, Timeouts
from demo.backends.openai import OpenAIBackend
from demo.backends.replay import ReplayBackend, is_replay, load_replay, session_path
from demo.core.conversation import ChatRequest
from demo.core.events import StreamError, StreamEvent
from demo.core.runner import BackendRunner
from demo.lab.process import LabServer

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def adhoc_spec(base_url: str, model: str, api_key_env: str | None = None) -> BackendSpec:
    """A backend for an endpoint given on the command line rather than in the config."""
    host = httpx.URL(base_url).host or "custom"
    kind: BackendKind = "local" if host in _LOCAL_HOSTS else "remote"
    return BackendSpec(
        name=host, kind=kind, model=model, base_url=base_url, api_key_env=api_key_env
    )


class LabBackend:
    """A lab profile served by the embedded lab server, which may still be starting.

    Waiting for the server happens before the request is sent, so start-up never counts towards
    the turn's figures.
    """

    def __init__(self, spec: BackendSpec, lab: Callable[[], LabServer], timeouts: Timeouts) -> None:
        self._spec = spec
        self._lab = lab
        self._timeouts = timeouts
        self._inner: OpenAIBackend | None = None

    @property
    def spec(self) -> BackendSpec:
        return self._spec

    @property
    def base_url(self) -> str:
        return self._inner.base_url if self._inner else "(lab server starting)"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if self._inner is None:
            try:
                url = await asyncio.to_thread(lambda: self._lab().url)
            except Exception as exc:
                yield StreamError(
                    time.perf_counter_ns(), "connect", f"the lab server did not start: {exc}"
                )
                return
            self._inner = OpenAIBackend(self._spec, f"{url}/v1", timeouts=self._timeouts)
        async for event in self._inner.stream(request):
            yield event

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


class BackendHub:
    """Creates each backend once, on its own runner thread, and closes them all at exit."""

    def __init__(self, specs: dict[str, BackendSpec], timeouts: Timeouts | None = None) -> None:
        self.specs = dict(specs)
        self.timeouts = timeouts or Timeouts()
        self._runners: dict[str, BackendRunner] = {}
        self._lab: LabServer | None = None
        self._lock = threading.Lock()

    @property
    def lab(self) -> LabServer:
        """The embedded lab server, started on first use."""
        with self._lock:
            if self._lab is None:
                self._lab = LabServer()
                self._lab.start()
            return self._lab

    def warm_up(self, name: str) -> None:
        """Start what `name` needs (the lab server) ahead of the first prompt."""
        spec = self.specs.get(name)
        if spec is not None and spec.kind == "lab" and spec.base_url is None:
            self.lab  # noqa: B018 - starting it is the point

    def add(self, spec: BackendSpec) -> None:
        self.specs[spec.name] = spec

    def attach(self, backend: Backend) -> BackendRunner:
        """Serve an already-built backend under its spec's name (a replay of part of a session)."""
        spec = backend.spec
        self.specs[spec.name] = spec
        runner = BackendRunner(backend)
        previous = self._runners.pop(spec.name, None)
        if previous is not None:
            previous.close()
        self._runners[spec.name] = runner
        return runner

    def backend(self, spec: BackendSpec) -> Backend:
        if is_replay(spec):
            # The file was read when the name was resolved; unchanged, it is not read again.
            path = Path(spec.base_url) if spec.base_url else session_path(spec.name)
            return ReplayBackend(spec, load_replay(path))
        if spec.kind == "lab" and spec.base_url is None:
            return LabBackend(spec, lambda: self.lab, self.timeouts)
        return OpenAIBackend(spec, timeouts=self.timeouts)

    def runner(self, name: str) -> BackendRunner:
        runner = self._runners.get(name)
        if runner is None:
            runner = BackendRunner(self.backend(self.specs[name]))
            self._runners[name] = runner
        return runner

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()
        if self._lab is not None:
            self._lab.stop()
            self._lab = None
