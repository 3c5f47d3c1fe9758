"""Benchmarks for hybrid search (run with `make bench`).

1. ``MultimodalIndex.search_vectors`` against the raw FAISS calls it makes (one search per
   modality index), same process, same index objects, interleaved rounds: the id-aligned
   fusion, validation and result objects must cost ≤ 10 % at 100k vectors per modality.
2. The recall / latency curve of flat, IVF and HNSW: the course's one index-choice benchmark
   (:mod:`mmcourse.scale.indexes`) with notebook 07's settings (100k clustered 64-d vectors,
   1,000 queries, one FAISS thread, one query per call, the same search-knob sweep), so the
   README can quote an idle-machine run of what the notebook measures. Headline figures go to
   ``results/benchmarks.json`` through :func:`mmcourse.results.record_bench`.

FAISS runs single-threaded while timing (single-query latency; see ``single_threaded_faiss``).
"""
import os
import time

import numpy as np

from mmcourse.results import record_bench
from mmcourse.scale import indexes
from mmcourse.scale.indexes import single_threaded_faiss
from mmcourse.search import IndexConfig, MultimodalIndex

N = int(os.environ.get("BENCH_SEARCH_N", 100_000))
TEXT_DIM, IMAGE_DIM = 384, 512  # all-MiniLM-L6-v2, a ViT-B/32 CLIP
OVERHEAD_GOAL = 1.10
ROUNDS = 5  # timed passes over the 20 queries


def test_search_overhead_over_raw_faiss():
    text, text_queries = indexes.synthetic_embeddings(N, TEXT_DIM, n_queries=20, seed=1)
    image, image_queries = indexes.synthetic_embeddings(N, IMAGE_DIM, n_queries=20, seed=2)
    index = MultimodalIndex(text_model=object(), config=IndexConfig(index_type="flat"))
    index.add_vectors(list(range(N)), text=text, image=image)
    queries = list(zip(text_queries, image_queries))  # 20 (text, image) query pairs
    depth = index.config.candidates
    text_index, image_index = index.faiss_index("text"), index.faiss_index("image")

    def raw(qt, qi):
        text_index.search(qt[None], depth)
        image_index.search(qi[None], depth)

    def timed(fn, *args):
        t0 = time.perf_counter()
        fn(*args)
        return time.perf_counter() - t0

    # Paired, interleaved timings: each query runs raw then ours (or ours then raw, alternating),
    # so drift from other processes hits both sides of a pair alike; the median pair ratio is reported.
    with single_threaded_faiss():
        for qt, qi in queries[:3]:  # warm-up
            raw(qt, qi)
            index.search_vectors({"text": qt, "image": qi}, k=10)
        for fusion in ("weighted", "rrf"):
            pairs = []
            for round_ in range(ROUNDS):
                for j, (qt, qi) in enumerate(queries):
                    ours_first = (round_ + j) % 2 == 1
                    if ours_first:
                        t_ours = timed(index.search_vectors, {"text": qt, "image": qi}, 10, fusion)
                    t_raw = timed(raw, qt, qi)
                    if not ours_first:
                        t_ours = timed(index.search_vectors, {"text": qt, "image": qi}, 10, fusion)
                    pairs.append((t_raw, t_ours))
            pairs = np.asarray(pairs)  # (ROUNDS * Q, 2) seconds
            ratio = float(np.median(pairs[:, 1] / pairs[:, 0]))
            extra_us = 1e6 * float(np.median(pairs[:, 1] - pairs[:, 0]))
            print(f"\nsearch overhead, flat, {N} docs x (text {TEXT_DIM}-d + image {IMAGE_DIM}-d), fusion={fusion}: "
                  f"raw FAISS {1000 * np.median(pairs[:, 0]):.1f} ms/query, MultimodalIndex / raw = {ratio:.3f} "
                  f"(median of {len(pairs)} paired queries; {extra_us:+.0f} µs/query), goal <= {OVERHEAD_GOAL}")
            record_bench(f"bench.search_overhead_{fusion}", ratio, "{:.2f}")
            assert ratio <= OVERHEAD_GOAL, (fusion, ratio)


# notebook 07's sweep: the search knob of each approximate index, on one build
SWEEP = {"IVF": [f"nprobe={p}" for p in (1, 2, 4, 8, 16, 32, 64, 128)], "HNSW": [f"efSearch={e}" for e in (8, 16, 32, 64, 128)]}
TARGET = 0.95  # recall@10 the speed-ups are read at


def test_recall_latency_curve():
    database, queries = indexes.synthetic_embeddings(N, 64, n_queries=1000, seed=0)
    results = indexes.compare_indexes(database, queries, indexes.default_specs(N)[:3], sweep=SWEEP, progress=False)
    print(f"\nrecall@10 vs latency, {N} clustered 64-d vectors, {len(queries)} queries, "
          f"{indexes.THREADS} FAISS thread(s), {indexes.BATCH} query per call")
    print(indexes.format_table(results))
    flat = results[0]
    assert flat.recall_at_10 == 1.0
    record_bench("bench.search_flat_ms", flat.ms_per_query, "{:.2f}")
    speedup = {}
    for name in ("IVF", "HNSW"):  # each approximate index reaches the target recall somewhere on its sweep
        good = [r for r in results if r.name == name and r.recall_at_10 >= TARGET]
        assert good, name
        best = min(good, key=lambda r: r.ms_per_query)
        speedup[name] = flat.ms_per_query / best.ms_per_query
        record_bench(f"bench.search_{name.lower()}_speedup_at_target", speedup[name], "{:.0f}×")
    assert max(speedup.values()) >= 5, speedup  # and the faster of the two is at least 5x flat
