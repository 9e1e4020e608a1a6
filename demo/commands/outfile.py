"""Writing a command's `--out` file: never over an existing file unasked, never half-written.

The data is written to a temporary file beside the target and renamed over it, so a failure
(full disk, killed process) leaves either the old file or nothing — never a torn report. Like
session files, outputs are readable by the user only: they carry the same prompts and replies.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputError(Exception):
    """The `--out` file cannot be written; the message is one line for the user."""


def check_target(path: Path, *, force: bool, suffixes: tuple[str, ...]) -> None:
    """Refuse a target before any work is done, so a refusal costs nothing.

    Args:
        path: The `--out` path.
        force: Replacing an existing file was asked for.
        suffixes: The extensions the command can write, lower case with the dot.

    Raises:
        OutputError: an unknown extension, a directory, or an existing file without `force`.
    """
    if path.suffix.lower() not in suffixes:
        known = " or ".join(suffixes)
        raise OutputError(f"{path}: cannot tell the format from the name (use {known})")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory")
    if path.exists() and not force:
        raise OutputError(f"{path}: already exists (add --force to replace it)")
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: no such directory")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one rename.

    Raises:
        OutputError: the file could not be written (nothing is left behind).
    """
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write it ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise OutputError(f"{path}: cannot write it ({exc.strerror})") from None
