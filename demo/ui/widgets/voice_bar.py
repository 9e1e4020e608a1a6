"""One line above the prompt: the voice mode, what it is doing, and the microphone level."""

from __future__ import annotations

import math

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

_METER_CELLS = 20
_FLOOR_DBFS = -60.0


class VoiceBar(Widget):
    """Shows at a glance whether the app is listening, and that it hears you."""

    DEFAULT_CSS = """
    VoiceBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    """

    state: reactive[str] = reactive("voice starting…")
    hands_free: reactive[bool] = reactive(False)
    muted: reactive[bool] = reactive(False)
    level_dbfs: reactive[float] = reactive(-math.inf)
    speaking: reactive[bool] = reactive(False)
    listening: reactive[bool] = reactive(False)
    can_speak: reactive[bool] = reactive(True)

    def render(self) -> Text:
        mode = "hands-free (F6)" if self.hands_free else "push-to-talk (F5)"
        text = Text.assemble(("● " if self.listening else "  ", "bold red"), (mode, "bold"), "  ")
        text.append(self.state, style="italic")
        if self.listening:
            text.append("  ")
            text.append_text(self._meter())
        text.append("   ")
        if not self.can_speak:
            text.append("replies silent (no speech output)", style="dim")
        else:
            text.append("muted (F7)" if self.muted else "speaking replies (F7 mutes)", style="dim")
        return text

    def _meter(self) -> Text:
        level = self.level_dbfs
        fraction = 0.0 if level == -math.inf else (level - _FLOOR_DBFS) / -_FLOOR_DBFS
        filled = max(0, min(_METER_CELLS, round(fraction * _METER_CELLS)))
        colour = "green" if self.speaking else "yellow"
        return Text.assemble(
            ("█" * filled, colour), ("░" * (_METER_CELLS - filled), "dim"), f" {level:5.0f} dB"
        )
