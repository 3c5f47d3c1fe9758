"""Device, seeds, cache folder and the offline guard shared by every notebook."""
from __future__ import annotations

import os
import pathlib
import contextlib
import random
import socket
import sys
import threading

HUB_HOST = "huggingface.co"  # where transformers / open_clip fetch hub weights
_REACH_TIMEOUT_S = 3.0


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
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


def _hub_offline_flag() -> bool:
    return any(os.environ.get(v, "0").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = _REACH_TIMEOUT_S) -> bool:
    """Can we open a TCP connection to the hub? Answers within ``timeout`` seconds.

    DNS lookups can block far longer than a socket timeout, so the probe runs in a
    daemon thread and we stop waiting for it after ``timeout``.
    """
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection((HUB_HOST, 443), timeout=timeout):
                result.append(True)
        except Exception:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def is_offline() -> bool:
    """True when hub downloads are impossible (offline flag set, or the hub does not answer)."""
    return _hub_offline_flag() or not hub_reachable()


def _cached_snapshot(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None


def resolve_hub_weights(repo_id: str) -> str:
    """Return a local folder or a hub id that ``from_pretrained`` can load without hanging.

    - an existing local folder is returned as is;
    - a hub id already in the Hugging Face cache is returned as its cached folder;
    - otherwise the hub must answer within a few seconds, or we raise
      :class:`~mmcourse.errors.WeightsUnavailableError` saying how to get the weights.
    """
    from .errors import WeightsUnavailableError

    if os.path.isdir(os.path.expanduser(repo_id)):
        return os.path.expanduser(repo_id)
    cached = _cached_snapshot(repo_id)
    if cached:
        return cached
    if _hub_offline_flag() or not hub_reachable():
        raise WeightsUnavailableError(
            f"The weights for {repo_id!r} are not in the local Hugging Face cache and the hub "
            f"cannot be reached (offline). Either connect once and run "
            f"`huggingface-cli download {repo_id}` (or call mmcourse.load_model({repo_id!r}) online) "
            f"so the weights are cached, or use the offline course checkpoints: unset "
            f"MMCOURSE_PRETRAINED and call mmcourse.load_model('course/...') "
            f"(mmcourse.list_models() lists them)."
        )
    return repo_id
