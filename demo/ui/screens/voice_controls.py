"""The voice keys and the voice bar, shared by every screen a prompt can be spoken into."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

from demo.ui.messages import VoiceLevel, VoiceState
from demo.ui.widgets.voice_bar import VoiceBar

if TYPE_CHECKING:
    from demo.voice.session import VoiceSession


class VoiceControls(Screen[None]):
    """F5 / F6 / F7 and the voice bar's live state, for a screen with a `voice` session.

    The chat and the race screen both take spoken prompts; what a transcript then starts (a turn
    or a race) is theirs to decide, so only the controls and the bar live here.
    """

    voice: VoiceSession | None

    def on_screen_resume(self) -> None:
        """Catch the voice bar up: reports that came while another screen was on top went there."""
        voice = self.voice
        if voice is None:
            return
        bar = self.query_one(VoiceBar)
        bar.hands_free = voice.hands_free
        bar.muted = voice.muted
        bar.listening = voice.listening
        if voice.wait_loaded(0):
            bar.can_speak = voice.can_speak
            if not voice.listening:
                bar.state = voice.idle_state

    def stop_speaking(self) -> None:
        if self.voice is not None:
            self.voice.stop_speaking()

    def toggle_talk(self) -> None:
        if self.voice is None:
            self.notify("Voice is off in this run.", severity="warning")
            return
        self.voice.toggle_talk()
        self.query_one(VoiceBar).listening = self.voice.listening

    def toggle_hands_free(self) -> None:
        if self.voice is None:
            self.notify("Voice is off in this run.", severity="warning")
            return
        voice = self.voice
        if voice.listening:
            voice.stop_listening(submit=False)
        voice.hands_free = not voice.hands_free
        self.query_one(VoiceBar).hands_free = voice.hands_free
        if voice.hands_free:
            voice.listen()
        self.query_one(VoiceBar).listening = voice.listening

    def toggle_mute(self) -> None:
        if self.voice is None:
            self.notify("Voice is off in this run.", severity="warning")
            return
        self.voice.muted = not self.voice.muted
        if self.voice.muted:
            self.voice.stop_speaking()
        self.query_one(VoiceBar).muted = self.voice.muted

    def on_voice_state(self, message: VoiceState) -> None:
        if self.voice is not None:
            bar = self.query_one(VoiceBar)
            bar.state = message.state
            bar.listening = self.voice.listening
            if self.voice.wait_loaded(0):
                bar.can_speak = self.voice.can_speak

    def on_voice_level(self, message: VoiceLevel) -> None:
        if self.voice is not None:
            bar = self.query_one(VoiceBar)
            bar.level_dbfs = message.dbfs
            bar.speaking = message.speaking
