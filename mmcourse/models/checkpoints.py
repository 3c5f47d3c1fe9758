"""Course checkpoints: trained on first use, saved under ``cache_dir()``, verified on load.

Every course model (``course/clip-shapes``, ``course/clap-sounds``,
``course/colpali-pages``) goes through :func:`load_course_checkpoint`:

1. the checkpoint lives in ``cache_dir()/checkpoints/<name>-<version>/``;
2. it counts as present only if its ``MANIFEST.json`` (written last) lists every
   file with its size and SHA-256 and they all match — so a half-written or
   corrupt folder is detected and rebuilt rather than loaded;
3. a build writes into a temporary folder and is moved into place atomically,
   under a file lock so two notebooks starting at once train it only once.

Bump a model's ``version`` whenever its architecture or training changes.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import warnings
from typing import Callable, TypeVar

from ..env import cache_dir

T = TypeVar("T")
MANIFEST = "MANIFEST.json"


def checkpoint_dir(name: str, version: str) -> pathlib.Path:
    """Folder of a course checkpoint (it may not exist yet)."""
    return cache_dir() / "checkpoints" / f"{name.replace('/', '--')}-{version}"


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: pathlib.Path) -> None:
    entries = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in _files(folder)}
    if not entries:
        raise RuntimeError(f"checkpoint build wrote no files into {folder}")
    (folder / MANIFEST).write_text(json.dumps(entries, indent=1, sort_keys=True))


def is_complete(folder: pathlib.Path) -> bool:
    """True when every file the manifest lists exists with the recorded size and hash."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    for rel, meta in entries.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != meta["bytes"] or _sha256(path) != meta["sha256"]:
            return False
    return True


@contextlib.contextmanager
def _lock(path: pathlib.Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no lock, builds are still atomic
            pass
        yield


def ensure_checkpoint(name: str, version: str, build: Callable[[pathlib.Path], None],
                      rebuild: bool = False) -> pathlib.Path:
    """Return the folder of a verified checkpoint, calling ``build(tmp_folder)`` if needed.

    ``build`` trains the model and saves everything needed to load it into the
    folder it is given (``save_pretrained`` and friends).
    """
    folder = checkpoint_dir(name, version)
    if not rebuild and is_complete(folder):
        return folder
    with _lock(folder.parent / f".{folder.name}.lock"):
        if not rebuild and is_complete(folder):  # another process built it meanwhile
            return folder
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            write_manifest(tmp)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_course_checkpoint(name: str, version: str, build: Callable[[pathlib.Path], None],
                           load: Callable[[pathlib.Path], T]) -> T:
    """Build if missing or corrupt, then ``load(folder)``; a folder that fails to load is rebuilt once."""
    folder = ensure_checkpoint(name, version, build)
    try:
        return load(folder)
    except Exception as err:  # verified files that still fail to load: rebuild once
        warnings.warn(f"cached checkpoint {name!r} failed to load ({err!r}); retraining it", stacklevel=2)
        return load(ensure_checkpoint(name, version, build, rebuild=True))
