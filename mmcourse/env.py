"""Device, seeds, thread settings and the cache folder shared by every notebook.

The offline guard (is the hub reachable, are the weights cached) is :mod:`mmcourse.models.hub.access`.
"""
from __future__ import annotations

import os
import pathlib
import contextlib
import random
import sys

from .validate import positive_int



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


# Below these sizes a model runs on one torch thread on a CPU (see :func:`small_model_threads`).
ONE_THREAD_TRAINING_PARAMS = 5_000_000  # the in-notebook training loops: tiny towers, batches of tens
ONE_THREAD_INFERENCE_PARAMS = 50_000_000  # every course checkpoint and all-MiniLM-L6-v2 (22.7 M); hub models are larger


def small_model_threads(modules, device, max_params: int) -> int | None:
    """``1`` when ``modules`` (a module or several; shared ones counted once) run on a CPU and
    hold fewer than ``max_params`` parameters, else ``None`` (leave torch's setting).

    Small models gain little from a second intra-op thread, and on a busy machine (a workshop
    host running many kernels, a shared CI box) each parallel region waits for a core the
    thread does not get. Measured on 2 cores, all-MiniLM-L6-v2 embedding 57 batches of 8
    captions: 1.27 s on two threads and 1.48 s on one when idle; with one core held busy,
    3.6 s on two and 1.6 s on one.
    """
    import torch

    if torch.device(device).type != "cpu":
        return None
    if not isinstance(modules, (list, tuple)):
        modules = [modules]  # one model (or None, or a non-torch object: nothing to judge by)
    unique = {id(m): m for m in modules if isinstance(m, torch.nn.Module)}
    if not unique:
        return None  # nothing to judge by
    seen, params = set(), 0
    for m in unique.values():
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params += p.numel()
    return 1 if params < max_params else None


def inference_threads(modules, device):
    """The context a forward pass of ``modules`` on ``device`` runs in: one torch thread for a model
    under ``ONE_THREAD_INFERENCE_PARAMS`` on a CPU, else torch's own setting (see :func:`small_model_threads`)."""
    return torch_threads(small_model_threads(modules, device, ONE_THREAD_INFERENCE_PARAMS))


@contextlib.contextmanager
def thread_setting(get, set_, threads: int):
    """Set a library's thread count with ``set_(threads)`` inside the block, then restore ``get()``'s value."""
    positive_int(threads, "threads")
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
