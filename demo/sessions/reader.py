"""Loads session files, tolerating what a crash leaves and refusing what it cannot read.

A torn or corrupt line costs that line (with a warning naming it), never the session; a file
from a newer schema, or something that is not a session at all, is refused with one line that
says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demo.sessions.record import SCHEMA_VERSION


class SessionError(Exception):
    """A session file that cannot be used; the message is one line for the user."""


@dataclass(slots=True)
class Session:
    """A loaded session: its header, its turns (as recorded), and what was skipped."""

    path: Path
    header: dict[str, Any]
    turns: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _check_header(path: Path, line: bytes) -> dict[str, Any]:
    try:
        head = json.loads(line)
    except ValueError:
        raise SessionError(f"{path}: not a session file (the first line is not JSON)") from None
    if not isinstance(head, dict) or head.get("type") != "session":
        raise SessionError(f"{path}: not a session file (no session header)")
    version = head.get("schema_version")
    if not isinstance(version, int):
        raise SessionError(f"{path}: not a session file (no schema version)")
    if version > SCHEMA_VERSION:
        raise SessionError(
            f"{path}: written by a newer version of the app (schema {version}; "
            f"this one reads up to {SCHEMA_VERSION}) — upgrade to open it"
        )
    return head


def _open_checked(path: Path) -> None:
    if not path.exists():
        raise SessionError(f"{path}: no such session file")
    if path.is_dir():
        raise SessionError(f"{path}: is a directory, not a session file")


def read_header(path: Path) -> dict[str, Any]:
    """The header of a session file, or SessionError."""
    _open_checked(path)
    try:
        with path.open("rb") as handle:
            first = handle.readline()
    except OSError as exc:
        raise SessionError(f"{path}: cannot read it ({exc.strerror})") from None
    if not first.strip():
        raise SessionError(f"{path}: the file is empty")
    return _check_header(path, first)


def load_session(path: Path) -> Session:
    """Every readable turn of a session file."""
    _open_checked(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SessionError(f"{path}: cannot read it ({exc.strerror})") from None
    lines = data.split(b"\n")
    if not data.strip():
        raise SessionError(f"{path}: the file is empty")
    session = Session(path, _check_header(path, lines[0]))
    torn_tail = not data.endswith(b"\n")
    last = len(lines) - 1
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if torn_tail and number - 1 == last:
                session.warnings.append(
                    f"{path}: line {number} is incomplete (recording stopped mid-write): skipped"
                )
            else:
                session.warnings.append(f"{path}: line {number} is not valid JSON: skipped")
            continue
        if not isinstance(record, dict) or record.get("type") != "turn":
            session.warnings.append(f"{path}: line {number} is not a turn record: skipped")
            continue
        session.turns.append(record)
    return session
