"""Index choice at scale: FAISS flat, IVF, HNSW and IVF-PQ measured on the same vectors.

Every row of the comparison answers four questions a production system asks:
how long does the index take to build, how many bytes does it hold per vector,
how many of the exact top-10 does it return (recall@10 against the flat index),
and how many queries per second does it answer. :func:`compare_indexes` measures
them; :func:`format_table` prints them; :func:`plot_recall_qps` draws the trade-off;
:func:`shard_plan` turns the bytes-per-vector column into machines at a larger scale.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "IndexSpec", "IndexResult", "synthetic_embeddings", "default_specs", "build_index",
    "recall_at_k_vs_exact", "benchmark_index", "compare_indexes", "format_table", "plot_recall_qps",
    "shard_plan",
]


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
    """What :func:`benchmark_index` measured for one index."""

    name: str
    factory: str
    search_params: str
    build_s: float  # train + add, seconds
    bytes_per_vector: float  # serialised index size / number of vectors
    recall_at_10: float  # mean |top-10 ∩ exact top-10| / 10
    qps: float  # queries per second, all queries in one batched search call
    extra: dict = field(default_factory=dict)


def synthetic_embeddings(n: int, dim: int = 64, *, n_queries: int = 1000, clusters: int = 1000,
                         spread: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(database (n, dim), queries (n_queries, dim))``: L2-normalised float32 vectors.

    Real embeddings are clustered (topics, classes), so the vectors are a mixture of
    ``clusters`` Gaussian blobs whose width is ``spread`` times the spacing of their
    centres; queries come from the same mixture. Uniform random vectors would be the
    worst case for every approximate index, and unlike anything a model produces.
    """
    for name, value in (("n", n), ("dim", dim), ("n_queries", n_queries), ("clusters", clusters)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)  # (C, D), norm ≈ √D
    which = rng.integers(clusters, size=n + n_queries)  # (N + Q,)
    noise = rng.standard_normal((n + n_queries, dim), dtype=np.float32) * np.float32(spread)
    x = centres[which] + noise  # (N + Q, D)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(x[n:])


def default_specs(n: int) -> list[IndexSpec]:
    """Flat, IVF, HNSW and IVF-PQ with settings sized for ``n`` vectors and a 2-core build.

    - IVF: ``nlist ≈ √n`` lists (256 at 100k, 1024 at 1M; FAISS suggests 4–16·√n for
      the best speed, but k-means cost grows with nlist and a laptop pays it at build),
      ``nprobe = 8`` lists scanned per query.
    - HNSW: ``M = 16`` links per node (memory grows with M), ``efSearch = 64``.
    - IVF-PQ: same coarse lists, each vector stored as ``m = 16`` one-byte codes, trained
      IVF trained on a sample of max(20k, 40·nlist) vectors, IVF-PQ on max(10k, 40·nlist):
      FAISS asks for ≥ 39 points per centroid (PQ: 256 centroids per sub-quantiser), and
      k-means on all 100k would dominate the build on two cores.
    """
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
    """Mean fraction of the exact top-``k`` ids that the approximate search returned."""
    if found.shape[0] != exact.shape[0]:
        raise ValueError(f"found has {found.shape[0]} queries but exact has {exact.shape[0]}")
    hits = [len(set(f[:k].tolist()) & set(e[:k].tolist())) for f, e in zip(found, exact)]
    return float(np.mean(hits)) / k


def benchmark_index(spec: IndexSpec, database: np.ndarray, queries: np.ndarray,
                    exact_ids: np.ndarray | None = None, k: int = 10) -> tuple[IndexResult, np.ndarray]:
    """Build ``spec`` on ``database``, search ``queries``; returns ``(result, ids (Q, k))``.

    ``exact_ids`` are the flat index's ids for the recall; ``None`` means this index is
    the reference (its recall is 1 by definition and is checked, not assumed, by callers).
    """
    import faiss

    queries = _as_float32(queries, "queries")
    index, build_s = build_index(spec, database)
    index.search(queries[:8], k)  # warm-up (allocations, lazy tables)
    start = time.perf_counter()
    _, ids = index.search(queries, k)  # (Q, k)
    search_s = time.perf_counter() - start
    size = len(faiss.serialize_index(index))
    recall = recall_at_k_vs_exact(ids, exact_ids if exact_ids is not None else ids, k)
    result = IndexResult(spec.name, spec.factory, spec.search_params, build_s, size / index.ntotal,
                         recall, len(queries) / search_s)
    return result, ids


def compare_indexes(database: np.ndarray, queries: np.ndarray, specs: list[IndexSpec] | None = None,
                    k: int = 10, progress: bool = True) -> list[IndexResult]:
    """Benchmark every spec (the first must be exact: ``"Flat"``) against the first one's ids."""
    specs = specs or default_specs(len(database))
    if specs[0].factory != "Flat":
        raise ValueError(f"the first spec must be the exact 'Flat' index (the reference), got {specs[0].factory!r}")
    from tqdm.auto import tqdm

    results, exact = [], None
    for spec in tqdm(specs, desc="indexes", disable=not progress, leave=False):
        result, ids = benchmark_index(spec, database, queries, exact, k)
        if exact is None:
            exact = ids
        results.append(result)
    return results


def format_table(results: list[IndexResult]) -> str:
    """A plain-text table of the results (pandas is not needed)."""
    header = f"{'index':<8} {'factory':<14} {'search':<12} {'build s':>8} {'B/vector':>9} {'recall@10':>10} {'QPS':>9}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.name:<8} {r.factory:<14} {r.search_params or '-':<12} {r.build_s:>8.2f} "
                     f"{r.bytes_per_vector:>9.1f} {r.recall_at_10:>10.3f} {r.qps:>9.0f}")
    return "\n".join(lines)


def plot_recall_qps(results: list[IndexResult], ax=None):
    """Recall@10 against queries per second (log scale), one labelled point per index."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    for r in results:
        ax.scatter(r.qps, r.recall_at_10, s=20 + r.bytes_per_vector / 4)
        ax.annotate(f"{r.name}\n{r.bytes_per_vector:.0f} B/vec", (r.qps, r.recall_at_10),
                    textcoords="offset points", xytext=(6, -4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("queries per second (batched, this machine)")
    ax.set_ylabel("recall@10 vs exact")
    ax.set_ylim(0, 1.05)
    ax.set_title("recall vs speed (marker size ∝ memory per vector)")
    return ax


def shard_plan(results: list[IndexResult], n_vectors: float, ram_per_machine_gb: float = 64.0,
               usable_fraction: float = 0.7) -> list[dict]:
    """On paper: RAM each index needs for ``n_vectors`` and the shards that implies.

    Uses the measured bytes per vector; ``usable_fraction`` of a machine's RAM holds
    index (the rest is the OS, the service, the query batch). QPS of a sharded index is
    bounded by the slowest shard: every query fans out to all shards and the results
    are merged (top-k of top-k's).
    """
    if n_vectors <= 0 or ram_per_machine_gb <= 0 or not 0 < usable_fraction <= 1:
        raise ValueError("n_vectors and ram_per_machine_gb must be positive, usable_fraction in (0, 1]")
    rows = []
    for r in results:
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
