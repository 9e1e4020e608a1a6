"""Running the lab server: as a child process of the app, or in the foreground.

The app measures latency to the microsecond, so the server it measures runs in its own process:
sharing a GIL with the client would let one side's work show up as the other side's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from demo.lab.__main__ import READY_PREFIX

READY_TIMEOUT_S = 20.0
"""How long `url` waits for the child to announce itself (importing Starlette takes a while)."""
STOP_TIMEOUT_S = 5.0
"""How long `stop` waits for a clean exit before killing the child."""
STDERR_TAIL_LINES = 30
"""Lines of the child's stderr kept to explain a failure."""

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent.parent
"""The directory holding the `demo` package, so the child imports this very copy of it."""


class LabServerError(RuntimeError):
    """The lab server could not be started or did not become ready."""


class LabServer:
    """The lab server in a child process on a free local port.

    `start()` only spawns the child; `wait_ready()` (or `url`) blocks until it listens. The child
    exits on its own if this process dies, because it watches its stdin pipe for the end.

    Use as a context manager, or call `start()` and `stop()`; both are idempotent.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        profiles_path: Path | None = None,
        ready_timeout_s: float = READY_TIMEOUT_S,
    ) -> None:
        self._host = host
        self._port = port
        self._profiles_path = profiles_path
        self._ready_timeout_s = ready_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._url: str | None = None
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def command(self) -> list[str]:
        """The child's command line."""
        command = [
            sys.executable,
            "-m",
            "demo.lab",
            "--host",
            self._host,
            "--port",
            str(self._port),
        ]
        if self._profiles_path is not None:
            command += ["--profiles", str(self._profiles_path)]
        return command

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Started and not (yet) exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str:
        """The base URL (`http://127.0.0.1:PORT`), waiting for the server to be ready."""
        return self.wait_ready()

    def start(self) -> None:
        """Spawn the child, without waiting for it to listen. Does nothing if already started."""
        with self._lock:
            if self._process is not None:
                return
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(_PACKAGE_PARENT), env.get("PYTHONPATH")) if p
            )
            env["PYTHONUNBUFFERED"] = "1"
            try:
                self._process = subprocess.Popen(
                    self.command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                )
            except OSError as exc:
                raise LabServerError(f"cannot start the lab server: {exc}") from exc
            assert self._process.stdout is not None and self._process.stderr is not None
            self._threads = [
                # The end of stdout also wakes `wait_ready`: the child is gone.
                _reader(self._process.stdout, self._on_stdout_line, self._ready.set, "lab-stdout"),
                _reader(self._process.stderr, self._stderr_tail.append, None, "lab-stderr"),
            ]

    def wait_ready(self, timeout: float | None = None) -> str:
        """Block until the server listens, and return its base URL.

        Raises:
            LabServerError: it was never started, it exited, or `timeout` (default: the
                constructor's `ready_timeout_s`) passed first; the message ends with the tail
                of its stderr.
        """
        process = self._process
        if process is None:
            raise LabServerError("the lab server was not started")
        limit = self._ready_timeout_s if timeout is None else timeout
        if not self._ready.wait(limit):
            raise LabServerError(
                f"the lab server did not become ready within {limit:g} s{self._tail()}"
            )
        if self._url is None:
            # stdout ended without the ready line: the child is exiting; let stderr finish.
            try:
                code = process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None
            self._threads[1].join(timeout=1.0)
            raise LabServerError(
                f"the lab server exited (code {code}) before it was ready{self._tail()}"
            )
        return self._url

    async def wait_ready_async(self, timeout: float | None = None) -> str:
        """`wait_ready` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_ready, timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Stop the child: ask, then insist. Returns its exit code; idempotent.

        Returns:
            The exit code (0 for a clean stop), or None if it was never started.
        """
        with self._lock:
            process = self._process
            if process is None:
                return None
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
            for thread in self._threads:
                thread.join(timeout=1.0)
            return process.returncode

    def stderr_tail(self) -> list[str]:
        """The last lines the child wrote to stderr (warnings, errors), oldest first."""
        return list(self._stderr_tail)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _on_stdout_line(self, line: str) -> None:
        if self._url is None and line.startswith(READY_PREFIX):
            self._url = line.removeprefix(READY_PREFIX).strip()
            self._ready.set()

    def _tail(self) -> str:
        lines = [line for line in self.stderr_tail() if line.strip()]
        return ":\n" + "\n".join(lines) if lines else " (no output on stderr)"


def _reader(
    stream: IO[bytes],
    on_line: Callable[[str], None],
    on_end: Callable[[], None] | None,
    name: str,
) -> threading.Thread:
    """A thread that passes each line of `stream` to `on_line`, then calls `on_end`."""

    def pump() -> None:
        try:
            for raw in stream:
                on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        except (OSError, ValueError):
            pass
        finally:
            if on_end is not None:
                on_end()

    thread = threading.Thread(target=pump, name=name, daemon=True)
    thread.start()
    return thread


def serve_forever(host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Run the lab server in the foreground until Ctrl+C (`latency-demo serve`).

    Args:
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        announce: Receives the lines that tell the user where the server is and what it serves.
    """
    from demo.lab.profiles import load_profiles
    from demo.lab.serve import run

    profiles = load_profiles()

    def ready(url: str) -> None:
        announce(f"Lab server listening on {url} (OpenAI base URL: {url}/v1)")
        for profile in profiles.values():
            announce(
                f"  model {profile.name!r}: {profile.label} "
                f"({profile.tokens_per_s:g} tokens/s, first token after {profile.ttft_s:g} s)"
            )
        announce("Press Ctrl+C to stop.")

    # Ctrl+C during start-up, before uvicorn takes over the signal, is a stop like any other.
    with contextlib.suppress(KeyboardInterrupt):
        run(host, port, profiles=profiles, on_ready=ready)
