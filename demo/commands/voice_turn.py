"""`latency-demo ask --mic-file utterance.wav`: one voice turn, headless, every stage timed.

The recording plays through the same pipeline as a microphone, at real-time pace; voice activity
(or the end of the recording) ends the turn, the transcript is sent, and the reply is timed to its
first sentence — and, with `--speak`, played, with the moment its first audio started.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from dataclasses import replace

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.commands.ask import consume, report
from demo.config import AppSettings
from demo.core.conversation import Conversation
from demo.core.events import VoiceEvent
from demo.core.turn import Turn, TurnResult
from demo.core.voice import VoiceAccumulator
from demo.sessions.recorder import Recorder
from demo.voice.session import VoiceOptions, VoiceSession

_LOAD_TIMEOUT_S = 120.0
_SPEAK_TIMEOUT_S = 120.0


class _Collector:
    """Voice reports for a command line: problems to stderr, the transcript to whoever waits."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.text = ""
        self.events: list[VoiceEvent] = []

    def voice_state(self, state: str) -> None:
        pass

    def voice_level(self, dbfs: float, speaking: bool) -> None:
        pass

    def voice_transcript(self, text: str, events: list[VoiceEvent]) -> None:
        self.text, self.events = text, events
        self.done.set()

    def voice_problem(self, message: str) -> None:
        print(f"latency-demo: {message}", file=sys.stderr)


async def ask_by_voice(
    hub: BackendHub,
    settings: AppSettings,
    spec: BackendSpec,
    args: argparse.Namespace,
    recorder: Recorder | None = None,
) -> list[TurnResult]:
    collector = _Collector()
    # A recording ends by itself, so voice activity (or its end) closes the turn.
    voice_settings = replace(settings.voice, hands_free=True)
    session = VoiceSession(
        voice_settings, collector, VoiceOptions(mic_file=args.mic_file, speak=args.speak)
    )
    session.start()
    try:
        await asyncio.to_thread(session.wait_loaded, _LOAD_TIMEOUT_S)
        if not session.can_listen:
            return []
        if args.speak and not session.can_speak:
            return []
        session.listen()
        if not await asyncio.to_thread(collector.done.wait, _LOAD_TIMEOUT_S):
            print("latency-demo: no transcript from the recording", file=sys.stderr)
            return []
        if not collector.text:
            print("latency-demo: heard no speech in the recording", file=sys.stderr)
            return []
        turn, result = await _reply(hub, settings, spec, session, collector, args)
        if recorder is not None:
            recorder.record(turn, result, mode="voice")
        report(result, args.json)
        return [result]
    finally:
        session.close()


async def _reply(
    hub: BackendHub,
    settings: AppSettings,
    spec: BackendSpec,
    session: VoiceSession,
    collector: _Collector,
    args: argparse.Namespace,
) -> tuple[Turn, TurnResult]:
    prompt = collector.text
    if not args.json:
        print(f"you said: {prompt}", file=sys.stderr)
    request = Conversation(settings.system_prompt).request_for(
        prompt, max_tokens=args.max_tokens or settings.max_tokens, temperature=settings.temperature
    )
    cell: list[Turn] = []
    spoken = session.spoken_reply(lambda event: cell[0].add_voice_event(event))
    turn = Turn(
        hub.runner(spec.name),
        prompt,
        request,
        observers=[spoken.observe],
        voice=VoiceAccumulator(),
    )
    cell.append(turn)
    for event in collector.events:
        turn.add_voice_event(event)
    turn.start()
    result = await consume(turn, args.json)
    if args.speak:
        await asyncio.to_thread(session.wait_spoken, spoken, _SPEAK_TIMEOUT_S)
        result = turn.result()
    return turn, result
