"""Hugging Face hub access for the loaders: what counts as cached, and can the hub be reached.

Two questions decide how a hub id is loaded (:func:`resolve_hub_weights`):

1. **Are its weights cached?** A cached snapshot folder is not enough: fetching a repo's
   ``config.json`` alone (which :func:`mmcourse.load_model` does to pick a backend) leaves a
   snapshot behind with no weights in it. A snapshot counts as cached only when it holds a
   weights file (``*.safetensors``, ``*.bin``, ``*.pt``, ``*.pth``), every shard of a sharded
   checkpoint included.
2. **Can the hub be reached?** The probe opens a TCP connection to where downloads would go:
   the hub, or the mirror named by ``HF_ENDPOINT``, or — when ``HTTPS_PROXY`` / ``https_proxy``
   (``HTTP_PROXY`` for an ``http://`` endpoint; ``ALL_PROXY`` otherwise) is set and ``NO_PROXY``
   does not exempt the host — the proxy. Users behind a proxy or a mirror are not told they are offline.

Neither answer can hang: the probe gives up after a few seconds.
"""
from __future__ import annotations

import json
import os
import pathlib
import socket
import threading
import urllib.parse
import urllib.request

__all__ = [
    "DEFAULT_ENDPOINT",
    "hub_endpoint",
    "probe_address",
    "hub_reachable",
    "hub_offline_flag",
    "is_offline",
    "has_weights",
    "cached_snapshot",
    "resolve_hub_weights",
]

DEFAULT_ENDPOINT = "https://huggingface.co"
REACH_TIMEOUT_S = 3.0
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_INDEX_SUFFIX = ".index.json"  # e.g. model.safetensors.index.json, lists the shards


def hub_offline_flag() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` asks for no network."""
    return any(os.environ.get(v, "0").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    """Where hub downloads go: ``HF_ENDPOINT`` (a mirror) if set, else the hub."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")


def _host_port(url: str, what: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        raise ValueError(f"{what}={url!r} has no host name; expected a URL such as http://host:port")
    default = 443 if parsed.scheme == "https" else 80
    try:
        port = parsed.port or default
    except ValueError:
        raise ValueError(f"{what}={url!r} has an invalid port; expected a URL such as http://host:port") from None
    return parsed.hostname, port


def probe_address() -> tuple[str, int]:
    """``(host, port)`` the reachability probe connects to: the proxy if one applies, else the endpoint."""
    endpoint = hub_endpoint()
    host, port = _host_port(endpoint, "HF_ENDPOINT")
    scheme = urllib.parse.urlsplit(endpoint).scheme or "https"
    proxies = urllib.request.getproxies_environment()  # HTTPS_PROXY / https_proxy / ..., lower case wins
    key = scheme if proxies.get(scheme) else "all"  # ALL_PROXY as the fallback, as HTTP clients do
    proxy = proxies.get(key)
    if proxy and not urllib.request.proxy_bypass_environment(host, proxies):
        return _host_port(proxy, f"{key.upper()}_PROXY")
    return host, port


def _where() -> str:
    try:
        host, port = probe_address()
    except ValueError as err:
        return str(err)
    via = "" if (host, port) == _host_port(hub_endpoint(), "HF_ENDPOINT") else " (the proxy)"
    return f"{host}:{port}{via}"


def hub_reachable(timeout: float = REACH_TIMEOUT_S) -> bool:
    """Can we open a TCP connection towards the hub (see :func:`probe_address`)? Answers within ``timeout`` s.

    DNS lookups can block far longer than a socket timeout, so the probe runs in a daemon
    thread and we stop waiting for it after ``timeout``.
    """
    try:
        address = probe_address()
    except ValueError:
        return False  # a malformed proxy or endpoint URL cannot be reached either
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection(address, timeout=timeout):
                result.append(True)
        except Exception:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def is_offline() -> bool:
    """True when hub downloads are impossible (offline flag set, or the hub does not answer)."""
    return hub_offline_flag() or not hub_reachable()


def has_weights(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a complete checkpoint: a weights file, and every shard its index lists."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        return False
    for index in folder.glob(f"*{_INDEX_SUFFIX}"):
        try:
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        except (OSError, ValueError):
            return False
        if not shards or not all((folder / shard).is_file() for shard in shards):
            return False
    return any(p.is_file() and p.name.endswith(WEIGHT_SUFFIXES) for p in folder.iterdir())


def cached_snapshot(repo_id: str) -> str | None:
    """The cached snapshot folder of ``repo_id`` when its weights are there, else ``None``."""
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None
    return folder if has_weights(folder) else None


def resolve_hub_weights(repo_id: str) -> str:
    """Return a local folder or a hub id that ``from_pretrained`` can load without hanging.

    - an existing local folder is returned as is;
    - a hub id whose weights are in the Hugging Face cache is returned as its cached folder;
    - otherwise the hub must answer within a few seconds, or we raise
      :class:`~mmcourse.errors.WeightsUnavailableError` saying how to get the weights.
    """
    from ...errors import WeightsUnavailableError

    if os.path.isdir(os.path.expanduser(repo_id)):
        return os.path.expanduser(repo_id)
    cached = cached_snapshot(repo_id)
    if cached:
        return cached
    if hub_offline_flag() or not hub_reachable():
        why = "HF_HUB_OFFLINE is set" if hub_offline_flag() else f"no answer from {_where()}"
        raise WeightsUnavailableError(
            f"The weights for {repo_id!r} are not in the local Hugging Face cache and the hub "
            f"cannot be reached (offline: {why}). Either connect once and run "
            f"`huggingface-cli download {repo_id}` (or call mmcourse.load_model({repo_id!r}) online) "
            f"so the weights are cached, or use the offline course checkpoints: unset "
            f"MMCOURSE_PRETRAINED and call mmcourse.load_model('course/...') "
            f"(mmcourse.list_models() lists them)."
        )
    return repo_id
