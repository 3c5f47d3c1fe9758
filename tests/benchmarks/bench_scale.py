"""Benchmarks for notebook 08: pipeline throughput vs a plain loop, and index QPS vs flat.

Run with ``make bench`` (pytest -o python_files='bench_*.py' -s). Ratios are measured
against a reference run in the same process; the goals are asserted. The index table is the
course's one index-choice benchmark (:mod:`mmcourse.scale.indexes`) with notebook 08's settings
(100k clustered 64-d vectors, one FAISS thread, one query per call); headline figures go to
``results/benchmarks.json`` through :func:`mmcourse.results.record_bench`.
"""
import time

import numpy as np
import torch

from mmcourse.results import record_bench
from mmcourse.scale import indexes, pipeline


def test_pipeline_throughput_vs_plain_loop(tmp_path):
    from mmcourse.models.experiments.tiny_dual import TinyDualEncoder

    images = pipeline.SceneImages(4096, seed=0, size=32)
    torch.manual_seed(0)
    tower = TinyDualEncoder().eval().encode_image
    pipeline.embed_plain_loop(torch.utils.data.Subset(images, range(256)), tower, batch_size=128, device="cpu")  # warm-up
    t0 = time.perf_counter()
    plain = pipeline.embed_plain_loop(images, tower, batch_size=128, device="cpu")
    plain_rate = len(images) / (time.perf_counter() - t0)
    config = pipeline.PipelineConfig(batch_size=128, num_workers=2, progress=False)
    result = pipeline.embed_dataset(images, tower, tmp_path / "e.npy", config, device="cpu")
    ratio = result.images_per_s / plain_rate
    t0 = time.perf_counter()
    pipeline.embed_plain_loop(torch.utils.data.Subset(images, range(128)), tower, batch_size=1, device="cpu")
    one_rate = 128 / (time.perf_counter() - t0)
    print(f"\npipeline (2 workers, memmap, resumable): {result.images_per_s:,.0f} img/s | plain loop: "
          f"{plain_rate:,.0f} img/s | ratio {ratio:.2f}× | one image per call: {one_rate:,.0f} img/s")
    assert np.allclose(pipeline.load_embeddings(result.path), plain, atol=1e-5)
    record_bench("bench.scale_pipeline_vs_loop", ratio, "{:.2f}")
    assert ratio >= 0.8, f"pipeline is {ratio:.2f}× the plain loop (goal ≥ 0.8× while also writing to disk)"


def test_index_qps_vs_flat():
    database, queries = indexes.synthetic_embeddings(100_000, 64, n_queries=1000, seed=0)
    results = indexes.compare_indexes(database, queries, progress=False)
    print(f"\n{indexes.THREADS} FAISS thread(s), {indexes.BATCH} query per call\n" + indexes.format_table(results))
    by = {r.name: r for r in results}
    assert by["Flat"].recall_at_10 == 1.0
    for name in ("IVF", "HNSW", "IVF-PQ"):
        slug = name.lower().replace("-", "")
        record_bench(f"bench.scale_{slug}_speedup", by[name].qps / by["Flat"].qps, "{:.0f}×")
        record_bench(f"bench.scale_{slug}_recall", by[name].recall_at_10, "{:.3f}")
    assert by["IVF"].qps > 2 * by["Flat"].qps and by["IVF"].recall_at_10 >= 0.8, by["IVF"]


def test_flat_size_within_budget():
    """Notebook 08's answer to "when is flat search enough": 512-d, 10 ms per query, one thread, one query per call."""
    sizes, budget_ms = (20_000, 40_000, 80_000, 160_000), 10.0  # notebook 08's sizes (larger than a CPU cache)
    ms = [indexes.flat_ms_per_query(n, 512, n_queries=100) for n in sizes]
    n_budget, intercept, slope = indexes.flat_size_within_budget(sizes, ms, budget_ms)
    print("\nflat, 512-d: " + ", ".join(f"{n:,} → {t:.2f} ms" for n, t in zip(sizes, ms))
          + f"; {budget_ms:.0f} ms at N ≈ {n_budget:,.0f}")
    record_bench("bench.scale_flat_budget_n", float(f"{n_budget:.2g}"), "{:,.0f}")
    assert slope > 0 and ms[-1] > ms[0]
