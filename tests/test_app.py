"""The TUI driven with Pilot against the real lab server and the fault server, on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from demo.backends.base import BackendSpec
from demo.config import AppSettings, load_settings
from demo.lab.process import LabServer
from demo.ui.app import LatencyApp
from demo.ui.screens.chat import ChatScreen
from demo.ui.screens.help import HelpScreen
from demo.ui.screens.pickers import BackendPicker
from demo.ui.widgets.metrics_panel import MetricsPanel
from demo.ui.widgets.transcript import Transcript
from tests.support import (
    Exchange,
    FaultServer,
    chunk,
    error_reply,
    reply_chunks,
    sse,
    stream_reply,
    usage_chunk,
)

SIZE = (120, 40)


@pytest.fixture(scope="module")
def lab_url() -> Iterator[str]:
    with LabServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def make_settings(lab_url: str, *extra: BackendSpec, **changes: object) -> AppSettings:
    settings = load_settings()
    backends = dict(settings.backends)
    for name in ("fast", "slow"):
        backends[name] = replace(backends[name], base_url=f"{lab_url}/v1")
    for spec in extra:
        backends[spec.name] = spec
    return replace(settings, backends=backends, **changes)  # type: ignore[arg-type]


def remote(name: str, url: str, **fields: object) -> BackendSpec:
    return BackendSpec(name=name, kind="remote", model="m", base_url=url, **fields)  # type: ignore[arg-type]


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let the app run until `condition` holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await pilot.pause(0.01)


def chat(app: LatencyApp) -> ChatScreen:
    return app.chat


def visible(app: LatencyApp) -> str:
    transcript = app.chat.query_one(Transcript)
    return "\n".join(transcript.render_line(y).text for y in range(transcript.size.height))


async def send(pilot: Pilot[None], prompt: str) -> None:
    app = pilot.app
    assert isinstance(app, LatencyApp)
    field = app.chat.query_one("#prompt", Input)
    field.value = prompt
    field.focus()
    await pilot.press("enter")


async def test_a_prompt_streams_and_the_figures_fill_in(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is the capital of Australia?")
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.metrics.error is None
        assert "Canberra" in result.text
        assert "Canberra" in app.chat.query_one(Transcript).reply_text
        assert result.metrics.ttft_s is not None and 0.2 < result.metrics.ttft_s < 0.5
        assert result.metrics.output_tokens_source == "usage"
        panel = app.chat.query_one(MetricsPanel)
        assert panel._current is not None and panel._current.metrics.finished
        assert app.chat.query_one("#prompt", Input).value == ""
        assert not app.chat.streaming


async def test_switching_backend_keeps_the_history(lab_url: str, faults: FaultServer) -> None:
    url = faults.scenario(stream_reply(*reply_chunks("I am the recorder.")), name="recorder")
    app = LatencyApp(make_settings(lab_url, remote("rec", url), max_tokens=30))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is the capital of Australia?")
        await until(pilot, lambda: len(app.chat.results) == 1)

        await pilot.press("ctrl+n")
        assert app.chat.backend == "slow"
        await send(pilot, "And of New Zealand?")
        await until(pilot, lambda: len(app.chat.results) == 2)
        assert app.chat.results[1].backend == "slow"

        await pilot.press("ctrl+b")
        await until(pilot, lambda: isinstance(app.screen, BackendPicker))
        picker = app.screen
        assert isinstance(picker, BackendPicker)
        picker.dismiss("rec")
        await until(pilot, lambda: app.chat.backend == "rec")
        await send(pilot, "Third question")
        await until(pilot, lambda: len(app.chat.results) == 3)

        sent = faults.requests("recorder")[-1].json()
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant", "user", "assistant", "user"]
        assert sent["messages"][0]["content"] == "What is the capital of Australia?"
        assert sent["messages"][-1]["content"] == "Third question"
        assert "rec" in visible(app) or app.chat.backend == "rec"


async def test_escape_cancels_keeps_the_partial_reply_and_the_app_stays_usable(
    lab_url: str,
) -> None:
    app = LatencyApp(make_settings(lab_url, max_tokens=2000), backend="slow")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Explain how a wafer-scale chip makes LLM inference fast.")
        transcript = app.chat.query_one(Transcript)
        await until(pilot, lambda: len(transcript.reply_text) > 20)
        await pilot.press("escape")
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.metrics.cancelled
        assert result.metrics.output_tokens < 2000
        assert result.text and transcript.reply_text.startswith(result.text[:20])
        assert "cancelled" in visible(app)

        await send(pilot, "What is the capital of Australia?")
        await until(pilot, lambda: len(app.chat.results) == 2)
        assert app.chat.results[1].metrics.error is None


def _partial_then(fault: str) -> Callable[[Exchange], Awaitable[None]]:
    async def handler(exchange: Exchange) -> None:
        await exchange.start()
        await exchange.send(sse(chunk("partial reply ")))
        if fault == "inband":
            overloaded = {"error": {"message": "model overloaded", "type": "server_error"}}
            await exchange.send(sse(overloaded))
            await exchange.end()
        elif fault == "reset":
            await exchange.pause(0.05)
            await exchange.reset()
        elif fault == "malformed":
            await exchange.send(b"data: {not json\n\n")
            await exchange.send(sse(chunk("continues")))
            await exchange.send(sse(usage_chunk(3, 4)))
            await exchange.send(b"data: [DONE]\n\n")
            await exchange.end()

    return handler


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("http500", "HTTP 500"),
        ("http429", "retry after 7 s"),
        ("refused", "refused"),
        ("inband", "model overloaded"),
        ("reset", "reset"),
    ],
)
async def test_faults_show_one_line_and_keep_the_app_usable(
    lab_url: str, faults: FaultServer, scenario: str, expected: str
) -> None:
    if scenario == "http500":
        url = faults.scenario(error_reply(500, b'{"error": {"message": "boom"}}'), name="tui500")
    elif scenario == "http429":
        url = faults.scenario(
            error_reply(
                429,
                b"<html><title>Too Many</title></html>",
                content_type="text/html",
                headers=[("Retry-After", "7")],
            ),
            name="tui429",
        )
    elif scenario == "refused":
        url = "http://127.0.0.1:9/v1"
    else:
        url = faults.scenario(_partial_then(scenario), name=f"tui-{scenario}")
    app = LatencyApp(make_settings(lab_url, remote("broken", url)), backend="broken")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello")
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.metrics.error is not None and expected in result.metrics.error
        assert "\n" not in result.metrics.error
        if scenario in ("inband", "reset"):
            assert result.text == "partial reply "
            assert "partial reply" in app.chat.query_one(Transcript).reply_text
        assert expected.split()[0] in visible(app)

        await pilot.press("ctrl+n")  # to the previous/other backend: the app still works
        await send(pilot, "What is the capital of Australia?")
        await until(pilot, lambda: len(app.chat.results) == 2)
        assert app.chat.results[1].metrics.error is None


async def test_a_malformed_chunk_is_skipped_and_the_reply_continues(
    lab_url: str, faults: FaultServer
) -> None:
    url = faults.scenario(_partial_then("malformed"), name="tui-malformed")
    app = LatencyApp(make_settings(lab_url, remote("odd", url)), backend="odd")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello")
        await until(pilot, lambda: len(app.chat.results) == 1)
        result = app.chat.results[0]
        assert result.metrics.error is None
        assert result.metrics.warnings == 1
        assert result.text == "partial reply continues"
        assert "malformed" in visible(app)


async def test_markup_and_escapes_in_output_are_shown_literally(
    lab_url: str, faults: FaultServer
) -> None:
    evil = "[bold]not bold[/bold] [link=http://x]y[/link] \x1b[31mred"
    url = faults.scenario(stream_reply(*reply_chunks(evil)), name="tui-markup")
    app = LatencyApp(make_settings(lab_url, remote("evil", url)), backend="evil")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello")
        await until(pilot, lambda: len(app.chat.results) == 1)
        shown = visible(app)
        assert "[bold]not bold[/bold]" in shown
        assert "[link=http://x]y[/link]" in shown
        assert "\x1b" not in shown


async def test_missing_key_is_named_before_any_request(
    lab_url: str, faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LATENCY_DEMO_UNSET_KEY", raising=False)
    url = faults.scenario(stream_reply(*reply_chunks("never")), name="tui-keyed")
    spec = remote("keyed", url, api_key_env="LATENCY_DEMO_UNSET_KEY")
    app = LatencyApp(make_settings(lab_url, spec), backend="keyed")
    async with app.run_test(size=SIZE) as pilot:
        assert "LATENCY_DEMO_UNSET_KEY" in visible(app)
        await send(pilot, "hello")
        await pilot.pause()
        assert not app.chat.streaming
        assert faults.requests("tui-keyed") == []
        assert "LATENCY_DEMO_UNSET_KEY" in visible(app)


async def test_empty_and_huge_prompts(lab_url: str, faults: FaultServer) -> None:
    url = faults.scenario(stream_reply(*reply_chunks("ok")), name="tui-huge")
    app = LatencyApp(make_settings(lab_url, remote("rec", url)), backend="rec")
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "   ")
        await pilot.pause()
        assert app.chat.results == [] and not app.chat.streaming
        assert any("empty" in n.message for n in app._notifications)

        huge = "lorem ipsum " * 8_600  # ~100 KB
        await send(pilot, huge)
        await until(pilot, lambda: len(app.chat.results) == 1)
        assert faults.requests("tui-huge")[-1].json()["messages"][-1]["content"] == huge
        assert app.chat.results[0].metrics.error is None


async def test_help_lists_bindings_and_keys_can_be_remapped(lab_url: str) -> None:
    settings = make_settings(lab_url, keys={"latency.swap_backend": "ctrl+s"})
    app = LatencyApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.chat.backend == "slow")
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.chat)


async def test_the_embedded_lab_server_starts_and_stops_with_the_app() -> None:
    app = LatencyApp(load_settings())
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What is the capital of Australia?")
        await until(pilot, lambda: len(app.chat.results) == 1, timeout=30)
        assert app.chat.results[0].metrics.error is None
        lab = app.hub._lab
        assert lab is not None
        process = lab._process
    assert process is not None
    assert process.poll() is not None, "the lab server outlived the app"


async def test_every_action_and_backend_is_in_the_command_palette(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url))
    async with app.run_test(size=SIZE) as pilot:
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for action in (
            "Switch backend…",
            "Swap backend",
            "Suggested prompts",
            "Cancel reply",
            "Clear conversation",
            "Help",
        ):
            assert action in titles
        for name in app.settings.backends:
            assert f"Use backend: {name}" in titles
        use_slow = next(
            c for c in app.get_system_commands(app.screen) if c.title == "Use backend: slow"
        )
        use_slow.callback()
        await until(pilot, lambda: app.chat.backend == "slow")


async def test_a_suggested_prompt_is_sent_from_the_picker(lab_url: str) -> None:
    app = LatencyApp(make_settings(lab_url, max_tokens=40))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: app.screen is not app.chat)
        await pilot.press("enter")
        await until(pilot, lambda: len(app.chat.results) == 1)
        assert (
            app.chat.results[0].prompt == "Explain how a wafer-scale chip makes LLM inference fast."
        )
        assert "wafer" in app.chat.results[0].text.lower()
