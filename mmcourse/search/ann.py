"""Index choice: recall against latency for flat, IVF and HNSW on a synthetic corpus.

Real embedding corpora are clustered (many near-duplicates of a few topics), which is
what makes approximate search work; :func:`clustered_vectors` draws such a corpus so the
trade-off can be measured at 100k–1M vectors without embedding a million documents.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["clustered_vectors", "exact_top_k", "single_threaded_faiss", "AnnResult", "ann_sweep", "DEFAULT_SWEEP"]

# index type -> (parameter swept at search time, values)
DEFAULT_SWEEP: dict[str, tuple[str, tuple[int, ...]]] = {
    "flat": ("-", (0,)),
    "ivf": ("nprobe", (1, 2, 4, 8, 16, 32)),
    "hnsw": ("ef_search", (8, 16, 32, 64, 128)),
}


def clustered_vectors(n: int, dim: int, n_clusters: int = 2000, n_topics: int = 50, spread: float = 1.0,
                      seed: int = 0) -> np.ndarray:
    """``(n, dim)`` float32 unit vectors drawn from a two-level mixture.

    ``n_topics`` random topic directions; ``n_clusters`` cluster centres scattered around
    them; each vector is a centre plus noise. ``spread`` scales both noise levels
    relative to the signal, so neighbours span nearby clusters of the same topic, as
    they do in real embedding corpora. The same ``seed`` gives the same mixture, so
    ``clustered_vectors(n + q, ...)[n:]`` are fresh queries from the corpus distribution.
    """
    rng = np.random.default_rng(seed)
    scale = spread / np.sqrt(dim)  # noise of norm ~spread per level, topics of norm ~1
    topics = rng.standard_normal((n_topics, dim)).astype(np.float32) / np.sqrt(dim)  # (T, dim)
    centres = topics[rng.integers(0, n_topics, n_clusters)]  # (C, dim)
    centres = centres + scale * rng.standard_normal((n_clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, n_clusters, n)]  # (n, dim)
    x += scale * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    """``(Q, k)`` row numbers of the exact top-k inner products (the ground truth for recall)."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        sims = queries @ vectors[start:start + chunk].T  # (Q, chunk)
        s = np.concatenate([best_s, sims], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + sims.shape[1]), sims.shape)], axis=1)
        top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)


@contextlib.contextmanager
def single_threaded_faiss():
    """Run FAISS on one thread inside the block (single-query latency: a server parallelises across
    queries, and OpenMP's thread hand-offs cost more than one small query on a busy machine)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


@dataclass
class AnnResult:
    index_type: str  # "flat", "ivf" or "hnsw"
    parameter: str  # the search-time knob swept ("nprobe", "ef_search", "-")
    value: int  # its value
    recall: float  # recall@k against exact search
    ms_per_query: float  # median single-query latency through MultimodalIndex.search_vectors
    build_s: float  # seconds to build (train + add) the index


def ann_sweep(vectors: np.ndarray, queries: np.ndarray, k: int = 10, sweep: dict | None = None,
              config_overrides: dict | None = None, timed_queries: int = 50, progress: bool = True) -> list[AnnResult]:
    """Build each index type once over ``vectors``, sweep its search knob, measure recall@k and latency."""
    from tqdm.auto import tqdm

    from .index import IndexConfig, MultimodalIndex

    sweep = DEFAULT_SWEEP if sweep is None else sweep
    truth = exact_top_k(vectors, queries, k)  # (Q, k)
    ids = np.arange(len(vectors))
    results = []
    steps = sum(len(values) for _, values in sweep.values())
    bar = tqdm(total=steps, desc="index sweep", disable=not progress)
    for index_type, (parameter, values) in sweep.items():
        config = IndexConfig(index_type=index_type, **(config_overrides or {}).get(index_type, {}))
        start = time.perf_counter()
        index = MultimodalIndex(text_model=object(), config=config)
        index.add_vectors(ids.tolist(), text=vectors)
        build_s = time.perf_counter() - start
        for value in values:
            if parameter != "-":
                index.set_search_params(**{parameter: value})
            found, times = [], []
            with single_threaded_faiss():
                for j, q in enumerate(queries):
                    t0 = time.perf_counter()
                    hits = index.search_vectors({"text": q}, k=k, weights=1.0, candidates=k)
                    if j < timed_queries:
                        times.append(time.perf_counter() - t0)
                    found.append([h.id for h in hits])
            recall = float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth.tolist())]))
            results.append(AnnResult(index_type, parameter, value, recall, 1000 * float(np.median(times)), build_s))
            bar.update()
    bar.close()
    return results
