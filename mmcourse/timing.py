"""Wall-clock timing for the notebooks' measurements and for ``make bench``: one helper, one rule."""
from __future__ import annotations

import time
from typing import Callable

from .validate import positive_int

__all__ = ["best_of"]


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of ``repeats`` wall-clock runs of ``fn()``, in seconds.

    The minimum, not the mean: other programs only ever add time, so the fastest run is the
    one they disturbed least (on a shared machine the mean measures the neighbours).
    """
    repeats = positive_int(repeats, "repeats")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
