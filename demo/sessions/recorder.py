"""The recorder: one more consumer of every finished turn, for the TUI and the headless commands.

Records are built and written on the session writer's thread, never on the loop that renders or
measures. The recorder also keeps what it recorded, so the stats screen can show the session so
far — even when nothing is written to disk (`--no-record`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from demo.core.turn import Turn, TurnResult
from demo.paths import DIRS
from demo.sessions.record import TurnMode, turn_record
from demo.sessions.writer import SessionWriter


def sessions_dir() -> Path:
    """Where session files go unless `--record PATH` says otherwise."""
    return Path(DIRS.user_data_dir) / "sessions"


def default_session_path(prefix: str = "session", now: datetime | None = None) -> Path:
    """A new file per run, named by its start time so a listing sorts by age."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = sessions_dir() / f"{prefix}-{stamp}.jsonl"
    counter = 1
    while path.exists():  # two runs in the same second each get their own file
        counter += 1
        path = sessions_dir() / f"{prefix}-{stamp}-{counter}.jsonl"
    return path


class Recorder:
    """Records finished turns into a session file (or only in memory, when not recording)."""

    def __init__(self, writer: SessionWriter | None = None) -> None:
        self._writer = writer
        self._lock = threading.Lock()
        self._built: list[dict[str, Any]] = []
        self._pending: list[Callable[[], dict[str, Any]]] = []

    @classmethod
    def open(
        cls, record: Path | None, *, enabled: bool = True, prefix: str = "session"
    ) -> Recorder:
        """The recorder a command line asks for: `--record PATH`, the default file, or none.

        Raises:
            SessionError: the file cannot be used (a directory, not a session, not writable).
        """
        if not enabled:
            return cls(None)
        return cls(SessionWriter(record or default_session_path(prefix)))

    @property
    def path(self) -> Path | None:
        """The session file, or None when turns are kept only in memory."""
        return self._writer.path if self._writer is not None else None

    def take_error(self) -> str | None:
        """The last write failure not yet shown to the user, if any (shown once)."""
        writer = self._writer
        if writer is None or writer.error is None:
            return None
        error, writer.error = writer.error, None
        return error

    def record(
        self,
        turn: Turn,
        result: TurnResult,
        *,
        mode: TurnMode = "typed",
        race: dict[str, Any] | None = None,
    ) -> None:
        """Record a finished turn; returns at once (the work happens on the writer's thread)."""

        def build() -> dict[str, Any]:
            record = turn_record(turn, result, mode=mode, race=race)
            with self._lock:
                self._built.append(record)
            return record

        if self._writer is not None:
            self._writer.record(build)
        else:
            with self._lock:
                self._pending.append(build)

    def record_lane(
        self, turn: Turn, result: TurnResult, race: dict[str, Any], place: int | None
    ) -> None:
        """One race lane, as soon as it ends, so a crash mid-race keeps the lanes already done.

        Args:
            race: The race's `race_record`, the same for every lane of the race.
            place: The lane's place in the order lanes finished (None if it did not finish).
        """
        self.record(turn, result, mode="race", race={**race, "place": place})

    def records(self) -> list[dict[str, Any]]:
        """Every turn recorded so far in this run (built now if recording only in memory)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for build in pending:
            build()
        with self._lock:
            return list(self._built)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
