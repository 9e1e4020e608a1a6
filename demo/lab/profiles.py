"""Speed profiles the lab server imitates, read from `assets/lab/profiles.toml`.

The numbers live in a data file, each with its source beside it, so that what the demo claims
about a provider can be checked and corrected without touching code.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demo.paths import ASSETS

DEFAULT_PATH = ASSETS / "lab" / "profiles.toml"
"""The shipped profiles file."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class ProfileError(ValueError):
    """The profiles file is missing, not TOML, or a profile in it is malformed."""


@dataclass(frozen=True, slots=True)
class Profile:
    """How fast one imitated provider answers."""

    name: str
    """The model name a client sends to select this profile."""
    label: str
    """What the app shows for it."""
    ttft_s: float
    """Time from the request to the first content chunk."""
    tokens_per_s: float
    """Output speed once the first chunk has been sent."""
    jitter_ms: float
    """Standard deviation of each chunk's send-time offset."""
    tokens_per_chunk: int
    """Tokens carried by each streamed chunk (providers batch differently)."""
    source: str
    """Where each number comes from, or why it is an estimate."""


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _between(low: float, high: float, *, low_open: bool = False) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        return (low < value if low_open else low <= value) and value <= high

    return check


Check = tuple[Callable[[object], bool], str]
"""A value's test, and what a valid value looks like (for the error message)."""

PACE_CHECKS: dict[str, Check] = {
    "ttft_s": (_between(0, 600), "a number of seconds from 0 to 600"),
    "tokens_per_s": (_between(0, 10_000_000, low_open=True), "a positive number"),
    "jitter_ms": (_between(0, 60_000), "a number of milliseconds from 0 to 60000"),
    "tokens_per_chunk": (_is_count, "a whole number >= 1"),
}
"""The keys that set a profile's pace; a request may override them too."""

_CHECKS: dict[str, Check] = {
    "label": (_is_text, "a non-empty string"),
    **PACE_CHECKS,
    "source": (_is_text, "a non-empty string"),
}


def parse_profiles(data: dict[str, Any], where: str = "profiles.toml") -> dict[str, Profile]:
    """Validate parsed TOML and build the profiles, in file order.

    Raises:
        ProfileError: naming the file, the profile and the key at fault.
    """
    table = data.get("profiles")
    if not isinstance(table, dict) or not table:
        raise ProfileError(f"{where}: expected at least one [profiles.NAME] table")
    unknown_top = sorted(set(data) - {"profiles"})
    if unknown_top:
        raise ProfileError(f"{where}: unknown top-level key(s): {', '.join(unknown_top)}")
    profiles: dict[str, Profile] = {}
    for name, entry in table.items():
        if not _NAME.match(name):
            raise ProfileError(
                f"{where}: profile name {name!r} must be lower-case letters, digits, '.', '_' "
                "or '-' (it is sent as the model name)"
            )
        if not isinstance(entry, dict):
            raise ProfileError(f"{where}: profile {name!r} must be a table")
        unknown = sorted(set(entry) - set(_CHECKS))
        if unknown:
            raise ProfileError(f"{where}: profile {name!r}: unknown key(s) {', '.join(unknown)}")
        for key, (check, expected) in _CHECKS.items():
            if key not in entry:
                raise ProfileError(f"{where}: profile {name!r}: missing key {key!r}")
            if not check(entry[key]):
                raise ProfileError(
                    f"{where}: profile {name!r}: key {key!r} must be {expected} "
                    f"(got {entry[key]!r})"
                )
        profiles[name] = Profile(
            name=name,
            label=entry["label"].strip(),
            ttft_s=float(entry["ttft_s"]),
            tokens_per_s=float(entry["tokens_per_s"]),
            jitter_ms=float(entry["jitter_ms"]),
            tokens_per_chunk=entry["tokens_per_chunk"],
            source=" ".join(entry["source"].split()),
        )
    return profiles


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """The profiles in `path` (default: the shipped file), keyed by name, in file order.

    Raises:
        ProfileError: the file cannot be read or does not validate.
    """
    path = DEFAULT_PATH if path is None else path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read lab profiles {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    return parse_profiles(data, str(path))
