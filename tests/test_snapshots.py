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
