"""`python -m demo.lab`: the lab server as a child process of the app.

Prints one line, `LAB-READY <base URL>`, once it accepts requests: that line is how the parent
learns the port it picked. Run with a pipe as standard input, it exits when the pipe closes, so it
never outlives the process that started it.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

READY_PREFIX = "LAB-READY "
"""Start of the line announcing the server's base URL."""


def _stdin_is_pipe() -> bool:
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m demo.lab", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument("--profiles", type=Path, help="profiles file (default: the shipped one)")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stop when standard input ends (default: when standard input is a pipe)",
    )
    args = parser.parse_args(argv)

    from demo.lab.profiles import ProfileError, load_profiles
    from demo.lab.serve import run

    try:
        profiles = load_profiles(args.profiles)
    except ProfileError as exc:
        print(f"lab server: {exc}", file=sys.stderr)
        return 2
    watch = _stdin_is_pipe() if args.exit_on_stdin_eof is None else args.exit_on_stdin_eof
    try:
        run(
            args.host,
            args.port,
            profiles=profiles,
            on_ready=lambda url: print(READY_PREFIX + url, flush=True),
            exit_on_stdin_eof=watch,
        )
    except OSError as exc:
        print(f"lab server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
