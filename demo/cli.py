"""The `latency-demo` command line: the TUI by default, and headless sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from demo import __version__
from demo.commands.replay import add_replay_parser

if TYPE_CHECKING:
    from demo.config import AppSettings


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="settings file (TOML); default: config.toml in the user config directory",
    )
    parser = argparse.ArgumentParser(
        prog="latency-demo",
        description="Feel what LLM latency does to a conversation.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--backend", metavar="NAME", help="backend to start on (default: fast)")
    _voice_arguments(parser)
    parser.add_argument(
        "--no-voice", action="store_true", help="typed input and silent replies only"
    )
    parser.add_argument("--mute", action="store_true", help="start with spoken replies muted")
    recording_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", parents=[common], help="run the lab server in the foreground"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    ask = commands.add_parser(
        "ask", parents=[common], help="stream one prompt headless and print its figures"
    )
    ask.add_argument(
        "prompt",
        nargs="?",
        help="the prompt ('-' reads it from standard input; omit with --mic-file)",
    )
    ask.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="a configured backend (default: fast); give it 2–4 times to race them",
    )
    ask.add_argument("--base-url", metavar="URL", help="an ad-hoc OpenAI-compatible endpoint")
    ask.add_argument("--model", metavar="M", help="model name (with --base-url, or to override)")
    ask.add_argument(
        "--api-key-env", metavar="VAR", help="environment variable holding the key for --base-url"
    )
    ask.add_argument(
        "--runs", type=_positive, default=1, metavar="N", help="repeat the turn (or race) N times"
    )
    ask.add_argument("--max-tokens", type=_positive, metavar="N", help="cap the reply length")
    ask.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per turn on stdout (a race adds a summary object)",
    )
    _voice_arguments(ask)
    recording_arguments(ask)
    ask.add_argument(
        "--speak", action="store_true", help="speak the reply through the audio output"
    )

    commands.add_parser("devices", parents=[common], help="list audio input and output devices")

    commands.add_parser(
        "backends", parents=[common], help="list configured backends and their key variables"
    )
    _bench_parser(commands, common)
    _report_parsers(commands, common)
    add_replay_parser(commands, common)
    return parser


def _bench_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """`bench`: many turns per backend, summarised."""
    bench = commands.add_parser(
        "bench", parents=[common], help="run many turns per backend and print their statistics"
    )
    bench.add_argument(
        "--backend",
        action="append",
        required=True,
        metavar="NAME",
        help="a configured backend; repeat to benchmark several, one after another",
    )
    bench.add_argument(
        "--prompts",
        type=Path,
        metavar="FILE",
        help='one prompt per line, or JSON Lines of {"prompt": ...} (default: the lab prompts)',
    )
    bench.add_argument(
        "--runs", type=_positive, default=1, metavar="N", help="times each prompt is sent"
    )
    bench.add_argument(
        "--concurrency",
        type=_positive,
        default=1,
        metavar="C",
        help="requests in flight per backend (at most 8)",
    )
    bench.add_argument("--max-tokens", type=_positive, metavar="M", help="cap each reply's length")
    bench.add_argument(
        "--json", action="store_true", help="print one JSON document (statistics and every turn)"
    )
    recording_arguments(bench)


def recording_arguments(parser: argparse.ArgumentParser) -> None:
    """`--record PATH` / `--no-record`, for every command that records its turns."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--record",
        type=Path,
        metavar="PATH",
        help="session file to record every turn into (appended to if it exists; "
        "default: a new file in the user data directory)",
    )
    group.add_argument(
        "--no-record", action="store_true", help="do not record this run's turns to a file"
    )


def _report_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """`report` and `export`: what recorded session files hold, as pictures, tables or CSV."""
    report = commands.add_parser(
        "report", parents=[common], help="summarise session files, or draw them as HTML or PNG"
    )
    report.add_argument("sessions", nargs="+", type=Path, metavar="SESSION", help="session file")
    report.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write report.html (self-contained) or report.png instead of printing a summary",
    )
    report.add_argument("--force", action="store_true", help="replace --out if it exists")
    export = commands.add_parser(
        "export", parents=[common], help="write session files' turns as CSV, one row per turn"
    )
    export.add_argument("sessions", nargs="+", type=Path, metavar="SESSION", help="session file")
    export.add_argument("--csv", action="store_true", required=True, help="CSV (the only format)")
    export.add_argument("--out", type=Path, metavar="FILE.csv", help="default: standard output")
    export.add_argument("--force", action="store_true", help="replace --out if it exists")


def _voice_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mic-file",
        type=Path,
        metavar="WAV",
        help="a recording fed through the voice pipeline at real-time pace (a virtual microphone)",
    )
    parser.add_argument("--input-device", metavar="DEV", help="microphone (name or index)")
    parser.add_argument("--output-device", metavar="DEV", help="speaker (name or index)")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _with_devices(settings: AppSettings, args: argparse.Namespace) -> AppSettings:
    """Devices named on the command line win over the config file."""
    from dataclasses import replace

    changes = {
        key: value
        for key in ("input_device", "output_device")
        if (value := getattr(args, key, None)) is not None
    }
    if not changes:
        return settings
    return replace(settings, voice=replace(settings.voice, **changes))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    config: Path | None = getattr(args, "config", None)
    from demo.config import ConfigError, load_settings
    from demo.sessions.reader import SessionError

    try:
        settings = _with_devices(load_settings(config), args)
        if args.command == "serve":
            from demo.commands.serve import serve

            return serve(args.host, args.port)
        if args.command == "ask":
            from demo.commands.ask import ask

            return ask(settings, args)
        if args.command == "backends":
            from demo.commands.backends import list_backends

            return list_backends(settings)
        if args.command == "devices":
            from demo.commands.devices import list_devices

            return list_devices()
        if args.command == "bench":
            from demo.commands.bench import bench

            return bench(settings, args)
        if args.command == "report":
            from demo.commands.report import report

            return report(args.sessions, args.out, force=args.force)
        if args.command == "export":
            from demo.commands.export import export

            return export(args.sessions, args.out, force=args.force)
        if args.command == "replay":
            from demo.commands.replay import replay

            return replay(settings, args)
        from demo.sessions.recorder import Recorder
        from demo.ui.app import run_tui
        from demo.voice.session import VoiceOptions

        voice = None
        if not args.no_voice:
            voice = VoiceOptions(mic_file=args.mic_file, speak=not args.mute)
        recorder = Recorder.open(args.record, enabled=not args.no_record)
        return run_tui(settings, backend=args.backend, voice=voice, recorder=recorder)
    except (ConfigError, SessionError) as exc:
        print(f"latency-demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
