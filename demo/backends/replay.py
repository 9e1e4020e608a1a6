"""A recorded session as a backend: each request is answered with a recorded turn, at its pace.

A replayed turn emits the events its recording describes — the response starting, every chunk,
usage, provider timings and the way it ended — each at its recorded offset from t0 (divided by
the replay speed), on an absolute schedule (`demo.backends.pacing`), and stamped when it is
emitted. The replay is then measured like any turn, so its re-measured figures can be set beside
the recorded ones: they agree to within the timer's wake-up error.

A recording answers whatever it is asked: the first recorded turn whose prompt is the request's
last user message and that has been used least, otherwise the turn after the last one played
(wrapping). So a recording raced against a live backend on the prompts it was recorded with
answers each prompt with its own reply, and answers anything else in recorded order.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from pathlib import Path

from demo.backends.base import BackendKind, BackendSpec
from demo.backends.pacing import paced, sleep_until
from demo.core.conversation import ChatRequest
from demo.core.events import (
    ContentChunk,
    RequestSent,
    ResponseStarted,
    ServerTiming,
    StreamDone,
    StreamError,
    StreamEvent,
    StreamWarning,
    Usage,
)
from demo.sessions.playback import RecordedTurn, recorded_turns
from demo.sessions.reader import Session, SessionError, load_session

REPLAY_PREFIX = "replay:"
"""A backend name starting with this names a session file to replay (`replay:PATH`)."""

REPLAY_KIND: BackendKind = "replay"
"""The kind replayed turns are shown and recorded under; a config file cannot give it (its
`kind` is checked against `demo.config.KINDS`)."""

RECENT_LIMIT = 10
"""How many recent session files the backend pickers offer."""


def is_replay(spec: BackendSpec) -> bool:
    """True for a backend that replays a session file."""
    return spec.kind == REPLAY_KIND


def load_replay(path: Path) -> Session:
    """A session file for replaying, read once while it is unchanged.

    Reading is keyed by the file's identity, modification time and size, so naming the same file
    again (a race setup, a second lane) costs nothing, while a session still being recorded into
    is read again once it has grown.

    Raises:
        SessionError: it cannot be read, or holds no turn at all.
    """
    try:
        stat = path.stat()
    except OSError:
        stat = None
    if stat is None or path.is_dir():
        return load_session(path)  # raises the reader's one-line error
    key = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        session = _CACHE.get(key)
    if session is None:
        session = load_session(path)
        with _CACHE_LOCK:
            _CACHE[key] = session
            while len(_CACHE) > _CACHE_SIZE:
                del _CACHE[next(iter(_CACHE))]
    if not session.turns:
        raise SessionError(f"{path}: no turns recorded in it yet, nothing to replay")
    return session


_CACHE_SIZE = 16
_CACHE: dict[tuple[int, int, int, int], Session] = {}
_CACHE_LOCK = threading.Lock()


def sessions_dir() -> Path:
    """Where recorded sessions are kept by default."""
    from demo.sessions.recorder import sessions_dir as default_dir

    return default_dir()


def session_path(text: str) -> Path:
    """The file a `replay:` name (or what follows `replay:`) points at: a path, or a session in
    the default directory.

    A bare name that is not a file here is looked up among the recorded sessions, with or without
    its `.jsonl`, so `replay:session-20261126-101500` finds a session recorded by default.
    """
    text = text.removeprefix(REPLAY_PREFIX)
    path = Path(text).expanduser()
    if path.exists() or path.is_absolute() or len(path.parts) > 1:
        return path
    directory = sessions_dir()
    for candidate in (directory / text, directory / f"{text}.jsonl"):
        if candidate.is_file():
            return candidate
    return path


def recent_sessions(directory: Path | None = None, limit: int = RECENT_LIMIT) -> list[Path]:
    """The newest session files in `directory` (the default sessions directory), newest first."""
    directory = directory or sessions_dir()
    try:
        files = [entry for entry in directory.glob("*.jsonl") if entry.is_file()]
    except OSError:
        return []
    dated: list[tuple[float, Path]] = []
    for entry in files:
        try:
            dated.append((entry.stat().st_mtime, entry))
        except OSError:
            continue
    dated.sort(key=lambda item: (-item[0], item[1].name))
    return [entry for _, entry in dated[:limit]]


def preview_spec(path: Path) -> BackendSpec:
    """A picker entry for a session file, named `replay:<stem>`; the file is read when chosen."""
    try:
        stat = path.stat()
        when = datetime.fromtimestamp(stat.st_mtime).strftime("%Y-%m-%d %H:%M")
        detail = f"recorded session, last written {when}, {_size(stat.st_size)}"
    except OSError:
        detail = "recorded session"
    return BackendSpec(
        name=f"{REPLAY_PREFIX}{path.stem}",
        kind=REPLAY_KIND,
        model="recorded",
        base_url=str(path),
        description=detail,
    )


def with_recent(specs: Iterable[BackendSpec], directory: Path | None = None) -> list[BackendSpec]:
    """`specs`, then each recent session file not among them yet, as a `replay:` entry to pick."""
    listed = list(specs)
    names = {spec.name for spec in listed}
    files = {spec.base_url for spec in listed if is_replay(spec)}
    for path in recent_sessions(directory):
        entry = preview_spec(path)
        if entry.name not in names and not {str(path), str(path.resolve())} & files:
            listed.append(entry)
    return listed


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1_000_000 else f"{max(1, round(size / 1e3))} kB"


def replay_spec(name: str, session: Session) -> BackendSpec:
    """The backend a `replay:` name stands for, named exactly as it was given."""
    models = {
        str(record["backend"].get("model"))
        for record in session.turns
        if isinstance(record.get("backend"), dict)
    }
    started = str(session.header.get("started_at", ""))[:16].replace("T", " ")
    count = len(session.turns)
    description = f"{count} recorded turn{'s' if count != 1 else ''}"
    if started:
        description += f" from {started}"
    return BackendSpec(
        name=name,
        kind=REPLAY_KIND,
        model=models.pop() if len(models) == 1 else "recorded",
        base_url=str(session.path),
        description=description,
    )


class ReplayBackend:
    """Answers every request with a recorded turn, replayed at its recorded pace ÷ `speed`.

    Args:
        spec: the name and model the replayed turns are shown under.
        session: the loaded session file.
        speed: 2 replays twice as fast (every offset halved), 0.5 at half speed.

    Raises:
        SessionError: no turn of the session can be replayed.
        ValueError: `speed` is not a positive number.
    """

    def __init__(self, spec: BackendSpec, session: Session, speed: float = 1.0) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"the replay speed must be a positive number, not {speed!r}")
        turns, skipped = recorded_turns(session)
        if not turns:
            raise SessionError(f"{session.path}: no turn in it can be replayed")
        self._spec = spec
        self._session = session
        self._speed = speed
        self._turns = turns
        self._uses = [0] * len(turns)
        self._next = 0
        self.warnings: list[str] = [*session.warnings, *skipped]
        """What was skipped while loading; told once, with the first replayed turn."""
        self._told = False

    @property
    def spec(self) -> BackendSpec:
        return self._spec

    @property
    def base_url(self) -> str:
        return self._spec.base_url or str(self._session.path)

    @property
    def turns(self) -> Sequence[RecordedTurn]:
        """The turns this backend can replay, in recorded order."""
        return self._turns

    @property
    def speed(self) -> float:
        return self._speed

    def pick(self, request: ChatRequest) -> RecordedTurn:
        """The recorded turn that answers `request` (see the module's docstring); marks it used."""
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), None)
        matches = [i for i, turn in enumerate(self._turns) if turn.prompt == prompt]
        if matches:
            chosen = min(matches, key=lambda i: (self._uses[i], i))
        else:
            chosen = self._next % len(self._turns)
        self._uses[chosen] += 1
        self._next = chosen + 1
        return self._turns[chosen]

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        turn = self.pick(request)
        now = time.perf_counter_ns
        speed = self._speed
        t0 = now()
        params: dict[str, object] = {
            "replay": {"session": self._session.path.name, "turn": turn.index + 1, "speed": speed}
        }
        model = turn.model or self._spec.model
        yield RequestSent(t0, self._spec.name, model, self.base_url, params)
        if turn.response_offset_ns is not None:
            await sleep_until(t0 + round(turn.response_offset_ns / speed))
            yield ResponseStarted(now(), 200, "text/event-stream", turn.request_id)
        chunks = turn.chunks
        due = [round(offset / speed) for offset, _, _ in chunks]
        releases = paced(due, t0)
        async with contextlib.aclosing(releases):
            async for first, stop, _ in releases:
                for _, text, reasoning in chunks[first:stop]:
                    yield ContentChunk(now(), text, reasoning)
        if turn.end_offset_ns is not None:
            await sleep_until(t0 + round(turn.end_offset_ns / speed))
        if not self._told:
            self._told = True
            for warning in self.warnings:
                yield StreamWarning(now(), warning)
        for warning in turn.warnings:
            yield StreamWarning(now(), warning)
        if turn.usage is not None:
            yield Usage(now(), *turn.usage)
        if turn.server_timing is not None:
            yield ServerTiming(now(), *turn.server_timing)
        if turn.error is not None:
            kind, message, status = turn.error
            yield StreamError(now(), kind, message, status)
        else:
            yield StreamDone(now(), turn.finish_reason, cancelled=turn.cancelled)

    async def aclose(self) -> None:
        """Nothing to close: a recording has no connection."""
