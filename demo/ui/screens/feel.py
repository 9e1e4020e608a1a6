"""Dialogs of the feel controls: how a backend's replies are shown, and a replay's speed."""

from __future__ import annotations

import math

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet
from textual.widgets.option_list import Option

from demo.core.throttle import Feel

CAP_CHOICES: tuple[float | None, ...] = (None, 5, 15, 30, 100, 300, 1000)
"""Shown-rate caps offered (tokens/s); None is no cap."""
EXTRA_TTFT_CHOICES: tuple[float, ...] = (0, 0.25, 0.5, 1, 2)
"""Extra seconds before the first token offered."""
REPLAY_SPEEDS: tuple[tuple[float, str], ...] = (
    (20, "slower than you read"),
    (80, "a GPU server at batch size 1"),
    (300, "a fast provider"),
    (1000, "wafer-scale: the reply appears at once"),
)
"""Replay speeds offered (tokens/s), with what each feels like."""


def _number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def parse_number(text: str, *, positive: bool) -> float | None:
    """A typed figure, or None when it is not a usable one (zero is fine unless `positive`)."""
    try:
        value = float(text.replace(",", "").strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        return None
    return value


class FeelDialog(ModalScreen[Feel | None]):
    """Pick how a backend's replies are shown: a rate cap and extra time to first token.

    Dismisses with the chosen `Feel` (an inactive one for "off"), or None on Esc (no change).
    A typed value wins over the preset buttons above it.
    """

    DEFAULT_CSS = """
    FeelDialog { align: center middle; }
    FeelDialog > Vertical {
        width: 84; max-width: 95%; height: auto; max-height: 90%;
        background: $surface; border: tall $primary; padding: 0 1;
    }
    FeelDialog #title { text-style: bold; }
    FeelDialog #hint { color: $text-muted; width: 100%; }
    FeelDialog .heading { margin-top: 1; }
    FeelDialog RadioSet { layout: horizontal; width: 100%; }
    FeelDialog RadioSet > RadioButton { width: auto; margin-right: 2; }
    FeelDialog .typed { height: auto; padding-left: 2; }
    FeelDialog .typed Label { padding-right: 1; color: $text-muted; }
    FeelDialog .typed Input { width: 16; }
    FeelDialog #problem { color: $error; height: auto; }
    FeelDialog #buttons { height: auto; margin-top: 1; }
    FeelDialog #buttons Button { margin-right: 2; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Close", show=False)]

    def __init__(self, backend: str, current: Feel) -> None:
        super().__init__()
        self.backend = backend
        self.current = current

    def compose(self) -> ComposeResult:
        cap = self.current.max_tokens_per_s
        extra = self.current.extra_ttft_s
        with Vertical():
            yield Label(f"Feel: {self.backend}", id="title")
            yield Label(
                "Changes how replies are shown and spoken, never what is measured: the figures "
                "keep the true timing beside the shown one.",
                id="hint",
            )
            yield Label("Cap the shown rate (tokens/s)", classes="heading")
            yield RadioSet(
                *(
                    RadioButton("off" if c is None else _number(c), value=c == cap)
                    for c in CAP_CHOICES
                ),
                id="cap",
            )
            with Horizontal(classes="typed"):
                yield Label("or type tokens/s:")
                typed_cap = "" if cap in CAP_CHOICES else _number(cap or 0)
                yield Input(
                    typed_cap, placeholder="e.g. 50", id="cap-typed", type="number", compact=True
                )
            yield Label("Extra time to first token (seconds)", classes="heading")
            yield RadioSet(
                *(RadioButton(f"{_number(e)} s", value=e == extra) for e in EXTRA_TTFT_CHOICES),
                id="ttft",
            )
            with Horizontal(classes="typed"):
                yield Label("or type seconds:")
                typed_ttft = "" if extra in EXTRA_TTFT_CHOICES else _number(extra)
                yield Input(
                    typed_ttft, placeholder="e.g. 0.8", id="ttft-typed", type="number", compact=True
                )
            yield Label("", id="problem")
            with Horizontal(id="buttons"):
                yield Button("Apply", id="apply", variant="primary", compact=True)
                yield Button("Off", id="off", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cap", RadioSet).focus()

    def chosen(self) -> Feel | str:
        """The feel the dialog now describes, or why it describes none (a one-line problem)."""
        cap: float | None = None
        typed = self.query_one("#cap-typed", Input).value
        if typed.strip():
            cap = parse_number(typed, positive=True)
            if cap is None:
                return f"{typed!r} is not a rate: type a number of tokens/s above 0."
        else:
            index = self.query_one("#cap", RadioSet).pressed_index
            cap = CAP_CHOICES[index] if index >= 0 else None
        extra: float | None
        typed = self.query_one("#ttft-typed", Input).value
        if typed.strip():
            extra = parse_number(typed, positive=False)
            if extra is None:
                return f"{typed!r} is not a time: type a number of seconds, 0 or more."
        else:
            index = self.query_one("#ttft", RadioSet).pressed_index
            extra = EXTRA_TTFT_CHOICES[index] if index >= 0 else 0.0
        return Feel(cap, float(extra))

    def apply(self) -> None:
        feel = self.chosen()
        if isinstance(feel, str):
            self.query_one("#problem", Label).update(feel)
            return
        self.dismiss(feel)

    @on(RadioSet.Changed)
    def _preset(self, event: RadioSet.Changed) -> None:
        # A preset picked after typing replaces the typed value, so what is seen is what applies.
        typed = "#cap-typed" if event.radio_set.id == "cap" else "#ttft-typed"
        self.query_one(typed, Input).value = ""

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply()

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.apply()

    @on(Button.Pressed, "#off")
    def _off(self) -> None:
        self.dismiss(Feel())

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class SpeedPicker(ModalScreen[float | None]):
    """Pick the speed (tokens/s) to replay the last reply at; None on Esc."""

    DEFAULT_CSS = """
    SpeedPicker { align: center middle; }
    SpeedPicker > Vertical {
        width: 70; max-width: 95%; height: auto; max-height: 80%;
        background: $surface; border: tall $primary; padding: 0 1;
    }
    SpeedPicker #title { text-style: bold; padding-bottom: 1; }
    SpeedPicker OptionList { height: auto; border: none; }
    SpeedPicker .typed { height: auto; margin-top: 1; }
    SpeedPicker .typed Label { padding-right: 1; color: $text-muted; }
    SpeedPicker .typed Input { width: 16; }
    SpeedPicker #problem { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Close", show=False)]

    def __init__(self, title: str = "Replay the last reply at…") -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, id="title")
            yield OptionList(
                *(
                    Option(
                        Text.assemble((f"{_number(speed):>6} tok/s", "bold"), f"  {note}"),
                        id=str(speed),
                    )
                    for speed, note in REPLAY_SPEEDS
                )
            )
            with Horizontal(classes="typed"):
                yield Label("or type tokens/s:")
                yield Input(placeholder="e.g. 150", id="speed-typed", type="number", compact=True)
            yield Label("", id="problem")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(float(event.option.id))

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        speed = parse_number(event.value, positive=True)
        if speed is None:
            self.query_one("#problem", Label).update(
                f"{event.value!r} is not a speed: type a number of tokens/s above 0."
            )
            return
        self.dismiss(speed)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
