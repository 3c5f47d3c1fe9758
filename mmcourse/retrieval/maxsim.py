"""Late interaction (ColBERT / ColPali MaxSim): exact, chunked, any dtype, any device.

A query is a set of token vectors ``(Tq, D)``, a document (a page) a set of patch
vectors ``(Tp, D)``. Their score is::

    score(q, p) = sum over query tokens i of  max over patches j of  <q_i, p_j>

How :func:`maxsim` computes it for every (query, page) pair:

1. All query tokens are stacked into one ``(sum Tq, D)`` matrix (cut into blocks of
   whole queries when a page times all tokens would not fit in one chunk).
2. Pages are sorted by length and cut into chunks whose similarity block stays
   small (``chunk_bytes``; on a CPU 2 MiB, which stays in the cache). A chunk's
   patches are stacked into one ``(n * L, D)`` matrix (a one-page chunk is used as
   it is), so a chunk costs **one matrix multiply** ``(n * L, D) @ (D, sum Tq)``, the
   fastest thing a CPU or GPU does.
3. The block is viewed as ``(n, L, sum Tq)`` and ``amax`` over ``L`` gives every
   token's best patch on every page of the chunk: a segmented max, no Python loop
   over pages. Sorting makes equal-length pages share chunks; in a chunk of unequal
   pages, a shorter page is padded with copies of its own last patch, which can never
   change its max (zeros could: see below).
4. A segmented sum over each query's tokens (``index_add``) gives the ``(Nq, Nd)`` scores.

Only one chunk of similarities per worker is alive at a time, so peak memory stays
bounded however many pages there are. On a CPU with several threads, chunks are
shared out to worker threads that each run single-threaded matrix multiplies: no
synchronisation between cores inside a chunk, so the work keeps flowing when other
programs compete for the cores (torch's own multi-threading stalls there).

Padded inputs need their mask: a padded vector is dropped, never scored as zeros.
When every real similarity of a token is negative, a zero-padded patch would win the
max and silently raise the score. :func:`maxsim_naive` is the per-pair loop the
tests compare against.
"""
from __future__ import annotations

import functools
import math
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence, Union

import torch

from ..validate import positive_int

__all__ = ["maxsim", "maxsim_naive", "pad_multivectors", "pool_tokens", "multivector_bytes"]

MultiVectors = Union[torch.Tensor, Sequence[torch.Tensor]]

_CPU_CHUNK_BYTES = 2 * 2**20  # similarities alive at once per CPU worker: 2 MiB, stays in the cache
_GPU_CHUNK_BYTES = 16 * 2**20  # on a GPU: bigger blocks, fewer kernel launches
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


class PackedPages:
    """Pages prepared once for scoring (e.g. :class:`~mmcourse.retrieval.MaxSimIndex`): :func:`maxsim`
    hands such ``documents`` to their own ``scores(queries, query_mask=...)``."""

    def scores(self, queries, *, query_mask=None) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _as_list(vectors: MultiVectors, mask: torch.Tensor | None, what: str) -> list[torch.Tensor]:
    """Validate and turn padded ``(N, T, D)`` + mask, or a list of ``(T, D)``, into a list of ``(T_i, D)``."""
    if isinstance(vectors, torch.Tensor):
        if vectors.dim() == 2 and mask is None:
            raise ValueError(
                f"{what}: got one 2-D tensor {tuple(vectors.shape)}; pass a list of (T, D) tensors "
                f"or a padded (N, T, D) tensor (wrap a single item as [x] or x[None])"
            )
        if vectors.dim() != 3:
            raise ValueError(f"{what}: expected a padded (N, T, D) tensor or a list of (T, D) tensors, "
                             f"got a tensor of shape {tuple(vectors.shape)}")
        if mask is None:
            return list(vectors.unbind(0))
        if mask.shape != vectors.shape[:2]:
            raise ValueError(f"{what}: mask shape {tuple(mask.shape)} does not match the padded "
                             f"tensor's (N, T) = {tuple(vectors.shape[:2])}")
        mask = mask.to(device=vectors.device, dtype=torch.bool)
        lengths = mask.sum(1).tolist()
        empty = [i for i, n in enumerate(lengths) if n == 0]
        if empty:
            raise ValueError(f"{what}: item {empty[0]} is entirely masked (no real vectors); "
                             f"every query and page needs at least one unmasked vector")
        if bool((mask[:, :-1] < mask[:, 1:]).any()):  # a False before a True: not right-padded
            return [v[m] for v, m in zip(vectors, mask)]
        return [v[:n] for v, n in zip(vectors, lengths)]
    if mask is not None:
        raise ValueError(f"{what}: a mask only goes with a padded (N, T, D) tensor, not with a list")
    if isinstance(vectors, (str, bytes)) or not hasattr(vectors, "__len__"):
        raise TypeError(f"{what}: expected a list of (T, D) tensors, got {type(vectors).__name__}")
    items = list(vectors)
    for i, v in enumerate(items):
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{what}: item {i} is a {type(v).__name__}, expected a (T, D) torch.Tensor")
        if v.dim() != 2:
            raise ValueError(f"{what}: item {i} has shape {tuple(v.shape)}, expected (T, D)")
        if v.shape[0] == 0:
            raise ValueError(f"{what}: item {i} is empty (0 vectors); every query and page needs at least one")
    return items


def _check(queries: list[torch.Tensor], documents: list[torch.Tensor]) -> int:
    if not queries:
        raise ValueError("queries: got none; expected at least one (T, D) tensor")
    if not documents:
        raise ValueError("documents: got none; expected at least one (T, D) tensor")
    dims = {int(v.shape[1]) for v in queries} | {int(v.shape[1]) for v in documents}
    if len(dims) != 1:
        qd = sorted({int(v.shape[1]) for v in queries})
        dd = sorted({int(v.shape[1]) for v in documents})
        raise ValueError(f"dimension mismatch: query vectors have D={qd}, document vectors have D={dd}; "
                         f"both must come from the same embedder (same D)")
    for what, items in (("queries", queries), ("documents", documents)):
        for i, v in enumerate(items):
            if v.dtype not in _FLOAT_DTYPES:
                raise TypeError(f"{what}: item {i} is {v.dtype}; expected floating-point vectors "
                                f"(float32/float16/bfloat16/float64)")
    return dims.pop()


def _finite_scores_or_raise(scores: torch.Tensor, queries: list[torch.Tensor],
                            documents: list[torch.Tensor]) -> torch.Tensor:
    """Return ``scores``; if one is NaN or inf, raise ``ValueError`` naming the first non-finite input item.

    A NaN in a query token or a page vector always reaches a score (``max`` propagates
    NaN), so one check on the small ``(Nq, Nd)`` result covers them; the inputs are
    scanned only then. Non-finite scores from finite inputs (an overflow) are returned.
    """
    if bool(torch.isfinite(scores.detach()).all()):
        return scores
    for what, items in (("queries", queries), ("documents", documents)):
        for i, v in enumerate(items):
            if not bool(torch.isfinite(v.detach()).all()):
                raise ValueError(f"{what}: item {i} contains NaN or inf; every vector must be finite "
                                 f"(check the embedder's output)")
    return scores


def maxsim(
    queries: MultiVectors,
    documents: MultiVectors,
    *,
    query_mask: torch.Tensor | None = None,
    document_mask: torch.Tensor | None = None,
    chunk_bytes: int | None = None,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Late-interaction scores ``(Nq, Nd)``, float32: ``sum_i max_j <q_i, d_j>`` for every pair.

    ``queries`` / ``documents``: a list of ``(T_i, D)`` tensors (lengths may differ), or a
    padded ``(N, T, D)`` tensor with an optional boolean ``*_mask`` ``(N, T)`` (True = real).
    ``chunk_bytes`` bounds the similarity block computed at once (pages are streamed in
    chunks; queries too when there are very many tokens): by default 2 MiB per worker
    thread on a CPU, 16 MiB on a GPU. ``dtype`` is the compute dtype (default: the inputs'
    promoted dtype; float16/bfloat16 halve memory, accumulation of the per-token maxima is
    float32). ``device`` defaults to the queries' device; pages are moved
    there chunk by chunk, so a CPU-resident corpus can be scored on a GPU.
    Differentiable (used as the training score of ``course/colpali-pages``).

    ``documents`` may also be a :class:`~mmcourse.retrieval.MaxSimIndex` (pages packed
    once): then its :meth:`~mmcourse.retrieval.MaxSimIndex.scores` answers, the fast path
    for one or a few queries against a fixed corpus (no gradients).
    """
    if isinstance(documents, PackedPages):
        if document_mask is not None:
            raise ValueError("document_mask: a MaxSimIndex holds unpadded pages already; pass no mask with it")
        return documents.scores(queries, query_mask=query_mask)
    qs = _as_list(queries, query_mask, "queries")
    ds = _as_list(documents, document_mask, "documents")
    _check(qs, ds)
    device = torch.device(device) if device is not None else qs[0].device
    if dtype is None:
        dtype = qs[0].dtype
        for v in (*qs, *ds):
            dtype = torch.promote_types(dtype, v.dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    if chunk_bytes is None:
        chunk_bytes = _CPU_CHUNK_BYTES if device.type == "cpu" else _GPU_CHUNK_BYTES
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")

    q_lengths = [int(v.shape[0]) for v in qs]
    q_all = torch.cat([v.to(device=device, dtype=dtype) for v in qs])  # (sum Tq, D)
    owner = torch.repeat_interleave(torch.arange(len(qs), device=device),
                                    torch.tensor(q_lengths, device=device))  # (sum Tq,) query of each token
    order = sorted(range(len(ds)), key=lambda i: int(ds[i].shape[0]))  # pages by length: equal ones share chunks
    pages = [ds[i] for i in order]
    d_lengths = [int(v.shape[0]) for v in pages]
    budget = max(1, chunk_bytes // torch.empty((), dtype=dtype).element_size())  # similarities per block
    needs_grad = torch.is_grad_enabled() and any(v.requires_grad for v in (*qs, *ds))

    # Queries: one block unless even a single longest page times all tokens would exceed the budget.
    scores = []
    for q0, q1 in _blocks(q_lengths, max(1, budget // max(d_lengths))):
        t0, t1 = sum(q_lengths[:q0]), sum(q_lengths[:q1])
        q_block = q_all[t0:t1]  # (Tb, D)
        chunks = _blocks(d_lengths, max(1, budget // (t1 - t0)), padded=True)
        if needs_grad:  # autograd: functional ops only
            per_token = torch.cat([_score_chunk(q_block, pages[d0:d1], d_lengths[d0:d1], device, dtype)
                                   for d0, d1 in chunks]).float()  # (Nd, Tb) best patch per page and token
        else:  # inference: every chunk writes its rows, reusing its worker's buffers
            per_token = torch.empty(len(pages), t1 - t0, device=device, dtype=torch.float32)  # (Nd, Tb)

            def run(chunk, workspace, q_block=q_block, per_token=per_token):
                d0, d1 = chunk
                per_token[d0:d1] = _score_chunk(q_block, pages[d0:d1], d_lengths[d0:d1], device, dtype, workspace)

            _run_chunks(chunks, run, device)
        summed = torch.zeros(len(pages), q1 - q0, device=device, dtype=torch.float32)
        scores.append(summed.index_add(1, owner[t0:t1] - q0, per_token).T)  # (qb, Nd) pages sorted by length
    inverse = torch.argsort(torch.tensor(order, device=device))  # sorted position of each page
    return _finite_scores_or_raise(torch.cat(scores, dim=0)[:, inverse], qs, ds)  # (Nq, Nd) caller's order


def _blocks(lengths: list[int], capacity: int, padded: bool = False) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` item ranges whose size stays within ``capacity`` (an item
    bigger than that gets a range of its own). Size: the sum of the lengths, or with
    ``padded`` the number of items times the longest (each item padded to it)."""
    blocks, start, total, longest = [], 0, 0, 0
    for i, n in enumerate(lengths):
        size = (i + 1 - start) * max(longest, n) if padded else total + n
        if i > start and size > capacity:
            blocks.append((start, i))
            start, total, longest = i, 0, 0
        total, longest = total + n, max(longest, n)
    blocks.append((start, len(lengths)))
    return blocks


def _run_chunks(chunks, run, device) -> None:
    """``run(chunk, workspace)`` for every chunk: one worker thread per CPU thread, else in a loop.

    Each worker pulls the next chunk when it is done with one and runs its torch ops
    single-threaded (``torch.set_num_threads`` is per thread in torch's OpenMP build),
    with its own reused buffers: no allocation per chunk and no barrier between cores.
    """
    threads = torch.get_num_threads()
    workers = min(threads, len(chunks)) if device.type == "cpu" and _openmp() else 1
    if workers <= 1:
        workspace = {}
        for chunk in chunks:
            run(chunk, workspace)
        return
    pending = queue.SimpleQueue()  # each chunk goes to exactly one worker
    for chunk in chunks:
        pending.put(chunk)

    def worker():
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                workspace = {}
                while True:
                    try:
                        chunk = pending.get_nowait()
                    except queue.Empty:
                        return
                    run(chunk, workspace)
        finally:
            torch.set_num_threads(threads)  # threads started later get the caller's setting

    with ThreadPoolExecutor(workers) as pool:
        for done in [pool.submit(worker) for _ in range(workers)]:
            done.result()  # re-raises a worker's error here


@functools.lru_cache(maxsize=1)
def _openmp() -> bool:
    """Whether torch's CPU threads are OpenMP ones (where a thread-local thread count is honoured)."""
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def _buffer(workspace, key, shape, device, dtype) -> torch.Tensor:
    """A scratch tensor of ``shape``, carved from a flat buffer kept in ``workspace`` between chunks."""
    numel = math.prod(shape)
    buf = workspace.get(key)
    if buf is None or buf.numel() < numel:
        buf = workspace[key] = torch.empty(numel, device=device, dtype=dtype)
    return buf[:numel].view(shape)


def _score_chunk(q_block, docs, lengths, device, dtype, workspace=None) -> torch.Tensor:
    """Best patch of every page for every token, ``(n, Tb)``, for one chunk of pages.

    All patches of the chunk go into one ``(n*L, D)`` matrix, so the similarities are a
    single matrix multiply ``(n*L, D) @ (D, Tb)``; a view ``(n, L, Tb)`` then takes the max
    over each page's patches. A page shorter than the chunk's longest ``L`` is padded
    with copies of its own last patch: a duplicate never changes a max. With a
    ``workspace`` (inference) the patches and similarities go into reused buffers.
    """
    n, longest, dim = len(docs), max(lengths), q_block.shape[1]
    docs = [d.to(device=device, dtype=dtype) for d in docs]
    if n == 1:
        patches = docs[0]  # (L, D) as it is: no copy
    else:
        out = None if workspace is None else _buffer(workspace, "patches", (n * longest, dim), device, dtype)
        if all(length == longest for length in lengths):
            patches = torch.cat(docs) if out is None else torch.cat(docs, out=out)  # (n*L, D)
        else:
            starts = torch.tensor([0, *lengths[:-1]], device=device).cumsum(0)  # (n,) first row of each page
            last = torch.tensor(lengths, device=device) - 1  # (n,)
            rows = starts[:, None] + torch.arange(longest, device=device).minimum(last[:, None])  # (n, L)
            stacked = torch.cat(docs)  # (sum P, D)
            patches = (stacked[rows.flatten()] if out is None
                       else torch.index_select(stacked, 0, rows.flatten(), out=out))  # (n*L, D)
    if workspace is None:
        sims = patches @ q_block.T  # (n*L, Tb)
    else:
        sims = torch.mm(patches, q_block.T,
                        out=_buffer(workspace, "sims", (n * longest, q_block.shape[0]), device, dtype))
    return sims.view(n, longest, -1).amax(dim=1)  # (n, Tb)


def maxsim_naive(queries: MultiVectors, documents: MultiVectors, *,
                 query_mask: torch.Tensor | None = None,
                 document_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Reference: a Python loop over every (query, page) pair, float64. Slow; for tests."""
    qs = _as_list(queries, query_mask, "queries")
    ds = _as_list(documents, document_mask, "documents")
    _check(qs, ds)
    out = torch.empty(len(qs), len(ds), dtype=torch.float64)
    for i, q in enumerate(qs):
        for j, d in enumerate(ds):
            sims = q.double().cpu() @ d.double().cpu().T  # (Tq, Tp)
            out[i, j] = sims.max(dim=1).values.sum()
    return out.float()


def pad_multivectors(vectors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """A list of ``(T_i, D)`` → padded ``(N, T_max, D)`` (zeros) and its boolean mask ``(N, T_max)``."""
    items = _as_list(vectors, None, "vectors")
    padded = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)  # (N, T, D)
    lengths = torch.tensor([v.shape[0] for v in items], device=padded.device)
    mask = torch.arange(padded.shape[1], device=padded.device)[None] < lengths[:, None]  # (N, T)
    return padded, mask


def pool_tokens(vectors: torch.Tensor, pool_factor: int = 2) -> torch.Tensor:
    """Hierarchical token pooling: cluster ``(T, D)`` vectors into ``ceil(T / pool_factor)``
    groups (Ward linkage on cosine geometry) and return the L2-normalised group means.

    The storage trick of colpali-engine's ``HierarchicalTokenPooler``: similar patches
    (blank margins, the inside of one bar) merge, distinct ones survive.
    """
    import numpy as np
    from scipy.cluster.hierarchy import fcluster, linkage

    pool_factor = positive_int(pool_factor, "pool_factor")
    if not isinstance(vectors, torch.Tensor) or vectors.dim() != 2 or vectors.shape[0] == 0:
        raise ValueError(f"expected a non-empty (T, D) tensor, got "
                         f"{tuple(vectors.shape) if isinstance(vectors, torch.Tensor) else type(vectors).__name__}")
    if pool_factor == 1 or vectors.shape[0] == 1:
        return vectors
    n_groups = max(1, -(-vectors.shape[0] // pool_factor))
    unit = torch.nn.functional.normalize(vectors.detach().float().cpu(), dim=-1)  # (T, D)
    tree = linkage(unit.numpy().astype(np.float64), method="ward")
    labels = torch.from_numpy(fcluster(tree, t=n_groups, criterion="maxclust").astype(np.int64)) - 1  # (T,)
    groups = int(labels.max()) + 1
    sums = torch.zeros(groups, vectors.shape[1]).index_add_(0, labels, vectors.detach().float().cpu())
    pooled = torch.nn.functional.normalize(sums, dim=-1)  # (G, D)
    return pooled.to(device=vectors.device, dtype=vectors.dtype)


def multivector_bytes(n_vectors: int, dim: int = 128, fmt: str = "float32") -> int:
    """Storage of one page's vectors: ``float32`` (4 B/dim), ``float16`` (2 B/dim) or ``binary`` (1 bit/dim)."""
    per_dim = {"float32": 32, "float16": 16, "bfloat16": 16, "binary": 1}
    if fmt not in per_dim:
        raise ValueError(f"fmt must be one of {sorted(per_dim)}, got {fmt!r}")
    return n_vectors * -(-dim * per_dim[fmt] // 8)
