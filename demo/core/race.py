"""One prompt fanned out to several backends at once, and what the race showed.

A race is a set of lanes, one per backend, each with its own conversation so follow-up prompts
continue every race independently. Each lane streams on its backend's own runner (its own thread,
loop and connection pool), so the lanes cannot slow each other through the client. The TUI's race
screen and `ask --backend A --backend B` both drive races through this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from demo.core.conversation import Conversation
from demo.core.runner import BackendRunner, EventSink
from demo.core.turn import Turn, TurnResult

ObserverFactory = Callable[[str], Sequence[EventSink]]
"""Given a lane's backend name, the reader-thread observers its turn should get."""


class Lane:
    """One backend in a race: its runner, its own history and its current turn."""

    def __init__(self, runner: BackendRunner, system_prompt: str | None) -> None:
        self.runner = runner
        self.conversation = Conversation(system_prompt)
        self.turn: Turn | None = None

    @property
    def name(self) -> str:
        return self.runner.backend.spec.name


class Race:
    """Several lanes answering the same prompts, each continuing its own conversation."""

    def __init__(self, runners: Sequence[BackendRunner], system_prompt: str | None = None) -> None:
        names = [runner.backend.spec.name for runner in runners]
        if len(set(names)) != len(names):
            raise ValueError(f"a backend can race only once: {', '.join(names)}")
        self.lanes = [Lane(runner, system_prompt) for runner in runners]

    @property
    def names(self) -> list[str]:
        return [lane.name for lane in self.lanes]

    def turns(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        observers: ObserverFactory | None = None,
    ) -> list[Turn]:
        """A new turn per lane for `prompt`, not yet started (start them together)."""
        turns: list[Turn] = []
        for lane in self.lanes:
            request = lane.conversation.request_for(
                prompt, max_tokens=max_tokens, temperature=temperature
            )
            sinks = observers(lane.name) if observers is not None else ()
            lane.turn = Turn(lane.runner, prompt, request, observers=sinks)
            turns.append(lane.turn)
        return turns

    def start(self, turns: Sequence[Turn]) -> None:
        """Send every lane's request back to back, so no lane gets a head start."""
        for turn in turns:
            turn.start()

    def cancel(self) -> None:
        """Stop every lane still streaming; partial replies are kept."""
        for lane in self.lanes:
            if lane.turn is not None:
                lane.turn.cancel()

    def commit(self, result: TurnResult) -> None:
        """Add a finished turn to its own lane's history (called as each lane finishes)."""
        for lane in self.lanes:
            if lane.name == result.backend:
                lane.conversation.commit(result.prompt, result.kept_text)
                return

    def clear(self) -> None:
        for lane in self.lanes:
            lane.conversation.clear()


@dataclass(frozen=True, slots=True)
class Comparison:
    """The winner against one other lane: how many times sooner / faster."""

    leader: str
    other: str
    first_token_ratio: float | None
    """Other's TTFT over the leader's: 2.0 means the leader's first token came 2× sooner."""
    finish_ratio: float | None
    """Other's E2E over the leader's; None if the other did not finish."""
    decode_ratio: float | None
    """Leader's decode tokens/s over the other's."""
    other_status: str = "done"
    """done, error or cancelled."""

    def sentence(self) -> str:
        """Plain language for a room full of people: "fast vs slow: first token 2.1× sooner…"."""
        parts: list[str] = []
        if self.first_token_ratio is not None:
            parts.append(f"first token {_times(self.first_token_ratio)} sooner")
        if self.finish_ratio is not None:
            parts.append(f"finished {_times(self.finish_ratio)} sooner")
        elif self.other_status != "done":
            parts.append(f"{self.other} did not finish ({self.other_status})")
        if self.decode_ratio is not None:
            parts.append(f"{_times(self.decode_ratio)} the tokens/s")
        detail = ", ".join(parts) if parts else "no comparable figures"
        return f"{self.leader} vs {self.other}: {detail}"


@dataclass(frozen=True, slots=True)
class RaceSummary:
    """The outcome of one race: finish order and the winner against each other lane."""

    order: list[str]
    """Lanes that finished, fastest first (by end-to-end time)."""
    unfinished: dict[str, str] = field(default_factory=dict)
    """Lanes that did not finish, with why: error or cancelled."""
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def winner(self) -> str | None:
        return self.order[0] if self.order else None

    def lines(self) -> list[str]:
        """The summary as short sentences, finish order first."""
        lines: list[str] = []
        if self.order:
            ranked = " → ".join(f"{i}. {name}" for i, name in enumerate(self.order, 1))
            lines.append(f"Finish order: {ranked}")
        for name, status in self.unfinished.items():
            lines.append(f"{name}: did not finish ({status})")
        lines.extend(comparison.sentence() for comparison in self.comparisons)
        return lines

    def as_json(self) -> dict[str, object]:
        """The summary object `ask` prints after the per-backend objects."""
        return {
            "summary": "race",
            "finish_order": self.order,
            "winner": self.winner,
            "unfinished": self.unfinished,
            "comparisons": [
                {
                    "leader": c.leader,
                    "other": c.other,
                    "first_token_ratio": c.first_token_ratio,
                    "finish_ratio": c.finish_ratio,
                    "decode_ratio": c.decode_ratio,
                    "other_status": c.other_status,
                    "sentence": c.sentence(),
                }
                for c in self.comparisons
            ],
            "lines": self.lines(),
        }


def _status(result: TurnResult) -> str:
    m = result.metrics
    if m.error:
        return "error"
    if m.cancelled:
        return "cancelled"
    return "done"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0 or numerator <= 0:
        return None
    return numerator / denominator


def _times(ratio: float) -> str:
    return f"{ratio:.1f}×" if ratio < 100 else f"{ratio:,.0f}×"


def summarize(results: Sequence[TurnResult]) -> RaceSummary:
    """Finish order and plain-language ratios of one race's results.

    Finish order is by end-to-end time from each lane's own request: every lane's request is
    sent in the same instant, so this is also the order in which the replies were complete.
    """
    finished = sorted(
        (r for r in results if _status(r) == "done" and r.metrics.e2e_s is not None),
        key=lambda r: r.metrics.e2e_s or 0.0,
    )
    done = {id(r) for r in finished}
    unfinished = {r.backend: _status(r) for r in results if id(r) not in done}
    if not finished:
        return RaceSummary(order=[], unfinished=unfinished)
    leader = finished[0]
    lm = leader.metrics
    comparisons = []
    for other in results:
        if other is leader:
            continue
        om = other.metrics
        status = _status(other)
        comparisons.append(
            Comparison(
                leader=leader.backend,
                other=other.backend,
                first_token_ratio=_ratio(om.ttft_s, lm.ttft_s),
                finish_ratio=_ratio(om.e2e_s, lm.e2e_s) if status == "done" else None,
                decode_ratio=_ratio(lm.decode_tokens_per_s, om.decode_tokens_per_s),
                other_status=status,
            )
        )
    return RaceSummary(
        order=[r.backend for r in finished], unfinished=unfinished, comparisons=comparisons
    )
