"""Settings: built-in backend presets, the lab profiles, and the user's TOML file merged.

The user file (`--config PATH`, or `config.toml` in the platform's user config directory) may add
backends or override presets as `[backends.NAME]` tables, and set `[app]`, `[timeouts]`, `[keys]`,
`[voice]` and `[race]`.
Anything unknown or of the wrong type is an error naming the file, the key and what was expected:
a typo must never be silently ignored. API keys are never read from the file, only from the
environment variable a backend names.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from demo.backends.base import BackendKind, BackendSpec, Timeouts
from demo.paths import ASSETS, default_config_path

PRESETS_PATH = ASSETS / "backends.toml"
KINDS: tuple[BackendKind, ...] = ("remote", "local", "lab")


class ConfigError(Exception):
    """A config file is unreadable or invalid. The message is one line, ready to show."""


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """Speech in and out. Every field has a working default."""

    model: str = "base"
    """A faster-whisper model name, used when no local directory or offline package is found."""
    model_dir: Path | None = None
    """A directory holding a converted model (model.bin, config.json, …); wins over all else."""
    language: str | None = "en"
    input_device: str | None = None
    output_device: str | None = None
    hands_free: bool = False
    """Start in hands-free mode (voice activity ends the turn) rather than push-to-talk."""
    silence_s: float = 0.5
    """Silence that ends a hands-free turn."""
    speak: bool = True
    """Speak replies aloud (the mute key toggles it)."""
    tts_voice: str | None = None
    tts_rate: int | None = None
    """Words per minute for the spoken reply (espeak-ng's default is about 175)."""


RACE_SPEAK_MODES = ("leader", "none")
"""What `[race] speak` may be besides a backend name."""
RACE_MIN_LANES = 2
RACE_MAX_LANES = 4


@dataclass(frozen=True, slots=True)
class RaceSettings:
    """Race mode: which backends race by default, and whose reply is spoken."""

    backends: tuple[str, ...] = ("fast", "slow")
    """The lanes preselected when a race is set up (2 to 4 configured backend names)."""
    speak: str = "leader"
    """Whose reply is spoken aloud: "leader" (first token first), "none", or a backend name."""


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Everything the app and the commands are configured with."""

    backends: dict[str, BackendSpec]
    default_backend: str = "fast"
    system_prompt: str | None = None
    max_tokens: int | None = 2048
    temperature: float | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    keys: dict[str, str] = field(default_factory=dict)
    """Key binding id → keys, for `App.set_keymap`."""
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    race: RaceSettings = field(default_factory=RaceSettings)
    path: Path | None = None
    """The user config file these settings come from; it may not exist."""

    def backend(self, name: str) -> BackendSpec:
        """The backend called `name`; `replay:PATH` reads that session file and adds it.

        Raises:
            ConfigError: no such backend, or a session file that cannot be replayed.
        """
        spec = self.backends.get(name)
        if spec is not None:
            return spec
        from demo.backends.replay import REPLAY_PREFIX

        if name.startswith(REPLAY_PREFIX) and len(name) > len(REPLAY_PREFIX):
            return self._add_replay(name)
        known = ", ".join(self.backends)
        raise ConfigError(
            f"unknown backend {name!r}; configured: {known} (or replay:PATH for a session file)"
        )

    def _add_replay(self, name: str) -> BackendSpec:
        """Read the session a `replay:` name points at (once) and keep it as a backend."""
        from demo.backends.replay import REPLAY_PREFIX, load_replay, replay_spec, session_path
        from demo.sessions.playback import recorded_turns
        from demo.sessions.reader import SessionError

        try:
            session = load_replay(session_path(name.removeprefix(REPLAY_PREFIX)))
        except SessionError as exc:
            raise ConfigError(str(exc)) from None
        if not recorded_turns(session)[0]:
            raise ConfigError(f"{session.path}: no turn in it can be replayed")
        spec = replay_spec(name, session)
        self.backends[name] = spec
        return spec


Checker = Callable[[object], bool]


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_str_table(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _is_table(value: object) -> bool:
    return isinstance(value, dict)


def _is_kind(value: object) -> bool:
    return value in KINDS


def _is_lane_list(value: object) -> bool:
    return (
        isinstance(value, list)
        and RACE_MIN_LANES <= len(value) <= RACE_MAX_LANES
        and all(isinstance(name, str) for name in value)
    )


_BACKEND_KEYS: dict[str, tuple[Checker, str]] = {
    "base_url": (_is_str, "a string (an http:// or https:// URL)"),
    "model": (_is_str, "a string"),
    "api_key_env": (_is_str, "a string (the name of an environment variable)"),
    "headers": (_is_str_table, "a table of strings"),
    "params": (_is_table, "a table"),
    "kind": (_is_kind, 'one of "remote", "local", "lab"'),
    "description": (_is_str, "a string"),
}
_APP_KEYS: dict[str, tuple[Checker, str]] = {
    "default_backend": (_is_str, "a string (a backend name)"),
    "system_prompt": (_is_str, "a string"),
    "max_tokens": (_is_positive_int, "a positive integer"),
    "temperature": (_is_number, "a number"),
}
_TIMEOUT_KEYS: dict[str, tuple[Checker, str]] = {
    "connect_s": (_is_number, "a number of seconds"),
    "first_byte_s": (_is_number, "a number of seconds"),
    "stall_s": (_is_number, "a number of seconds"),
}
_VOICE_KEYS: dict[str, tuple[Checker, str]] = {
    "model": (_is_str, "a string (a faster-whisper model name such as base or base.en)"),
    "model_dir": (_is_str, "a string (a directory path)"),
    "language": (_is_str, 'a string (a language code such as "en")'),
    "input_device": (_is_str, "a string (a device name or index; see `latency-demo devices`)"),
    "output_device": (_is_str, "a string (a device name or index; see `latency-demo devices`)"),
    "hands_free": (lambda v: isinstance(v, bool), "true or false"),
    "silence_s": (lambda v: _is_number(v) and 0.1 <= cast(float, v) <= 5, "seconds from 0.1 to 5"),
    "speak": (lambda v: isinstance(v, bool), "true or false"),
    "tts_voice": (_is_str, "a string (a voice name)"),
    "tts_rate": (
        lambda v: _is_positive_int(v) and cast(int, v) <= 600,
        "words per minute (1 to 600)",
    ),
}
_RACE_KEYS: dict[str, tuple[Checker, str]] = {
    "backends": (
        _is_lane_list,
        f"a list of {RACE_MIN_LANES} to {RACE_MAX_LANES} backend names",
    ),
    "speak": (_is_str, '"leader", "none" or a backend name'),
}
_SECTIONS = ("app", "timeouts", "keys", "voice", "race", "backends")


def _check_table(
    where: str, table: Mapping[str, object], schema: dict[str, tuple[Checker, str]], source: Path
) -> None:
    for key, value in table.items():
        if key not in schema:
            allowed = ", ".join(schema)
            raise ConfigError(f"{source}: unknown key {where}.{key} (expected one of: {allowed})")
        check, expected = schema[key]
        if not check(value):
            raise ConfigError(
                f"{source}: {where}.{key} must be {expected}, got {type(value).__name__} {value!r}"
            )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _backend_tables(data: dict[str, Any], source: Path) -> dict[str, dict[str, Any]]:
    backends = data.get("backends", {})
    if not isinstance(backends, dict):
        raise ConfigError(f"{source}: backends must be a table of [backends.NAME] tables")
    for name, table in backends.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: backends.{name} must be a table")
        _check_table(f"backends.{name}", table, _BACKEND_KEYS, source)
        url = table.get("base_url")
        if url is not None and not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{source}: backends.{name}.base_url must start with http:// or https://"
            )
    return cast(dict[str, dict[str, Any]], backends)


def _merge_backend(
    name: str, table: dict[str, Any], base: BackendSpec | None, source: Path
) -> BackendSpec:
    if base is None:
        kind = table.get("kind", "remote")
        if "model" not in table:
            raise ConfigError(f"{source}: backends.{name}.model is required for a new backend")
        if kind != "lab" and "base_url" not in table:
            raise ConfigError(f"{source}: backends.{name}.base_url is required for a new backend")
        return BackendSpec(
            name=name,
            kind=kind,
            model=table["model"],
            base_url=table.get("base_url"),
            api_key_env=table.get("api_key_env"),
            headers=dict(table.get("headers", {})),
            params=dict(table.get("params", {})),
            description=table.get("description", ""),
        )
    changes: dict[str, Any] = {k: v for k, v in table.items() if k not in ("headers", "params")}
    if "headers" in table:
        changes["headers"] = {**base.headers, **table["headers"]}
    if "params" in table:
        changes["params"] = {**base.params, **table["params"]}
    return replace(base, **changes)


def lab_backends() -> dict[str, BackendSpec]:
    """One lab backend per lab profile, named after it (`fast`, `slow`, …)."""
    from demo.lab.profiles import load_profiles

    return {
        name: BackendSpec(
            name=name, kind="lab", model=name, description=f"imitates {profile.label}"
        )
        for name, profile in load_profiles().items()
    }


def load_settings(path: Path | None = None) -> AppSettings:
    """Presets, lab profiles and the user's file (if present) merged into one settings object.

    An explicit `path` must exist; the default location may be absent.
    """
    explicit = path is not None
    source = path if path is not None else default_config_path()
    backends: dict[str, BackendSpec] = dict(lab_backends())
    for name, table in _backend_tables(_read_toml(PRESETS_PATH), PRESETS_PATH).items():
        backends[name] = _merge_backend(name, table, None, PRESETS_PATH)

    if not source.exists():
        if explicit:
            raise ConfigError(f"{source}: config file not found")
        return AppSettings(backends=backends, path=source)

    data = _read_toml(source)
    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{section}] (expected one of: {', '.join(_SECTIONS)})"
            )
    for name, table in _backend_tables(data, source).items():
        backends[name] = _merge_backend(name, table, backends.get(name), source)

    app = _section(data, "app", source)
    _check_table("app", app, _APP_KEYS, source)
    timeouts_table = _section(data, "timeouts", source)
    _check_table("timeouts", timeouts_table, _TIMEOUT_KEYS, source)
    for key, value in timeouts_table.items():
        if value <= 0:
            raise ConfigError(f"{source}: timeouts.{key} must be a positive number of seconds")
    keys = _section(data, "keys", source)
    for key, value in keys.items():
        if not isinstance(value, str):
            raise ConfigError(
                f'{source}: keys.{key} must be a string of keys such as "ctrl+b", '
                f"got {type(value).__name__}"
            )

    voice_table = _section(data, "voice", source)
    _check_table("voice", voice_table, _VOICE_KEYS, source)
    voice_values: dict[str, Any] = dict(voice_table)
    if "model_dir" in voice_values:
        voice_values["model_dir"] = Path(voice_values["model_dir"]).expanduser()
    if "silence_s" in voice_values:
        voice_values["silence_s"] = float(voice_values["silence_s"])

    race = _race_settings(_section(data, "race", source), backends, source)

    default = app.get("default_backend", "fast")
    if default not in backends:
        raise ConfigError(f"{source}: app.default_backend {default!r} is not a configured backend")
    return AppSettings(
        backends=backends,
        default_backend=default,
        system_prompt=app.get("system_prompt"),
        max_tokens=app.get("max_tokens", 2048),
        temperature=app.get("temperature"),
        timeouts=replace(Timeouts(), **{k: float(v) for k, v in timeouts_table.items()}),
        keys=dict(keys),
        voice=VoiceSettings(**voice_values),
        race=race,
        path=source,
    )


_RACE_DEFAULT = RaceSettings()


def _race_settings(
    table: dict[str, Any], backends: Mapping[str, BackendSpec], source: Path
) -> RaceSettings:
    """The `[race]` section, its names checked against the configured backends."""
    _check_table("race", table, _RACE_KEYS, source)
    names: list[str] = table.get("backends", list(_RACE_DEFAULT.backends))
    for name in names:
        if name not in backends:
            raise ConfigError(f"{source}: race.backends: {name!r} is not a configured backend")
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: race.backends lists a backend twice: {', '.join(names)}")
    speak: str = table.get("speak", _RACE_DEFAULT.speak)
    if speak not in RACE_SPEAK_MODES and speak not in backends:
        raise ConfigError(
            f'{source}: race.speak must be "leader", "none" or a configured backend, got {speak!r}'
        )
    return RaceSettings(backends=tuple(names), speak=speak)


def _section(data: dict[str, Any], name: str, source: Path) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    return cast(dict[str, Any], table)
