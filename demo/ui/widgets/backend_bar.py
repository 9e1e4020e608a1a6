"""The strip along the top: which backend is answering, what kind it is, and what it is doing.

A feel set for the backend is shown here too, so nobody mistakes a capped reply for the backend's
real speed."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from demo.backends.base import BackendSpec
from demo.core.throttle import Feel

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
    feel: reactive[Feel | None] = reactive(None)

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
        feel = self.feel
        if feel is not None and feel.active:
            text.append("  ")
            text.append(f" feel: {feel.label()} ", style="bold black on #d7875f")
        text.append(f"   {self.state}", style="italic")
        return text
