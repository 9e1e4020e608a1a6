"""Install the system packages the app needs, when they are missing: `python3 -m demo.sysdeps`.

Runs with the bare system Python before any virtual environment exists (standard library only),
so the README's set-up commands work on a fresh Debian or Ubuntu machine. On other systems, or
without root or sudo, it says exactly which packages to install and how.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable


def _has_venv() -> bool:
    # Debian splits ensurepip out of the interpreter; without it `python3 -m venv` fails.
    return importlib.util.find_spec("ensurepip") is not None


def _has_espeak() -> bool:
    return (
        shutil.which("espeak-ng") is not None or ctypes.util.find_library("espeak-ng") is not None
    )


def _has_portaudio() -> bool:
    return ctypes.util.find_library("portaudio") is not None


REQUIRED: dict[str, Callable[[], bool]] = {
    "python3-venv": _has_venv,
}
"""Debian package → a check that it (or an equivalent) is already present."""

VOICE: dict[str, Callable[[], bool]] = {
    "espeak-ng": _has_espeak,
    "libportaudio2": _has_portaudio,
}
"""Needed for speech in and out only: without them the app runs with typed input, silent replies."""


def missing() -> list[str]:
    wanted = {**REQUIRED, **VOICE}
    return [package for package, present in wanted.items() if not present()]


def _installer() -> list[str] | None:
    """The command prefix that may run apt-get here: directly as root, else through sudo."""
    if not shutil.which("apt-get"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo"]
    return None


def main() -> int:
    needed = missing()
    if not needed:
        return 0
    prefix = _installer()
    if prefix is None:
        print(
            "latency-demo needs these system packages: "
            f"{' '.join(needed)} (Debian/Ubuntu: apt-get install -y {' '.join(needed)})",
            file=sys.stderr,
        )
        # Voice packages are optional (typed input works without them); a venv is not.
        return 1 if any(package in REQUIRED for package in needed) else 0
    print(f"installing system packages: {' '.join(needed)}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    update = subprocess.run([*prefix, "apt-get", "update", "-qq"], env=env, check=False)
    install = subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", *needed], env=env, check=False
    )
    if update.returncode or install.returncode:
        print(f"could not install: {' '.join(needed)}", file=sys.stderr)
        return 1 if any(package in REQUIRED for package in needed) else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
