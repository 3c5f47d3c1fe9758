"""The one timing helper every benchmark uses."""
import time


def best_of(fn, repeats: int = 3) -> float:
    """Fastest of ``repeats`` wall-clock runs of ``fn()``, in seconds (the least disturbed by other work)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
