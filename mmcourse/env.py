"""Device, seeds, thread settings and the cache folder shared by every notebook.

The offline guard (is the hub reachable, are the weights cached) is :mod:`mmcourse.models.hub.access`.
"""
from __future__ import annotations

import os
import pathlib
import contextlib
import random
import sys



def get_device(prefer: str | None = None) -> str:
    """Best available device: ``prefer`` or ``MMCOURSE_DEVICE`` if set (checked by
    :func:`resolve_device`), else cuda > mps > cpu."""
    import torch

    choice = prefer or os.environ.get("MMCOURSE_DEVICE")
    if choice:
        return resolve_device(choice, what="MMCOURSE_DEVICE" if not prefer else "device")
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


_DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device=None, what: str = "device") -> str:
    """A device this machine has, as a string; ``None`` picks :func:`get_device`.

    Checks the string before anything expensive runs (a course checkpoint is trained
    only after this): ``"cpu"``, ``"cuda"``, ``"cuda:N"`` with N < the number of GPUs,
    ``"mps"`` where Apple's backend is available. Raises ``ValueError`` saying what to pass.
    """
    import torch

    if device is None:
        return get_device()
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"{what} must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    try:
        parsed = torch.device(device.strip())
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{what}={device!r} is not a device; use one of {list(_DEVICE_TYPES)} (cuda:N allowed)") from err
    if parsed.type not in _DEVICE_TYPES:
        raise ValueError(f"{what}={device!r} is not a device; use one of {list(_DEVICE_TYPES)} (cuda:N allowed)")
    if parsed.type == "cpu" and parsed.index not in (None, 0):
        raise ValueError(f"{what}={device!r}: there is one CPU device; use 'cpu'")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{what}={device!r} but this machine has no CUDA GPU; use 'cpu'")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"{what}={device!r} but this machine has {count} CUDA GPU(s): cuda:0 to cuda:{count - 1}")
    if parsed.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                     and torch.backends.mps.is_available()):
        raise ValueError(f"{what}={device!r} but Apple's MPS backend is not available here; use 'cpu'")
    return str(parsed)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``threads`` torch intra-op CPU threads (``None``: leave as is), then restore.

    Small models gain nothing from more than one thread, and on a busy machine (a workshop
    host running many kernels, a shared CI box) extra threads spin-wait for cores they do
    not get. Two trials of notebook 02's batch-size sweep on a shared 2-core machine: 13 s
    on one thread, 42 s on two; with one more core held busy, 31 s against 339 s.
    """
    import torch

    if threads is None:
        yield
        return
    with thread_setting(torch.get_num_threads, torch.set_num_threads, threads):
        yield


@contextlib.contextmanager
def thread_setting(get, set_, threads: int):
    """Set a library's thread count with ``set_(threads)`` inside the block, then restore ``get()``'s value."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    before = get()
    set_(threads)
    try:
        yield
    finally:
        set_(before)


def set_seed(seed: int = 0) -> None:
    """Seed python's, numpy's and torch's generators (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cache_dir() -> pathlib.Path:
    """Where course checkpoints live: ``MMCOURSE_CACHE``, else the platform cache folder."""
    env = os.environ.get("MMCOURSE_CACHE")
    if env:
        path = pathlib.Path(env).expanduser()
    elif sys.platform == "darwin":
        path = pathlib.Path.home() / "Library" / "Caches" / "mmcourse"
    elif sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or pathlib.Path.home() / "AppData" / "Local"
        path = pathlib.Path(base) / "mmcourse" / "Cache"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
        path = pathlib.Path(base) / "mmcourse"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pretrained_enabled() -> bool:
    """True when the learner asked for hub checkpoints (``MMCOURSE_PRETRAINED=1``)."""
    return os.environ.get("MMCOURSE_PRETRAINED", "0").strip().lower() in {"1", "true", "yes", "on"}
