"""The race core: finish order and ratios from hand-built results, and each lane's own history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from demo.backends.base import BackendSpec
from demo.backends.hub import BackendHub
from demo.core.race import Race, summarize
from demo.core.turn import TurnResult
from tests.test_snapshots import metrics

BASE = metrics(
    ttft_s=0.25,
    decode_tokens_per_s=1000.0,
    e2e_s=1.25,
    output_tokens=1000,
    chunks=300,
    chunk_gap_p95_s=0.004,
    chunk_gap_p99_s=0.005,
    chunk_gap_max_s=0.006,
    prompt_tokens=10,
)
"""A finished fast turn; each test changes what it is about."""


def result(backend: str, **metrics: object) -> TurnResult:
    return TurnResult(
        backend=backend,
        kind="lab",
        model=backend,
        base_url="http://127.0.0.1:9/v1",
        prompt="Why?",
        text=f"{backend} says hi",
        reasoning="",
        metrics=replace(BASE, **metrics),  # type: ignore[arg-type]
    )


def test_order_is_by_end_to_end_time_and_ratios_are_against_the_winner() -> None:
    summary = summarize(
        [
            result("slow", ttft_s=0.5, e2e_s=12.5, decode_tokens_per_s=80.0),
            result("fast", ttft_s=0.25, e2e_s=1.25, decode_tokens_per_s=1000.0),
            result("quick", ttft_s=0.3, e2e_s=4.3, decode_tokens_per_s=250.0),
        ]
    )
    assert summary.order == ["fast", "quick", "slow"]
    assert summary.winner == "fast"
    assert summary.unfinished == {}
    by_other = {c.other: c for c in summary.comparisons}
    assert set(by_other) == {"slow", "quick"}
    slow = by_other["slow"]
    assert slow.leader == "fast"
    assert slow.first_token_ratio == pytest.approx(2.0)
    assert slow.finish_ratio == pytest.approx(10.0)
    assert slow.decode_ratio == pytest.approx(12.5)
    assert slow.sentence() == (
        "fast vs slow: first token 2.0× sooner, finished 10.0× sooner, 12.5× the tokens/s"
    )
    assert summary.lines()[0] == "Finish order: 1. fast → 2. quick → 3. slow"


def test_errors_and_cancelled_lanes_are_unfinished_but_still_compared_where_they_can_be() -> None:
    summary = summarize(
        [
            result("fast"),
            result("broken", error="connection reset", e2e_s=0.4, decode_tokens_per_s=None),
            result("slow", cancelled=True, ttft_s=0.5, e2e_s=3.0, decode_tokens_per_s=80.0),
        ]
    )
    assert summary.order == ["fast"]
    assert summary.unfinished == {"broken": "error", "slow": "cancelled"}
    by_other = {c.other: c for c in summary.comparisons}
    assert by_other["broken"].finish_ratio is None
    assert by_other["broken"].decode_ratio is None
    assert by_other["broken"].other_status == "error"
    assert "broken did not finish (error)" in by_other["broken"].sentence()
    slow = by_other["slow"]
    assert slow.finish_ratio is None  # a cancelled lane did not finish: no "finished N× sooner"
    assert slow.first_token_ratio == pytest.approx(2.0)
    assert slow.sentence() == (
        "fast vs slow: first token 2.0× sooner, slow did not finish (cancelled), 12.5× the tokens/s"
    )
    lines = summary.lines()
    assert "broken: did not finish (error)" in lines
    assert "slow: did not finish (cancelled)" in lines


def test_nobody_finished_and_a_single_lane() -> None:
    nobody = summarize([result("a", cancelled=True), result("b", error="HTTP 500")])
    assert nobody.order == [] and nobody.winner is None and nobody.comparisons == []
    assert nobody.lines() == ["a: did not finish (cancelled)", "b: did not finish (error)"]

    alone = summarize([result("only")])
    assert alone.order == ["only"] and alone.comparisons == []
    assert alone.lines() == ["Finish order: 1. only"]


def test_missing_figures_are_left_out_of_the_sentence() -> None:
    summary = summarize(
        [result("fast"), result("odd", ttft_s=None, decode_tokens_per_s=None, e2e_s=2.5)]
    )
    (comparison,) = summary.comparisons
    assert comparison.first_token_ratio is None and comparison.decode_ratio is None
    assert comparison.sentence() == "fast vs odd: finished 2.0× sooner"


def test_huge_ratios_are_written_without_decimals_and_json_carries_everything() -> None:
    summary = summarize([result("fast", e2e_s=0.01), result("slow", e2e_s=25.0)])
    assert "finished 2,500× sooner" in summary.comparisons[0].sentence()
    data = summary.as_json()
    assert data["summary"] == "race"
    assert data["finish_order"] == ["fast", "slow"]
    assert data["winner"] == "fast"
    comparisons = data["comparisons"]
    assert isinstance(comparisons, list) and comparisons[0]["finish_ratio"] == pytest.approx(2500)
    assert data["lines"] == summary.lines()


@pytest.fixture
def hub() -> Iterator[BackendHub]:
    specs = {
        name: BackendSpec(name=name, kind="local", model="m", base_url="http://127.0.0.1:9/v1")
        for name in ("a", "b")
    }
    hub = BackendHub(specs)
    yield hub
    hub.close()


def test_each_lane_keeps_its_own_history(hub: BackendHub) -> None:
    race = Race([hub.runner("a"), hub.runner("b")], system_prompt="Be brief.")
    assert race.names == ["a", "b"]
    race.turns("Who are you?", max_tokens=50)
    race.commit(replace(result("a"), prompt="Who are you?", text="I am A."))
    race.commit(replace(result("b"), prompt="Who are you?", text="I am B."))
    turns = race.turns("Again?", max_tokens=50, temperature=0.5)
    wires = {
        turn.backend_name: [(m.role, m.content) for m in turn.request.messages] for turn in turns
    }
    for name, own in (("a", "I am A."), ("b", "I am B.")):
        assert wires[name] == [
            ("system", "Be brief."),
            ("user", "Who are you?"),
            ("assistant", own),
            ("user", "Again?"),
        ]
    assert all(t.request.max_tokens == 50 and t.request.temperature == 0.5 for t in turns)
    assert [lane.turn for lane in race.lanes] == turns

    race.clear()
    fresh = race.turns("New topic")
    assert [[m.role for m in t.request.messages] for t in fresh] == [
        ["system", "user"],
        ["system", "user"],
    ]


def test_observers_are_made_per_lane(hub: BackendHub) -> None:
    race = Race([hub.runner("a"), hub.runner("b")])
    asked: list[str] = []

    def observers(name: str) -> list[object]:
        asked.append(name)
        return []

    race.turns("Hi", observers=observers)  # type: ignore[arg-type]
    assert asked == ["a", "b"]


def test_a_backend_can_race_only_once(hub: BackendHub) -> None:
    with pytest.raises(ValueError, match="only once"):
        Race([hub.runner("a"), hub.runner("a")])
