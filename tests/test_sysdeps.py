"""The system-package step of the README's commands."""

from __future__ import annotations

import pytest

from demo import sysdeps


def test_nothing_to_do_when_everything_is_present() -> None:
    assert sysdeps.missing() == []
    assert sysdeps.main() == 0


def test_names_the_packages_when_it_cannot_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sysdeps.REQUIRED, "python3-venv", lambda: False)
    monkeypatch.setitem(sysdeps.VOICE, "espeak-ng", lambda: False)
    monkeypatch.setattr(sysdeps.shutil, "which", lambda name: None)
    assert sysdeps.main() == 1
    message = capsys.readouterr().err
    assert "apt-get install -y python3-venv espeak-ng" in message


def test_missing_voice_packages_alone_do_not_stop_the_set_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sysdeps.VOICE, "libportaudio2", lambda: False)
    monkeypatch.setattr(sysdeps.shutil, "which", lambda name: None)
    assert sysdeps.main() == 0
    assert "libportaudio2" in capsys.readouterr().err
