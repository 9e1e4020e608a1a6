"""The race: one prompt fanned out to 2–4 backends at once, a pane per backend, a shared timeline.

Every lane is measured exactly as a single chat turn is: its requests are sent back to back by
`Race.start`, each on its backend's own runner (thread, loop, connection pool), and every figure
comes from timestamps taken as the bytes were parsed. Each lane is drawn through its own
`ReplyPump`, so rendering is batched per frame and can delay what is shown, never what is measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from demo.backends.hub import BackendHub
from demo.config import AppSettings
from demo.core.events import ContentChunk, StreamEvent, VoiceEvent
from demo.core.race import Lane, Race, RaceSummary, summarize
from demo.core.runner import EventSink
from demo.core.throttle import Feel
from demo.core.turn import Turn, TurnResult
from demo.core.units import seconds
from demo.sessions.record import race_record
from demo.ui.messages import (
    VoiceProblem,
    VoiceStage,
    VoiceTranscribed,
)
from demo.ui.pump import FRAME_S, ReplyPump
from demo.ui.screens.chat import PROMPT_PREVIEW_CHARS
from demo.ui.screens.voice_controls import VoiceControls
from demo.ui.widgets.race_pane import RacePane
from demo.ui.widgets.timeline import Timeline, arrival_curve, lane_colour
from demo.ui.widgets.voice_bar import VoiceBar

if TYPE_CHECKING:
    from demo.sessions.recorder import Recorder
    from demo.voice.session import VoiceSession

SAMPLE_S = 0.1
"""How often the live timeline samples each lane's token count."""

HINT = (
    "Type a prompt: every lane gets it at the same instant and keeps its own history. "
    "Esc cancels all · Ctrl+L clears · F3 back to the chat"
)


PANE_FRAMES_S = 1 / 60
"""Text flushes per second the race's panes share: each of four panes updates 15 times a second,
two panes 30 — every pane repaints whole as it scrolls, and painting is most of the UI's work."""


class SpokenLane:
    """Whose reply is spoken in a race, decided once, on the reader threads.

    With a fixed lane the choice is made up front. For the leader, the lane whose first token is
    parsed first takes the choice: each lane's observer runs on that lane's reader thread, takes a
    lock only while nobody has chosen yet, and afterwards a plain attribute read tells it whether
    to pass its events on — no lock on the hot path.
    """

    def __init__(self, fixed: str | None = None) -> None:
        self.chosen: str | None = fixed
        """The lane being spoken (None until the leader's first token)."""
        self.speak: EventSink | None = None
        """Where the chosen lane's events go: the spoken reply's `observe`."""
        self.turns: dict[str, Turn] = {}
        """This race's turns, by lane, for the voice stages of the spoken one."""
        self._lock = threading.Lock()

    def observer(self, name: str) -> EventSink:
        """The reader-thread observer for lane `name`."""

        def observe(event: StreamEvent) -> None:
            chosen = self.chosen
            if chosen is None:
                if not (isinstance(event, ContentChunk) and (event.text or event.reasoning)):
                    return
                with self._lock:
                    if self.chosen is None:
                        self.chosen = name
                    chosen = self.chosen
            if chosen == name and self.speak is not None:
                self.speak(event)

        return observe

    @property
    def turn(self) -> Turn | None:
        """The spoken lane's turn, once there is one."""
        return self.turns.get(self.chosen) if self.chosen is not None else None


class RaceScreen(VoiceControls):
    """Two to four lanes racing on the same prompts; follow-ups continue every lane's history."""

    BINDINGS = [
        Binding("f3", "leave", "Leave race", id="latency.race"),
        Binding("f9", "cycle_speaker", "Who speaks", id="latency.race_speaker"),
    ]

    racing: reactive[bool] = reactive(False)
    """True while any lane of the current race is still streaming."""
    speak: reactive[str] = reactive("leader")
    """Whose reply is spoken: "leader", a lane's backend name, or "none"."""

    def __init__(
        self,
        settings: AppSettings,
        hub: BackendHub,
        names: Sequence[str],
        voice: VoiceSession | None = None,
    ) -> None:
        """Set up the lanes; nothing is sent until the first prompt.

        Args:
            settings: The app's settings (max_tokens, temperature, system prompt, `[race]`).
            hub: Where each lane's runner comes from.
            names: The backends racing, in lane order (2–4, each once).
            voice: The app's voice session, when voice is on in this run.
        """
        super().__init__()
        self.settings = settings
        self.hub = hub
        self.voice = voice
        self.race = Race([hub.runner(name) for name in names], settings.system_prompt)
        self.results: dict[str, TurnResult] = {}
        """The current (or last) race's results, by lane, as each lane finishes."""
        self.summary: RaceSummary | None = None
        """The last finished race's outcome."""
        self.races = 0
        """How many races have finished on this screen."""
        self._race_meta: dict[str, object] = {}
        """What ties the current race's recorded lanes together (`race_record`)."""
        self.spoken: SpokenLane | None = None
        """Whose reply the current race speaks (None when nothing is spoken)."""
        self._turns: dict[str, Turn] = {}
        self._pumps: dict[str, ReplyPump] = {}
        self._origin_ns = 0
        self._sampler: Timer | None = None
        self._selected: str | None = None
        speak = settings.race.speak
        self.set_reactive(RaceScreen.speak, speak if speak in self._modes() else "leader")

    # Layout

    def compose(self) -> ComposeResult:
        yield Static(id="race-bar")
        lanes = self.race.lanes
        with Grid(id="race-lanes", classes=f"lanes-{len(lanes)}"):
            for index, lane in enumerate(lanes):
                spec = self.hub.specs[lane.name]
                yield RacePane(spec, lane_colour(index), id=f"lane-{index}")
        yield Timeline(id="race-timeline")
        yield Static(Text(HINT, style="dim"), id="race-summary")
        if self.voice is not None:
            yield VoiceBar(id="voice-bar")
        yield Input(
            placeholder="Prompt for every lane · Enter races · F2 suggested prompts", id="prompt"
        )
        yield Footer()

    def on_mount(self) -> None:
        self.timeline.set_lanes([(pane.backend, pane.colour) for pane in self.panes])
        self._render_bar()
        if self.voice is not None:
            bar = self.query_one(VoiceBar)
            bar.hands_free = self.voice.hands_free
            bar.muted = self.voice.muted
            bar.listening = self.voice.listening
        self.query_one("#prompt", Input).focus()
        for name in self.race.names:
            self.run_worker(lambda name=name: self.hub.warm_up(name), thread=True, group="warm-up")

    def on_unmount(self) -> None:
        if self.racing:
            self._cancel_lanes()
        self.stop_speaking()

    @property
    def panes(self) -> list[RacePane]:
        return list(self.query(RacePane))

    def pane(self, backend: str) -> RacePane:
        return next(pane for pane in self.panes if pane.backend == backend)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def feel_target(self) -> str:
        """The backend the feel controls act on: the pane last focused or clicked, or the first."""
        return self._selected or self.race.names[0]

    @on(RacePane.Selected)
    def _pane_selected(self, message: RacePane.Selected) -> None:
        self._selected = message.pane.backend

    # Racing

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.submit(event.value):
            event.input.value = ""

    @on(Input.Changed, "#prompt")
    def _typing(self, event: Input.Changed) -> None:
        if event.value:
            self.stop_speaking()  # typing interrupts the spoken reply

    def submit(self, prompt: str, voice_events: Sequence[VoiceEvent] = ()) -> bool:
        """Race a prompt on every lane. False (and a one-line reason) if it cannot go."""
        if not prompt.strip():
            self.notify("The prompt is empty: type something first.", severity="warning")
            return False
        if self.racing:
            self.notify("A race is running: press Esc to cancel it.", severity="warning")
            return False
        for lane in self.race.lanes:
            missing = self.hub.specs[lane.name].missing_key()
            if missing:
                self.notify(
                    f"{lane.name} needs an API key: set {missing} and restart, or race others.",
                    severity="error",
                )
                return False
        shown = prompt
        if len(prompt) > PROMPT_PREVIEW_CHARS:
            shown = f"{prompt[:PROMPT_PREVIEW_CHARS]}… ({len(prompt):,} characters, sent in full)"
        for pane in self.panes:
            pane.transcript.add_prompt(shown, label=f"you → {pane.backend}")
            pane.expect(self.settings.max_tokens)
        self.results = {}
        self.summary = None
        self.spoken = spoken = self._spoken_lane(bool(voice_events))
        turns = self.race.turns(
            prompt,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
            observers=self._reader_observers,
        )
        self._turns = {turn.backend_name: turn for turn in turns}
        if spoken is not None:
            spoken.turns = self._turns
        for turn in turns:
            for event in voice_events:
                turn.add_voice_event(event)
        self.timeline.reset()
        self._race_meta = race_record(self.race.names, self.races + 1)
        self.racing = True
        self._show_summary()
        self._origin_ns = time.perf_counter_ns()
        self.race.start(turns)
        self._pumps = {
            lane.name: self._pump_for(lane, turn)
            for lane, turn in zip(self.race.lanes, turns, strict=True)
        }
        for pump in self._pumps.values():
            self.run_worker(pump.run(), group="race", exit_on_error=False)
        self._sampler = self.set_interval(SAMPLE_S, self._sample)
        return True

    def _feel(self, name: str) -> Feel | None:
        """The lane's feel when one is active: its reply is then shown (and spoken) throttled."""
        feels: dict[str, Feel] = getattr(self.app, "feels", {})
        feel = feels.get(name)
        return feel if feel is not None and feel.active else None

    def _reader_observers(self, name: str) -> list[EventSink]:
        """A lane without a feel is spoken as its bytes are parsed, on its reader thread."""
        spoken = self.spoken
        if spoken is None or self._feel(name) is not None:
            return []
        return [spoken.observer(name)]

    def _pump_for(self, lane: Lane, turn: Turn) -> ReplyPump:
        """The pump that draws `lane`'s turn into its pane (the one place pumps are made).

        A lane with a feel is spoken from what the pump shows, so speech keeps to the shown pace.
        """
        pane = self.pane(lane.name)
        feel = self._feel(lane.name)
        on_shown = None
        if feel is not None and self.spoken is not None:
            on_shown = self.spoken.observer(lane.name)
        return ReplyPump(
            turn,
            pane.transcript,
            pane,
            self._lane_finished,
            feel=feel,
            on_shown=on_shown,
            frame_s=max(FRAME_S, len(self.race.lanes) * PANE_FRAMES_S),
        )

    def _sample(self) -> None:
        """Each streaming lane's tokens so far, at the time its latest chunk arrived."""
        timeline = self.timeline
        origin = self._origin_ns
        for name, turn in self._turns.items():
            accumulator = turn.accumulator
            if accumulator.finished or accumulator.first_ns is None or accumulator.last_ns is None:
                continue
            if not timeline.points(name):
                timeline.sample(name, 0.0, 0.0)
                timeline.sample(name, (accumulator.first_ns - origin) / 1e9, 0.0)
            count, _ = accumulator.output_tokens()
            timeline.sample(name, (accumulator.last_ns - origin) / 1e9, float(count))

    def _lane_finished(self, result: TurnResult) -> None:
        """One lane is done: keep its history, draw its exact curve, place it."""
        name = result.backend
        self.race.commit(result)
        self.results[name] = result
        turn = self._turns[name]
        metrics = result.metrics
        self.timeline.set_curve(
            name, arrival_curve(turn.events, self._origin_ns, metrics.output_tokens)
        )
        place: int | None = None
        if not metrics.error and not metrics.cancelled:
            # Provisional: the order of the callbacks; `show_outcome` settles it by E2E.
            place = sum(
                not r.metrics.error and not r.metrics.cancelled for r in self.results.values()
            )
            self.pane(name).place = place
            if place == 1:
                for pane in self.panes:
                    if pane.backend not in self.results:
                        pane.expect(metrics.output_tokens)
        self._record(turn, result, place)
        if len(self.results) == len(self.race.lanes):
            self._race_over()

    def _race_over(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None
        self.races += 1
        self.racing = False
        summary = summarize([self.results[name] for name in self.race.names])
        self.show_outcome(summary)

    def _record(self, turn: Turn, result: TurnResult, place: int | None) -> None:
        """A lane's turn to the app's recorder as soon as it ends, tied to its race."""
        recorder: Recorder | None = getattr(self.app, "recorder", None)
        if recorder is None:
            return
        recorder.record_lane(turn, result, self._race_meta, place)
        if error := recorder.take_error():
            self.notify(error, severity="warning")

    def show_outcome(self, summary: RaceSummary) -> None:
        """Show how a race ended: each pane's place, the finish order and the ratios."""
        self.summary = summary
        places = {name: index for index, name in enumerate(summary.order, 1)}
        for pane in self.panes:
            pane.place = places.get(pane.backend)
        self._show_summary()

    def _show_summary(self) -> None:
        summary = self.summary
        text = Text(no_wrap=False)
        if summary is None:
            text.append("racing…" if self.racing else HINT, style="dim")
        else:
            for index, line in enumerate(summary.lines()):
                if index:
                    text.append("\n")
                text.append(line, style="bold" if index == 0 else "")
        voice = self._voice_line()
        if voice is not None:
            text.append("\n")
            text.append_text(voice)
        self.query_one("#race-summary", Static).update(text)

    def _voice_line(self) -> Text | None:
        spoken = self.spoken
        turn = spoken.turn if spoken is not None else None
        figures = turn.voice_figures() if turn is not None else None
        if turn is None or figures is None or figures.voice_to_voice_s is None:
            return None
        colour = {"good": "green", "fair": "yellow", "poor": "red"}.get(figures.verdict or "", "")
        return Text.assemble(
            ("Spoken: ", "dim"),
            (turn.backend_name, "bold"),
            (" · voice → voice ", "dim"),
            (seconds(figures.voice_to_voice_s), f"bold {colour}".strip()),
        )

    def watch_racing(self) -> None:
        if self.is_mounted:
            self._render_bar()

    def watch_speak(self) -> None:
        if self.is_mounted:
            self._render_bar()

    def _render_bar(self) -> None:
        text = Text.assemble(("Race ", "bold"))
        for index, pane in enumerate(self.panes):
            text.append("  vs  " if index else " ", style="dim")
            text.append("━━ ", style=Style(color=pane.colour, bold=True))
            text.append(pane.backend, style="bold")
        if self.voice is not None:
            text.append("   ·   speaks: ", style="dim")
            text.append(self.speak, style="bold")
            text.append(" (F9)", style="dim")
        text.append("   ·   ", style="dim")
        text.append("racing…" if self.racing else "idle", style="italic")
        self.query_one("#race-bar", Static).update(text, layout=False)

    # Keys and the app's actions

    def action_leave(self) -> None:
        if self.racing:
            self.notify("A race is running: press Esc to cancel it first.", severity="warning")
            return
        self.dismiss(None)

    def _modes(self) -> list[str]:
        return ["leader", *self.race.names, "none"]

    def action_cycle_speaker(self) -> None:
        """Leader → each lane in turn → nobody; takes effect from the next race."""
        modes = self._modes()
        self.speak = modes[(modes.index(self.speak) + 1) % len(modes)]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "cycle_speaker" and self.voice is None)

    def cancel(self) -> bool:
        """Esc: stop every lane (partial replies kept), any speech and listening.

        False when there was nothing to stop (the app then leaves the race).
        """
        stopped = False
        if self.voice is not None:
            stopped = self.voice.listening
            self.voice.stop_listening(submit=False)
            self.voice.stop_speaking()
        if not self.racing:
            return stopped
        self._cancel_lanes()
        return True

    def _cancel_lanes(self) -> None:
        """Stop every lane at once, including what a feel still holds back from the screen."""
        self.race.cancel()
        for pump in self._pumps.values():
            pump.cancel()

    def clear(self) -> None:
        """Ctrl+L: every lane forgets its history; the panes and the timeline start empty."""
        if self.racing:
            self.notify("Cancel the race first (Esc).", severity="warning")
            return
        self.race.clear()
        for pane in self.panes:
            pane.clear()
        self.results = {}
        self.summary = None
        self.spoken = None
        self._turns = {}
        self.timeline.reset()
        self._show_summary()

    # Voice

    def _spoken_lane(self, spoken_prompt: bool) -> SpokenLane | None:
        """Who speaks this race's reply; None when nothing is spoken or timed."""
        voice = self.voice
        if voice is None or self.speak == "none":
            return None
        speaks = not voice.muted and voice.can_speak
        if not speaks and not spoken_prompt:
            return None
        spoken = SpokenLane(None if self.speak == "leader" else self.speak)

        def report(event: VoiceEvent) -> None:  # from synthesis and audio threads
            turn = spoken.turn
            if turn is not None:
                turn.add_voice_event(event)
                self.post_message(VoiceStage())

        spoken.speak = voice.spoken_reply(report).observe
        return spoken

    def on_voice_stage(self, _: VoiceStage) -> None:
        if self.summary is not None:
            self._show_summary()

    def on_voice_problem(self, message: VoiceProblem) -> None:
        self.notify(message.text, severity="warning")

    def on_voice_transcribed(self, message: VoiceTranscribed) -> None:
        if self.voice is not None:
            self.query_one(VoiceBar).listening = self.voice.listening
        if not message.text:
            self.notify("Heard nothing to send.")
            return
        if self.racing:
            self._cancel_lanes()  # a new spoken prompt interrupts the race
            self.notify("Spoken over the race: press Enter to race it once every lane stopped.")
            self.query_one("#prompt", Input).value = message.text
            return
        self.submit(message.text, message.events)
