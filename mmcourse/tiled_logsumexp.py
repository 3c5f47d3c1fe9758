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
        col_max = y.new_full((m,), float("-inf"))
        col_sum = y.new_zeros(m)
        store = {}
        for i0, i1 in _spans(n, chunk):
            for j0, j1 in _spans(m, chunk):
                z = _tile(x[i0:i1], y[j0:j1], scale, bias, _buffer(store, "z", i1 - i0, j1 - j0, x))  # (ci, cj)
                scratch = _buffer(store, "e", i1 - i0, j1 - j0, x)
                if rows_on:
                    _online_update(row_max[i0:i1], row_sum[i0:i1], z, 1, scratch)
                if cols_on:
                    _online_update(col_max[j0:j1], col_sum[j0:j1], z, 0, scratch)
        row_lse = row_max + row_sum.log()  # (N,)
        col_lse = col_max + col_sum.log()  # (M,)
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
        gy = torch.zeros_like(x)  # (N, D) accumulates G y
        gx = torch.zeros_like(y) if need_y else None  # (M, D) accumulates Gᵀ x
        g_sum = x.new_zeros(())
        store = {}
        for i0, i1 in _spans(x.shape[0], ctx.chunk):
            for j0, j1 in _spans(y.shape[0], ctx.chunk):
                z = _tile(x[i0:i1], y[j0:j1], scale, bias, _buffer(store, "z", i1 - i0, j1 - j0, x))  # (ci, cj)
                g = _buffer(store, "g", i1 - i0, j1 - j0, x)  # (ci, cj) dLoss/dz
                if row_weight != 0:
                    torch.sub(z, row_lse[i0:i1, None], out=g).exp_().mul_(row_weight)  # w_r · row softmax
                else:
                    g.zero_()
                if col_weight != 0:
                    g.add_(z.sub_(col_lse[None, j0:j1]).exp_(), alpha=col_weight)  # + w_c · column softmax
                gy[i0:i1].addmm_(g, y[j0:j1])
                if need_y:
                    gx[j0:j1].addmm_(g.T, x[i0:i1])
                if need_b and ctx.has_bias:
                    g_sum += g.sum()
        grad_s = grad_out * (x * gy).sum() if need_s else None
        grad_x = gy.mul_(grad_out * scale) if need_x else None
        grad_y = gx.mul_(grad_out * scale) if need_y else None
        grad_b = grad_out * g_sum if (need_b and ctx.has_bias) else None
        return grad_x, grad_y, grad_s, grad_b, None, None, None


def tiled_logsumexp_sum(x, y, scale, bias, chunk: int, row_weight: float, col_weight: float) -> torch.Tensor:
    """``row_weight · Σ_i logsumexp_j z_ij + col_weight · Σ_j logsumexp_i z_ij`` with ``z = scale · x yᵀ + bias``,
    computed in ``chunk × chunk`` tiles (memory ``O(chunk²)``), differentiable in ``x``, ``y``, ``scale``, ``bias``."""
    return TiledLogSumExp.apply(x, y, scale, bias, chunk, row_weight, col_weight)
