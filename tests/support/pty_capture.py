"""Run a command with its standard error on a real pseudo-terminal, and keep what it drew."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
from collections.abc import Sequence


def run_on_terminal(
    args: Sequence[str], timeout: float = 30
) -> tuple[subprocess.CompletedProcess[str], str]:
    """`args` with stderr on a pty (so it sees a terminal) and stdout captured.

    Returns:
        The finished process, and everything it wrote to the terminal, escape codes included.
    """
    controller, terminal = pty.openpty()
    shown = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal's last writer has gone
                return
            if not data:
                return
            shown.extend(data)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            list(args),
            stdout=subprocess.PIPE,
            stderr=terminal,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
        )
    finally:
        os.close(terminal)
        reader.join(timeout=5)
        os.close(controller)
    return done, shown.decode("utf-8", errors="replace")
