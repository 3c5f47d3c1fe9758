"""The log-sum-exp part of InfoNCE, tile by tile: memory linear in the batch, not quadratic.

The CLIP loss is ``(mean_i r_i + mean_j c_j) / 2 - mean_i z_ii`` with
``z = s · x yᵀ + b`` and ``r_i = logsumexp_j z_ij`` (image → texts), ``c_j =
logsumexp_i z_ij`` (text → images). The diagonal is ``O(N·D)``; the two log-sum-exps
are what a dense loss builds the ``N × N`` matrix for. Here they are computed over
``chunk × chunk`` tiles of ``z``, never more than one tile alive:

- **Online log-sum-exp** (the trick FlashAttention uses for its softmax). A row's
  log-sum-exp is accumulated tile by tile as a running maximum ``m`` and a running
  sum ``l = Σ exp(z - m)``; when a tile raises the maximum to ``m'``, the sum so far is
  rescaled by ``exp(m - m')``. At the end ``r = m + log l``, exactly (no
  approximation, and no overflow: every exponent is ≤ 0). Rows run across the tiles of
  one row block, columns across the row blocks, so both directions are online.
- **Hand-written backward.** With ``P = exp(z - r)`` (row softmax) and ``Q = exp(z -
  c)`` (column softmax) and the loss weights ``w_r``, ``w_c``, the gradient of
  ``w_r Σ r + w_c Σ c`` with respect to ``z`` is ``G = w_r P + w_c Q``; then ``∂/∂x = s
  G y``, ``∂/∂y = s Gᵀ x``, ``∂/∂s = Σ_i x_i · (G y)_i``, ``∂/∂b = Σ G``. The backward pass
  recomputes each tile of ``z`` from the saved ``x``, ``y`` and the ``N + M`` saved
  log-sum-exps: one more matrix multiply than autograd's dense version, in exchange
  for ``O(chunk²)`` memory instead of several ``N × N`` buffers.

Inf-CL (Inf-CLIP, arXiv 2410.17243) scales contrastive batches this way.
"""
from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["tiled_logsumexp_sum"]


def _spans(n: int, chunk: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk, n)) for start in range(0, n, chunk)]


def _tile(x_block, y_block, scale, bias, out):
    """``z = s · x yᵀ + b`` for one tile, written into ``out`` (a reused buffer)."""
    z = torch.mm(x_block, y_block.T, out=out)  # (ci, cj) cosines
    z.mul_(scale)
    return z if bias is None else z.add_(bias)


def _buffer(store: dict, key: str, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
    """A ``(rows, cols)`` view of a flat scratch buffer kept in ``store`` (tiles at the edges are smaller)."""
    flat = store.get(key)
    if flat is None or flat.numel() < rows * cols:
        flat = store[key] = torch.empty(rows * cols, dtype=like.dtype, device=like.device)
    return flat[:rows * cols].view(rows, cols)


def _online_update(run_max, run_sum, z, dim, scratch):
    """Fold one tile into running (max, sum of exp) along ``dim`` (1: rows, 0: columns), in place."""
    new_max = torch.maximum(run_max, z.amax(dim=dim))  # (k,)
    shift = new_max.unsqueeze(dim)  # (ci, 1) or (1, cj)
    tile_sum = torch.sub(z, shift, out=scratch).exp_().sum(dim=dim)  # (k,) every exponent <= 0
    run_sum.mul_(torch.exp(run_max - new_max)).add_(tile_sum)  # rescale what was summed before
    run_max.copy_(new_max)


def _over_row_blocks(spans, work, new_state, device) -> list[dict]:
    """Run ``work(i0, i1, state)`` for every row block; return each worker's ``state``.

    On a CPU with several torch threads, row blocks go to worker threads that each run
    single-threaded torch ops (as :func:`mmcourse.retrieval.maxsim` does): a tile is
    small, and torch's own threads would meet at a barrier after every one of the
    dozen operations per tile — which stalls whenever another program holds a core.
    A worker's ``state`` keeps what it sums over its blocks (column statistics, a
    gradient); the caller combines the states.
    """
    threads = torch.get_num_threads()
    workers = min(threads, len(spans)) if device.type == "cpu" else 1
    if workers <= 1:
        state = new_state()
        for i0, i1 in spans:
            work(i0, i1, state)
        return [state]
    pending = queue.SimpleQueue()
    for span in spans:
        pending.put(span)

    def worker():
        torch.set_num_threads(1)
        state = new_state()
        try:
            with torch.no_grad():  # grad mode is per thread: no graph in the workers
                while True:
                    try:
                        i0, i1 = pending.get_nowait()
                    except queue.Empty:
                        return state
                    work(i0, i1, state)
        finally:
            torch.set_num_threads(threads)

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
        return [f.result() for f in futures]


class TiledLogSumExp(torch.autograd.Function):
    """``w_r Σ_i logsumexp_j z_ij + w_c Σ_j logsumexp_i z_ij``, ``z = s · x yᵀ + b``, in tiles.

    ``x`` ``(N, D)``, ``y`` ``(M, D)``, ``scale`` and ``bias`` 0-d tensors (``bias`` may be
    ``None``), ``chunk`` the tile side, ``row_weight`` / ``col_weight`` Python floats (0
    skips that direction). First derivatives only.
    """

    @staticmethod
    def forward(ctx, x, y, scale, bias, chunk, row_weight, col_weight):
        n, m = x.shape[0], y.shape[0]
        rows_on, cols_on = row_weight != 0, col_weight != 0
        row_max = x.new_full((n,), float("-inf"))
        row_sum = x.new_zeros(n)
        col_spans = _spans(m, chunk)

        def new_state():  # a worker's running column statistics and its scratch tiles
            return {"col_max": y.new_full((m,), float("-inf")), "col_sum": y.new_zeros(m)}

        def work(i0, i1, state):
            for j0, j1 in col_spans:
                z = _tile(x[i0:i1], y[j0:j1], scale, bias, _buffer(state, "z", i1 - i0, j1 - j0, x))  # (ci, cj)
                scratch = _buffer(state, "e", i1 - i0, j1 - j0, x)
                if rows_on:  # this block's rows: online across its column tiles
                    _online_update(row_max[i0:i1], row_sum[i0:i1], z, 1, scratch)
                if cols_on:  # columns: online across the row blocks this worker sees
                    _online_update(state["col_max"][j0:j1], state["col_sum"][j0:j1], z, 0, scratch)

        states = _over_row_blocks(_spans(n, chunk), work, new_state, x.device)
        row_lse = row_max + row_sum.log()  # (N,)
        col_lse = torch.logsumexp(torch.stack([st["col_max"] + st["col_sum"].log() for st in states]), dim=0)  # (M,)
        total = x.new_zeros(())
        if rows_on:
            total = total + row_weight * row_lse.sum()
        if cols_on:
            total = total + col_weight * col_lse.sum()
        ctx.chunk, ctx.weights, ctx.has_bias = chunk, (row_weight, col_weight), bias is not None
        ctx.save_for_backward(x, y, scale, bias if bias is not None else scale, row_lse, col_lse)
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, y, scale, bias, row_lse, col_lse = ctx.saved_tensors
        bias = bias if ctx.has_bias else None
        row_weight, col_weight = ctx.weights
        need_x, need_y, need_s, need_b = ctx.needs_input_grad[:4]
        gy = torch.zeros_like(x)  # (N, D) accumulates G y, each row block by one worker
        col_spans = _spans(y.shape[0], ctx.chunk)

        def new_state():  # a worker's share of Gᵀ x (summed over its row blocks) and of Σ G
            return {"gx": torch.zeros_like(y) if need_y else None, "g_sum": x.new_zeros(())}

        def work(i0, i1, state):
            for j0, j1 in col_spans:
                z = _tile(x[i0:i1], y[j0:j1], scale, bias, _buffer(state, "z", i1 - i0, j1 - j0, x))  # (ci, cj)
                g = _buffer(state, "g", i1 - i0, j1 - j0, x)  # (ci, cj) dLoss/dz
                if row_weight != 0:
                    torch.sub(z, row_lse[i0:i1, None], out=g).exp_().mul_(row_weight)  # w_r · row softmax
                else:
                    g.zero_()
                if col_weight != 0:
                    g.add_(z.sub_(col_lse[None, j0:j1]).exp_(), alpha=col_weight)  # + w_c · column softmax
                gy[i0:i1].addmm_(g, y[j0:j1])
                if need_y:
                    state["gx"][j0:j1].addmm_(g.T, x[i0:i1])
                if need_b and ctx.has_bias:
                    state["g_sum"] += g.sum()

        states = _over_row_blocks(_spans(x.shape[0], ctx.chunk), work, new_state, x.device)
        grad_s = grad_out * (x * gy).sum() if need_s else None
        grad_x = gy.mul_(grad_out * scale) if need_x else None
        grad_y = None
        if need_y:
            grad_y = states[0]["gx"]
            for st in states[1:]:
                grad_y.add_(st["gx"])
            grad_y.mul_(grad_out * scale)
        grad_b = grad_out * sum(st["g_sum"] for st in states) if (need_b and ctx.has_bias) else None
        return grad_x, grad_y, grad_s, grad_b, None, None, None


def tiled_logsumexp_sum(x, y, scale, bias, chunk: int, row_weight: float, col_weight: float) -> torch.Tensor:
    """``row_weight · Σ_i logsumexp_j z_ij + col_weight · Σ_j logsumexp_i z_ij`` with ``z = scale · x yᵀ + bias``,
    computed in ``chunk × chunk`` tiles (memory ``O(chunk²)``), differentiable in ``x``, ``y``, ``scale``, ``bias``."""
    return TiledLogSumExp.apply(x, y, scale, bias, chunk, row_weight, col_weight)
