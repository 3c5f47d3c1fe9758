"""Index choice: the one benchmark's table is sane, each index behaves as its kind should, and the
flat-search budget fit is exact on a straight line."""
import numpy as np
import pytest

from mmcourse.scale.indexes import (BATCH, THREADS, IndexSpec, compare_indexes, default_specs, faiss_threads,
                                    flat_ms_per_query, flat_size_within_budget, format_table,
                                    recall_at_k_vs_exact, shard_plan, synthetic_embeddings, time_search)


@pytest.fixture(scope="module")
def data():
    return synthetic_embeddings(4000, 32, n_queries=200, clusters=100, seed=1)


@pytest.fixture(scope="module")
def results(data):
    database, queries = data
    specs = default_specs(len(database))
    specs[3] = IndexSpec("IVF-PQ", "IVF64,PQ8x4", "nprobe=8")  # 4-bit codes: fast to train on 4k vectors
    return compare_indexes(database, queries, specs, progress=False)


def test_table_is_sane(results):
    by = {r.name: r for r in results}
    assert list(by) == ["Flat", "IVF", "HNSW", "IVF-PQ"]
    assert by["Flat"].recall_at_10 == 1.0
    for r in results:
        assert 0 < r.recall_at_10 <= 1 and r.ms_per_query > 0 and r.build_s >= 0, r
        assert r.qps == pytest.approx(1000 / r.ms_per_query)
        assert (r.threads, r.batch) == (THREADS, BATCH) == (1, 1)  # the settings notebooks 07 and 08 state
    assert by["Flat"].bytes_per_vector == pytest.approx(32 * 4, rel=0.05)  # float32 vectors, nothing else
    assert by["IVF-PQ"].bytes_per_vector < by["Flat"].bytes_per_vector / 4  # 4-byte codes + ids
    assert by["HNSW"].bytes_per_vector > by["Flat"].bytes_per_vector  # vectors + graph links
    assert by["HNSW"].recall_at_10 > 0.8 and by["IVF"].recall_at_10 > 0.5
    table = format_table(results)
    assert "recall@10" in table and "ms/query" in table and table.count("\n") == len(results) + 1


def test_sweep_measures_every_setting_on_one_build(data):
    database, queries = data
    specs = default_specs(len(database))[:2]  # Flat, IVF (nprobe=8)
    rows = compare_indexes(database, queries, specs, sweep={"IVF": ["nprobe=1", "nprobe=8", "nprobe=64"]},
                           progress=False)
    ivf = [r for r in rows if r.name == "IVF"]
    assert [r.search_params for r in ivf] == ["nprobe=8", "nprobe=1", "nprobe=64"]  # spec's own first, no repeat
    assert len({r.build_s for r in ivf}) == 1  # built once
    recall = {r.search_params: r.recall_at_10 for r in ivf}
    assert recall["nprobe=1"] < recall["nprobe=8"] <= recall["nprobe=64"] == pytest.approx(1.0)  # all lists: exact
    with pytest.raises(ValueError, match="HNSW"):
        compare_indexes(database, queries, specs, sweep={"HNSW": ["efSearch=8"]}, progress=False)


def test_recall_against_exact_by_hand():
    exact = np.array([[0, 1, 2], [3, 4, 5]])
    found = np.array([[2, 1, 9], [9, 8, 7]])
    assert recall_at_k_vs_exact(found, exact, k=3) == pytest.approx((2 / 3 + 0) / 2)
    assert recall_at_k_vs_exact(exact, exact, k=3) == 1.0
    assert recall_at_k_vs_exact(np.array([[5, 4, 3]]), np.array([[3, 4, 5]]), k=2) == pytest.approx(0.5)  # top-2 only
    with pytest.raises(ValueError, match="k=4"):
        recall_at_k_vs_exact(found, exact, k=4)
    with pytest.raises(ValueError, match="shapes"):
        recall_at_k_vs_exact(found[:1], exact, k=3)


def test_time_search_returns_every_query_in_any_batch(data):
    import faiss

    database, queries = data
    index = faiss.IndexFlatIP(database.shape[1])
    index.add(database)
    one, ms = time_search(index, queries[:30], k=5)
    batched, _ = time_search(index, queries[:30], k=5, batch=7)  # 30 = 4 × 7 + 2
    assert one.shape == (30, 5) and ms > 0
    assert np.array_equal(one, batched)
    with pytest.raises(ValueError, match="batch"):
        time_search(index, queries, batch=0)


def test_faiss_threads_restores_the_setting():
    import faiss

    before = faiss.omp_get_max_threads()
    with faiss_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with faiss_threads(0):
            pass


def test_flat_budget_fit_solves_the_line():
    sizes = [10_000, 20_000, 40_000]
    ms = [0.5 + 2e-4 * n for n in sizes]  # 0.5 ms + 0.2 ms per 1,000 vectors
    n, intercept, slope = flat_size_within_budget(sizes, ms, budget_ms=10.5)
    assert n == pytest.approx(50_000) and intercept == pytest.approx(0.5) and slope == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="did not grow"):
        flat_size_within_budget(sizes, [1.0, 1.0, 1.0], 10)
    with pytest.raises(ValueError, match="budget_ms"):
        flat_size_within_budget(sizes, ms, 0)
    with pytest.raises(ValueError, match="at least two"):
        flat_size_within_budget([1], [1.0], 10)


def test_flat_time_grows_with_the_corpus():
    small, large = flat_ms_per_query(2_000, 64, n_queries=50), flat_ms_per_query(64_000, 64, n_queries=50)
    assert large > 4 * small  # 32× the vectors; a loose bound for a shared machine


def test_synthetic_vectors():
    database, queries = synthetic_embeddings(500, 16, n_queries=10, seed=0)
    assert database.shape == (500, 16) and queries.shape == (10, 16) and database.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(database, axis=1), 1, atol=1e-5)
    again, _ = synthetic_embeddings(500, 16, n_queries=10, seed=0)
    assert np.array_equal(database, again)
    with pytest.raises(ValueError, match="n must"):
        synthetic_embeddings(0)


def test_default_specs_scale_with_n():
    assert default_specs(100_000)[1].factory == "IVF256,Flat"
    assert default_specs(1_000_000)[1].factory == "IVF1024,Flat"


def test_shard_plan(results):
    plan = {row["index"]: row for row in shard_plan(results, 1e9, ram_per_machine_gb=64)}
    # 1e9 float32 vectors of dim 32 are 128 GB: 3 machines at 70 % of 64 GB
    assert plan["Flat"]["machines"] == 3
    assert plan["IVF-PQ"]["machines"] < plan["Flat"]["machines"]
    with pytest.raises(ValueError):
        shard_plan(results, -1)


def test_first_spec_must_be_exact():
    database, queries = synthetic_embeddings(300, 8, n_queries=5)
    with pytest.raises(ValueError, match="Flat"):
        compare_indexes(database, queries, [IndexSpec("HNSW", "HNSW8")], progress=False)
