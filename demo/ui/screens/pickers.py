"""Modal lists: choose a backend, or a suggested demo prompt."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from demo.backends.base import BackendSpec


class _Picker(ModalScreen[str | None]):
    """A titled option list that dismisses with the chosen option's id (None on Esc)."""

    DEFAULT_CSS = """
    _Picker { align: center middle; }
    _Picker > Vertical {
        width: 110; max-width: 95%; height: auto; max-height: 80%;
        background: $surface; border: tall $primary; padding: 0 1;
    }
    _Picker Label { padding: 0 0 1 0; text-style: bold; }
    _Picker OptionList { height: auto; max-height: 30; border: none; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Close", show=False)]

    def __init__(self, title: str, options: list[Option], highlighted: str | None = None):
        super().__init__()
        self._title = title
        self._options = options
        self._highlighted = highlighted

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title)
            yield OptionList(*self._options)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self._highlighted is not None:
            for index, option in enumerate(self._options):
                if option.id == self._highlighted:
                    options.highlighted = index
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class BackendPicker(_Picker):
    """Every configured backend, with its kind and whether its key is set."""

    def __init__(self, specs: list[BackendSpec], current: str | None = None) -> None:
        options = []
        for spec in specs:
            label = Text.assemble((f"{spec.name:<12}", "bold"), (f"{spec.kind:<8}", "dim"))
            if spec.model != spec.name:
                label.append(spec.model)
            missing = spec.missing_key()
            if missing:
                label.append(f"  (set {missing})", style="red")
            elif spec.description:
                label.append(f"  {spec.description}", style="dim")
            options.append(Option(label, id=spec.name))
        super().__init__("Switch backend (history is kept)", options, highlighted=current)


class PromptPicker(_Picker):
    """The suggested demo prompts: answers chosen to show latency off."""

    def __init__(self, prompts: list[tuple[str, str]]) -> None:
        options = [
            Option(Text.assemble((f"{title}\n", "bold"), (prompt, "dim")), id=prompt)
            for title, prompt in prompts
        ]
        super().__init__("Suggested prompts", options)
