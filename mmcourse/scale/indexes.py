"""Index choice: FAISS flat, IVF, HNSW and IVF-PQ measured on the same vectors, one way.

This is the course's one index-choice benchmark; notebooks 07 and 08 and ``make bench``
all call it with the same settings, so they quote the same figures. Every row answers
the questions a production system asks: how long does the index take to build, how many
bytes does it hold per vector, how many of the exact top-10 does it return (recall@10
against the flat index), and how long does one query take.

**How queries are timed** (:data:`THREADS`, :data:`BATCH`): FAISS on one thread, one
query per ``search`` call, the median over the timed queries. That is the latency a
user waits for; a server answers many users by running such searches side by side
(and FAISS's own batching and threads raise throughput further; see
``compare_indexes(..., batch=...)``). ``qps`` is ``1000 / ms_per_query`` at those settings.

- :func:`synthetic_embeddings` — clustered unit vectors, like real embeddings;
- :func:`default_specs` — the four index families with settings sized for ``n``;
- :func:`compare_indexes` — build each once, optionally sweep its search knob, measure;
- :func:`flat_ms_per_query` / :func:`flat_size_within_budget` — where exact search stops
  fitting a latency budget (measured at a few sizes, extrapolated linearly);
- :func:`format_table`, :func:`shard_plan` (the plot is :func:`mmcourse.viz.plot_recall_latency`).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..validate import positive_int

__all__ = [
    "THREADS", "BATCH", "IndexSpec", "IndexResult", "single_threaded_faiss", "faiss_threads",
    "synthetic_embeddings", "default_specs", "build_index", "recall_at_k_vs_exact", "time_search",
    "benchmark_index", "compare_indexes", "flat_ms_per_query", "flat_size_within_budget", "format_table",
    "shard_plan",
]

THREADS = 1  # FAISS threads while building and searching
BATCH = 1  # queries per search call while timing: single-query latency


@contextlib.contextmanager
def faiss_threads(threads: int = THREADS):
    """Run FAISS on ``threads`` OpenMP threads inside the block, then restore the previous setting."""
    import faiss

    from ..env import thread_setting

    positive_int(threads, "threads")
    with thread_setting(faiss.omp_get_max_threads, faiss.omp_set_num_threads, threads):
        yield


def single_threaded_faiss():
    """FAISS on one thread inside the block (OpenMP hand-offs cost more than one small query on a busy machine)."""
    return faiss_threads(1)


@dataclass
class IndexSpec:
    """One FAISS index to try: a factory string plus its search-time knob."""

    name: str  # label in the table, e.g. "IVF-PQ"
    factory: str  # faiss.index_factory string, e.g. "IVF256,PQ16"
    search_params: str = ""  # faiss.ParameterSpace string, e.g. "nprobe=8" or "efSearch=64"
    train_size: int | None = None  # vectors used to train (k-means / PQ codebooks); None = all
    note: str = ""  # why these settings


@dataclass
class IndexResult:
    """What :func:`benchmark_index` measured for one index at one search setting."""

    name: str
    factory: str
    search_params: str
    build_s: float  # train + add, seconds, on ``threads`` FAISS threads
    bytes_per_vector: float  # serialised index size / number of vectors
    recall_at_10: float  # mean |top-10 ∩ exact top-10| / 10
    ms_per_query: float  # median time of one search call / queries per call
    threads: int = THREADS
    batch: int = BATCH
    extra: dict = field(default_factory=dict)

    @property
    def qps(self) -> float:
        """Queries per second at this batch and thread count (``1000 / ms_per_query``)."""
        return 1000.0 / self.ms_per_query


def synthetic_embeddings(n: int, dim: int = 64, *, n_queries: int = 1000, clusters: int = 1000,
                         spread: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(database (n, dim), queries (n_queries, dim))``: L2-normalised float32 vectors.

    Real embeddings are clustered (topics, classes), so the vectors are a mixture of
    ``clusters`` Gaussian blobs whose width is ``spread`` times the spacing of their
    centres; queries come from the same mixture. Uniform random vectors would be the
    worst case for every approximate index, and unlike anything a model produces.
    """
    for name, value in (("n", n), ("dim", dim), ("n_queries", n_queries), ("clusters", clusters)):
        positive_int(value, name)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)  # (C, D), norm ≈ √D
    which = rng.integers(clusters, size=n + n_queries)  # (N + Q,)
    noise = rng.standard_normal((n + n_queries, dim), dtype=np.float32) * np.float32(spread)
    x = centres[which] + noise  # (N + Q, D)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(x[n:])


def default_specs(n: int) -> list[IndexSpec]:
    """Flat, IVF, HNSW and IVF-PQ with settings sized for ``n`` vectors and a laptop build.

    - IVF: ``nlist ≈ √n`` lists (256 at 100k, 1024 at 1M; FAISS suggests 4–16·√n for
      the best speed, but k-means cost grows with nlist and a laptop pays it at build),
      ``nprobe = 8`` lists scanned per query.
    - HNSW: ``M = 16`` links per node (memory grows with M), ``efSearch = 64``.
    - IVF-PQ: same coarse lists, each vector stored as ``m = 16`` one-byte codes.
      IVF is trained on a sample of max(20k, 40·nlist) vectors, IVF-PQ on max(10k, 40·nlist):
      FAISS asks for ≥ 39 points per centroid (PQ: 256 centroids per sub-quantiser), and
      k-means on all 100k would dominate the build.
    """
    positive_int(n, "n")
    nlist = 1 << max(4, round(math.log2(math.sqrt(n))))  # power of two near √n
    train, train_pq = min(n, max(40 * nlist, 20_000)), min(n, max(40 * nlist, 10_000))
    return [
        IndexSpec("Flat", "Flat", "", note="exact; the ground truth"),
        IndexSpec("IVF", f"IVF{nlist},Flat", "nprobe=8", train, note=f"{nlist} lists ≈ √n, scan 8"),
        IndexSpec("HNSW", "HNSW16", "efSearch=64", note="graph, M=16, no training"),
        IndexSpec("IVF-PQ", f"IVF{nlist},PQ16", "nprobe=8", train_pq, note="16 bytes of codes per vector"),
    ]


def build_index(spec: IndexSpec, database: np.ndarray):
    """Train (if needed) and fill a FAISS inner-product index; returns ``(index, seconds)``."""
    import faiss

    database = _as_float32(database, "database")
    start = time.perf_counter()
    index = faiss.index_factory(database.shape[1], spec.factory, faiss.METRIC_INNER_PRODUCT)
    inner = faiss.downcast_index(index)  # e.g. IndexIVFPQ (``index`` keeps it alive)
    if getattr(inner, "do_polysemous_training", False):
        # FAISS trains IVF-PQ codes for Hamming pre-filtering by default (an annealing that
        # costs far more than the k-means); plain IVF-PQ search does not use it.
        inner.do_polysemous_training = False
    if not index.is_trained:
        if spec.train_size and spec.train_size < len(database):
            rng = np.random.default_rng(0)
            sample = database[np.sort(rng.choice(len(database), spec.train_size, replace=False))]
        else:
            sample = database
        index.train(sample)
    index.add(database)
    seconds = time.perf_counter() - start
    if spec.search_params:
        faiss.ParameterSpace().set_index_parameters(index, spec.search_params)
    return index, seconds


def recall_at_k_vs_exact(found: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean fraction of the exact top-``k`` ids that the approximate search returned
    (:func:`mmcourse.retrieval.metrics.recall_at_k_ids` per query: the exact top-``k`` are the relevant ids)."""
    from mmcourse.retrieval.metrics import recall_at_k_ids

    found, exact = np.asarray(found), np.asarray(exact)
    if found.ndim != 2 or exact.ndim != 2 or found.shape[0] != exact.shape[0]:
        raise ValueError(f"found and exact must be (Q, k) id arrays for the same queries, "
                         f"got shapes {found.shape} and {exact.shape}")
    positive_int(k, "k")
    if found.shape[1] < k or exact.shape[1] < k:
        raise ValueError(f"need at least k={k} ids per query, got {found.shape[1]} found and {exact.shape[1]} exact")
    return float(np.mean([recall_at_k_ids(f[:k].tolist(), set(e[:k].tolist()), k) for f, e in zip(found, exact)]))


def time_search(index, queries: np.ndarray, k: int = 10, batch: int = BATCH, timed: int | None = None
                ) -> tuple[np.ndarray, float]:
    """Search every query in calls of ``batch``; returns ``(ids (Q, k), median ms per query)``.

    ``timed`` limits how many calls are timed (all by default); every query is searched, so the
    ids serve the recall. One warm-up call first (allocations, lazy tables).
    """
    positive_int(batch, "batch")
    queries = _as_float32(queries, "queries")
    index.search(queries[:batch], k)  # warm-up
    ids, times = [], []
    for j, start in enumerate(range(0, len(queries), batch)):
        chunk = queries[start:start + batch]  # (batch, D)
        t0 = time.perf_counter()
        _, found = index.search(chunk, k)  # (batch, k)
        if timed is None or j < timed:
            times.append((time.perf_counter() - t0) / len(chunk))
        ids.append(found)
    return np.concatenate(ids), 1000.0 * float(np.median(times))


def benchmark_index(spec: IndexSpec, database: np.ndarray, queries: np.ndarray,
                    exact_ids: np.ndarray | None = None, k: int = 10, threads: int = THREADS,
                    batch: int = BATCH, sweep: list[str] | tuple[str, ...] = ()) -> list[tuple[IndexResult, np.ndarray]]:
    """Build ``spec`` once and search ``queries`` at its setting and every setting in ``sweep``.

    Returns ``[(result, ids (Q, k)), ...]``, one per setting. ``exact_ids`` are the flat
    index's ids for the recall; ``None`` means this index is the reference.
    """
    import faiss

    queries = _as_float32(queries, "queries")
    settings = [spec.search_params] + [s for s in sweep if s != spec.search_params]
    out = []
    with faiss_threads(threads):
        index, build_s = build_index(spec, database)
        size = len(faiss.serialize_index(index)) / index.ntotal
        for setting in settings:
            if setting:
                faiss.ParameterSpace().set_index_parameters(index, setting)
            ids, ms = time_search(index, queries, k, batch)
            recall = recall_at_k_vs_exact(ids, exact_ids if exact_ids is not None else ids, k)
            out.append((IndexResult(spec.name, spec.factory, setting, build_s, size, recall, ms, threads, batch), ids))
    return out


def compare_indexes(database: np.ndarray, queries: np.ndarray, specs: list[IndexSpec] | None = None,
                    k: int = 10, threads: int = THREADS, batch: int = BATCH, sweep: dict | None = None,
                    progress: bool = True) -> list[IndexResult]:
    """Benchmark every spec (the first must be exact: ``"Flat"``) against the first one's ids.

    ``sweep``: ``{spec name: ["nprobe=1", "nprobe=2", ...]}`` — extra search settings measured on
    the same built index (the recall/latency curve), after the spec's own setting.
    """
    specs = specs or default_specs(len(database))
    if specs[0].factory != "Flat":
        raise ValueError(f"the first spec must be the exact 'Flat' index (the reference), got {specs[0].factory!r}")
    unknown = sorted(set(sweep or {}) - {s.name for s in specs})
    if unknown:
        raise ValueError(f"sweep names unknown index(es) {unknown}; expected some of {[s.name for s in specs]}")
    from tqdm.auto import tqdm

    results, exact = [], None
    for spec in tqdm(specs, desc="indexes", disable=not progress, leave=False):
        for result, ids in benchmark_index(spec, database, queries, exact, k, threads, batch,
                                           (sweep or {}).get(spec.name, ())):
            if exact is None:
                exact = ids
            results.append(result)
    return results


def flat_ms_per_query(n: int, dim: int, n_queries: int = 200, threads: int = THREADS, batch: int = BATCH,
                      seed: int = 0) -> float:
    """Median ms per query of exact (flat) search over ``n`` synthetic ``dim``-d vectors."""
    import faiss

    database, queries = synthetic_embeddings(n, dim, n_queries=n_queries, seed=seed)
    with faiss_threads(threads):
        index = faiss.IndexFlatIP(dim)
        index.add(database)
        return time_search(index, queries, 10, batch)[1]


def flat_size_within_budget(sizes, ms_per_query, budget_ms: float) -> tuple[float, float, float]:
    """Largest corpus whose flat search fits ``budget_ms``, by a straight-line fit ``ms = a + b·n``.

    Flat search reads every vector once, so its time is linear in ``n``; the fit through the
    measured sizes is extrapolated (not measured) beyond them. Returns ``(n, a, b)``.
    """
    sizes, ms = np.asarray(sizes, dtype=float), np.asarray(ms_per_query, dtype=float)
    if sizes.ndim != 1 or sizes.shape != ms.shape or len(sizes) < 2:
        raise ValueError(f"need matching 1-D sizes and times, at least two of each; got {sizes.shape} and {ms.shape}")
    if not (budget_ms > 0):
        raise ValueError(f"budget_ms must be a positive number of milliseconds, got {budget_ms!r}")
    slope, intercept = np.polyfit(sizes, ms, 1)
    if slope <= 0:
        raise ValueError(f"flat search time did not grow with the corpus (slope {slope:.3g} ms per vector); "
                         "time more queries or larger sizes")
    return float((budget_ms - intercept) / slope), float(intercept), float(slope)


def format_table(results: list[IndexResult]) -> str:
    """A plain-text table of the results (pandas is not needed)."""
    header = (f"{'index':<7} {'factory':<12} {'search':<12} {'build s':>8} {'B/vector':>9} {'recall@10':>10} "
              f"{'ms/query':>9} {'QPS':>7}")
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<7} {r.factory:<12} {r.search_params or '-':<12} {r.build_s:>8.2f} "
                     f"{r.bytes_per_vector:>9.1f} {r.recall_at_10:>10.3f} {r.ms_per_query:>9.3f} {r.qps:>7.0f}")
    return "\n".join(lines)


def shard_plan(results: list[IndexResult], n_vectors: float, ram_per_machine_gb: float = 64.0,
               usable_fraction: float = 0.7) -> list[dict]:
    """On paper: RAM each index needs for ``n_vectors`` and the shards that implies.

    Uses the measured bytes per vector; ``usable_fraction`` of a machine's RAM holds
    index (the rest is the OS, the service, the query batch). Latency of a sharded index is
    set by the slowest shard: every query fans out to all shards and the results
    are merged (top-k of top-k's).
    """
    if n_vectors <= 0 or ram_per_machine_gb <= 0 or not 0 < usable_fraction <= 1:
        raise ValueError("n_vectors and ram_per_machine_gb must be positive, usable_fraction in (0, 1]")
    rows = []
    for r in dict((r.name, r) for r in results).values():
        total_gb = r.bytes_per_vector * n_vectors / 1e9
        shards = max(1, math.ceil(total_gb / (ram_per_machine_gb * usable_fraction)))
        rows.append({"index": r.name, "bytes_per_vector": r.bytes_per_vector,
                     "total_gb": total_gb, "machines": shards})
    return rows


def _as_float32(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, dim), got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)
