"""`latency-demo replay SESSION [--speed X]`: play a recorded session back in the TUI.

The file is read and checked before the app starts, so a file that cannot be replayed costs one
line on stderr (exit 2), never a traceback or a blank screen. Lines and turns that were skipped
are listed on stderr and shown again in the app.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from demo.config import AppSettings


def speed_value(value: str) -> float:
    """An argparse type: a replay speed, a positive finite number (2 plays twice as fast)."""
    try:
        speed = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number such as 2 or 0.5, got {value!r}"
        ) from None
    if not (math.isfinite(speed) and speed > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return speed


def add_replay_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """The `replay` sub-command's arguments."""
    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="play a recorded session back in the TUI at its recorded pace",
    )
    replay.add_argument("session", type=Path, metavar="SESSION", help="a session file (.jsonl)")
    replay.add_argument(
        "--speed",
        type=speed_value,
        default=1.0,
        metavar="X",
        help="play X times as fast as recorded (default 1; 0.5 is half speed)",
    )
    # SUPPRESS keeps the app-wide flags given before the sub-command from being reset here.
    replay.add_argument(
        "--no-voice",
        action="store_true",
        default=argparse.SUPPRESS,
        help="silent replies (no speech engine is loaded)",
    )
    replay.add_argument(
        "--mute",
        action="store_true",
        default=argparse.SUPPRESS,
        help="start with spoken replies muted",
    )


def replay(settings: AppSettings, args: argparse.Namespace) -> int:
    """Check the session file, then replay it in the TUI; returns the exit code.

    Raises:
        SessionError: the file cannot be replayed (the command line prints it, exit 2).
    """
    from demo.backends.replay import load_replay
    from demo.sessions.playback import recorded_turns
    from demo.sessions.reader import SessionError

    session = load_replay(args.session)
    turns, skipped = recorded_turns(session)
    for warning in [*session.warnings, *skipped]:
        print(f"latency-demo: warning: {warning}", file=sys.stderr)
    if not turns:
        raise SessionError(f"{args.session}: no turn in it can be replayed")

    from demo.ui.replay_app import ReplayApp
    from demo.voice.session import VoiceOptions

    voice = None
    if not getattr(args, "no_voice", False):
        voice = VoiceOptions(speak=not getattr(args, "mute", False))
    app = ReplayApp(settings, session, speed=args.speed, voice=voice)
    app.run()
    return app.return_code or 0
