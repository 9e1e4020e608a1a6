"""The config file: presets, overrides, new backends, and errors that say where and what."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_have_lab_backends_and_presets(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.default_backend == "fast"
    assert settings.backends["fast"].kind == "lab"
    assert settings.backends["slow"].kind == "lab"
    for name, env in [
        ("cerebras", "CEREBRAS_API_KEY"),
        ("groq", "GROQ_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
        ("together", "TOGETHER_API_KEY"),
        ("fireworks", "FIREWORKS_API_KEY"),
        ("sambanova", "SAMBANOVA_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
    ]:
        assert settings.backends[name].api_key_env == env
        assert settings.backends[name].base_url.startswith("https://")
    for name in ("ollama", "llamacpp", "vllm", "lmstudio"):
        assert settings.backends[name].kind == "local"
        assert settings.backends[name].api_key_env is None
    assert settings.backends["ollama"].base_url == "http://localhost:11434/v1"


def test_user_backend_and_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[app]
default_backend = "mine"
max_tokens = 256
system_prompt = "Be brief."

[timeouts]
stall_s = 5

[keys]
"latency.swap_backend" = "ctrl+s"

[backends.mine]
base_url = "http://127.0.0.1:9999/v1"
model = "m1"
api_key_env = "MINE_KEY"
headers = { "X-Team" = "demo" }
params = { top_p = 0.9 }

[backends.groq]
model = "llama-3.1-8b-instant"
""",
    )
    settings = load_settings(path)
    mine = settings.backends["mine"]
    assert (mine.base_url, mine.model, mine.api_key_env, mine.kind) == (
        "http://127.0.0.1:9999/v1",
        "m1",
        "MINE_KEY",
        "remote",
    )
    assert mine.headers == {"X-Team": "demo"}
    assert mine.params == {"top_p": 0.9}
    assert settings.backends["groq"].model == "llama-3.1-8b-instant"
    assert settings.backends["groq"].base_url == "https://api.groq.com/openai/v1"
    assert settings.default_backend == "mine"
    assert settings.max_tokens == 256
    assert settings.system_prompt == "Be brief."
    assert settings.timeouts.stall_s == 5.0
    assert settings.keys == {"latency.swap_backend": "ctrl+s"}


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            '[backends.x]\nbase_url = "http://a/v1"\nmodel = "m"\nmodle = "typo"\n',
            ["backends.x.modle", "expected one of"],
        ),
        (
            '[backends.x]\nbase_url = "http://a/v1"\nmodel = 3\n',
            ["backends.x.model", "must be a string", "int"],
        ),
        (
            '[backends.x]\nbase_url = "http://a/v1"\nmodel = "m"\nkind = "cloud"\n',
            ["backends.x.kind", '"remote"'],
        ),
        ('[backends.x]\nmodel = "m"\n', ["backends.x.base_url is required"]),
        ('[backends.x]\nbase_url = "ftp://a"\nmodel = "m"\n', ["backends.x.base_url", "http://"]),
        (
            '[backends.x]\nbase_url = "http://a"\nmodel = "m"\nheaders = { A = 1 }\n',
            ["backends.x.headers", "table of strings"],
        ),
        ("[app]\nmax_tokens = -3\n", ["app.max_tokens", "positive integer"]),
        ("[app]\ncolour = 1\n", ["app.colour"]),
        ('[app]\ndefault_backend = "nope"\n', ["app.default_backend", "nope"]),
        ("[timeouts]\nstall_s = 0\n", ["timeouts.stall_s", "positive"]),
        ("[keys]\n'latency.help' = 1\n", ["keys.latency.help", "string"]),
        ("[theme]\nx = 1\n", ["unknown section [theme]"]),
        ("[app\n", ["not valid TOML"]),
    ],
)
def test_errors_name_the_file_the_key_and_the_expectation(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message


def test_missing_explicit_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="directory"):
        load_settings(tmp_path)


def test_missing_key_is_reported_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    spec = settings.backends["groq"]
    assert spec.missing_key({}) == "GROQ_API_KEY"
    assert spec.missing_key({"GROQ_API_KEY": "x"}) is None
    assert settings.backends["fast"].missing_key({}) is None


def test_race_section_defaults_and_overrides(tmp_path: Path) -> None:
    defaults = load_settings(write(tmp_path, ""))
    assert defaults.race.backends == ("fast", "slow")
    assert defaults.race.speak == "leader"

    settings = load_settings(
        write(tmp_path, '[race]\nbackends = ["fast", "quick", "medium", "slow"]\nspeak = "slow"\n')
    )
    assert settings.race.backends == ("fast", "quick", "medium", "slow")
    assert settings.race.speak == "slow"
    assert load_settings(write(tmp_path, '[race]\nspeak = "none"\n')).race.speak == "none"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[race]\nbackends = ["fast"]\n', ["race.backends", "2 to 4 backend names"]),
        (
            '[race]\nbackends = ["fast", "slow", "quick", "medium", "laptop"]\n',
            ["race.backends", "2 to 4"],
        ),
        ('[race]\nbackends = "fast,slow"\n', ["race.backends", "list"]),
        ('[race]\nbackends = ["fast", "nope"]\n', ["race.backends", "'nope'", "configured"]),
        ('[race]\nbackends = ["fast", "fast"]\n', ["race.backends", "twice"]),
        ('[race]\nspeak = "loudest"\n', ["race.speak", "leader", "'loudest'"]),
        ("[race]\nspeak = 1\n", ["race.speak"]),
        ("[race]\nlanes = 2\n", ["unknown key race.lanes"]),
    ],
)
def test_race_section_errors_name_the_file_and_the_key(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert "\n" not in message
