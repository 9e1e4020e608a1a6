"""The Textual application: wiring only. The work lives in the core, the screens and widgets."""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from demo.backends.hub import BackendHub
from demo.backends.replay import with_recent
from demo.config import AppSettings, ConfigError
from demo.core.events import VoiceEvent
from demo.core.throttle import Feel
from demo.sessions.recorder import Recorder
from demo.ui.messages import VoiceLevel, VoiceProblem, VoiceState, VoiceTranscribed
from demo.ui.screens.chat import ChatScreen
from demo.ui.screens.feel import FeelDialog, SpeedPicker
from demo.ui.screens.help import HelpScreen
from demo.ui.screens.pickers import BackendPicker, PromptPicker
from demo.ui.screens.race import RaceScreen
from demo.ui.screens.race_setup import RaceSetup

if TYPE_CHECKING:
    from demo.voice.session import VoiceOptions, VoiceSession


class LatencyApp(App[None]):
    """Type a prompt, watch it stream, feel the latency."""

    CSS_PATH = "app.tcss"
    TITLE = "Latency Demo"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("f1", "help", "Help", id="latency.help"),
        Binding("f2", "suggest", "Prompts", id="latency.suggest"),
        Binding("f3", "race", "Race", id="latency.race"),
        Binding("ctrl+b", "pick_backend", "Backend", id="latency.pick_backend"),
        Binding("ctrl+n", "swap_backend", "Swap", id="latency.swap_backend"),
        Binding("escape", "cancel", "Cancel reply", id="latency.cancel"),
        Binding("f4", "feel", "Feel", id="latency.feel"),
        Binding("f5", "talk", "Talk", id="latency.talk"),
        Binding("f6", "hands_free", "Hands-free", id="latency.hands_free"),
        Binding("f7", "mute", "Mute", id="latency.mute"),
        Binding("f8", "replay_speed", "Replay at…", id="latency.replay_speed"),
        Binding("ctrl+l", "clear", "Clear", id="latency.clear"),
        Binding("ctrl+t", "stats", "Stats", id="latency.stats"),
        Binding("ctrl+q", "quit", "Quit", id="latency.quit", priority=True),
    ]

    def __init__(
        self,
        settings: AppSettings,
        *,
        backend: str | None = None,
        hub: BackendHub | None = None,
        voice: VoiceOptions | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.recorder = recorder or Recorder()
        """Every finished turn goes here (to a session file, or only kept for the stats)."""
        self.voice: VoiceSession | None = None
        if voice is not None:
            from demo.voice.session import VoiceSession

            self.voice = VoiceSession(settings.voice, _PostToScreen(self), voice)
        name = backend or settings.default_backend
        settings.backend(name)  # an unknown name fails here, before any screen
        self.backend_name = name
        self.hub = hub or BackendHub(settings.backends, settings.timeouts)
        self._owns_hub = hub is None
        self.feels: dict[str, Feel] = {}
        """How each backend's replies are shown (rate cap, extra TTFT); absent shows them as is."""

    @property
    def chat(self) -> ChatScreen:
        screen = self.get_screen("chat")
        assert isinstance(screen, ChatScreen)
        return screen

    @property
    def conversation(self) -> ChatScreen | RaceScreen:
        """Where prompts, voice, Esc and Ctrl+L go: the race when one is open, else the chat.

        Read from voice threads too; it only reads the screen stack.
        """
        for screen in reversed(self.screen_stack):
            if isinstance(screen, RaceScreen | ChatScreen):
                return screen
        return self.chat

    def on_mount(self) -> None:
        if self.settings.keys:
            self.set_keymap(self.settings.keys)
        chat = ChatScreen(self.settings, self.hub, self.backend_name, self.voice)
        self.install_screen(chat, "chat")
        self.push_screen("chat")
        if self.voice is not None:
            # After the first frame: loading the speech models must not delay it.
            self.call_after_refresh(self.voice.start)
        # Start the lab server (if the first backend needs it) without holding up the first frame.
        self.run_worker(lambda: self.hub.warm_up(self.backend_name), thread=True)
        self.call_after_refresh(_freeze_startup_objects)

    def on_unmount(self) -> None:
        if self.voice is not None:
            self.voice.close()
        if self._owns_hub:
            self.hub.close()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Without voice in this run, its keys are hidden rather than offered and refused; a race
        # has its lanes fixed, so switching the chat's backend is not offered under it.
        if action in ("pick_backend", "swap_backend", "replay_speed"):
            return not isinstance(self.screen, RaceScreen)
        return not (action in ("talk", "hands_free", "mute") and self.voice is None)

    def action_talk(self) -> None:
        self.conversation.toggle_talk()

    def action_hands_free(self) -> None:
        self.conversation.toggle_hands_free()

    def action_mute(self) -> None:
        self.conversation.toggle_mute()

    def action_help(self) -> None:
        rows = [
            (self.get_key_display(active.binding), active.binding.description, active.binding.id)
            for active in self.conversation.active_bindings.values()
            if active.binding.id
        ]
        self.push_screen(HelpScreen(rows))

    def action_suggest(self) -> None:
        from demo.lab.content import suggested_prompts

        prompts = [(p.title, p.prompt) for p in suggested_prompts()]

        def chosen(prompt: str | None) -> None:
            if prompt:
                self.conversation.submit(prompt)

        self.push_screen(PromptPicker(prompts), chosen)

    def action_pick_backend(self) -> None:
        def chosen(name: str | None) -> None:
            if name and self.use_backends([name]):
                self.chat.switch_backend(name)

        specs = with_recent(self.settings.backends.values())
        self.push_screen(BackendPicker(specs, current=self.chat.backend), chosen)

    def use_backends(self, names: list[str]) -> bool:
        """Make each name usable (a `replay:` session file is read now); False after a notice."""
        try:
            for name in names:
                if name not in self.hub.specs:
                    self.hub.add(self.settings.backend(name))
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return False
        return True

    def action_swap_backend(self) -> None:
        chat = self.chat
        other = chat.previous_backend
        if other is None:
            other = "slow" if chat.backend != "slow" else "fast"
        if other in self.settings.backends:
            chat.switch_backend(other)

    def action_cancel(self) -> None:
        if not self.conversation.cancel() and self.screen is not self.chat:
            self.pop_screen()

    def action_clear(self) -> None:
        self.conversation.clear()

    def action_race(self) -> None:
        """Pick 2–4 backends, then race them on every prompt (F3 again goes back)."""
        if self.screen is not self.chat:
            return  # a dialog is open, or the race screen itself handles F3
        if self.chat.streaming:
            self.notify("A reply is still streaming: press Esc to cancel it.", severity="warning")
            return

        def chosen(names: list[str] | None) -> None:
            if names and self.use_backends(names):
                self.chat.stop_speaking()
                self.push_screen(RaceScreen(self.settings, self.hub, names, self.voice))

        specs = with_recent(self.settings.backends.values())
        self.push_screen(RaceSetup(specs, self.settings.race.backends), chosen)

    def action_stats(self) -> None:
        """This session's figures so far: per backend, a chart, every turn."""
        from demo.ui.screens.stats import StatsScreen

        if isinstance(self.screen, StatsScreen):
            return
        self.push_screen(StatsScreen(self.recorder.records()))

    def action_feel(self) -> None:
        screen = self.screen
        target: str | None = getattr(screen, "feel_target", None)
        if target is None:
            self.notify("No backend here to set a feel for.", severity="warning")
            return

        def chosen(feel: Feel | None) -> None:
            if feel is None:
                return
            if feel.active:
                self.feels[target] = feel
            else:
                self.feels.pop(target, None)
            changed = getattr(screen, "feel_changed", None)
            if changed is not None:
                changed(target)
            self.notify(f"{target}: {feel.label()} (from the next reply)")

        self.push_screen(FeelDialog(target, self.feels.get(target, Feel())), chosen)

    def action_replay_speed(self) -> None:
        screen = self.screen
        replay = getattr(screen, "replay_last", None)
        if replay is None:
            self.notify("Replays run on the chat screen.", severity="warning")
            return
        if getattr(screen, "last_reply", None) is None:
            self.notify("No reply to replay yet: send a prompt first.", severity="warning")
            return

        def chosen(speed: float | None) -> None:
            if speed is not None:
                replay(speed)

        self.push_screen(SpeedPicker(), chosen)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Switch backend…", "Pick the backend that answers", self.action_pick_backend
        )
        yield SystemCommand(
            "Swap backend", "Back to the previous backend", self.action_swap_backend
        )
        yield SystemCommand(
            "Suggested prompts", "Demo prompts that show latency off", self.action_suggest
        )
        yield SystemCommand(
            "Race backends…", "One prompt, 2–4 backends at once, side by side", self.action_race
        )
        yield SystemCommand(
            "Cancel reply", "Stop the streaming reply, keep the text", self.action_cancel
        )
        yield SystemCommand("Clear conversation", "Forget the history", self.action_clear)
        yield SystemCommand(
            "Session stats", "Figures of every turn so far, per backend", self.action_stats
        )
        yield SystemCommand("Help", "Keys and what the figures mean", self.action_help)
        yield SystemCommand("Talk", "Push-to-talk: press, speak, press again", self.action_talk)
        yield SystemCommand("Hands-free", "Voice activity ends each turn", self.action_hands_free)
        yield SystemCommand("Mute", "Speak replies aloud, or not", self.action_mute)
        yield SystemCommand(
            "Feel…", "Cap the shown tokens/s, add time to first token", self.action_feel
        )
        yield SystemCommand(
            "Replay at another speed…",
            "The last reply again at 20 or 1,000 tokens/s",
            self.action_replay_speed,
        )
        for spec in self.settings.backends.values():
            yield SystemCommand(
                f"Use backend: {spec.name}",
                f"{spec.kind} · {spec.model}"
                + (f" · {spec.description}" if spec.description else ""),
                lambda name=spec.name: self.chat.switch_backend(name),
            )


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up out of the garbage collector's sight.

    Full collections walk every tracked object; with the app's long-lived start-up objects
    frozen, they stop showing up as ~20 ms stalls in the middle of a fast stream.
    """
    gc.collect()
    gc.freeze()


class _PostToScreen:
    """Voice reports, from its threads, turned into messages for the conversation screen (the chat,
    or the race when one is open); thread-safe."""

    def __init__(self, app: LatencyApp) -> None:
        self._app = app

    def _post(self, message: Message) -> None:
        if self._app.is_running:
            self._app.conversation.post_message(message)

    def voice_state(self, state: str) -> None:
        self._post(VoiceState(state))

    def voice_level(self, dbfs: float, speaking: bool) -> None:
        self._post(VoiceLevel(dbfs, speaking))

    def voice_transcript(self, text: str, events: list[VoiceEvent]) -> None:
        self._post(VoiceTranscribed(text, events))

    def voice_problem(self, message: str) -> None:
        self._post(VoiceProblem(message))


def run_tui(
    settings: AppSettings,
    backend: str | None = None,
    voice: VoiceOptions | None = None,
    recorder: Recorder | None = None,
) -> int:
    """Run the app until the user quits; the exit code for the console script."""
    app = LatencyApp(settings, backend=backend, voice=voice, recorder=recorder)
    try:
        app.run()
    finally:
        app.recorder.close()
    return app.return_code or 0
