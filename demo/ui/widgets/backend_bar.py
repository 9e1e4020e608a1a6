"""The strip along the top: which backend is answering, what kind it is, and what it is doing."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from demo.backends.base import BackendSpec

_KIND_STYLE = {"lab": "black on #d7af5f", "remote": "black on #5fafd7", "local": "black on #87d787"}


class BackendBar(Static):
    """Always shows the active backend's name and kind, so nobody is fooled about the source."""

    DEFAULT_CSS = """
    BackendBar {
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    spec: reactive[BackendSpec | None] = reactive(None)
    state: reactive[str] = reactive("idle")

    def render(self) -> Text:
        text = Text.assemble(("Latency Demo", "bold"), "  ")
        spec = self.spec
        if spec is None:
            return text
        text.append(f" {spec.kind} ", style=_KIND_STYLE.get(spec.kind, "reverse"))
        text.append(f" {spec.name}", style="bold")
        if spec.model != spec.name:
            text.append(f" · {spec.model}", style="dim")
        if spec.description:
            text.append(f" · {spec.description}", style="dim")
        missing = spec.missing_key()
        if missing:
            text.append(f"  set {missing} to use this backend", style="bold red")
        text.append(f"   {self.state}", style="italic")
        return text
