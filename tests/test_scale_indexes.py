"""Index choice at scale: the comparison table is sane, and each index behaves as its kind should."""
import numpy as np
import pytest

from mmcourse.scale.indexes import (IndexSpec, compare_indexes, default_specs, format_table,
                                    recall_at_k_vs_exact, shard_plan, synthetic_embeddings)


@pytest.fixture(scope="module")
def results():
    database, queries = synthetic_embeddings(4000, 32, n_queries=200, clusters=100, seed=1)
    specs = default_specs(len(database))
    specs[3] = IndexSpec("IVF-PQ", "IVF64,PQ8x4", "nprobe=8")  # 4-bit codes: fast to train on 4k vectors
    return compare_indexes(database, queries, specs, progress=False)


def test_table_is_sane(results):
    by = {r.name: r for r in results}
    assert list(by) == ["Flat", "IVF", "HNSW", "IVF-PQ"]
    assert by["Flat"].recall_at_10 == 1.0
    for r in results:
        assert 0 < r.recall_at_10 <= 1 and r.qps > 0 and r.build_s >= 0, r
    assert by["Flat"].bytes_per_vector == pytest.approx(32 * 4, rel=0.05)  # float32 vectors, nothing else
    assert by["IVF-PQ"].bytes_per_vector < by["Flat"].bytes_per_vector / 4  # 16-byte codes + ids
    assert by["HNSW"].bytes_per_vector > by["Flat"].bytes_per_vector  # vectors + graph links
    assert by["HNSW"].recall_at_10 > 0.8 and by["IVF"].recall_at_10 > 0.5
    table = format_table(results)
    assert "recall@10" in table and table.count("\n") == len(results) + 1


def test_recall_against_exact_by_hand():
    exact = np.array([[0, 1, 2], [3, 4, 5]])
    found = np.array([[2, 1, 9], [9, 8, 7]])
    assert recall_at_k_vs_exact(found, exact, k=3) == pytest.approx((2 / 3 + 0) / 2)


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
