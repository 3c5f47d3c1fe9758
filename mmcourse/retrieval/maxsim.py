"""Late interaction (ColBERT / ColPali MaxSim): exact, chunked, any dtype, any device.

A query is a set of token vectors ``(Tq, D)``, a document (a page) a set of patch
vectors ``(Tp, D)``. Their score is::

    score(q, p) = sum over query tokens i of  max over patches j of  <q_i, p_j>

:func:`maxsim` computes it for every (query, page) pair as one big matrix multiply of
*all* query tokens against a chunk of *all* patches, followed by a max over each
page's patches and a sum over each query's tokens. Only one chunk of similarities
is alive at a time, so peak memory stays bounded however many pages there are.

Padding is masked with ``-inf`` before the max, never with zeros: when every real
similarity of a token is negative, a zero-padded patch would win the max and
silently raise the score. :func:`maxsim_naive` is the per-pair loop the tests
compare against.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch

__all__ = ["maxsim", "maxsim_naive", "pad_multivectors", "pool_tokens", "multivector_bytes"]

MultiVectors = Union[torch.Tensor, Sequence[torch.Tensor]]

_DEFAULT_CHUNK_BYTES = 16 * 2**20  # similarities alive at once: 16 MiB (cache-friendly, bounded)
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


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
    for v in (*queries[:1], *documents[:1]):
        if v.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"expected floating-point vectors (float32/float16/bfloat16), got {v.dtype}")
    return dims.pop()


def maxsim(
    queries: MultiVectors,
    documents: MultiVectors,
    *,
    query_mask: torch.Tensor | None = None,
    document_mask: torch.Tensor | None = None,
    chunk_bytes: int = _DEFAULT_CHUNK_BYTES,
    dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Late-interaction scores ``(Nq, Nd)``, float32: ``sum_i max_j <q_i, d_j>`` for every pair.

    ``queries`` / ``documents``: a list of ``(T_i, D)`` tensors (lengths may differ), or a
    padded ``(N, T, D)`` tensor with an optional boolean ``*_mask`` ``(N, T)`` (True = real).
    ``chunk_bytes`` bounds the similarity block computed at once (pages are streamed in
    chunks; queries too when there are very many tokens). ``dtype`` is the compute dtype
    (default: the inputs' promoted dtype; float16/bfloat16 halve memory, accumulation of the
    per-token maxima is float32). ``device`` defaults to the queries' device; pages are moved
    there chunk by chunk, so a CPU-resident corpus can be scored on a GPU.
    Differentiable (used as the training score of ``course/colpali-pages``).
    """
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
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")

    q_lengths = [int(v.shape[0]) for v in qs]
    q_all = torch.cat([v.to(device=device, dtype=dtype) for v in qs])  # (sum Tq, D)
    owner = torch.repeat_interleave(torch.arange(len(qs), device=device),
                                    torch.tensor(q_lengths, device=device))  # (sum Tq,) query of each token
    elem = torch.empty((), dtype=dtype).element_size()
    d_lengths = [int(v.shape[0]) for v in ds]
    budget = max(1, chunk_bytes // elem)  # similarities per block

    # Queries: one block unless even a single longest page times all tokens would exceed the budget.
    q_blocks = _blocks(q_lengths, max(1, budget // max(d_lengths)))
    needs_grad = torch.is_grad_enabled() and any(v.requires_grad for v in (*qs, *ds))
    workspace = None if needs_grad else {}  # reused buffers: no allocation (and no page faults) per chunk
    scores = []
    for q0, q1 in q_blocks:
        t0, t1 = sum(q_lengths[:q0]), sum(q_lengths[:q1])
        q_block = q_all[t0:t1]  # (Tb, D)
        tokens = t1 - t0
        row = []
        for d0, d1 in _blocks(d_lengths, max(1, budget // tokens)):
            row.append(_score_chunk(q_block, ds[d0:d1], d_lengths[d0:d1], device, dtype, workspace))  # (Tb, n)
        per_token = torch.cat(row, dim=1)  # (Tb, Nd) float32 max per token and page
        summed = torch.zeros(q1 - q0, len(ds), device=device, dtype=torch.float32)
        scores.append(summed.index_add(0, owner[t0:t1] - q0, per_token))  # (qb, Nd)
    return torch.cat(scores, dim=0)  # (Nq, Nd)


def _blocks(lengths: list[int], capacity: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` item ranges whose total length stays within ``capacity``."""
    blocks, start, total = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and total + n > capacity:
            blocks.append((start, i))
            start, total = i, 0
        total += n
    blocks.append((start, len(lengths)))
    return blocks


def _buffer(workspace, key, numel, device, dtype) -> torch.Tensor:
    """A flat scratch tensor of at least ``numel`` elements, kept in ``workspace`` between chunks."""
    buf = workspace.get(key)
    if buf is None or buf.numel() < numel:
        buf = workspace[key] = torch.empty(numel, device=device, dtype=dtype)
    return buf[:numel]


def _score_chunk(q_block, docs, lengths, device, dtype, workspace) -> torch.Tensor:
    """Per-token maxima ``(Tb, n)`` of one query block against one chunk of pages.

    All patches of the chunk go into one ``(n*L, D)`` matrix, so the similarities are a
    single matrix multiply ``(Tb, D) @ (D, n*L)``; a view ``(Tb, n, L)`` then takes the max
    over each page's patches. Pages shorter than the chunk's longest are padded and
    the padding is set to ``-inf`` before the max.
    """
    n, longest, dim = len(docs), max(lengths), q_block.shape[1]
    ragged = any(length != longest for length in lengths)
    docs = [d.to(device=device, dtype=dtype) for d in docs]
    if workspace is None:  # autograd path: functional ops only
        patches = (torch.nn.utils.rnn.pad_sequence(docs, batch_first=True) if ragged
                   else torch.stack(docs)).reshape(n * longest, dim)  # (n*L, D)
        sims = (q_block @ patches.T).view(-1, n, longest)  # (Tb, n, L)
    else:  # inference path: copy pages into a reused buffer, multiply into a reused buffer
        patches = _buffer(workspace, "patches", n * longest * dim, device, dtype).view(n, longest, dim)
        if ragged:
            patches.zero_()
            for i, d in enumerate(docs):
                patches[i, : d.shape[0]] = d
        else:
            torch.cat(docs, out=patches.view(n * longest, dim))
        out = _buffer(workspace, "sims", q_block.shape[0] * n * longest, device, dtype)
        sims = torch.mm(q_block, patches.view(n * longest, dim).T,
                        out=out.view(-1, n * longest)).view(-1, n, longest)  # (Tb, n, L)
    if ragged:
        real = torch.arange(longest, device=device)[None, :] < torch.tensor(lengths, device=device)[:, None]
        sims = sims.masked_fill(~real[None], float("-inf"))  # padding can never win the max
    return sims.amax(dim=2).float()  # (Tb, n)


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

    if not isinstance(pool_factor, int) or isinstance(pool_factor, bool) or pool_factor < 1:
        raise ValueError(f"pool_factor must be a positive integer, got {pool_factor!r}")
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
