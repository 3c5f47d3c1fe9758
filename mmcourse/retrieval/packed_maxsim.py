"""A MaxSim index: documents packed once into one buffer, scored at memory speed.

:func:`~mmcourse.retrieval.maxsim` takes lists of tensors and re-stacks every chunk
of pages on each call: fine for a batch of queries, where the products dominate, but
for **one query** the copy is as costly as the work. A search engine answers one
query at a time, so :class:`MaxSimIndex` does the preparation once:

1. Pages are sorted by length and cut into **blocks** of at most ``block_rows``
   patches. Within a block every page is padded to the block's longest page with
   copies of its own last patch (a duplicate never changes a max; sorting keeps this
   padding to a few percent), and the whole corpus is stored as one contiguous
   ``(rows, D)`` buffer, optionally in float16 / bfloat16 (half the bytes).
2. Scoring a query ``(Tq, D)`` is, per block, one matrix multiply of the block's
   stored rows ``(n·L, D)`` with the query's tokens ``(D, Tq)`` (a block of half-
   precision rows is first widened to float32 in a small per-worker buffer, so the
   products and sums are float32), then a view ``(n, L, Tq)`` and ``amax`` over
   ``L``: the segmented max, with no per-page Python work, then a sum over each
   query's tokens. Worker threads (one per torch thread) take blocks in turn.

Nothing in the corpus is copied per query, and the memory a query needs is a few
blocks' worth per worker: independent of the number of pages.

**Bytes versus FLOPs.** One query of ``Tq`` tokens does ``2·Tq`` FLOPs per stored
float (4 bytes): ``Tq/2`` FLOP per byte. With ``Tq = 32`` that is 16 FLOP/byte,
close to what a CPU core can do per byte its memory delivers, so a single query is
bound by reading the corpus (and by the multiply's efficiency); 32 queries at once
reuse each byte 32 times and are bound by arithmetic alone.

**Exactness.** With float32 storage the scores equal the per-pair loop
(:func:`~mmcourse.retrieval.maxsim_naive`) up to float32 rounding of the dot products
(the tests use 1e-5 for unit vectors). With half-precision storage only the stored
page vectors are rounded (unit roundoff ``u = 2**-11`` for float16, ``2**-8`` for
bfloat16); every dot product then moves by at most ``u·‖q_i‖·‖d_j‖``, so each score
moves by at most ``Tq · u · max‖q_i‖ · max‖d_j‖`` — for unit vectors and 32 query
tokens 0.016 (float16) or 0.125 (bfloat16); :meth:`MaxSimIndex.tolerance` returns it.
"""
from __future__ import annotations

import torch

from ..validate import positive_int
from .maxsim import MultiVectors, PackedPages, _as_list, _blocks, _buffer, _check, _run_chunks

__all__ = ["MaxSimIndex"]

_STORAGE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
_SIMS_BYTES = 2 * 2**20  # similarities alive at once per worker (query tokens are sliced to stay within it)


class MaxSimIndex(PackedPages):
    """Pages packed once for fast late-interaction scoring (see the module docstring).

    ``documents``: a list of ``(T_i, D)`` tensors, or a padded ``(N, T, D)`` tensor with
    ``document_mask`` ``(N, T)`` (True = real patch). ``dtype``: the storage dtype,
    float32 (exact), float16 or bfloat16 (half the memory, scores within
    :meth:`tolerance`). ``block_rows``: patches per block (a page longer than that gets
    a block of its own). Non-finite page vectors are rejected here, once.

    >>> index = MaxSimIndex(pages)                    # doctest: +SKIP
    >>> index.scores([query])                          # (1, N) float32, as maxsim([query], pages)
    """

    def __init__(self, documents: MultiVectors, *, document_mask: torch.Tensor | None = None,
                 dtype: torch.dtype = torch.float32, block_rows: int = 4096):
        if dtype not in _STORAGE_DTYPES:
            raise TypeError(f"dtype (the storage dtype) must be one of float32, float16, bfloat16; got {dtype}")
        block_rows = positive_int(block_rows, "block_rows")
        docs = _as_list(documents, document_mask, "documents")
        self.dim = _check([docs[0]], docs)  # (dims and dtypes of every page)
        lengths = [int(d.shape[0]) for d in docs]
        self.order = sorted(range(len(docs)), key=lambda i: lengths[i])  # storage position -> page
        sorted_lengths = [lengths[i] for i in self.order]
        self.dtype = dtype
        self.device = docs[0].device
        self.blocks = []  # (first page, end page, first row, padded length), in storage order
        parts, row = [], 0
        for p0, p1 in _blocks(sorted_lengths, block_rows, padded=True):
            longest = sorted_lengths[p1 - 1]
            for i in self.order[p0:p1]:
                page = docs[i].to(device=self.device, dtype=dtype)  # (T_i, D)
                pad = longest - page.shape[0]
                parts.append(page if pad == 0 else torch.cat([page, page[-1:].expand(pad, -1)]))  # (L, D)
            self.blocks.append((p0, p1, row, longest))
            row += (p1 - p0) * longest
        self.packed = torch.cat(parts)  # (rows, D) the whole corpus, one buffer
        if not bool(torch.isfinite(self.packed).all()):  # one pass; name the page only when it fails
            bad = next((i for i, d in enumerate(docs) if not bool(torch.isfinite(d).all())), None)
            if bad is None:
                raise ValueError(f"documents: values beyond the range of {dtype}; store them as float32 "
                                 f"or normalise the vectors")
            raise ValueError(f"documents: item {bad} contains NaN or inf; every page vector must be finite")
        self.n_real_rows = sum(lengths)
        position = torch.empty(len(docs), dtype=torch.long)
        position[torch.tensor(self.order)] = torch.arange(len(docs))
        self.position = position  # page -> storage position

    def __len__(self) -> int:
        return len(self.order)

    def __repr__(self) -> str:
        return (f"MaxSimIndex({len(self)} pages, D={self.dim}, {self.dtype}, {len(self.blocks)} blocks, "
                f"{self.nbytes / 2**20:.1f} MiB, padding {self.padding_fraction:.1%})")

    @property
    def nbytes(self) -> int:
        """Bytes of the packed corpus (what one query reads)."""
        return self.packed.numel() * self.packed.element_size()

    @property
    def padding_fraction(self) -> float:
        """Stored rows that are duplicates added to make blocks rectangular, as a fraction of all rows."""
        return 1 - self.n_real_rows / self.packed.shape[0]

    def tolerance(self, queries: MultiVectors) -> float:
        """Largest possible |score − exact float32 score| from the storage rounding, for these queries."""
        qs = _as_list(queries, None, "queries")
        longest = max(int(q.shape[0]) for q in qs)
        q_norm = max(float(q.float().norm(dim=1).max()) for q in qs)
        d_norm = float(self.packed.float().norm(dim=1).max()) if self.dtype != torch.float32 else 0.0
        return longest * _UNIT_ROUNDOFF[self.dtype] * q_norm * d_norm

    def scores(self, queries: MultiVectors, *, query_mask: torch.Tensor | None = None) -> torch.Tensor:
        """MaxSim scores ``(Nq, N)``, float32, pages in the order they were given (no gradients)."""
        qs = _as_list(queries, query_mask, "queries")
        _check(qs, [self.packed[:1]])
        for i, q in enumerate(qs):
            if not bool(torch.isfinite(q).all()):
                raise ValueError(f"queries: item {i} contains NaN or inf; every query vector must be finite")
        q_lengths = [int(q.shape[0]) for q in qs]
        tokens = torch.cat([q.to(device=self.device, dtype=torch.float32) for q in qs])  # (Tq total, D)
        owner = torch.repeat_interleave(torch.arange(len(qs), device=self.device),
                                        torch.tensor(q_lengths, device=self.device))  # (Tq total,)
        # query tokens in slices of whole queries, so that a block's similarities stay small
        biggest_block = max((p1 - p0) * length for p0, p1, _, length in self.blocks)
        slices = _blocks(q_lengths, max(1, _SIMS_BYTES // 4 // biggest_block))  # whole queries per slice
        starts = [0]
        for n in q_lengths:
            starts.append(starts[-1] + n)
        out = torch.empty(len(qs), len(self), device=self.device)  # (Nq, N) in storage order

        def run(block, workspace):
            p0, p1, r0, length = block
            rows = self.packed[r0:r0 + (p1 - p0) * length]  # (n·L, D)
            if self.dtype != torch.float32:  # widen in a reused buffer: float32 products and sums
                rows = _buffer(workspace, "wide", tuple(rows.shape), self.device, torch.float32).copy_(rows)
            for q0, q1 in slices:
                t0, t1 = starts[q0], starts[q1]
                sims = torch.mm(rows, tokens[t0:t1].T,
                                out=_buffer(workspace, "sims", (rows.shape[0], t1 - t0), self.device,
                                            torch.float32))  # (n·L, Tb)
                best = sims.view(p1 - p0, length, t1 - t0).amax(dim=1)  # (n, Tb) each token's best patch
                if q1 - q0 == 1:
                    out[q0, p0:p1] = best.sum(dim=1)
                else:
                    summed = torch.zeros(p1 - p0, q1 - q0, device=self.device)  # (n, qb)
                    out[q0:q1, p0:p1] = summed.index_add_(1, owner[t0:t1] - q0, best).T

        with torch.inference_mode():
            _run_chunks(self.blocks, run, self.device)
        return out[:, self.position.to(self.device)]  # (Nq, N) pages back in the caller's order
