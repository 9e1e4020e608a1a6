"""The main screen: the conversation, the instrument panel and the prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Footer, Input

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.backends.scripted import ScriptedBackend
from demo.config import AppSettings
from demo.core.conversation import ChatRequest, Conversation, Message
from demo.core.events import VoiceEvent
from demo.core.runner import BackendRunner, EventSink
from demo.core.throttle import Feel
from demo.core.turn import Turn, TurnResult
from demo.core.voice import VoiceAccumulator
from demo.ui.messages import (
    VoiceProblem,
    VoiceStage,
    VoiceTranscribed,
)
from demo.ui.pump import ReplyPump
from demo.ui.screens.voice_controls import VoiceControls
from demo.ui.widgets.backend_bar import BackendBar
from demo.ui.widgets.metrics_panel import MetricsPanel
from demo.ui.widgets.transcript import Transcript
from demo.ui.widgets.voice_bar import VoiceBar

if TYPE_CHECKING:
    from demo.sessions.recorder import Recorder
    from demo.voice.session import VoiceSession

PROMPT_PREVIEW_CHARS = 2_000
"""Longer prompts are sent whole but shown shortened, so a paste never floods the view."""


class ChatScreen(VoiceControls):
    """One conversation, continued on whichever backend is active."""

    backend: reactive[str] = reactive("")
    streaming: reactive[bool] = reactive(False)

    def __init__(
        self,
        settings: AppSettings,
        hub: BackendHub,
        backend: str,
        voice: VoiceSession | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.hub = hub
        self.voice = voice
        self.voice_turn: Turn | None = None
        """The latest turn with voice stages, whose figures the panel shows."""
        self.conversation = Conversation(settings.system_prompt)
        self.previous_backend: str | None = None
        self.turn: Turn | None = None
        self.pump: ReplyPump | None = None
        self.results: list[TurnResult] = []
        self.last_reply: TurnResult | None = None
        """The latest reply of the conversation (not a replay): what F8 replays."""
        self.set_reactive(ChatScreen.backend, backend)

    def compose(self) -> ComposeResult:
        yield BackendBar(id="backend-bar")
        with Horizontal(id="body"):
            yield Transcript(id="transcript")
            yield MetricsPanel(id="metrics")
        if self.voice is not None:
            yield VoiceBar(id="voice-bar")
        yield Input(
            placeholder="Type a prompt and press Enter · F2 suggested prompts · Ctrl+B backend",
            id="prompt",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(BackendBar).spec = self.spec
        self.query_one(BackendBar).feel = self.feel_for(self.backend)
        if self.voice is not None:
            bar = self.query_one(VoiceBar)
            bar.hands_free = self.voice.hands_free
            bar.muted = self.voice.muted
        self.query_one("#prompt", Input).focus()
        self._welcome()
        recorder: Recorder | None = getattr(self.app, "recorder", None)
        if recorder is not None and recorder.path is not None:
            self.query_one(Transcript).add_notice(
                f"Recording this session to {recorder.path} (--no-record turns this off).",
                level="info",
            )

    @property
    def spec(self) -> BackendSpec:
        return self.settings.backends[self.backend]

    @property
    def feel_target(self) -> str:
        """The backend whose feel F4 sets: the one answering."""
        return self.backend

    def feel_for(self, backend: str) -> Feel | None:
        """The feel the app holds for `backend`, if one is set."""
        feels: dict[str, Feel] = getattr(self.app, "feels", {})
        return feels.get(backend)

    def feel_changed(self, backend: str) -> None:
        """A feel was set or cleared: the bar shows it (it applies from the next reply)."""
        if backend == self.backend:
            self.query_one(BackendBar).feel = self.feel_for(backend)

    def _welcome(self) -> None:
        transcript = self.query_one(Transcript)
        transcript.add_notice(
            f"Answering: {self.backend} ({self.spec.kind}). Type a prompt, or press F2 for "
            "suggested prompts. Ctrl+N swaps to the other backend; Esc cancels a reply.",
            level="info",
        )
        self._check_key(self.spec)

    def _check_key(self, spec: BackendSpec) -> bool:
        missing = spec.missing_key()
        if missing:
            self.query_one(Transcript).add_notice(
                f"{spec.name} needs an API key: set the environment variable {missing} "
                "and restart, or pick another backend (Ctrl+B).",
                level="error",
            )
            return False
        return True

    def watch_backend(self, old: str, new: str) -> None:
        if not self.is_mounted:
            return
        self.previous_backend = old or None
        self.query_one(BackendBar).spec = self.spec
        self.query_one(BackendBar).feel = self.feel_for(new)
        self.query_one(Transcript).add_notice(
            f"Switched to {new} ({self.spec.kind}) — the conversation continues.", level="info"
        )
        self._check_key(self.spec)
        self.stop_speaking()
        self.run_worker(lambda: self.hub.warm_up(new), thread=True, group="warm-up")

    def watch_streaming(self, streaming: bool) -> None:
        if self.is_mounted:
            self.query_one(BackendBar).state = "streaming…" if streaming else "idle"

    def switch_backend(self, name: str) -> None:
        if name in self.settings.backends and name != self.backend:
            self.backend = name

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.submit(event.value):
            event.input.value = ""

    @on(Input.Changed, "#prompt")
    def _typing(self, event: Input.Changed) -> None:
        if event.value:
            self.stop_speaking()  # typing interrupts the spoken reply

    def submit(self, prompt: str, voice_events: Sequence[VoiceEvent] = ()) -> bool:
        """Send a prompt on the active backend. False (and a one-line reason) if it can't go."""
        transcript = self.query_one(Transcript)
        if not prompt.strip():
            self.notify("The prompt is empty: type something first.", severity="warning")
            return False
        if self.streaming:
            self.notify("A reply is still streaming: press Esc to cancel it.", severity="warning")
            return False
        spec = self.spec
        shown = prompt
        if len(prompt) > PROMPT_PREVIEW_CHARS:
            shown = f"{prompt[:PROMPT_PREVIEW_CHARS]}… ({len(prompt):,} characters, sent in full)"
        transcript.add_prompt(shown, label=f"you → {spec.name}")
        if not self._check_key(spec):
            return True
        request = self.conversation.request_for(
            prompt, max_tokens=self.settings.max_tokens, temperature=self.settings.temperature
        )
        feel = self.feel_for(spec.name)
        turn, on_shown = self._new_turn(
            self.hub.runner(spec.name), prompt, request, voice_events, feel
        )
        self._run(turn, feel=feel, on_shown=on_shown)
        return True

    def _run(
        self,
        turn: Turn,
        *,
        feel: Feel | None = None,
        on_shown: EventSink | None = None,
        label: str | None = None,
        replay: BackendRunner | None = None,
    ) -> None:
        """Start `turn` and show it; a replay's own runner is closed once it has been shown."""
        self.turn = turn
        self.streaming = True
        turn.start()

        def finished(result: TurnResult) -> None:
            self._record(turn, result, replay=replay is not None)
            if replay is None:
                self._finished(result)
            else:
                self._replayed(result, replay)

        pump = ReplyPump(
            turn,
            self.query_one(Transcript),
            self.query_one(MetricsPanel),
            finished,
            feel=feel,
            on_shown=on_shown,
            label=label,
        )
        self.pump = pump
        self.run_worker(pump.run(), group="turn", exit_on_error=False)

    def _new_turn(
        self,
        runner: BackendRunner,
        prompt: str,
        request: ChatRequest,
        voice_events: Sequence[VoiceEvent],
        feel: Feel | None = None,
    ) -> tuple[Turn, EventSink | None]:
        """A turn, spoken aloud as it streams when voice is on, with its voice stages kept.

        Returns the turn and, under an active feel, what to hand each *shown* event to: a
        throttled reply is spoken as it is shown, not as it arrives.
        """
        speaks = self.voice is not None and not self.voice.muted and self.voice.can_speak
        if not speaks and not voice_events:
            return Turn(runner, prompt, request), None
        cell: list[Turn] = []

        def report(event: VoiceEvent) -> None:  # from synthesis and audio threads
            cell[0].add_voice_event(event)
            self.post_message(VoiceStage())

        observers: list[EventSink] = []
        on_shown: EventSink | None = None
        if self.voice is not None and (speaks or voice_events):
            spoken = self.voice.spoken_reply(report).observe
            if feel is not None and feel.active:
                on_shown = spoken
            else:
                observers.append(spoken)
        turn = Turn(runner, prompt, request, observers=observers, voice=VoiceAccumulator())
        cell.append(turn)
        for event in voice_events:
            turn.add_voice_event(event)
        self.voice_turn = turn
        return turn, on_shown

    def _record(self, turn: Turn, result: TurnResult, *, replay: bool) -> None:
        """Hand the finished turn to the app's recorder (built and written off this loop)."""
        recorder: Recorder | None = getattr(self.app, "recorder", None)
        if recorder is None:
            return
        spoken = turn.voice is not None and turn.voice.transcript is not None
        recorder.record(turn, result, mode="replay" if replay else ("voice" if spoken else "typed"))
        if error := recorder.take_error():
            self.query_one(Transcript).add_notice(error, level="warning")

    def _finished(self, result: TurnResult) -> None:
        # Under a feel a cancel cuts the reply where it was shown: that is what was said.
        self.conversation.commit(result.prompt, result.kept_text)
        self.results.append(result)
        if result.kept_text:
            self.last_reply = result
        self.turn = None
        self.pump = None
        self.streaming = False
        self._show_voice_figures()

    # --- replay --------------------------------------------------------------------------------

    def replay_last(self, tokens_per_s: float) -> bool:
        """Stream the last reply's text again at `tokens_per_s`, kept out of the history.

        The replay waits as long for its first token as the original did, is spoken like any
        reply, and its figures are measured like any turn's. False (and a one-line reason) when
        there is nothing to replay or a reply is still streaming.
        """
        original = self.last_reply
        if original is None:
            self.notify("No reply to replay yet: send a prompt first.", severity="warning")
            return False
        if self.streaming:
            self.notify("A reply is still streaming: press Esc to cancel it.", severity="warning")
            return False
        self.stop_speaking()
        speed = f"{tokens_per_s:,.0f}" if tokens_per_s >= 10 else f"{tokens_per_s:g}"
        label = f"replay of {original.backend}'s reply at {speed} tok/s"
        source = self.settings.backends.get(original.backend)
        kind = source.kind if source is not None else "lab"
        spec = BackendSpec(name="replay", kind=kind, model=original.model, description=label)
        backend = ScriptedBackend(
            spec,
            original.kept_text,
            ttft_s=original.metrics.ttft_s or 0.0,
            tokens_per_s=tokens_per_s,
        )
        runner = BackendRunner(backend)
        request = ChatRequest(messages=(Message("user", original.prompt),))
        transcript = self.query_one(Transcript)
        transcript.add_notice(f"Replaying {original.backend}'s last reply at {speed} tok/s.")
        turn, on_shown = self._new_turn(runner, original.prompt, request, ())
        self._run(turn, on_shown=on_shown, label=label, replay=runner)
        return True

    def _replayed(self, result: TurnResult, runner: BackendRunner) -> None:
        self.results.append(result)
        self.turn = None
        self.pump = None
        self.streaming = False
        self._show_voice_figures()
        # Joining the runner's thread could stall a frame; it is done off the UI loop.
        self.run_worker(runner.close, thread=True, group="replay-close")

    def _show_voice_figures(self) -> None:
        turn = self.voice_turn
        figures = turn.voice_figures() if turn is not None else None
        self.query_one(MetricsPanel).show_voice(figures)

    # --- voice ---------------------------------------------------------------------------------

    def on_voice_stage(self, _: VoiceStage) -> None:
        self._show_voice_figures()

    def on_voice_problem(self, message: VoiceProblem) -> None:
        self.query_one(Transcript).add_notice(message.text, level="warning")

    def on_voice_transcribed(self, message: VoiceTranscribed) -> None:
        if self.voice is not None:
            self.query_one(VoiceBar).listening = self.voice.listening
        if not message.text:
            self.query_one(Transcript).add_notice("heard nothing to send", level="info")
            return
        if self.streaming and self.turn is not None:
            self.turn.cancel()  # a new spoken turn interrupts the old reply
            self.notify("Spoken over the reply: press Enter to send it once it has stopped.")
            self.query_one("#prompt", Input).value = message.text
            return
        # Straight to the conversation (not through the input field, whose change would count as
        # typing and interrupt the reply about to be spoken).
        self.submit(message.text, message.events)

    def cancel(self) -> bool:
        """Stop the streaming reply (the partial text stays) and any speech or listening.

        False when there was nothing to stop.
        """
        stopped = False
        if self.voice is not None:
            stopped = self.voice.listening
            self.voice.stop_listening(submit=False)
            self.voice.stop_speaking()
        if self.turn is None:
            return stopped
        if self.pump is not None:
            self.pump.cancel()  # also stops showing what a feel still holds back
        else:
            self.turn.cancel()
        return True

    def clear(self) -> None:
        if self.streaming:
            self.notify("Cancel the streaming reply first (Esc).", severity="warning")
            return
        self.conversation.clear()
        self.last_reply = None
        self.query_one(Transcript).clear()
        self._welcome()
