"""Choosing the lanes of a race: two to four backends, any mix of lab, remote and local."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from demo.backends.base import BackendSpec
from demo.config import RACE_MAX_LANES, RACE_MIN_LANES
from demo.ui.widgets.race_pane import KIND_BADGE


def lane_problem(specs: Sequence[BackendSpec]) -> str | None:
    """Why these backends cannot race, in one line; None when they can."""
    if not RACE_MIN_LANES <= len(specs) <= RACE_MAX_LANES:
        return f"Pick {RACE_MIN_LANES} to {RACE_MAX_LANES} backends (picked {len(specs)})."
    for spec in specs:
        missing = spec.missing_key()
        if missing:
            return f"{spec.name} needs an API key: set {missing} and restart, or pick another."
    return None


class RaceSetup(ModalScreen[list[str] | None]):
    """Pick the lanes; Enter starts the race with them, Esc goes back without one."""

    DEFAULT_CSS = """
    RaceSetup { align: center middle; }
    RaceSetup > Vertical {
        width: 110; max-width: 95%; height: auto; max-height: 85%;
        background: $surface; border: tall $primary; padding: 0 1;
    }
    RaceSetup #race-setup-title { padding: 0 0 1 0; text-style: bold; }
    RaceSetup SelectionList { height: auto; max-height: 24; border: none; }
    RaceSetup #race-setup-reason { height: auto; color: $text-error; text-style: bold; }
    RaceSetup #race-setup-help { height: auto; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "dismiss_none", "Back", show=False),
        Binding("enter", "start", "Start the race", priority=True, show=False),
    ]

    def __init__(self, specs: Sequence[BackendSpec], chosen: Sequence[str]) -> None:
        """Offer every configured backend.

        Args:
            specs: The backends to offer, in the order to list them.
            chosen: Names to preselect (the config's `[race] backends`); the lanes keep this
                order, and backends picked on top of it follow in list order.
        """
        super().__init__()
        self._specs = {spec.name: spec for spec in specs}
        self._chosen = [name for name in chosen if name in self._specs]

    def compose(self) -> ComposeResult:
        selections = [
            Selection(_label(spec), spec.name, spec.name in self._chosen, id=spec.name)
            for spec in self._specs.values()
        ]
        with Vertical():
            yield Label(
                f"Race {RACE_MIN_LANES}–{RACE_MAX_LANES} backends on the same prompt",
                id="race-setup-title",
            )
            yield SelectionList[str](*selections)
            yield Static("", id="race-setup-reason")
            yield Static(
                "Space toggles · Enter starts the race · Esc goes back", id="race-setup-help"
            )

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    @property
    def picked(self) -> list[str]:
        """The selected backends in lane order: the preselected order first, then list order."""
        selected = set(self.query_one(SelectionList).selected)
        first = [name for name in self._chosen if name in selected]
        rest = [name for name in self._specs if name in selected and name not in first]
        return first + rest

    def action_start(self) -> None:
        names = self.picked
        problem = lane_problem([self._specs[name] for name in names])
        if problem is not None:
            self.query_one("#race-setup-reason", Static).update(problem)
            return
        self.dismiss(names)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def _label(spec: BackendSpec) -> Text:
    label = Text.assemble((f"{spec.name:<12}", "bold"), " ")
    label.append(f" {spec.kind} ", style=KIND_BADGE.get(spec.kind, "reverse"))
    label.append(" ")
    if spec.model != spec.name:
        label.append(spec.model)
    missing = spec.missing_key()
    if missing:
        label.append(f"  needs {missing}", style="bold red")
    elif spec.description:
        label.append(f"  {spec.description}", style="dim")
    return label
