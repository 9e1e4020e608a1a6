"""Sampling a running app with py-spy, and reading the samples back as a short list.

Optional: only used when a benchmark is given `--profile DIR` and py-spy is installed
(`.venv/bin/pip install py-spy`). Samples are taken without pausing the process (`--nonblocking`)
so the profile costs the app as little as possible.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Self

RATE = 250
"""Samples a second."""
_PLUMBING = (
    "asyncio/", "threading.py", "textual/_callback.py", "textual/timer.py", "textual/app.py",
    "textual/message_pump.py", "benchmarks/", "futures/thread.py", "selectors.py",
)  # fmt: skip
"""Modules of event loops and dispatch, under which everything runs: left out of summaries."""


def py_spy() -> str | None:
    """The py-spy executable beside this interpreter, or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recording:
    """py-spy recording one process until the block ends, into a collapsed-stacks file."""

    def __init__(self, pid: int, output: Path) -> None:
        self.pid = pid
        self.output = output
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        executable = py_spy()
        if executable is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
        self._process = subprocess.Popen(
            [executable, "record", "--pid", str(self.pid), "--rate", str(RATE), "--format", "raw",
             "--threads", "--nonblocking", "--output", str(self.output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        # py-spy writes its file when interrupted, as after Ctrl+C.
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def summary(path: Path, top: int = 15) -> str:
    """Per thread: its busy time, and the functions that time was spent under (inclusive).

    Frames present in nearly every sample of a thread, and the event loops' and dispatchers'
    own frames, say nothing and are left out; "select" is time spent waiting for I/O.
    """
    threads: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = {}
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        total += count
        threads[thread] += count
        seen = inclusive.setdefault(thread, Counter())
        for frame in {_short(f) for f in frames}:
            seen[frame] += count
    if total == 0:
        return "(no samples)"
    out = [f"{total} samples at {RATE}/s: {total / RATE:.2f} s of busy thread time"]
    for thread, count in threads.most_common():
        out.append(f"  {thread}: {count / RATE:.2f} s")
        shown = 0
        for frame, frame_count in inclusive[thread].most_common():
            if frame_count >= 0.9 * count or any(p in frame for p in _PLUMBING):
                continue
            out.append(f"      {100 * frame_count / count:5.1f} %  {frame}")
            shown += 1
            if shown == top:
                break
    return "\n".join(out)


def _short(frame: str) -> str:
    # Frames look like "function (path/to/module.py:123)"; keep the module's last parts.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    parts = where.split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if where else name
