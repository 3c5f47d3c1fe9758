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

A course model that is a plain ``nn.Module`` saves with :func:`save_state` (``model.safetensors``
+ ``config.json`` + any extra JSON records) and reads back with :func:`load_state`; one built
on a transformers class saves with ``save_pretrained`` and records its training with
:func:`write_json`.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import warnings
from typing import Callable, TypeVar

from ...env import cache_dir
from ...integrity import file_entry, is_file_entry, sha256_file

T = TypeVar("T")
MANIFEST = "MANIFEST.json"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def config_digest(config) -> str:
    """10 hex digits of SHA-256 over a dataclass config's fields (sorted JSON): names a recipe's cache folder."""
    import hashlib
    from dataclasses import asdict

    return hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:10]


def write_json(folder: pathlib.Path, filename: str, data: dict, indent: int | None = None) -> None:
    """One JSON record of a checkpoint (its config, its training history)."""
    (pathlib.Path(folder) / filename).write_text(json.dumps(data, indent=indent))


def save_state(folder: pathlib.Path, module, config: dict, **records: dict) -> None:
    """``module``'s weights as ``model.safetensors``, ``config`` as ``config.json``, and each
    ``records`` entry as ``<key>.json`` (e.g. ``history={"losses": ...}``)."""
    from safetensors.torch import save_file

    folder = pathlib.Path(folder)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / WEIGHTS))
    write_json(folder, CONFIG, config, indent=1)
    for key, data in records.items():
        write_json(folder, f"{key}.json", data)


def load_state(folder: pathlib.Path) -> tuple[dict, dict]:
    """``(config, state_dict)`` of a folder written by :func:`save_state`."""
    from safetensors.torch import load_file

    folder = pathlib.Path(folder)
    return json.loads((folder / CONFIG).read_text()), load_file(str(folder / WEIGHTS))


def checkpoint_dir(name: str, version: str) -> pathlib.Path:
    """Folder of a course checkpoint (it may not exist yet)."""
    return cache_dir() / "checkpoints" / f"{name.replace('/', '--')}-{version}"


def _files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: pathlib.Path) -> None:
    entries = {p.relative_to(folder).as_posix(): file_entry(p) for p in _files(folder)}
    if not entries:
        raise RuntimeError(f"checkpoint build wrote no files into {folder}")
    (folder / MANIFEST).write_text(json.dumps(entries, indent=1, sort_keys=True))


def _manifest_entries(folder: pathlib.Path) -> dict | None:
    """The manifest's ``{relative path: {"bytes", "sha256"}}`` if it is well formed, else ``None``.

    Well formed: a non-empty JSON object naming exactly the files in the folder, each by a
    relative path that stays inside it, with an integer size and a 64-digit hex SHA-256.
    Anything else (a list, ``{}``, a missing ``bytes``, ``../../x``) counts as corrupt.
    """
    try:
        entries = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entries, dict) or not entries:
        return None
    root = folder.resolve()
    for rel, meta in entries.items():
        parts = pathlib.PurePosixPath(rel).parts
        if (not rel or pathlib.PurePath(rel).is_absolute() or ".." in parts or "\\" in rel
                or not (folder / rel).resolve().is_relative_to(root)):
            return None
        if not is_file_entry(meta):
            return None
    if set(entries) != {str(p.relative_to(folder).as_posix()) for p in _files(folder)}:
        return None  # a file missing, or one the build did not write
    return entries


def is_complete(folder: pathlib.Path) -> bool:
    """True when the manifest is well formed and every file it lists has the recorded size and hash."""
    if not (folder / MANIFEST).is_file():
        return False
    entries = _manifest_entries(folder)
    if entries is None:
        return False
    for rel, meta in entries.items():
        path = folder / rel
        if not path.is_file() or path.stat().st_size != meta["bytes"] or sha256_file(path) != meta["sha256"]:
            return False
    return True


def _remove_stale_builds(folder: pathlib.Path) -> None:
    """Delete temporary build folders of ``folder`` left by killed builds (call with the lock held:
    a build only runs under the lock, so any such folder seen then is no one's)."""
    for stale in folder.parent.glob(f".{folder.name}.tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


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
        _remove_stale_builds(folder)
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            write_manifest(tmp)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _is_format_error(err: BaseException) -> bool:
    """Errors that mean "these files are not a loadable checkpoint" (so rebuilding can fix them)."""
    if isinstance(err, (OSError, ValueError, KeyError, EOFError)):  # missing file, bad JSON, bad config
        return True
    if type(err).__name__ == "SafetensorError":
        return True
    return isinstance(err, RuntimeError) and "state_dict" in str(err)  # size or key mismatch


def load_course_checkpoint(name: str, version: str, build: Callable[[pathlib.Path], None],
                           load: Callable[[pathlib.Path], T], device=None) -> T:
    """Build if missing or corrupt, then ``load(folder)``.

    ``device`` (if given) is checked first, so a typo fails at once instead of after a
    rebuild. A verified folder that still fails to load with a *format* error (missing or
    unreadable file, bad JSON, wrong tensor shapes) is rebuilt once; any other error (a
    device problem, out of memory, a bug) is raised as it is, without retraining.
    """
    if device is not None:
        from ...env import resolve_device

        resolve_device(device)
    folder = ensure_checkpoint(name, version, build)
    try:
        return load(folder)
    except Exception as err:
        if not _is_format_error(err):
            raise
        warnings.warn(f"cached checkpoint {name!r} failed to load ({err!r}); retraining it", stacklevel=2)
        return load(ensure_checkpoint(name, version, build, rebuild=True))
