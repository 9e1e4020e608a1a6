"""The help screen: every key, read from the live bindings so remapped keys show as remapped."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

ABOUT = (
    "Type a prompt and press Enter. The reply streams from the active backend while the panel on "
    "the right measures it: TTFT (time to first token), live tokens/s, decode tokens/s, output "
    "tokens and end-to-end time. Switch backend at any time to feel the difference; the "
    "conversation is kept. Every figure is measured where the bytes arrive, never where they are "
    "drawn. Ctrl+P finds every action and every backend.\n"
)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 95%; height: auto; max-height: 90%;
        background: $surface; border: tall $primary; padding: 1 2;
    }
    """
    BINDINGS = [
        Binding("escape,f1,q", "app.pop_screen", "Close", show=False),
    ]

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("key")
        table.add_column("action")
        table.add_column(Text("binding id (remap in [keys] of the config)"), style="dim")
        for key, description, binding_id in self._keys:
            table.add_row(key, description, binding_id)
        with VerticalScroll():
            yield Static(Text(ABOUT))
            yield Static(table)
