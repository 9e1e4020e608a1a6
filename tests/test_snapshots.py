"""SVG snapshots of the main screens, with fixed content so they only change when the UI does.

Regenerate after an intended change with `pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from textual.pilot import Pilot

from demo.config import AppSettings, load_settings
from demo.core.metrics import TurnMetrics
from demo.ui.app import LatencyApp
from demo.ui.widgets.metrics_panel import MetricsPanel, PanelFigures
from demo.ui.widgets.transcript import Transcript

SIZE = (120, 36)
KEY_VARIABLES = (
    "CEREBRAS_API_KEY",
    "GROQ_API_KEY",
    "SAMBANOVA_API_KEY",
    "OPENAI_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "OPENROUTER_API_KEY",
)

REPLY = """\
# Why speed matters

A reply at **969 tokens/s** is finished before you have read its first line; at 80 tokens/s
you watch it being typed.

- TTFT decides when the reply *starts*
- decode speed decides when it *ends*

```python
print("hello")
```
"""


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def offline_settings() -> AppSettings:
    """Settings whose lab backends point nowhere: snapshots never start a server."""
    settings = load_settings()
    backends = {
        name: replace(spec, base_url="http://127.0.0.1:9/v1") if spec.kind == "lab" else spec
        for name, spec in settings.backends.items()
    }
    return replace(settings, backends=backends)


def metrics(**changes: object) -> TurnMetrics:
    base = TurnMetrics(
        ttft_s=0.241,
        decode_tokens_per_s=968.7,
        e2e_s=2.31,
        output_tokens=2000,
        output_tokens_source="usage",
        reasoning_tokens=0,
        chunks=667,
        chunk_gap_p50_s=0.003,
        chunk_gap_p95_s=0.005,
        chunk_gap_p99_s=0.007,
        chunk_gap_max_s=0.011,
        prompt_tokens=18,
        server_timing=None,
        warnings=0,
        error=None,
        error_kind=None,
        cancelled=False,
        finish_reason="stop",
        finished=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def settle(pilot: Pilot[None]) -> None:
    transcript = pilot.app.screen.query_one(Transcript)
    async with asyncio.timeout(10):
        while transcript.is_styling:
            await pilot.pause(0.01)
    await pilot.pause()


def test_start_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE)


def test_finished_turn_beside_the_previous_one(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def fill(pilot: Pilot[None]) -> None:
        screen = pilot.app.screen
        transcript = screen.query_one(Transcript)
        panel = screen.query_one(MetricsPanel)
        panel.start_turn("slow")
        panel.show(
            PanelFigures("slow", metrics(ttft_s=0.507, decode_tokens_per_s=80.2, e2e_s=25.4))
        )
        panel.start_turn("fast")
        for rate in (640.0, 950.0, 975.0, 962.0, 969.0):
            panel.show(PanelFigures("fast", metrics(finished=False), rate))
        panel.show(PanelFigures("fast", metrics()))
        transcript.add_prompt("Why does speed matter?", label="you → fast")
        transcript.start_reply(label="fast · lab")
        transcript.append(REPLY)
        transcript.end_reply(status="done")
        await settle(pilot)

    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, run_before=fill)


def test_cancelled_and_failed_replies(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def fill(pilot: Pilot[None]) -> None:
        transcript = pilot.app.screen.query_one(Transcript)
        transcript.add_prompt("Tell me a long story", label="you → slow")
        transcript.start_reply(label="slow · lab")
        transcript.append("Once upon a time, in a data centre far away, a GPU")
        transcript.end_reply(status="cancelled", note="cancelled — partial reply kept")
        transcript.add_prompt("Try again", label="you → groq")
        transcript.start_reply(label="groq · remote")
        transcript.end_reply(
            status="error", note="HTTP 429 Too Many Requests: rate limit (retry after 7 s)"
        )
        await settle(pilot)

    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, run_before=fill)


def test_backend_picker(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, press=["ctrl+b"])


def test_suggested_prompts(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, press=["f2"])


def test_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, press=["f1"])


RACE_REPLY = """\
A wafer-scale chip keeps the whole model in on-chip memory, so each token needs no trip to
external DRAM. That is why it streams **hundreds of tokens per second** for a single user.
"""

RACE_LANES = {
    # name: (TTFT s, decode tok/s, tokens, E2E s)
    "fast": (0.241, 968.7, 400, 0.65),
    "quick": (0.302, 249.6, 400, 1.90),
    "medium": (0.611, 128.9, 400, 3.71),
    "slow": (0.507, 80.2, 400, 5.49),
}


def _race_curve(ttft: float, rate: float, total: int) -> list[tuple[float, float]]:
    points = [(0.0, 0.0), (ttft, 0.0)]
    points.extend((ttft + n / rate, float(n)) for n in range(3, total + 1, 3))
    return points


def _fill_race(names: list[str], *, failed: str | None = None):  # type: ignore[no-untyped-def]
    """Push a race screen and fill it with fixed figures, replies, curves and outcome."""
    from demo.core.race import summarize
    from demo.core.turn import TurnResult
    from demo.ui.screens.race import RaceScreen
    from demo.ui.widgets.timeline import Timeline

    async def fill(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, LatencyApp)
        screen = RaceScreen(app.settings, app.hub, names)
        await app.push_screen(screen)
        await pilot.pause()
        timeline = screen.query_one(Timeline)
        results = []
        for pane in screen.panes:
            name = pane.backend
            ttft, rate, total, e2e = RACE_LANES[name]
            pane.transcript.add_prompt("How does a wafer-scale chip stream so fast?", label="you")
            pane.start_turn(name)
            pane.transcript.start_reply(label=f"{name} · lab")
            if name == failed:
                error = "connection reset by the server mid-reply"
                figures = metrics(
                    ttft_s=ttft, decode_tokens_per_s=rate, e2e_s=2.2, output_tokens=137,
                    error=error, error_kind="network", finish_reason=None,
                )  # fmt: skip
                pane.transcript.append(RACE_REPLY[:60])
                pane.transcript.end_reply(status="error", note=error)
                timeline.set_curve(name, _race_curve(ttft, rate, 137))
            else:
                figures = metrics(
                    ttft_s=ttft, decode_tokens_per_s=rate, e2e_s=e2e, output_tokens=total
                )
                pane.transcript.append(RACE_REPLY)
                pane.transcript.end_reply(status="done")
                timeline.set_curve(name, _race_curve(ttft, rate, total))
            results.append(
                TurnResult(name, "lab", name, "http://lab/v1", "q", RACE_REPLY, "", figures)
            )
            pane.show(PanelFigures(name, figures))
        screen.show_outcome(summarize(results))
        await settle_race(pilot, screen)

    return fill


async def settle_race(pilot: Pilot[None], screen: object) -> None:
    from demo.ui.widgets.transcript import Transcript as _Transcript

    transcripts = list(pilot.app.screen.query(_Transcript))
    async with asyncio.timeout(10):
        while any(t.is_styling for t in transcripts):
            await pilot.pause(0.01)
    await pilot.pause()


def test_race_two_panes(snap_compare) -> None:  # type: ignore[no-untyped-def]
    fill = _fill_race(["fast", "slow"])
    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, run_before=fill)


def test_race_four_panes(snap_compare) -> None:  # type: ignore[no-untyped-def]
    fill = _fill_race(["fast", "quick", "medium", "slow"], failed="slow")
    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, run_before=fill)


def test_stats_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    from demo.ui.screens.stats import StatsScreen
    from tests.support.turn_records import fixed_turn

    records = [
        fixed_turn("fast", ttft_s=0.24, tokens_per_s=969.0, tokens=600, mode="race"),
        fixed_turn("slow", ttft_s=0.51, tokens_per_s=80.0, tokens=90, tokens_per_chunk=1),
        fixed_turn("fast", ttft_s=0.26, tokens_per_s=950.0, tokens=300, prompt="And Wellington?"),
        fixed_turn("slow", ttft_s=0.49, tokens_per_s=81.0, tokens=90, error_after=12),
    ]

    async def open_stats(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(StatsScreen(records))
        await pilot.pause()

    assert snap_compare(LatencyApp(offline_settings()), terminal_size=SIZE, run_before=open_stats)
