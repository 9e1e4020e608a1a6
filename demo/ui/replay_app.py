"""The app in replay mode: the usual app with a recorded session's replay screen on top.

Everything a live turn goes through is reused (pumps, panel, race screen, voice); only what
would send a new prompt somewhere else is not offered while the replay is on screen. No backend
of the app's own is ever started, so a replay needs no network and no lab server.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from demo.backends.replay import REPLAY_PREFIX, replay_spec
from demo.config import AppSettings
from demo.sessions.reader import Session
from demo.ui.app import LatencyApp
from demo.ui.screens.help import HelpScreen
from demo.ui.screens.replay import ReplayScreen

if TYPE_CHECKING:
    from demo.voice.session import VoiceOptions

_NOT_IN_REPLAY = frozenset(
    {
        "talk",
        "hands_free",
        "pick_backend",
        "swap_backend",
        "replay_speed",
        "suggest",
        "race",
        "clear",
        "feel",
    }
)
"""Actions that would start or change a live conversation, which a replay does not have."""


class ReplayApp(LatencyApp):
    """Plays a recorded session back; quitting ends the replay."""

    def __init__(
        self,
        settings: AppSettings,
        session: Session,
        *,
        speed: float = 1.0,
        voice: VoiceOptions | None = None,
    ) -> None:
        # The chat underneath answers from the recording too, so nothing live is started.
        name = f"{REPLAY_PREFIX}{session.path.stem}"
        settings = replace(
            settings, backends={**settings.backends, name: replay_spec(name, session)}
        )
        super().__init__(settings, backend=name, voice=voice)
        self.session = session
        self.speed = speed

    @property
    def replay(self) -> ReplayScreen:
        screen = self.get_screen("replay")
        assert isinstance(screen, ReplayScreen)
        return screen

    def on_mount(self) -> None:
        # Textual runs the app's own on_mount after this one; the replay goes on top of its chat.
        replay = ReplayScreen(self.settings, self.session, speed=self.speed, voice=self.voice)
        self.install_screen(replay, "replay")
        self.call_later(self.push_screen, "replay")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _NOT_IN_REPLAY and isinstance(self.screen, ReplayScreen):
            return False
        return super().check_action(action, parameters)

    def action_help(self) -> None:
        rows = [
            (self.get_key_display(active.binding), active.binding.description, active.binding.id)
            for active in self.screen.active_bindings.values()
            if active.binding.id
        ]
        self.push_screen(HelpScreen(rows))
