"""Shared fixtures: every test runs with its own user directories, never the real ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# A real ALSA capture and playback device backed by files (tests/support/asound.conf), so the real
# PortAudio path runs on machines with no sound card. ALSA reads this before PortAudio starts, so it
# is set when the test session imports this file, before anything imports sounddevice.
_ASOUND = Path(__file__).parent / "support" / "asound.conf"
os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{_ASOUND}"


@pytest.fixture(autouse=True)
def isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("home")
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(variable, str(home / variable.lower()))
    return home
