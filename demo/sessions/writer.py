"""Appends turn records to a session file from a thread of its own.

Encoding a fast turn's thousands of chunks must not happen on the loop that renders or measures,
so records are queued and written by a writer thread. Each record is one `os.write` of a whole
line to a file opened with O_APPEND: a process killed mid-turn leaves every earlier line intact,
at worst with a torn last line that the reader skips.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demo.sessions.reader import SessionError, read_header
from demo.sessions.record import header

_STOP = object()


class SessionWriter:
    """One session file, opened for appending (created readable by the user only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            raise SessionError(f"{path}: is a directory, not a session file")
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists() and path.stat().st_size > 0
        if existed:
            read_header(path)  # appending to something that is not a session would corrupt it
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise SessionError(f"{path}: cannot write the session file ({exc.strerror})") from None
        if not existed:
            self._write(header())
        self.turns = 0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="session-writer", daemon=True)
        self._thread.start()
        self.error: str | None = None
        """The last write failure, if any; recording stops being silent about it."""

    def record(self, build: Callable[[], dict[str, Any]]) -> None:
        """Queue a record; `build` runs on the writer thread, off the caller's loop."""
        self.turns += 1
        self._queue.put(build)

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert callable(item)
            try:
                self._write(item())
            except Exception as exc:  # a failed write must not take the app down
                self.error = f"{self.path}: could not record a turn ({exc})"

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = line.encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then close the file."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        os.close(self._fd)

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
