"""Driving the real app headless (Textual's `run_test`) for the in-process benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input

from demo.config import AppSettings, load_settings
from demo.ui.app import LatencyApp

SIZE = (160, 48)
"""The terminal size every benchmark uses, headless or in tmux."""


def settings(config: Path) -> AppSettings:
    """The app's settings from a benchmark config file (never the user's own)."""
    return load_settings(config)


async def wait_until(condition: Callable[[], object], timeout: float, poll_s: float = 0.01) -> None:
    """Let the app's loop run until `condition` holds; TimeoutError after `timeout` seconds."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"condition not met within {timeout:g} s")
        await asyncio.sleep(poll_s)


def type_prompt(app: LatencyApp, prompt: str) -> Input:
    """Put `prompt` in the prompt field and focus it, as if typed; Enter then sends it."""
    field = app.chat.query_one("#prompt", Input)
    field.value = prompt
    field.focus()
    return field
