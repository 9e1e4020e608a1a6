"""The lab profiles file: the shipped figures, and errors that point at the broken entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.lab.profiles import DEFAULT_PATH, Profile, ProfileError, load_profiles

VALID = """
[profiles.alpha]
label = "Alpha"
ttft_s = 0.1
tokens_per_s = 100
jitter_ms = 0
tokens_per_chunk = 2
source = "made up for a test"

[profiles.beta]
label = "Beta"
ttft_s = 0
tokens_per_s = 12.5
jitter_ms = 1.5
tokens_per_chunk = 1
source = "also made up"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_profiles_carry_the_published_figures() -> None:
    profiles = load_profiles()
    assert list(profiles)[:5] == ["fast", "quick", "medium", "slow", "laptop"]
    fast, slow = profiles["fast"], profiles["slow"]
    assert (fast.tokens_per_s, fast.ttft_s) == (969, 0.24)
    assert (slow.tokens_per_s, slow.ttft_s) == (80, 0.5)
    assert profiles["medium"].tokens_per_s == 129
    assert profiles["quick"].tokens_per_s == 250
    assert 10 <= profiles["laptop"].tokens_per_s <= 20


def test_every_shipped_profile_cites_its_sources() -> None:
    profiles = load_profiles()
    assert "Tom's Hardware" in profiles["fast"].source
    assert "Artificial Analysis" in profiles["medium"].source
    assert "Artificial Analysis" in profiles["quick"].source
    assert "illustrative" in profiles["medium"].source  # its TTFT is not a published figure
    assert "estimate" in profiles["laptop"].source
    for profile in profiles.values():
        assert profile.label and profile.tokens_per_chunk >= 1


def test_default_path_is_the_shipped_file() -> None:
    assert DEFAULT_PATH.is_file()
    assert load_profiles(DEFAULT_PATH) == load_profiles()


def test_a_valid_file_loads_in_file_order(tmp_path: Path) -> None:
    profiles = load_profiles(write(tmp_path, VALID))
    assert list(profiles) == ["alpha", "beta"]
    assert profiles["beta"] == Profile("beta", "Beta", 0.0, 12.5, 1.5, 1, "also made up")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("tokens_per_s = 100\n", "tokens_per_s = -3\n", "'alpha': key 'tokens_per_s'"),
        ("tokens_per_s = 100\n", 'tokens_per_s = "fast"\n', "'alpha': key 'tokens_per_s'"),
        ("tokens_per_chunk = 2\n", "tokens_per_chunk = 1.5\n", "'alpha': key 'tokens_per_chunk'"),
        ("tokens_per_chunk = 2\n", "tokens_per_chunk = true\n", "'alpha': key 'tokens_per_chunk'"),
        ("jitter_ms = 1.5\n", "jitter_ms = -1\n", "'beta': key 'jitter_ms'"),
        ('label = "Beta"\n', 'label = ""\n', "'beta': key 'label'"),
        ('label = "Beta"\n', "", "'beta': missing key 'label'"),
        ("ttft_s = 0.1\n", "ttft_s = 0.1\nspeed = 3\n", "'alpha': unknown key(s) speed"),
        ("[profiles.beta]", "[profiles.Beta]", "'Beta' must be lower-case"),
    ],
)
def test_errors_name_the_profile_and_the_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ProfileError) as caught:
        load_profiles(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"\[profiles.NAME\]"):
        load_profiles(write(tmp_path, "# nothing here\n"))


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_profiles(write(tmp_path, "[profiles.alpha\n"))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profiles(tmp_path / "absent.toml")
