"""A private tmux server driven through one control-mode client: a real terminal, read cheaply.

Polling a screen every few milliseconds with `tmux capture-pane` would start a process each time,
and on a 2-core machine that costs the app being measured a good share of a CPU. One control-mode
client (`tmux -C`) takes commands on a pipe instead: a capture costs a write and a read.

The server has a socket of its own, in the benchmark's scratch directory, so it never touches
anyone else's tmux sessions and leaves nothing behind.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self


class TmuxError(RuntimeError):
    """tmux answered a command with an error, or went away."""


@dataclass(frozen=True, slots=True)
class Capture:
    """The pane's text, and the moments the request was sent and the answer read (ns)."""

    lines: list[str]
    sent_ns: int
    read_ns: int


@dataclass(frozen=True, slots=True)
class Pane:
    """A pane running one command: its tmux id and the command's process id."""

    id: str
    pid: int
    started_ns: int
    """When tmux was asked to start it."""


class Tmux:
    """A tmux server of `width`×`height` windows, with a control client attached."""

    def __init__(self, scratch: Path, width: int = 160, height: int = 48) -> None:
        self.width = width
        self.height = height
        self._scratch = scratch
        self._socket = str(scratch / "tmux.sock")
        self._control: subprocess.Popen[bytes] | None = None
        self._scripts = 0

    def _tmux(self, *args: str) -> list[str]:
        return ["tmux", "-S", self._socket, "-f", "/dev/null", *args]

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        # A placeholder window keeps the session alive while benchmark panes come and go.
        subprocess.run(
            self._tmux(
                "new-session",
                "-d",
                "-s",
                "bench",
                "-x",
                str(self.width),
                "-y",
                str(self.height),
                "sleep 86400",
            ),
            check=True,
        )
        self._control = subprocess.Popen(
            self._tmux("-C", "attach", "-t", "bench"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._control.stdout is not None
        # The attach itself is answered first (a block of flag 0); commands can follow it.
        self._block(self._control.stdout, mine=False)
        # Pane output would otherwise be copied to this client as notifications.
        self.command("refresh-client -f no-output")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        subprocess.run(self._tmux("kill-server"), capture_output=True, check=False)
        if self._control is not None:
            try:
                self._control.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._control.kill()
                self._control.wait()

    def command(self, line: str) -> tuple[list[str], int, int]:
        """Run one tmux command; its output lines, and when it was sent and answered (ns)."""
        control = self._control
        assert control is not None and control.stdin is not None and control.stdout is not None
        sent = time.perf_counter_ns()
        control.stdin.write(line.encode() + b"\n")
        control.stdin.flush()
        output = self._block(control.stdout)
        return output, sent, time.perf_counter_ns()

    @staticmethod
    def _block(stdout: IO[bytes], mine: bool = True) -> list[str]:
        # Notifications (%window-add, %sessions-changed, …) may come before the answer's block;
        # answers to this client's own commands carry flag 1.
        while True:
            raw = stdout.readline()
            if not raw:
                raise TmuxError("the tmux control client went away")
            if raw.startswith(b"%begin ") and (raw.split()[3] == b"1") == mine:
                tag = raw.split()[2]
                break
        lines: list[str] = []
        while True:
            raw = stdout.readline()
            if not raw:
                raise TmuxError("the tmux control client went away")
            if raw.startswith((b"%end ", b"%error ")) and raw.split()[2] == tag:
                if raw.startswith(b"%error "):
                    raise TmuxError("; ".join(lines) or "tmux error")
                return lines
            lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Pane:
        """Run `argv` as a new window's only process (no shell stays in between)."""
        return self.spawn_script(self.write_script(argv, env, cwd))

    def spawn_script(self, script: Path) -> Pane:
        """Start a window running `sh script` (the script should `exec` the real command)."""
        output, sent, _ = self.command(
            f'new-window -d -P -F "#{{pane_id}} #{{pane_pid}}" "exec sh {script}"'
        )
        pane_id, pid = output[0].split()
        return Pane(pane_id, int(pid), sent)

    def write_script(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Path:
        """A launcher script for `spawn_script`, written ahead so timing starts at the spawn."""
        self._scripts += 1
        script = self._scratch / f"pane-{self._scripts}.sh"
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        script.write_text(
            f"{exports}cd {shlex.quote(str(cwd))}\nexec {shlex.join(argv)}\n", encoding="utf-8"
        )
        return script

    def capture(self, pane: Pane) -> Capture:
        """The pane's visible text, one string per row."""
        lines, sent, read = self.command(f"capture-pane -p -t {pane.id}")
        return Capture(lines, sent, read)

    def type(self, pane: Pane, text: str) -> int:
        """Type `text` literally into the pane; returns when tmux was asked to (ns)."""
        if "'" in text or "\n" in text:
            raise ValueError("text to type must not contain quotes or newlines")
        _, sent, _ = self.command(f"send-keys -t {pane.id} -l '{text}'")
        return sent

    def keys(self, pane: Pane, *keys: str) -> int:
        """Press named keys (`Enter`, `C-q`, …); returns when tmux was asked to (ns)."""
        _, sent, _ = self.command(f"send-keys -t {pane.id} {' '.join(keys)}")
        return sent

    def alive(self, pane: Pane) -> bool:
        output, _, _ = self.command('list-panes -a -F "#{pane_id} #{pane_dead}"')
        return any(line.split()[0] == pane.id and line.split()[1] == "0" for line in output)

    def kill(self, pane: Pane) -> None:
        if self.alive(pane):
            self.command(f"kill-pane -t {pane.id}")
