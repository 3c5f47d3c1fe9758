"""Benchmarks for notebook 08: pipeline throughput vs a plain loop, and index QPS vs flat.

Run with ``make bench`` (pytest -o python_files='bench_*.py' -s). Ratios are measured
against a reference run in the same process; the goals are asserted.
"""
import time

import numpy as np
import torch

from mmcourse.scale import indexes, pipeline


def test_pipeline_throughput_vs_plain_loop(tmp_path):
    from mmcourse.models.tiny_dual import TinyDualEncoder

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
    assert ratio >= 0.8, f"pipeline is {ratio:.2f}× the plain loop (goal ≥ 0.8× while also writing to disk)"


def test_index_qps_vs_flat():
    database, queries = indexes.synthetic_embeddings(100_000, 64, n_queries=1000, seed=0)
    results = indexes.compare_indexes(database, queries, progress=False)
    print("\n" + indexes.format_table(results))
    by = {r.name: r for r in results}
    for name in ("IVF", "HNSW", "IVF-PQ"):
        print(f"{name}: {by[name].qps / by['Flat'].qps:.1f}× flat's QPS at recall@10 {by[name].recall_at_10:.3f}")
    assert by["Flat"].recall_at_10 == 1.0
    assert by["IVF"].qps > 2 * by["Flat"].qps and by["IVF"].recall_at_10 >= 0.8, by["IVF"]
