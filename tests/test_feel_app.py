"""Feel controls and replays in the TUI, with Pilot, against the real lab server on loopback.

Rates are measured from what the pump handed the transcript, when it handed it: the shown rate
is what the audience sees, so that is where it is checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, RadioSet

from demo.core.events import ContentChunk, StreamDone, StreamEvent
from demo.core.metrics import estimate_tokens
from demo.core.throttle import Feel
from demo.lab.process import LabServer
from demo.ui.app import LatencyApp
from demo.ui.screens.feel import FeelDialog, SpeedPicker
from demo.ui.widgets.backend_bar import BackendBar
from demo.ui.widgets.metrics_panel import MetricsPanel, PanelFigures
from demo.ui.widgets.transcript import Transcript
from demo.voice.session import VoiceOptions
from tests.test_app import SIZE, make_settings, send, until, visible
from tests.test_snapshots import SIZE as SNAPSHOT_SIZE
from tests.test_snapshots import metrics, no_keys, offline_settings, settle

__all__ = ["no_keys"]  # autouse: snapshots never show a key being set

LONG = "Explain how a wafer-scale chip makes LLM inference fast."


@pytest.fixture(scope="module")
def lab_url() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


class Appends:
    """Records every piece of reply text the pump hands the transcript, with when."""

    def __init__(self, transcript: Transcript) -> None:
        self.times: list[float] = []
        self.texts: list[str] = []
        original = transcript.append

        def append(text: str = "", reasoning: str = "") -> None:
            self.times.append(time.perf_counter())
            self.texts.append(text)
            original(text, reasoning)

        transcript.append = append  # type: ignore[method-assign]

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def rate(self) -> float:
        """Tokens/s shown after the first append, over the span of the appends."""
        tokens = estimate_tokens(self.text) - estimate_tokens(self.texts[0])
        return tokens / (self.times[-1] - self.times[0])


async def test_a_cap_shows_the_fast_reply_at_the_capped_rate(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url, max_tokens=60), backend="fast")
    async with app.run_test(size=SIZE) as pilot:
        app.feels["fast"] = Feel(30)
        app.chat.feel_changed("fast")
        appends = Appends(app.chat.query_one(Transcript))
        await send(pilot, LONG)
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.metrics.output_tokens == 60 and result.metrics.finish_reason == "length"
        assert appends.text == result.text == result.kept_text
        assert appends.rate() == pytest.approx(30, rel=0.05)
        assert result.feel == Feel(30) and result.shown is not None
        assert result.shown.decode_tokens_per_s == pytest.approx(30, rel=0.05)
        assert result.metrics.decode_tokens_per_s is not None
        assert result.metrics.decode_tokens_per_s > 500  # the true figure is the fast one
        assert result.shown.e2e_s > 1.9 > result.metrics.e2e_s  # type: ignore[operator]
        figures = result.as_json()
        assert figures["feel_cap_tokens_per_s"] == 30
        assert figures["shown_decode_tokens_per_s"] == result.shown.decode_tokens_per_s
        panel = app.chat.query_one(MetricsPanel)
        assert panel._current is not None and panel._current.felt
        assert "feel: shown ≤ 30 tok/s" in str(app.chat.query_one(BackendBar).render())


async def test_extra_ttft_delays_the_first_token_shown_by_exactly_that(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url, max_tokens=30), backend="fast")
    async with app.run_test(size=SIZE) as pilot:
        app.feels["fast"] = Feel(extra_ttft_s=0.5)
        appends = Appends(app.chat.query_one(Transcript))
        await send(pilot, LONG)
        turn = app.chat.turn
        assert turn is not None
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.shown is not None and result.metrics.ttft_s is not None
        assert result.shown.ttft_s == pytest.approx(result.metrics.ttft_s + 0.5, abs=1e-6)
        assert turn.accumulator.t0_ns is not None
        first_shown = appends.times[0] - turn.accumulator.t0_ns / 1e9
        assert result.metrics.ttft_s + 0.5 <= first_shown < result.metrics.ttft_s + 0.6
        assert result.shown.decode_tokens_per_s == pytest.approx(
            result.metrics.decode_tokens_per_s, rel=1e-6
        )
        assert appends.text == result.text


async def test_the_feel_dialog_sets_and_clears_the_feel(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url), backend="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, FeelDialog))
        dialog = app.screen
        assert isinstance(dialog, FeelDialog) and dialog.backend == "fast"
        await pilot.press("right", "right", "right", "enter")  # off → 5 → 15 → 30
        assert dialog.query_one("#cap", RadioSet).pressed_index == 3
        dialog.query_one("#ttft-typed", Input).value = "0.8"
        await pilot.click("#apply")
        await until(pilot, lambda: not isinstance(app.screen, FeelDialog))
        assert app.feels == {"fast": Feel(30, 0.8)}
        bar = str(app.chat.query_one(BackendBar).render())
        assert "shown ≤ 30 tok/s · +0.8 s TTFT" in bar

        await pilot.press("f4")  # an impossible figure is refused in place
        await until(pilot, lambda: isinstance(app.screen, FeelDialog))
        dialog = app.screen
        assert isinstance(dialog, FeelDialog)
        dialog.query_one("#cap-typed", Input).value = "0"
        await pilot.click("#apply")
        await pilot.pause()
        assert isinstance(app.screen, FeelDialog)
        assert "not a rate" in str(dialog.query_one("#problem").render())
        await pilot.press("escape")  # Esc changes nothing
        await until(pilot, lambda: not isinstance(app.screen, FeelDialog))
        assert app.feels == {"fast": Feel(30, 0.8)}

        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, FeelDialog))
        await pilot.click("#off")
        await until(pilot, lambda: not isinstance(app.screen, FeelDialog))
        assert app.feels == {}
        assert "feel:" not in str(app.chat.query_one(BackendBar).render())


async def replay(pilot: Pilot[None], app: LatencyApp, presses: tuple[str, ...]) -> None:
    done = len(app.chat.results)
    # Styling the reply before is a burst of work on the UI thread that the replay's runner
    # thread would queue behind for the GIL: at 1,000 tok/s a few milliseconds are a few percent.
    transcript = app.chat.query_one(Transcript)
    await until(pilot, lambda: not transcript.is_styling)
    await pilot.press("f8")
    await until(pilot, lambda: isinstance(app.screen, SpeedPicker))
    await pilot.press(*presses)
    await until(pilot, lambda: len(app.chat.results) == done + 1)


async def test_f8_replays_the_last_reply_at_another_speed(lab_url: str) -> None:
    # 100 tokens: 5 s at 20 tok/s, and at 1,000 tok/s a span long enough to measure within 5 %.
    app = LatencyApp(make_settings(lab_url, max_tokens=100), backend="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f8")  # nothing to replay yet: said in one line, no dialog
        await pilot.pause()
        assert not isinstance(app.screen, SpeedPicker)

        await send(pilot, LONG)
        await until(pilot, lambda: len(app.chat.results) == 1)
        original = app.chat.results[0]
        history = list(app.chat.conversation.messages)
        appends = Appends(app.chat.query_one(Transcript))

        await replay(pilot, app, ("enter",))  # the first speed: 20 tok/s
        slow = app.chat.results[1]
        slow_rate = appends.rate()
        appends.times.clear()
        appends.texts.clear()
        await replay(pilot, app, ("down", "down", "down", "enter"))  # 1,000 tok/s
        fast = app.chat.results[2]

        assert original.text == slow.text == fast.text
        assert not any(key.startswith(("feel_", "shown_")) for key in original.as_json())
        assert slow_rate == pytest.approx(20, rel=0.05)
        assert slow.metrics.decode_tokens_per_s == pytest.approx(20, rel=0.05)
        # A 0.1 s span: one late wake-up of 5 ms on a busy machine is already 5 %.
        assert fast.metrics.decode_tokens_per_s == pytest.approx(1000, rel=0.10)
        for replayed in (slow, fast):
            assert replayed.metrics.ttft_s == pytest.approx(original.metrics.ttft_s, abs=0.03)
            assert replayed.backend == "replay"
        assert appends.text == original.text
        assert app.chat.conversation.messages == history  # replays are not conversation
        assert app.chat.last_reply is original
        assert "replay of fast's reply at 1,000 tok/s" in visible(app)


async def test_esc_under_a_cap_stops_showing_at_once_and_keeps_what_was_shown(
    lab_url: str,
) -> None:
    app = LatencyApp(make_settings(lab_url, max_tokens=200), backend="fast")
    async with app.run_test(size=SIZE) as pilot:
        app.feels["fast"] = Feel(15)
        shown_events: list[StreamEvent] = []
        appends = Appends(app.chat.query_one(Transcript))
        await send(pilot, LONG)
        pump = app.chat.pump
        assert pump is not None
        pump._on_shown = shown_events.append  # what a spoken reply would be fed
        # The true reply arrives within a fraction of a second; the cap holds most of it back.
        await until(pilot, lambda: pump.turn.accumulator.finished)
        await until(pilot, lambda: estimate_tokens(appends.text) >= 8)
        throttle = pump.throttle
        assert throttle is not None
        before = len(throttle.shown.text_parts)
        await pilot.press("escape")
        pressed = time.perf_counter()
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.metrics.output_tokens == 200  # everything arrived…
        assert result.shown is not None and result.shown.cancelled  # …but not all was shown
        assert appends.text == result.kept_text == result.shown_text
        assert 8 <= estimate_tokens(result.kept_text) < 20
        assert len(throttle.shown.text_parts) <= before + 1  # at most the piece due at the press
        assert appends.times[-1] - pressed < 0.1
        t0 = pump.turn.accumulator.t0_ns
        assert t0 is not None and result.shown.e2e_s is not None
        assert result.shown.e2e_s <= pressed - t0 / 1e9  # the shown reply ended at the press
        spoken = "".join(e.text for e in shown_events if isinstance(e, ContentChunk))
        assert result.kept_text.endswith(spoken) and spoken
        end = shown_events[-1]
        assert isinstance(end, StreamDone) and end.cancelled
        assert app.chat.conversation.messages[-1].content == result.kept_text
        assert "cancelled" in visible(app)


async def test_a_felt_reply_is_spoken_as_it_is_shown(
    lab_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_AUDIO_SPEAKER_RAW", str(tmp_path / "played.raw"))
    app = LatencyApp(
        make_settings(lab_url, max_tokens=40),
        backend="fast",
        voice=VoiceOptions(speak=True, cache_dir=tmp_path / "models"),
    )
    async with app.run_test(size=SIZE) as pilot:
        voice = app.voice
        assert voice is not None
        await until(pilot, lambda: voice.wait_loaded(0))
        assert voice.can_speak, voice.tts_problem
        app.feels["fast"] = Feel(extra_ttft_s=1.0)
        app.chat.submit("What is the capital of Australia?")
        turn = app.chat.voice_turn
        assert turn is not None
        await until(pilot, lambda: len(app.chat.results) == 1)
        stages = turn.voice
        assert stages is not None
        await until(pilot, lambda: stages.first_sentence is not None)
        assert stages.first_sentence is not None
        true_first, shown = turn.accumulator.first_ns, turn.shown
        assert true_first is not None and shown is not None and shown.first_ns is not None
        # Spoken from what was shown: the first sentence waits for the delayed first token…
        assert stages.first_sentence.t_ns >= shown.first_ns >= true_first + 1_000_000_000
        # …and its figure counts from that token, so the stages still add up to what was heard.
        figures = turn.voice_figures()
        assert figures is not None and figures.first_sentence_s is not None
        assert 0 <= figures.first_sentence_s < 0.5
        reply = voice._reply
        assert reply is not None
        assert await asyncio.to_thread(reply.wait_idle, 30.0)


def test_snapshot_felt_turn_beside_an_unfelt_one(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def fill(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, LatencyApp)
        feel = Feel(30, 0.5)
        app.feels["fast"] = feel
        app.chat.feel_changed("fast")
        panel = app.chat.query_one(MetricsPanel)
        panel.start_turn("fast")
        panel.show(PanelFigures("fast", metrics()))
        panel.start_turn("fast")
        shown = metrics(ttft_s=0.741, decode_tokens_per_s=30.0, e2e_s=67.4)
        for rate in (29.0, 30.0, 30.1, 30.0):
            live = metrics(ttft_s=0.741, finished=False)
            panel.show(PanelFigures("fast", metrics(), rate, shown=live, feel=feel))
        panel.show(PanelFigures("fast", metrics(), shown=shown, feel=feel))
        transcript = app.chat.query_one(Transcript)
        transcript.add_prompt("Why does speed matter?", label="you → fast")
        transcript.start_reply(label="fast · lab")
        transcript.append("At 30 tokens/s you watch the reply being typed.")
        transcript.end_reply(status="done")
        await settle(pilot)

    app = LatencyApp(offline_settings())
    assert snap_compare(app, terminal_size=SNAPSHOT_SIZE, run_before=fill)


def test_snapshot_feel_dialog(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SNAPSHOT_SIZE, press=["f4"])
