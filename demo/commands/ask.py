"""`latency-demo ask`: stream a prompt headless, then print the figures.

The reply is printed as it arrives, but printing happens on the main thread while the stream is
read and timestamped on the backend's own thread, so a slow terminal cannot skew the figures.
With several `--backend`s the prompt races them instead (`demo.commands.race`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any, TextIO

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub, adhoc_spec
from demo.config import AppSettings, ConfigError
from demo.core.conversation import Conversation
from demo.core.events import ContentChunk, StreamWarning
from demo.core.turn import Turn, TurnResult
from demo.core.units import rate, seconds, server_timing, tokens
from demo.sessions.recorder import Recorder


def backend_names(args: argparse.Namespace) -> list[str]:
    """The `--backend` names given to `ask`, in order (several mean a race)."""
    value: str | list[str] | None = args.backend
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def resolve_spec(settings: AppSettings, args: argparse.Namespace) -> BackendSpec:
    """The backend the command line asks for: a configured one, or an ad-hoc endpoint."""
    from dataclasses import replace

    names = backend_names(args)
    name = names[0] if names else None
    if args.base_url and not name:
        if not args.model:
            raise ConfigError("--base-url needs --model (the model name the server expects)")
        return adhoc_spec(args.base_url, args.model, args.api_key_env)
    spec = settings.backend(name or settings.default_backend)
    changes: dict[str, Any] = {}
    if args.base_url:
        changes["base_url"] = args.base_url
    if args.model:
        changes["model"] = args.model
    if args.api_key_env:
        changes["api_key_env"] = args.api_key_env
    return replace(spec, **changes) if changes else spec


def read_prompt(args: argparse.Namespace) -> str | None:
    """The typed prompt (or standard input for `-`); None after saying why there is none."""
    if args.prompt is None:
        print("latency-demo: ask needs a prompt (or --mic-file)", file=sys.stderr)
        return None
    prompt: str = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        print("latency-demo: the prompt is empty", file=sys.stderr)
        return None
    return prompt


def open_recorder(args: argparse.Namespace, prefix: str = "ask") -> Recorder:
    """The session file `--record`/`--no-record` ask for; its path is told on a terminal.

    Raises:
        SessionError: the file cannot be used (the command line reports it, exit 2).
    """
    recorder = Recorder.open(args.record, enabled=not args.no_record, prefix=prefix)
    if recorder.path is not None and sys.stderr.isatty():
        print(f"recording to {recorder.path}", file=sys.stderr)
    return recorder


def ask(settings: AppSettings, args: argparse.Namespace) -> int:
    if len(backend_names(args)) > 1:
        from demo.commands.race import race

        return race(settings, args)
    if args.mic_file is not None:
        if args.prompt:
            print("latency-demo: give a prompt or --mic-file, not both", file=sys.stderr)
            return 2
        if not args.mic_file.is_file():
            print(f"latency-demo: {args.mic_file}: no such recording", file=sys.stderr)
            return 2
        prompt = ""
    else:
        typed = read_prompt(args)
        if typed is None:
            return 2
        prompt = typed
    spec = resolve_spec(settings, args)
    missing = spec.missing_key()
    if missing:
        print(
            f"latency-demo: {spec.name} needs an API key: set the environment variable {missing}",
            file=sys.stderr,
        )
        return 2
    recorder = open_recorder(args)
    hub = BackendHub({spec.name: spec}, settings.timeouts)
    hub.warm_up(spec.name)
    try:
        if args.mic_file is not None:
            from demo.commands.voice_turn import ask_by_voice

            results = asyncio.run(ask_by_voice(hub, settings, spec, args, recorder))
        else:
            results = asyncio.run(_ask(hub, settings, spec, prompt, args, recorder))
    finally:
        hub.close()
        recorder.close()
    if not results:
        return 2
    return 1 if any(r.metrics.error or r.metrics.cancelled for r in results) else 0


async def _ask(
    hub: BackendHub,
    settings: AppSettings,
    spec: BackendSpec,
    prompt: str,
    args: argparse.Namespace,
    recorder: Recorder,
) -> list[TurnResult]:
    runner = hub.runner(spec.name)
    loop = asyncio.get_running_loop()
    results: list[TurnResult] = []
    max_tokens = args.max_tokens or settings.max_tokens
    for _ in range(args.runs):
        conversation = Conversation(settings.system_prompt)
        request = conversation.request_for(
            prompt, max_tokens=max_tokens, temperature=settings.temperature
        )
        turn = Turn(runner, prompt, request)
        turn.start()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, turn.cancel)
        try:
            result = await consume(turn, args.json)
        finally:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGINT)
        results.append(result)
        recorder.record(turn, result)
        report(result, args.json)
        if result.metrics.cancelled:
            break
    return results


async def consume(turn: Turn, as_json: bool) -> TurnResult:
    # With --json, stdout carries only JSON; the reply streams to stderr when a person watches.
    live: TextIO | None = sys.stderr if as_json and sys.stderr.isatty() else None
    if not as_json:
        live = sys.stdout
    async for batch in turn.batches():
        for event in batch:
            if isinstance(event, ContentChunk) and live is not None:
                live.write(event.text)
            elif isinstance(event, StreamWarning):
                print(f"\nwarning: {event.message}", file=sys.stderr)
        if live is not None:
            live.flush()
    if live is not None:
        live.write("\n")
        live.flush()
    return turn.result()


def report(result: TurnResult, as_json: bool) -> None:
    """The turn's figures: one JSON line, or a readable block."""
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False), flush=True)
    else:
        _print_figures(result, sys.stdout)


def _print_figures(result: TurnResult, out: TextIO) -> None:
    m = result.metrics
    lines = [
        "",
        f"backend      {result.backend} ({result.kind}) · {result.model} · {result.base_url}",
        f"TTFT         {seconds(m.ttft_s)}",
        f"decode       {rate(m.decode_tokens_per_s)}",
        f"E2E          {seconds(m.e2e_s)}",
        f"tokens       {tokens(m.output_tokens, m.output_tokens_source)}",
        f"chunks       {m.chunks} (gap p50 {seconds(m.chunk_gap_p50_s)}, "
        f"p95 {seconds(m.chunk_gap_p95_s)}, max {seconds(m.chunk_gap_max_s)})",
    ]
    if m.server_timing:
        lines.append(f"server       {server_timing(m.server_timing)}")
    voice = result.voice
    if voice is not None:
        if voice.transcript is not None:
            lines.insert(1, f"transcript   {voice.transcript}")
        lines.append(
            f"voice        speech {seconds(voice.speech_s)} · speech→text {seconds(voice.stt_s)}"
            f" · token→sentence {seconds(voice.first_sentence_s)}"
            f" · sentence→audio {seconds(voice.tts_first_audio_s)}"
        )
        lines.append(f"voice→voice  {seconds(voice.voice_to_voice_s)} ({voice.verdict or 'n/a'})")
    if m.cancelled:
        lines.append("status       cancelled (partial reply kept)")
    if m.error:
        lines.append(f"error        {m.error}")
    print("\n".join(lines), file=out, flush=True)
