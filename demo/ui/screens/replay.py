"""Replay mode: a recorded session played back turn by turn, at its recorded pace.

Each recorded turn's prompt is shown and its reply streams back through the same pipeline as a
live reply (a `ReplayBackend` on a runner of its own, a `ReplyPump`, the figures panel), so the
figures are re-measured exactly as live ones are. The panel's right-hand column shows the figures
the turn was recorded with, and each finished turn leaves a line with both. The lanes of a
recorded race are raced again on the race screen.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.backends.replay import REPLAY_KIND, ReplayBackend
from demo.config import AppSettings
from demo.core.conversation import ChatRequest, Message
from demo.core.metrics import TurnMetrics
from demo.core.runner import BackendRunner, EventSink
from demo.core.throttle import Feel
from demo.core.turn import Turn, TurnResult
from demo.core.units import rate, seconds
from demo.core.voice import VoiceAccumulator
from demo.sessions.playback import Play, RecordedTurn, playlist, recorded_turns
from demo.sessions.reader import Session
from demo.ui.pump import ReplyPump
from demo.ui.screens.race import RaceScreen
from demo.ui.widgets.metrics_panel import MetricsPanel, PanelFigures
from demo.ui.widgets.transcript import Transcript

if TYPE_CHECKING:
    from demo.core.events import VoiceEvent
    from demo.voice.session import VoiceSession

RACE_HOLD_S = 2.0
"""How long a replayed race's outcome stays on screen before "play all" moves on."""
RACE_POLL_S = 0.05


def recorded_figures(turn: RecordedTurn) -> PanelFigures:
    """A recorded turn's figures as the panel shows them (with how it was shown, under a feel)."""
    return PanelFigures(turn.backend, turn.metrics, shown=turn.shown, feel=recorded_feel(turn))


def recorded_feel(turn: RecordedTurn) -> Feel | None:
    """The feel the turn was shown under, so it is shown the same way again; None if none."""
    data = turn.feel
    if not data:
        return None
    try:
        feel = Feel(
            max_tokens_per_s=data.get("max_tokens_per_s"),
            extra_ttft_s=float(data.get("extra_ttft_s") or 0.0),
        )
    except (TypeError, ValueError):
        return None
    return feel if feel.active else None


def comparison(recorded: TurnMetrics, replayed: TurnMetrics) -> str:
    """One line: the recorded figures and the re-measured ones, side by side."""

    def pair(label: str, before: str, after: str) -> str:
        return f"{label} {before} → {after}"

    parts = [
        pair("TTFT", seconds(recorded.ttft_s), seconds(replayed.ttft_s)),
        pair("decode", rate(recorded.decode_tokens_per_s), rate(replayed.decode_tokens_per_s)),
        pair("E2E", seconds(recorded.e2e_s), seconds(replayed.e2e_s)),
    ]
    return "recorded → replayed: " + " · ".join(parts)


class ReplayScreen(Screen[None]):
    """Plays a session's turns on demand: the next one, or all of them one after another."""

    BINDINGS = [
        Binding("enter", "next", "Next turn", id="latency.replay_next"),
        Binding("a", "play_all", "Play all", id="latency.replay_all"),
        Binding("escape", "stop", "Stop", id="latency.replay_stop"),
    ]

    playing: reactive[bool] = reactive(False)
    """True while a turn (or a race) is being replayed."""

    def __init__(
        self,
        settings: AppSettings,
        session: Session,
        *,
        speed: float = 1.0,
        voice: VoiceSession | None = None,
    ) -> None:
        """Prepare the playlist; nothing plays until asked.

        Args:
            settings: The app's settings (the race screen's lanes and limits).
            session: The loaded session file.
            speed: Every recorded offset is divided by this (2 plays twice as fast).
            voice: The app's voice session, to speak replies as they stream; None keeps quiet.
        """
        super().__init__()
        self.settings = settings
        self.session = session
        self.speed = speed
        self.voice = voice
        turns, self.skipped = recorded_turns(session)
        self.plays: list[Play] = playlist(turns)
        self.position = 0
        """The index of the next play."""
        self.results: list[tuple[RecordedTurn, TurnResult]] = []
        """Every replayed turn with the recording it came from, in the order they ended."""
        self.finished = False
        """True once the last play has ended (Enter then starts again from the first)."""
        self._auto = False
        self._hub = BackendHub({}, settings.timeouts)
        self._pump: ReplyPump | None = None
        self._races: list[tuple[RaceScreen, BackendHub]] = []
        """Race screens opened for replayed races, each with the hub of its lanes."""
        self._race_poll: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="replay-bar")
        with Horizontal(id="body"):
            yield Transcript(id="transcript")
            yield MetricsPanel(id="metrics")
        yield Footer()

    def on_mount(self) -> None:
        transcript = self.query_one(Transcript)
        for warning in [*self.session.warnings, *self.skipped]:
            transcript.add_notice(warning, level="warning")
        count = sum(len(play.turns) for play in self.plays)
        races = sum(play.is_race for play in self.plays)
        started = str(self.session.header.get("started_at", ""))[:19].replace("T", " ")
        what = f"{count} recorded turn{'s' if count != 1 else ''}"
        if races:
            what += f" ({races} race{'s' if races != 1 else ''})"
        transcript.add_notice(
            f"Replaying {what} from {self.session.path.name}"
            + (f", recorded {started} UTC" if started else "")
            + f", at {_speed(self.speed)} the recorded pace. Enter plays the next turn, "
            "A plays them all, Esc stops.",
            level="info",
        )
        self.query_one(Transcript).focus()
        self._render_bar()

    def on_unmount(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self._hub.close()
        for _, hub in self._races:
            hub.close()
        self._races.clear()

    # Keys

    def action_next(self) -> None:
        """Play the next turn (or race); after the last one, start again from the first."""
        if self.playing:
            self.notify("Still replaying: Esc stops it.", severity="warning")
            return
        if self.finished or self.position >= len(self.plays):
            self.position = 0
            self.finished = False
            self.query_one(Transcript).add_notice("Replaying again from the first turn.")
        play = self.plays[self.position]
        self.position += 1
        if play.is_race:
            self.run_worker(self._play_race(play), group="replay-race", exit_on_error=False)
        else:
            self._play_turn(play.turns[0])

    def action_play_all(self) -> None:
        """Play every remaining turn, one after another, until the end or Esc."""
        self._auto = True
        if not self.playing:
            self.action_next()

    def action_stop(self) -> None:
        """Stop the turn being replayed (its partial reply stays) and stop playing all."""
        self._auto = False
        if self.voice is not None:
            self.voice.stop_speaking()
        if self._pump is not None:
            self._pump.cancel()

    def watch_playing(self) -> None:
        if self.is_mounted:
            self._render_bar()

    def _render_bar(self) -> None:
        total = len(self.plays)
        text = Text.assemble(("Replay ", "bold"), (self.session.path.name, "bold"))
        text.append(f"   ·   {min(self.position, total)} of {total} played", style="dim")
        text.append(f"   ·   {_speed(self.speed)} speed", style="dim")
        state = "replaying…" if self.playing else "replay finished" if self.finished else "idle"
        text.append(f"   ·   {state}", style="italic")
        self.query_one("#replay-bar", Static).update(text)

    # One turn

    def _play_turn(self, recorded: RecordedTurn) -> None:
        runner = self._runner(recorded.backend)
        transcript = self.query_one(Transcript)
        transcript.add_prompt(recorded.prompt, label=f"you → {recorded.backend} (recorded)")
        panel = self.query_one(MetricsPanel)
        panel.compare_with(recorded_figures(recorded))
        request = ChatRequest(
            messages=(Message("user", recorded.prompt),), max_tokens=self.settings.max_tokens
        )
        feel = recorded_feel(recorded)
        turn, on_shown = self._new_turn(runner, recorded.prompt, request, feel)
        self.playing = True
        turn.start()

        def finished(result: TurnResult) -> None:
            self._turn_finished(recorded, result)

        label = f"{recorded.backend} · replayed"
        if self.speed != 1:
            label += f" at {_speed(self.speed)}"
        pump = ReplyPump(
            turn, transcript, panel, finished, feel=feel, on_shown=on_shown, label=label
        )
        self._pump = pump
        self.run_worker(pump.run(), group="replay", exit_on_error=False)

    def _runner(self, backend: str) -> BackendRunner:
        """The runner replaying `backend`'s turns (outside races), made on first use.

        Each recorded backend gets a replay backend of its own, named like it and holding only its
        turns, in order, so every turn is replayed under the name it was recorded under.
        """
        if backend in self._hub.specs:
            return self._hub.runner(backend)
        records = [
            self.session.turns[turn.index]
            for play in self.plays
            if not play.is_race
            for turn in play.turns
            if turn.backend == backend
        ]
        spec = _spec(backend, self.session, records[0] if records else {})
        part = dataclasses.replace(self.session, turns=records, warnings=[])
        return self._hub.attach(ReplayBackend(spec, part, self.speed))

    def _new_turn(
        self, runner: BackendRunner, prompt: str, request: ChatRequest, feel: Feel | None
    ) -> tuple[Turn, EventSink | None]:
        """A turn, spoken as it streams when voice is on (as it is shown, under a feel)."""
        voice = self.voice
        if voice is None or voice.muted or not voice.can_speak:
            return Turn(runner, prompt, request), None
        cell: list[Turn] = []

        def report(event: VoiceEvent) -> None:  # from synthesis and audio threads
            cell[0].add_voice_event(event)

        spoken = voice.spoken_reply(report).observe
        throttled = feel is not None and feel.active
        observers = [] if throttled else [spoken]
        turn = Turn(runner, prompt, request, observers=observers, voice=VoiceAccumulator())
        cell.append(turn)
        return turn, spoken if throttled else None

    def _turn_finished(self, recorded: RecordedTurn, result: TurnResult) -> None:
        self._pump = None
        self.results.append((recorded, result))
        self.query_one(Transcript).add_notice(comparison(recorded.metrics, result.metrics))
        self._advance(stopped=result.metrics.cancelled and not recorded.cancelled)

    def _advance(self, *, stopped: bool) -> None:
        """A play ended: say so at the end, or go on when playing all (unless it was stopped)."""
        self.playing = False
        if stopped:
            self._auto = False
        if self.position >= len(self.plays):
            self._auto = False
            self.finished = True
            self._render_bar()
            self.query_one(Transcript).add_notice(
                "replay finished — Enter plays it again from the start", level="info"
            )
            return
        self._render_bar()
        if self._auto:
            self.call_later(self.action_next)

    # A race

    async def _play_race(self, play: Play) -> None:
        """Race the recorded lanes again on the race screen, each at its recorded pace."""
        self.playing = True
        try:
            screen = await self._open_race(play)
        except Exception as exc:  # a bug must cost this race, not the replay
            self.query_one(Transcript).add_notice(
                f"could not replay this race: {exc!r}"[:200], level="error"
            )
            self._advance(stopped=True)
            return
        if not screen.submit(play.prompt):
            self._race_ended(play, screen, cancelled=True)
            return
        screen.notify(
            "Replaying a recorded race at its recorded pace. Esc stops it; "
            "Esc again (or F3) goes back to the replay."
        )
        self._race_poll = self.set_interval(RACE_POLL_S, lambda: self._check_race(play, screen))

    async def _open_race(self, play: Play) -> RaceScreen:
        """Push a race screen whose lanes replay this race's recorded turns, one each."""
        names = [turn.backend for turn in play.turns]
        hub = BackendHub({}, self.settings.timeouts)
        for recorded in play.turns:
            record = self.session.turns[recorded.index]
            part = dataclasses.replace(self.session, turns=[record], warnings=[])
            spec = _spec(recorded.backend, self.session, record)
            hub.attach(ReplayBackend(spec, part, self.speed))
        transcript = self.query_one(Transcript)
        transcript.add_prompt(play.prompt, label=f"you → race of {' · '.join(names)} (recorded)")
        screen = RaceScreen(self.settings, hub, names, self.voice)
        self._races.append((screen, hub))
        await self.app.push_screen(screen)
        return screen

    def _check_race(self, play: Play, screen: RaceScreen) -> None:
        if screen.races == 0 and screen.is_attached:
            return
        if self._race_poll is not None:
            self._race_poll.stop()
            self._race_poll = None
        self._race_ended(play, screen, cancelled=screen.races == 0)

    def _race_ended(self, play: Play, screen: RaceScreen, *, cancelled: bool) -> None:
        transcript = self.query_one(Transcript)
        stopped = cancelled
        for recorded in play.turns:
            result = screen.results.get(recorded.backend)
            if result is None:
                continue
            self.results.append((recorded, result))
            transcript.add_notice(
                f"{recorded.backend}: {comparison(recorded.metrics, result.metrics)}"
            )
            stopped = stopped or (result.metrics.cancelled and not recorded.cancelled)
        if screen.summary is not None and screen.summary.order:
            transcript.add_notice("race replayed: " + " → ".join(screen.summary.order))
        if self._auto and not stopped and self.app.screen is screen:
            self.set_timer(RACE_HOLD_S, lambda: self._leave_race(screen, play))
            return
        self._advance(stopped=stopped)

    def _leave_race(self, screen: RaceScreen, play: Play) -> None:
        """Playing all: back from the race screen (if it is still on top), then onwards."""
        if self.app.screen is screen:
            screen.dismiss(None)
            self._advance(stopped=False)
        else:
            self._advance(stopped=True)

    def on_screen_resume(self) -> None:
        """Back from a race: its lanes are closed off this loop (joining threads takes time)."""
        stack = self.app.screen_stack
        for screen, hub in [item for item in self._races if item[0] not in stack]:
            self._races.remove((screen, hub))
            self.run_worker(hub.close, thread=True, group="replay-close")
        self.query_one(Transcript).focus()


def _spec(backend: str, session: Session, record: dict[str, object]) -> BackendSpec:
    """A replayed backend, shown under the name, and with the model, it was recorded with."""
    recorded = record.get("backend")
    model = str(recorded.get("model", "")) if isinstance(recorded, dict) else ""
    return BackendSpec(
        name=backend,
        kind=REPLAY_KIND,
        model=model or "recorded",
        base_url=str(session.path),
        description=f"recorded in {session.path.name}",
    )


def _speed(speed: float) -> str:
    return f"×{speed:g}"
