"""Peak memory of a function call, measured by the operating system.

``peak_memory(fn)`` answers "how much more memory did the process hold, at its worst,
while ``fn`` ran?" It resets the kernel's resident-set high-water mark (Linux:
``/proc/self/clear_refs``), runs ``fn``, and reports ``VmHWM - VmRSS(before)``. This
counts everything the process really touched — tensors, autograd's saved buffers,
temporaries inside kernels, allocator slack — not an estimate from tensor shapes.

One trap: memory an earlier cell freed stays resident inside the C allocator, and a
measured call that reuses it never raises the high-water mark (a chunked loss can
then read "0 MiB"). So while it measures, glibc is told to give every block over
64 KiB its own fresh pages and to return freed memory at once; afterwards it gets
settings close to its usual steady state back. Differences of a few MiB are noise.
"""
from __future__ import annotations

import contextlib
import ctypes
import pathlib
import re
from dataclasses import dataclass
from typing import Callable

__all__ = ["PeakMemory", "fresh_pages", "peak_memory", "peak_memory_supported"]

_STATUS = pathlib.Path("/proc/self/status")
_CLEAR_REFS = pathlib.Path("/proc/self/clear_refs")


@dataclass
class PeakMemory:
    """Result of :func:`peak_memory` (bytes)."""

    peak_extra: int  # high-water resident memory during the call, minus the resident size before
    before: int  # resident memory before the call
    result: object = None  # what the (last) call returned

    @property
    def mib(self) -> float:
        return self.peak_extra / 2**20


def _status_bytes(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{key} not found in {_STATUS}")
    return int(match.group(1)) * 1024


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def fresh_pages():
    """Within the block, freed memory goes back to the OS and large blocks get new pages (glibc only).

    Without it, a measured call may silently reuse pages that earlier work freed into the
    allocator, and its peak reads too low."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.malloc_trim(0)  # hand what is already free back to the OS
    libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)  # every block over 64 KiB: its own pages, unmapped on free
    libc.mallopt(_M_TRIM_THRESHOLD, 0)  # trim the heap top at every free
    try:
        yield
    finally:  # glibc's usual steady state once its dynamic threshold has grown
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 * 2**20)


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
    with fresh_pages():
        for _ in range(repeats):
            _CLEAR_REFS.write_text("5")  # reset VmHWM to the current VmRSS
            before = _status_bytes("VmRSS")
            out = fn()
            result = PeakMemory(max(0, _status_bytes("VmHWM") - before), before, out)
            best = result if best is None or result.peak_extra < best.peak_extra else best
    return best
