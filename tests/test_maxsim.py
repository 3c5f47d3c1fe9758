"""mmcourse.retrieval.maxsim: parity with the naive loop, masking, dtypes, gradients, errors."""
import pytest
import torch

from mmcourse.retrieval import maxsim, maxsim_naive, multivector_bytes, pad_multivectors, pool_tokens


def _ragged(n, lengths, dim, gen):
    """``n`` L2-normalised multi-vectors (as embedders return them) with the given lengths."""
    return [torch.nn.functional.normalize(torch.randn(int(lengths[i % len(lengths)]), dim, generator=gen), dim=-1)
            for i in range(n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk_bytes", [1, 4096, 16 * 2**20])
def test_matches_naive_loop_on_variable_lengths(seed, chunk_bytes):
    gen = torch.Generator().manual_seed(seed)
    q_len = torch.randint(1, 12, (7,), generator=gen).tolist()
    d_len = torch.randint(1, 40, (11,), generator=gen).tolist()
    queries = _ragged(7, q_len, 24, gen)
    docs = _ragged(11, d_len, 24, gen)
    with torch.no_grad():
        fast = maxsim(queries, docs, chunk_bytes=chunk_bytes)
    assert fast.shape == (7, 11) and fast.dtype == torch.float32
    assert (fast - maxsim_naive(queries, docs)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("threads", [1, 2])
def test_worker_threads_leave_results_order_and_thread_count_unchanged(threads):
    """Chunks of pages sorted by length, shared out to worker threads: same scores, caller's order,
    in every grad mode, on non-contiguous inputs, and torch's thread count as the caller left it."""
    import threading

    gen = torch.Generator().manual_seed(8)
    queries = _ragged(5, [3, 7, 1], 16, gen)
    docs = _ragged(30, [9, 2, 17, 9, 5, 30], 16, gen)
    docs[3] = docs[3].T.contiguous().T  # a non-contiguous page
    expected = maxsim_naive(queries, docs)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for mode in (torch.enable_grad, torch.no_grad, torch.inference_mode):
            with mode():
                for chunk_bytes in (1, 300, 2**20):
                    got = maxsim(queries, docs, chunk_bytes=chunk_bytes)
                    assert (got - expected).abs().max() <= 1e-5, (mode, chunk_bytes)
        assert torch.get_num_threads() == threads
        seen = []
        later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        later.start()
        later.join()
        assert seen == [threads]
    finally:
        torch.set_num_threads(before)


def test_all_negative_similarities_are_not_beaten_by_padding():
    """With zero padding and no mask, padding (similarity 0) would win every max."""
    gen = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.rand(16, generator=gen) + 0.1, dim=0)  # positive direction
    queries = [base + 0.05 * torch.rand(t, 16, generator=gen) for t in (3, 6, 2)]
    docs = [-(base + 0.05 * torch.rand(t, 16, generator=gen)) for t in (5, 9, 1, 9)]  # all sims < 0
    reference = maxsim_naive(queries, docs)
    assert (reference < 0).all()
    for chunk_bytes in (1, 2**20):  # ragged chunks and one chunk
        assert (maxsim(queries, docs, chunk_bytes=chunk_bytes) - reference).abs().max() <= 1e-5
    padded_q, q_mask = pad_multivectors(queries)
    padded_d, d_mask = pad_multivectors(docs)
    masked = maxsim(padded_q, padded_d, query_mask=q_mask, document_mask=d_mask)
    assert (masked - reference).abs().max() <= 1e-5
    # the bug the mask prevents: zero padding counted as a real patch raises the scores
    unmasked = maxsim(padded_q, padded_d, query_mask=q_mask)
    assert (unmasked > reference + 0.5).any()


def test_padded_input_with_non_contiguous_mask_matches_list():
    gen = torch.Generator().manual_seed(3)
    padded = torch.randn(4, 10, 8, generator=gen)
    mask = torch.rand(4, 10, generator=gen) > 0.4
    mask[:, 0] = True
    docs = [padded[i][mask[i]] for i in range(4)]
    queries = _ragged(5, [2, 4, 7], 8, gen)
    expected = maxsim_naive(queries, docs)
    assert (maxsim(queries, padded, document_mask=mask) - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("dtype,tol", [(torch.float16, 0.05), (torch.bfloat16, 0.2)])
def test_half_precision_close_to_float32(dtype, tol):
    gen = torch.Generator().manual_seed(4)
    queries = [torch.nn.functional.normalize(q, dim=-1) for q in _ragged(6, [5, 9], 32, gen)]
    docs = [torch.nn.functional.normalize(d, dim=-1) for d in _ragged(9, [20, 33, 7], 32, gen)]
    exact = maxsim_naive(queries, docs)
    low = maxsim([q.to(dtype) for q in queries], [d.to(dtype) for d in docs])
    assert low.dtype == torch.float32
    assert (low - exact).abs().max().item() <= tol
    assert (maxsim(queries, docs, dtype=dtype) - exact).abs().max().item() <= tol  # compute dtype on request


def test_gradients_match_naive_loop():
    gen = torch.Generator().manual_seed(5)
    queries = [q.double().requires_grad_() for q in _ragged(3, [4, 2, 6], 8, gen)]
    docs = [d.double().requires_grad_() for d in _ragged(4, [5, 8, 3, 8], 8, gen)]
    weights = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    (maxsim(queries, docs, chunk_bytes=64) * weights).sum().backward()
    fast = [t.grad.clone() for t in (*queries, *docs)]
    for t in (*queries, *docs):
        t.grad = None
    naive = torch.stack([torch.stack([(q @ d.T).max(dim=1).values.sum() for d in docs]) for q in queries])
    (naive * weights).sum().backward()
    for a, t in zip(fast, (*queries, *docs)):
        assert torch.allclose(a, t.grad, atol=1e-6)


def test_clear_errors():
    q = [torch.randn(3, 8)]
    with pytest.raises(ValueError, match="dimension mismatch"):
        maxsim(q, [torch.randn(4, 16)])
    with pytest.raises(ValueError, match="empty"):
        maxsim(q, [torch.randn(4, 8), torch.randn(0, 8)])
    padded = torch.randn(2, 5, 8)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match="entirely masked"):
        maxsim(padded, [torch.randn(4, 8)], query_mask=mask)
    with pytest.raises(ValueError, match="mask shape"):
        maxsim(padded, [torch.randn(4, 8)], query_mask=mask[:, :3])
    with pytest.raises(ValueError, match="2-D tensor"):
        maxsim(torch.randn(3, 8), [torch.randn(4, 8)])
    with pytest.raises(ValueError, match="none"):
        maxsim(q, [])
    with pytest.raises(TypeError, match="floating-point"):
        maxsim([torch.ones(2, 8, dtype=torch.long)], [torch.ones(3, 8, dtype=torch.long)])


def test_pad_multivectors_roundtrip():
    items = [torch.randn(n, 4) for n in (2, 5, 1)]
    padded, mask = pad_multivectors(items)
    assert padded.shape == (3, 5, 4) and mask.sum(1).tolist() == [2, 5, 1]
    assert torch.equal(padded[1], items[1]) and (padded[2, 1:] == 0).all()


def test_pool_tokens_merges_duplicates_and_keeps_distinct():
    gen = torch.Generator().manual_seed(6)
    distinct = torch.nn.functional.normalize(torch.randn(4, 16, generator=gen), dim=-1)
    vectors = distinct.repeat_interleave(3, dim=0)  # (12, 16): each vector three times
    pooled = pool_tokens(vectors, pool_factor=3)
    assert pooled.shape == (4, 16)
    # each original vector is recovered exactly (its cluster is its three copies)
    assert (pooled @ distinct.T).max(dim=0).values.min() > 0.999
    # identical vectors cannot be split: at most ceil(12 / 2) groups, never fewer than the 4 distinct
    assert 4 <= pool_tokens(vectors, 2).shape[0] <= 6 and pool_tokens(vectors, 1) is vectors
    varied = torch.randn(30, 16, generator=gen)
    assert pool_tokens(varied, 2).shape == (15, 16) and pool_tokens(varied, 3).shape == (10, 16)
    with pytest.raises(ValueError, match="pool_factor"):
        pool_tokens(vectors, 0)


def test_multivector_bytes():
    assert multivector_bytes(1030, 128, "float32") == 1030 * 512
    assert multivector_bytes(1030, 128, "float16") == 1030 * 256
    assert multivector_bytes(1030, 128, "binary") == 1030 * 16
    with pytest.raises(ValueError, match="fmt"):
        multivector_bytes(10, 128, "int4")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(7)
    queries, docs = _ragged(4, [3, 6], 16, gen), _ragged(6, [9, 4, 12], 16, gen)
    on_gpu = maxsim([q.cuda() for q in queries], docs, device="cuda")  # pages streamed to the GPU
    assert on_gpu.device.type == "cuda"
    assert (on_gpu.cpu() - maxsim_naive(queries, docs)).abs().max() <= 1e-4


# ---- input checks (every item, finiteness) ----------------------------------------------------


def test_every_items_dtype_is_checked_not_only_the_first():
    q = [torch.randn(3, 8)]
    docs = [torch.randn(4, 8), torch.ones(5, 8, dtype=torch.long)]
    with pytest.raises(TypeError, match=r"documents: item 1 is torch.int64"):
        maxsim(q, docs)
    with pytest.raises(TypeError, match=r"queries: item 1 is torch.int32"):
        maxsim([torch.randn(2, 8), torch.ones(2, 8, dtype=torch.int32)], [torch.randn(4, 8)])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["queries", "documents"])
def test_non_finite_input_is_named_not_passed_to_the_scores(bad, where):
    gen = torch.Generator().manual_seed(9)
    queries, docs = _ragged(3, [4, 2], 8, gen), _ragged(5, [6, 3], 8, gen)
    target = queries if where == "queries" else docs
    target[2] = target[2].clone()
    target[2][1, 3] = bad
    for no_grad in (True, False):
        with torch.set_grad_enabled(not no_grad), pytest.raises(ValueError, match=rf"{where}: item 2 .*NaN or inf"):
            maxsim(queries, docs)


# ---- MaxSimIndex: pages packed once ------------------------------------------------------------


@pytest.mark.parametrize("block_rows", [1, 40, 4096])
def test_index_matches_naive_loop_in_float32(block_rows):
    from mmcourse.retrieval import MaxSimIndex

    gen = torch.Generator().manual_seed(10)
    d_len = torch.randint(1, 50, (23,), generator=gen).tolist()
    docs = _ragged(23, d_len, 16, gen)
    queries = _ragged(6, [5, 1, 9], 16, gen)
    index = MaxSimIndex(docs, block_rows=block_rows)
    expected = maxsim_naive(queries, docs)
    for qs in (queries, queries[:1], queries[2:4]):  # many, one, few queries
        got = index.scores(qs)
        assert got.shape == (len(qs), 23) and got.dtype == torch.float32
        assert (got - maxsim_naive(qs, docs)).abs().max().item() <= 1e-5
    assert torch.equal(maxsim(queries, index), index.scores(queries))  # maxsim takes an index too
    assert len(index) == 23 and 0 <= index.padding_fraction < 1
    assert (maxsim(queries, docs) - expected).abs().max() <= 1e-5


def test_index_scores_many_query_slices_and_padded_input():
    """Enough query tokens that they are cut into slices; a padded (N, T, D) corpus with its mask."""
    from mmcourse.retrieval import MaxSimIndex, pad_multivectors

    gen = torch.Generator().manual_seed(11)
    docs = _ragged(7, [300, 120, 513], 8, gen)
    queries = _ragged(40, [30, 7, 64], 8, gen)  # 1,000+ tokens: sliced to bound the similarity block
    padded, mask = pad_multivectors(docs)
    index = MaxSimIndex(padded, document_mask=mask, block_rows=600)
    # scores reach ~60 here: a few float32 ulps (3.8e-6 each) of rounding in the sums
    torch.testing.assert_close(index.scores(queries), maxsim_naive(queries, docs), atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_index_half_storage_within_documented_tolerance(dtype):
    from mmcourse.retrieval import MaxSimIndex

    gen = torch.Generator().manual_seed(12)
    docs = _ragged(30, [17, 40, 3], 32, gen)
    queries = _ragged(4, [32, 8], 32, gen)
    index = MaxSimIndex(docs, dtype=dtype)
    assert index.packed.dtype == dtype and index.nbytes == index.packed.numel() * 2
    error = (index.scores(queries) - maxsim_naive(queries, docs)).abs().max().item()
    bound = index.tolerance(queries)
    assert bound == pytest.approx(32 * {torch.float16: 2**-11, torch.bfloat16: 2**-8}[dtype], rel=1e-2)  # stored norms ~1
    assert 0 < error <= bound, (error, bound)


def test_index_rejects_bad_input_clearly():
    from mmcourse.retrieval import MaxSimIndex

    docs = [torch.randn(4, 8), torch.randn(3, 8)]
    docs[1][2, 0] = float("nan")
    with pytest.raises(ValueError, match="documents: item 1 contains NaN"):
        MaxSimIndex(docs)
    with pytest.raises(ValueError, match="range of torch.float16"):
        MaxSimIndex([torch.full((2, 8), 1e6)], dtype=torch.float16)
    with pytest.raises(TypeError, match="storage dtype"):
        MaxSimIndex([torch.randn(4, 8)], dtype=torch.float64)
    with pytest.raises(ValueError, match="block_rows"):
        MaxSimIndex([torch.randn(4, 8)], block_rows=0)
    index = MaxSimIndex([torch.randn(4, 8)])
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.scores([torch.randn(2, 16)])
    with pytest.raises(ValueError, match="queries: item 0 contains NaN"):
        index.scores([torch.full((2, 8), float("nan"))])
    with pytest.raises(ValueError, match="no mask"):
        maxsim([torch.randn(2, 8)], index, document_mask=torch.ones(1, 4, dtype=torch.bool))


def test_index_memory_per_query_does_not_grow_with_the_corpus():
    """What a query allocates beyond the corpus: its (Nq, N) result and a few blocks' buffers."""
    from mmcourse.memory import peak_memory, peak_memory_supported
    from mmcourse.retrieval import MaxSimIndex

    if not peak_memory_supported():
        pytest.skip("peak memory needs Linux /proc/self/clear_refs")
    gen = torch.Generator().manual_seed(13)
    query = _ragged(1, [32], 128, gen)
    peaks = []
    for n_pages in (200, 1600):  # 8x the pages (13 MiB and 100 MiB of vectors)
        index = MaxSimIndex(_ragged(n_pages, [128], 128, gen), block_rows=1024)
        peaks.append(peak_memory(lambda: index.scores(query), repeats=3).mib)
    assert peaks[1] <= peaks[0] + 4, peaks  # MiB: no term that scales with the corpus
