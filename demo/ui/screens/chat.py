"""The main screen: the conversation, the instrument panel and the prompt."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.config import AppSettings
from demo.core.conversation import Conversation
from demo.core.turn import Turn, TurnResult
from demo.ui.pump import ReplyPump
from demo.ui.widgets.backend_bar import BackendBar
from demo.ui.widgets.metrics_panel import MetricsPanel
from demo.ui.widgets.transcript import Transcript

PROMPT_PREVIEW_CHARS = 2_000
"""Longer prompts are sent whole but shown shortened, so a paste never floods the view."""


class ChatScreen(Screen[None]):
    """One conversation, continued on whichever backend is active."""

    backend: reactive[str] = reactive("")
    streaming: reactive[bool] = reactive(False)

    def __init__(self, settings: AppSettings, hub: BackendHub, backend: str) -> None:
        super().__init__()
        self.settings = settings
        self.hub = hub
        self.conversation = Conversation(settings.system_prompt)
        self.previous_backend: str | None = None
        self.turn: Turn | None = None
        self.results: list[TurnResult] = []
        self.set_reactive(ChatScreen.backend, backend)

    def compose(self) -> ComposeResult:
        yield BackendBar(id="backend-bar")
        with Horizontal(id="body"):
            yield Transcript(id="transcript")
            yield MetricsPanel(id="metrics")
        yield Input(
            placeholder="Type a prompt and press Enter · F2 suggested prompts · Ctrl+B backend",
            id="prompt",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(BackendBar).spec = self.spec
        self.query_one("#prompt", Input).focus()
        self._welcome()

    @property
    def spec(self) -> BackendSpec:
        return self.settings.backends[self.backend]

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
        self.query_one(Transcript).add_notice(
            f"Switched to {new} ({self.spec.kind}) — the conversation continues.", level="info"
        )
        self._check_key(self.spec)
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

    def submit(self, prompt: str) -> bool:
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
        turn = Turn(self.hub.runner(spec.name), prompt, request)
        self.turn = turn
        self.streaming = True
        turn.start()
        pump = ReplyPump(turn, transcript, self.query_one(MetricsPanel), self._finished)
        self.run_worker(pump.run(), group="turn", exit_on_error=False)
        return True

    def _finished(self, result: TurnResult) -> None:
        self.conversation.commit(result.prompt, result.text)
        self.results.append(result)
        self.turn = None
        self.streaming = False

    def cancel(self) -> bool:
        """Stop the streaming reply (the partial text stays). False when nothing streams."""
        if self.turn is None:
            return False
        self.turn.cancel()
        return True

    def clear(self) -> None:
        if self.streaming:
            self.notify("Cancel the streaming reply first (Esc).", severity="warning")
            return
        self.conversation.clear()
        self.query_one(Transcript).clear()
        self._welcome()
