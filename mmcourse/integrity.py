"""File integrity: SHA-256 of a file and the ``{"bytes", "sha256"}`` entry that records it.

Course checkpoints (:mod:`mmcourse.models.course.checkpoints`) and saved search indexes
(:mod:`mmcourse.search.index`) list every file they wrote with one such entry and refuse a
folder whose files no longer match.
"""
from __future__ import annotations

import hashlib
import os

__all__ = ["sha256_file", "sha256_bytes", "file_entry", "is_file_entry"]

_HEX = frozenset("0123456789abcdef")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: str | os.PathLike) -> dict:
    """``{"bytes": size, "sha256": hex digest}`` of a file."""
    return {"bytes": os.stat(path).st_size, "sha256": sha256_file(path)}


def is_file_entry(entry) -> bool:
    """True when ``entry`` is exactly ``{"bytes": int >= 0, "sha256": 64 lower-case hex digits}``."""
    return (isinstance(entry, dict) and set(entry) == {"bytes", "sha256"}
            and isinstance(entry["bytes"], int) and not isinstance(entry["bytes"], bool) and entry["bytes"] >= 0
            and isinstance(entry["sha256"], str) and len(entry["sha256"]) == 64 and set(entry["sha256"]) <= _HEX)
