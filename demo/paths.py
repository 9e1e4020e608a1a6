"""Where the app finds its shipped assets and keeps its user files."""

from __future__ import annotations

from pathlib import Path

from platformdirs import PlatformDirs

ASSETS = Path(__file__).resolve().parent.parent / "assets"
"""Shipped data: lab profiles, demo answers. Lives beside the package in the source tree."""

DIRS = PlatformDirs("latency-demo", appauthor=False)
"""Per-user directories (config, data, cache) for this platform."""


def default_config_path() -> Path:
    """The config file used when `--config` is not given."""
    return Path(DIRS.user_config_dir) / "config.toml"
