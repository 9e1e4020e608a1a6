"""The race screen driven with Pilot against the real lab server and the fault server, on loopback.

Lab replies are kept short with the lab's per-request overrides (`params = {"lab": {...}}`), so a
race of four profiles takes a couple of seconds.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Input, SelectionList, Static

from demo.backends.base import BackendSpec
from demo.config import AppSettings, load_settings
from demo.core.events import (
    ContentChunk,
    SpeechEnded,
    StreamDone,
    StreamEvent,
    TranscriptReady,
)
from demo.lab.process import LabServer
from demo.ui.app import LatencyApp
from demo.ui.screens.race import RaceScreen, SpokenLane
from demo.ui.screens.race_setup import RaceSetup
from demo.ui.widgets.race_pane import LaneProgress, RacePane
from demo.ui.widgets.timeline import Timeline, arrival_curve, lane_colour, nice_ceiling
from demo.ui.widgets.transcript import Transcript
from demo.ui.widgets.voice_bar import VoiceBar
from demo.voice.session import VoiceOptions
from tests.support import Exchange, FaultServer, chunk, reply_chunks, sse, stream_reply

SIZE = (120, 36)
PROFILES = ("fast", "quick", "medium", "slow")


@pytest.fixture(scope="module")
def lab_url() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def make_settings(
    lab_url: str, *extra: BackendSpec, output_tokens: int = 120, **changes: object
) -> AppSettings:
    """Settings whose lab profiles answer from `lab_url` with replies of `output_tokens`."""
    settings = load_settings()
    backends = dict(settings.backends)
    for name in PROFILES:
        backends[name] = replace(
            backends[name],
            base_url=f"{lab_url}/v1",
            params={"lab": {"output_tokens": output_tokens}},
        )
    for spec in extra:
        backends[spec.name] = spec
    return replace(settings, backends=backends, **changes)  # type: ignore[arg-type]


def remote(name: str, url: str, **fields: object) -> BackendSpec:
    return BackendSpec(name=name, kind="remote", model="m", base_url=url, **fields)  # type: ignore[arg-type]


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app run until `condition` holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await pilot.pause(0.01)


async def open_race(pilot: Pilot[None], names: Sequence[str]) -> RaceScreen:
    """Push a race screen over the chat with these lanes, as F3 + the setup dialog would."""
    app = pilot.app
    assert isinstance(app, LatencyApp)
    screen = RaceScreen(app.settings, app.hub, names, app.voice)
    await app.push_screen(screen)
    await until(pilot, lambda: app.screen is screen and screen.is_mounted)
    return screen


async def race(pilot: Pilot[None], screen: RaceScreen, prompt: str) -> None:
    """Type a prompt into the race screen and press Enter."""
    field = screen.query_one("#prompt", Input)
    field.value = prompt
    field.focus()
    await pilot.press("enter")


def shown(transcript: Transcript) -> str:
    return "\n".join(transcript.render_line(y).text for y in range(transcript.size.height))


async def test_f3_races_fast_against_slow(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, RaceSetup))
        setup = app.screen
        assert isinstance(setup, RaceSetup)
        assert setup.picked == ["fast", "slow"]  # preselected from [race] backends
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RaceScreen))
        screen = app.screen
        assert isinstance(screen, RaceScreen)
        assert app.conversation is screen
        assert [pane.backend for pane in screen.panes] == ["fast", "slow"]

        await race(pilot, screen, "Explain how a wafer-scale chip makes LLM inference fast.")
        assert screen.racing
        await until(pilot, lambda: screen.races == 1)
        assert not screen.racing
        summary = screen.summary
        assert summary is not None
        assert summary.order == ["fast", "slow"]
        comparison = summary.comparisons[0]
        assert (comparison.leader, comparison.other) == ("fast", "slow")
        # fast: 0.24 s to the first token then 969 tok/s; slow: 0.5 s then 80 tok/s.
        assert comparison.first_token_ratio is not None and 1.5 < comparison.first_token_ratio < 3
        assert comparison.finish_ratio is not None and comparison.finish_ratio > 3
        assert comparison.decode_ratio is not None and comparison.decode_ratio > 5

        text = str(screen.query_one("#race-summary", Static).render())
        assert "Finish order: 1. fast → 2. slow" in text
        assert "fast vs slow: first token" in text and "sooner" in text

        fast, slow = screen.pane("fast"), screen.pane("slow")
        assert (fast.place, slow.place) == (1, 2)
        assert fast.status == slow.status == "done"
        assert "1st" in str(fast.query_one(".race-pane--header", Static).render())
        progress = slow.query_one(LaneProgress)
        assert progress.count == screen.results["slow"].metrics.output_tokens
        assert progress.total is None and progress.status == "done"
        assert f"{progress.count:,} tok · done" in str(progress.render())

        timeline = screen.query_one(Timeline)
        for name in ("fast", "slow"):
            result = screen.results[name]
            points = timeline.points(name)
            assert timeline.is_exact(name)
            assert len(points) >= result.metrics.chunks
            assert points[-1][1] == pytest.approx(result.metrics.output_tokens)
            # The line leaves zero at the lane's first token, measured from the race's start.
            ttft = result.metrics.ttft_s
            assert ttft is not None and points[1][0] == pytest.approx(ttft, abs=0.05)
        assert timeline.points("fast")[-1][0] < timeline.points("slow")[-1][0]

        await pilot.press("f3")  # idle: F3 leaves the race
        await until(pilot, lambda: app.screen is app.chat)
        assert app.conversation is app.chat


async def test_four_profiles_finish_in_the_order_of_their_speeds(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["slow", "medium", "fast", "quick"])
        panes = {pane.backend: pane.region for pane in screen.panes}
        # A 2×2 grid: two panes per row, two rows.
        assert len({region.y for region in panes.values()}) == 2
        assert len({region.x for region in panes.values()}) == 2
        assert all(region.height >= 7 and region.width >= 50 for region in panes.values())

        await race(pilot, screen, "Explain how a wafer-scale chip makes LLM inference fast.")
        await until(pilot, lambda: screen.races == 1)
        summary = screen.summary
        assert summary is not None
        assert summary.order == ["fast", "quick", "medium", "slow"]
        assert summary.winner == "fast"
        assert [c.other for c in summary.comparisons] == ["slow", "medium", "quick"]
        for comparison in summary.comparisons:
            assert comparison.finish_ratio is not None and comparison.finish_ratio > 1
        assert {pane.backend: pane.place for pane in screen.panes} == {
            "fast": 1,
            "quick": 2,
            "medium": 3,
            "slow": 4,
        }
        timeline = screen.query_one(Timeline)
        ends = [timeline.points(name)[-1][0] for name in summary.order]
        assert ends == sorted(ends)


async def test_live_figures_and_the_timeline_fill_in_while_streaming(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url, output_tokens=400))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["fast", "slow"])
        await race(pilot, screen, "Explain how a wafer-scale chip makes LLM inference fast.")
        slow = screen.pane("slow")
        timeline = screen.query_one(Timeline)
        await until(pilot, lambda: len(timeline.points("slow")) >= 4)
        assert not timeline.is_exact("slow")  # live samples, ≤10 a second
        assert slow.status == "streaming…"
        line = slow.query_one(".race-pane--figures", Static)
        await until(pilot, lambda: "tok/s" in str(line.render()))  # after 0.1 s of arrivals
        assert "live" in str(line.render())
        # The fast lane is done: its token count is now the estimate of every reply's length.
        await until(pilot, lambda: "fast" in screen.results)
        assert slow.expected == screen.results["fast"].metrics.output_tokens
        await until(pilot, lambda: screen.races == 1, timeout=30)
        assert timeline.is_exact("slow")


def _partial_then_reset(exchange_pause_s: float = 0.3) -> Callable[[Exchange], Awaitable[None]]:
    async def handler(exchange: Exchange) -> None:
        await exchange.start()
        for piece in ("partial ", "reply ", "then "):
            await exchange.send(sse(chunk(piece)))
            await exchange.pause(0.02)
        await exchange.pause(exchange_pause_s)
        exchange.reset()

    return handler


async def test_one_lane_failing_mid_race_leaves_the_others_running(
    lab_url: str, faults: FaultServer
) -> None:
    url = faults.scenario(_partial_then_reset(), name="race-reset")
    app = LatencyApp(make_settings(lab_url, remote("broken", url)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["fast", "broken", "slow"])
        await race(pilot, screen, "Explain how a wafer-scale chip makes LLM inference fast.")
        await until(pilot, lambda: screen.races == 1)
        broken = screen.results["broken"]
        assert broken.metrics.error is not None and "reset" in broken.metrics.error
        assert broken.text == "partial reply then "
        for name in ("fast", "slow"):
            assert screen.results[name].metrics.error is None
            assert screen.pane(name).status == "done"
        pane = screen.pane("broken")
        assert pane.status == "error"
        assert pane.place is None
        view = shown(pane.transcript)
        assert "partial reply then" in view and "reset" in view
        summary = screen.summary
        assert summary is not None
        assert summary.order == ["fast", "slow"]
        assert summary.unfinished == {"broken": "error"}
        assert "broken: did not finish (error)" in summary.lines()


async def test_escape_cancels_every_lane_and_a_new_race_works(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url, output_tokens=3000))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["medium", "slow"])
        await race(pilot, screen, "Explain how a wafer-scale chip makes LLM inference fast.")
        await until(pilot, lambda: all(len(p.transcript.reply_text) > 20 for p in screen.panes))
        await pilot.press("escape")
        await until(pilot, lambda: screen.races == 1)
        assert app.screen is screen  # Esc stopped the race; it did not leave it
        for pane in screen.panes:
            result = screen.results[pane.backend]
            assert result.metrics.cancelled
            assert 0 < result.metrics.output_tokens < 3000
            assert pane.status == "cancelled"
            assert pane.transcript.reply_text.startswith(result.text[:20])
            assert "cancelled" in shown(pane.transcript)
        summary = screen.summary
        assert summary is not None
        assert summary.order == [] and summary.unfinished == {
            "medium": "cancelled",
            "slow": "cancelled",
        }

        screen.settings = replace(screen.settings, max_tokens=30)
        await race(pilot, screen, "What is the capital of Australia?")
        await until(pilot, lambda: screen.races == 2)
        assert all(
            r.metrics.error is None and not r.metrics.cancelled for r in screen.results.values()
        )

        await pilot.press("escape")  # idle now: Esc leaves the race
        await until(pilot, lambda: app.screen is app.chat)


async def test_follow_ups_continue_each_lanes_own_history(
    lab_url: str, faults: FaultServer
) -> None:
    first = faults.scenario(stream_reply(*reply_chunks("I am lane A.")), name="race-lane-a")
    second = faults.scenario(stream_reply(*reply_chunks("I am lane B.")), name="race-lane-b")
    app = LatencyApp(make_settings(lab_url, remote("a", first), remote("b", second)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["a", "b"])
        await race(pilot, screen, "Who are you?")
        await until(pilot, lambda: screen.races == 1)
        await race(pilot, screen, "Say it again.")
        await until(pilot, lambda: screen.races == 2)
        for scenario, own in (("race-lane-a", "I am lane A."), ("race-lane-b", "I am lane B.")):
            sent = faults.requests(scenario)[-1].json()["messages"]
            assert [(m["role"], m["content"]) for m in sent] == [
                ("user", "Who are you?"),
                ("assistant", own),
                ("user", "Say it again."),
            ]

        await pilot.press("ctrl+l")  # every lane forgets
        assert all(not lane.conversation.messages for lane in screen.race.lanes)
        assert all(pane.transcript.reply_text == "" for pane in screen.panes)
        await race(pilot, screen, "Fresh start.")
        await until(pilot, lambda: screen.races == 3)
        sent = faults.requests("race-lane-a")[-1].json()["messages"]
        assert [m["role"] for m in sent] == ["user"]


async def test_setup_refuses_a_lane_without_its_key_and_too_few_lanes(
    lab_url: str, faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LATENCY_DEMO_UNSET_KEY", raising=False)
    url = faults.scenario(stream_reply(*reply_chunks("never")), name="race-keyed")
    keyed = remote("keyed", url, api_key_env="LATENCY_DEMO_UNSET_KEY")
    app = LatencyApp(make_settings(lab_url, keyed))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, RaceSetup))
        setup = app.screen
        assert isinstance(setup, RaceSetup)
        options = setup.query_one(SelectionList)
        assert "needs LATENCY_DEMO_UNSET_KEY" in str(options.get_option("keyed").prompt)
        reason = setup.query_one("#race-setup-reason", Static)

        options.deselect("slow")
        await pilot.press("enter")
        assert app.screen is setup
        assert "Pick 2 to 4 backends (picked 1)" in str(reason.render())

        options.select("keyed")
        await pilot.press("enter")
        assert app.screen is setup
        message = str(reason.render())
        assert "keyed needs an API key: set LATENCY_DEMO_UNSET_KEY" in message
        assert "\n" not in message

        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.chat)
        assert faults.requests("race-keyed") == []


async def test_the_feel_target_follows_the_pane_last_clicked(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["fast", "quick", "slow"])
        assert screen.feel_target == "fast"
        await pilot.click(screen.pane("slow").transcript)
        await until(pilot, lambda: screen.feel_target == "slow")
        screen.pane("quick").transcript.focus()
        await until(pilot, lambda: screen.feel_target == "quick")


async def test_a_race_from_the_palette_and_every_key_in_help(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        command = next(
            c for c in app.get_system_commands(app.screen) if c.title == "Race backends…"
        )
        command.callback()
        await until(pilot, lambda: isinstance(app.screen, RaceSetup))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RaceScreen))
        assert any(b.binding.id == "latency.race" for b in app.screen.active_bindings.values())


def test_the_leader_is_decided_once_by_the_first_token() -> None:
    spoken: list[tuple[str, StreamEvent]] = []
    lane = SpokenLane()
    observers = {name: lane.observer(name) for name in ("fast", "slow")}

    def speak(event: StreamEvent) -> None:
        spoken.append((lane.chosen or "", event))

    lane.speak = speak
    observers["slow"](ContentChunk(1, ""))  # an empty chunk decides nothing
    assert lane.chosen is None
    start = threading.Barrier(2)

    def feed(name: str, delay_s: float) -> None:
        start.wait()
        time.sleep(delay_s)
        for i in range(200):
            observers[name](ContentChunk(i, f"{name} "))
        observers[name](StreamDone(999, "stop"))

    threads = [
        threading.Thread(target=feed, args=("fast", 0.0)),
        threading.Thread(target=feed, args=("slow", 0.05)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert lane.chosen == "fast"
    assert len(spoken) == 201
    assert all(
        isinstance(e, StreamDone) or (isinstance(e, ContentChunk) and e.text == "fast ")
        for _, e in spoken
    )

    fixed = SpokenLane("slow")
    heard: list[StreamEvent] = []
    fixed.speak = heard.append
    fixed.observer("fast")(ContentChunk(1, "first"))
    fixed.observer("slow")(ContentChunk(2, "second"))
    assert fixed.chosen == "slow" and [e.t_ns for e in heard] == [2]


async def test_panes_get_their_own_colour_and_the_panes_implement_the_figures_view(
    lab_url: str,
) -> None:
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["fast", "quick", "medium", "slow"])
        colours = [pane.colour for pane in screen.panes]
        assert len(set(colours)) == 4
        legend = screen.query_one(Timeline)._legend()
        for pane in screen.panes:
            assert any(
                span.style.color is not None  # type: ignore[union-attr]
                and span.style.color.name.lower() == pane.colour  # type: ignore[union-attr]
                for span in legend.spans
                if not isinstance(span.style, str)
            )
        pane: RacePane = screen.panes[0]
        assert callable(pane.start_turn) and callable(pane.show)


async def test_a_spoken_prompt_races_and_the_leaders_reply_is_spoken(
    lab_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    played = tmp_path / "played.raw"
    monkeypatch.setenv("TEST_AUDIO_SPEAKER_RAW", str(played))
    options = VoiceOptions(speak=True, cache_dir=tmp_path / "models")
    app = LatencyApp(make_settings(lab_url, max_tokens=60), voice=options)
    async with app.run_test(size=SIZE) as pilot:
        voice = app.voice
        assert voice is not None
        await until(pilot, lambda: voice.wait_loaded(0), timeout=60)
        assert voice.can_speak, voice.tts_problem
        screen = await open_race(pilot, ["slow", "fast"])
        assert screen.speak == "leader"
        assert "speaks: leader" in str(screen.query_one("#race-bar", Static).render())
        # The voice loaded before the race opened: its bar starts from the session's state.
        await until(pilot, lambda: screen.query_one(VoiceBar).state == voice.idle_state)

        # What the speech-to-text worker reports at the end of a spoken turn, through the app's
        # own listener: it must reach the race, not the chat underneath.
        question = "What is the capital of Australia?"
        now = time.perf_counter_ns()
        heard = [SpeechEnded(now - 200_000_000, 1.5), TranscriptReady(now, question, 1.5, 0.2)]
        voice._listener.voice_transcript(question, heard)
        await until(pilot, lambda: screen.races == 1, timeout=30)
        assert app.chat.results == []
        assert all(r.prompt == question for r in screen.results.values())

        spoken = screen.spoken
        assert spoken is not None and spoken.chosen == "fast"  # first token first
        turn = spoken.turn
        assert turn is not None
        await until(pilot, lambda: (f := turn.voice_figures()) is not None and f.voice_to_voice_s)
        figures = turn.voice_figures()
        assert figures is not None and figures.voice_to_voice_s is not None
        assert figures.stt_s == pytest.approx(0.2) and figures.ttft_s is not None
        assert figures.voice_to_voice_s > figures.stt_s + figures.ttft_s
        slow = spoken.turns["slow"].voice
        assert slow is not None and slow.first_sentence is None  # only the leader was spoken
        summary = screen.query_one("#race-summary", Static)
        await until(pilot, lambda: "Spoken: fast · voice → voice" in str(summary.render()))
        await until(pilot, lambda: played.exists() and played.stat().st_size > 0)

        # F9: leader → each lane → nobody → leader.
        seen = []
        for _ in range(4):
            await pilot.press("f9")
            seen.append(screen.speak)
        assert seen == ["slow", "fast", "none", "leader"]
        await pilot.press("escape")  # stops the speech; nothing else to stop: leaves the race
        await until(pilot, lambda: app.screen is app.chat)


# The timeline on its own: exact curves, round axes, and what a refresh costs.


def test_the_exact_curve_is_flat_until_the_first_token_and_ends_at_the_usage_count() -> None:
    origin = 1_000_000_000
    events = [
        ContentChunk(origin + 50_000_000, ""),  # a role-only chunk is no token
        ContentChunk(origin + 250_000_000, "Hello"),
        ContentChunk(origin + 260_000_000, " world"),
        ContentChunk(origin + 300_000_000, "", reasoning="hmm"),
        StreamDone(origin + 310_000_000, "stop"),
    ]
    curve = arrival_curve(events, origin)
    assert curve == [(0.0, 0.0), (0.25, 0.0), (0.25, 1.0), (0.26, 2.0), (0.3, 3.0)]
    scaled = arrival_curve(events, origin, total_tokens=6)
    assert scaled[-1] == (0.3, 6.0) and scaled[2] == (0.25, 2.0)
    assert arrival_curve([StreamDone(origin, "stop")], origin) == []


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0.0, 1.0), (0.7, 0.8), (1.0, 1.0), (2.31, 2.5), (5.49, 6.0), (399.0, 400.0), (2001, 2500)],
)
def test_axes_end_on_round_numbers_close_to_the_data(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_a_refresh_with_four_lines_costs_a_few_milliseconds() -> None:
    timeline = Timeline()
    timeline.set_lanes([(name, lane_colour(i)) for i, name in enumerate(PROFILES)])
    for name, rate in zip(PROFILES, (969.0, 250.0, 129.0, 80.0), strict=True):
        # 2,000 tokens in chunks of 3: the exact curve of a long reply.
        timeline.set_curve(
            name, [(0.0, 0.0), (0.3, 0.0)] + [(0.3 + n / rate, n) for n in range(3, 2001, 3)]
        )
    console = Console(width=118, color_system="truecolor", file=io.StringIO())
    options = console.options.update_dimensions(116, 9)
    lines = console.render_lines(timeline.draw(116, 9), options, pad=False)
    assert len(lines) == 9
    plot = "".join(segment.text for line in lines[1:7] for segment in line)
    assert any("\u2801" <= ch <= "\u28ff" for ch in plot)  # braille dots were drawn
    costs = []
    for _ in range(30):
        start = time.perf_counter()
        console.render_lines(timeline.draw(116, 9), options, pad=False)
        costs.append(time.perf_counter() - start)
    costs.sort()
    assert costs[len(costs) // 2] < 0.005, f"median refresh {costs[len(costs) // 2] * 1e3:.1f} ms"


async def test_a_pane_labels_true_and_shown_figures_under_a_feel(lab_url: str) -> None:
    from demo.core.metrics import TurnMetrics
    from demo.core.throttle import Feel
    from demo.ui.widgets.metrics_panel import PanelFigures

    true = TurnMetrics(
        ttft_s=0.241, decode_tokens_per_s=968.7, e2e_s=0.65, output_tokens=400,
        output_tokens_source="usage", reasoning_tokens=0, chunks=133, chunk_gap_p50_s=0.003,
        chunk_gap_p95_s=0.004, chunk_gap_p99_s=0.005, chunk_gap_max_s=0.006, prompt_tokens=9,
        server_timing=None, warnings=0, error=None, error_kind=None, cancelled=False,
        finish_reason="stop", finished=True,
    )  # fmt: skip
    shown = replace(true, ttft_s=0.741, decode_tokens_per_s=30.0, e2e_s=14.0, finished=False)
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_race(pilot, ["fast", "slow"])
        pane = screen.pane("fast")
        line = pane.query_one(".race-pane--shown", Static)
        assert not line.display
        pane.show(PanelFigures("fast", true, 29.5, shown=shown, feel=Feel(30, 0.5)))
        await pilot.pause()
        assert line.display
        assert "shown ≤ 30 tok/s · +0.5 s TTFT: TTFT 741 ms" in str(line.render())
        assert str(pane.query_one(".race-pane--figures", Static).render()).startswith("true TTFT")
        assert pane.status == "showing…"  # all arrived, not all shown yet
        pane.show(PanelFigures("fast", true, shown=replace(shown, finished=True), feel=Feel(30)))
        assert pane.status == "done"
        pane.start_turn("fast")
        assert not line.display


async def test_a_feel_on_one_lane_caps_what_that_pane_shows(lab_url: str) -> None:
    from demo.core.throttle import Feel
    from tests.test_feel_app import Appends

    app = LatencyApp(make_settings(lab_url, output_tokens=80))
    async with app.run_test(size=SIZE) as pilot:
        app.feels["fast"] = Feel(50)
        screen = await open_race(pilot, ["fast", "quick"])
        appends = Appends(screen.pane("fast").transcript)
        await race(pilot, screen, "Explain how a wafer-scale chip makes LLM inference fast.")
        await until(pilot, lambda: len(screen.results) == 2)
        fast, quick = screen.results["fast"], screen.results["quick"]
        assert fast.feel == Feel(50) and fast.shown is not None and quick.feel is None
        assert appends.text == fast.text
        assert appends.rate() == pytest.approx(50, rel=0.05)
        assert fast.shown.decode_tokens_per_s == pytest.approx(50, rel=0.05)
        assert (fast.metrics.decode_tokens_per_s or 0) > 500  # measured as it truly arrived
        # The race is judged on true figures: fast still wins although quick was shown first.
        assert screen.summary is not None and screen.summary.winner == "fast"
