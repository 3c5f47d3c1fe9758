"""Peak memory of a function call, measured by the operating system.

``peak_memory(fn)`` answers "how much more memory did the process hold, at its worst,
while ``fn`` ran?" It resets the kernel's resident-set high-water mark (Linux:
``/proc/self/clear_refs``), runs ``fn``, and reports ``VmHWM - VmRSS(before)``. This
counts everything the process really touched — tensors, autograd's saved buffers,
temporaries inside kernels, allocator slack — not an estimate from tensor shapes.
Memory freed back to the allocator but not to the OS is not counted twice, and
pages already resident may be reused, so small differences (a few MiB) are noise.
"""
from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import Callable

__all__ = ["PeakMemory", "peak_memory", "peak_memory_supported"]

_STATUS = pathlib.Path("/proc/self/status")
_CLEAR_REFS = pathlib.Path("/proc/self/clear_refs")


@dataclass
class PeakMemory:
    """Result of :func:`peak_memory` (bytes)."""

    peak_extra: int  # high-water resident memory during the call, minus the resident size before
    before: int  # resident memory before the call

    @property
    def mib(self) -> float:
        return self.peak_extra / 2**20


def _status_bytes(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{key} not found in {_STATUS}")
    return int(match.group(1)) * 1024


def peak_memory_supported() -> bool:
    """True where the resident high-water mark can be reset (Linux)."""
    try:
        _CLEAR_REFS.write_text("5")
        return _status_bytes("VmHWM") > 0
    except OSError:
        return False


def peak_memory(fn: Callable[[], object], repeats: int = 1) -> PeakMemory:
    """Run ``fn()`` ``repeats`` times and return the smallest peak extra resident memory.

    Raises ``OSError`` where the high-water mark cannot be reset (not Linux); check
    :func:`peak_memory_supported` first.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    best = None
    for _ in range(repeats):
        _CLEAR_REFS.write_text("5")  # reset VmHWM to the current VmRSS
        before = _status_bytes("VmRSS")
        fn()
        result = PeakMemory(max(0, _status_bytes("VmHWM") - before), before)
        best = result if best is None or result.peak_extra < best.peak_extra else best
    return best
