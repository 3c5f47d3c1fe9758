"""Contrastive losses, all with open_clip's signature
``(image_features, text_features, logit_scale, logit_bias=None)``.

``logit_scale`` is the multiplier (the exp of the learned log-temperature, so
``1/temperature``, e.g. 100), as in open_clip; it must be positive (a negative one
would rank the least similar pair first). ``logit_bias`` is an additive scalar. Both
may be Python numbers or (learnable) 0-d tensors. Features are expected
L2-normalised, ``(N, D)`` each, floating point and of one dtype, row ``i`` of one
matching row ``i`` of the other.

- :func:`clip_loss` — symmetric InfoNCE (CLIP, Radford et al. 2021), with
  ``chunk_size`` to compute it in tiles with an online log-sum-exp and a hand-written
  backward (:mod:`mmcourse.tiled_logsumexp`): memory ``O(N·D + chunk²)``, never ``N × N``;
- :func:`siglip_loss` — pairwise sigmoid loss (SigLIP, Zhai et al. 2023), with
  ``chunk_size`` to bound memory by ``N × chunk_size`` instead of ``N × N``;
- :func:`distributed_clip_loss` / :func:`distributed_siglip_loss` — the same losses
  over the global batch of a ``torch.distributed`` job (all-gather for CLIP, a ring
  of neighbour exchanges of text features for SigLIP);
- :class:`ClipLoss` / :class:`SigLipLoss` — ``nn.Module`` wrappers that own a
  learnable temperature (and bias) with the papers' initial values.

Two identities keep these fast (and are checked against open_clip in the tests):

- InfoNCE with labels on the diagonal is ``mean(logsumexp(rows)) - mean(diag)``
  (and the same for columns), so one ``N × N`` matrix serves both directions and the
  diagonal is a row-wise dot product, ``O(N·D)``;
- ``-log σ(z) = softplus(-z)`` and ``softplus(z) - softplus(-z) = z``, so the sigmoid
  loss is ``(Σ_ij softplus(z_ij) - Σ_i z_ii) / N``: no ``±1`` label matrix at all.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tiled_logsumexp import tiled_logsumexp_sum
from .validate import positive_int

__all__ = [
    "clip_loss",
    "siglip_loss",
    "distributed_clip_loss",
    "distributed_siglip_loss",
    "ClipLoss",
    "SigLipLoss",
    "CLIP_INIT_TEMPERATURE",
    "CLIP_MAX_LOGIT_SCALE",
    "SIGLIP_INIT_LOGIT_SCALE",
    "SIGLIP_INIT_LOGIT_BIAS",
]

CLIP_INIT_TEMPERATURE = 0.07  # CLIP paper: t = log(1/0.07) learned, used as exp(t)
CLIP_MAX_LOGIT_SCALE = 100.0  # CLIP paper: exp(t) clipped at 100
SIGLIP_INIT_LOGIT_SCALE = 10.0  # SigLIP paper: t' = log 10
SIGLIP_INIT_LOGIT_BIAS = -10.0  # SigLIP paper: b = -10


# ----------------------------------------------------------------------------- checks

def _check_features(image_features, text_features) -> None:
    """Raise for anything but two ``(N, D)`` tensors of one shape (finiteness: :func:`_finite_or_raise`)."""
    for name, x in (("image_features", image_features), ("text_features", text_features)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (N, D), got {type(x).__name__}")
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"{name} must have shape (N, D) with N >= 1, got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got {x.dtype}; "
                            f"embeddings come from an encoder as floats (convert with .float())")
    if image_features.dtype != text_features.dtype:
        raise TypeError(
            f"image_features ({image_features.dtype}) and text_features ({text_features.dtype}) must have "
            f"one dtype; convert one of them, e.g. text_features.to(image_features.dtype)"
        )
    if image_features.shape != text_features.shape:
        raise ValueError(
            "image_features and text_features must have the same shape (N, D), got "
            f"image_features {tuple(image_features.shape)} and text_features {tuple(text_features.shape)}"
        )


def _positive_scale_message(value) -> str:
    return (f"logit_scale must be positive: it is the multiplier of the logits (1/temperature, e.g. 100, "
            f"or exp(t) of a learned log-scale t: pass t.exp(), not t), got {value}")


def _finite_or_raise(loss: torch.Tensor, **inputs) -> torch.Tensor:
    """Return ``loss``; if it is not finite, raise ``ValueError`` naming the first non-finite input.

    A NaN or inf in the features, the scale or the bias always makes the loss non-finite
    (every row meets its own positive pair), so one scalar test covers the common case
    and the exact element check runs only then. A non-finite loss from finite inputs (an
    overflow) is returned as it is. A tensor ``logit_scale`` is checked to be positive in
    the same scalar test (one host sync, as before).
    """
    scale = inputs.get("logit_scale")
    with torch.no_grad():  # one scalar test and one host sync; no autograd bookkeeping
        ok = torch.isfinite(loss) if scale is None else torch.isfinite(loss).logical_and_(scale > 0)
    if ok.item():
        return loss
    if isinstance(scale, torch.Tensor) and bool(torch.isfinite(scale.detach())) and not bool(scale.detach() > 0):
        raise ValueError(_positive_scale_message(scale.item()))
    if bool(torch.isfinite(loss.detach())):
        return loss
    for name, x in inputs.items():
        if not isinstance(x, torch.Tensor):
            continue
        bad = int((~torch.isfinite(x.detach())).sum())
        if bad and x.numel() == 1:
            raise ValueError(f"{name} must be finite, got {x.item()}")
        if bad:
            raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); check the encoder's output")
    return loss


def _as_scalar(value, like: torch.Tensor, name: str) -> torch.Tensor:
    """A 0-d tensor on ``like``'s device and dtype (keeps the autograd graph); a Python number must be finite."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # fast path: no tensor op to check
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        if name == "logit_scale" and not value > 0:
            raise ValueError(_positive_scale_message(value))
        return torch.tensor(float(value), dtype=like.dtype, device=like.device)
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and not value.is_floating_point()):
        raise TypeError(f"{name} must be a real number or a floating-point 0-d tensor, got {value!r}")
    if isinstance(value, torch.Tensor) and value.ndim == 0 and value.dtype == like.dtype and value.device == like.device:
        return value  # already what the loss needs (the common case: a learned scale's exp())
    t = torch.as_tensor(value, device=like.device)
    if t.numel() != 1:
        raise ValueError(f"{name} must be a scalar (number or 1-element tensor), got shape {tuple(t.shape)}")
    return t.reshape(()).to(like.dtype)  # finiteness: checked on the loss (_finite_or_raise)


# ----------------------------------------------------------------------------- CLIP

def clip_loss(image_features, text_features, logit_scale, logit_bias=None, *, chunk_size=None):
    """Symmetric InfoNCE: cross-entropy image→text and text→image, averaged.

    Row ``i`` of the logit matrix ``z = logit_scale · x yᵀ (+ logit_bias)`` should pick
    column ``i`` (and column ``i`` row ``i``). Uses one ``(N, N)`` matrix for both
    directions: ``CE(rows) = mean_i(logsumexp_j z_ij - z_ii)``.

    ``chunk_size``: compute the log-sum-exps in ``chunk_size × chunk_size`` tiles with an
    online log-sum-exp and a hand-written backward (:mod:`mmcourse.tiled_logsumexp`), so
    the ``(N, N)`` matrix never exists: peak extra memory two ``chunk_size²`` tiles per
    worker thread plus ``(N, D)`` gradient buffers (one more per worker). Same value and gradients as the dense loss up to
    float rounding; one more matrix multiply of compute.
    """
    _check_inputs(image_features, text_features, chunk_size)
    scale = _as_scalar(logit_scale, image_features, "logit_scale")
    if chunk_size is not None:
        return _tiled_clip_loss(image_features, text_features, scale, logit_bias, chunk_size)
    logits = (scale * image_features) @ text_features.T  # (N, N)
    positives = scale * (image_features * text_features).sum(dim=1)  # (N,) the diagonal
    bias = None if logit_bias is None else _as_scalar(logit_bias, image_features, "logit_bias")
    if bias is not None:  # a constant shift cancels in softmax, but keep it for parity
        logits = logits + bias
        positives = positives + bias
    per_image = torch.logsumexp(logits, dim=1)  # (N,) image -> all texts
    per_text = torch.logsumexp(logits, dim=0)  # (N,) text -> all images
    loss = (per_image.mean() + per_text.mean()) / 2 - positives.mean()
    return _finite_or_raise(loss, image_features=image_features, text_features=text_features, logit_scale=scale,
                            logit_bias=bias)


def _tiled_clip_loss(image_features, text_features, scale, logit_bias, chunk_size):
    """:func:`clip_loss` with the two log-sum-exps computed tile by tile (both directions online)."""
    n = image_features.shape[0]
    bias = None if logit_bias is None else _as_scalar(logit_bias, image_features, "logit_bias")
    lse = tiled_logsumexp_sum(image_features, text_features, scale, bias, min(chunk_size, n), 0.5 / n, 0.5 / n)
    positives = scale * (image_features * text_features).sum(dim=1)  # (N,) the diagonal
    loss = lse - positives.mean() - (0 if bias is None else bias)
    return _finite_or_raise(loss, image_features=image_features, text_features=text_features, logit_scale=scale,
                            logit_bias=bias)


# ----------------------------------------------------------------------------- SigLIP

class _DenseSoftplusSum(torch.autograd.Function):
    """``Σ_ij softplus(z_ij)`` (minus ``Σ_i z_ii`` when ``positives``), ``z = s · x yᵀ + b``.

    The dense sigmoid loss with a hand-written backward that works on one logit buffer:
    the forward pass scales and shifts the matmul's output in place and keeps it; the
    backward pass turns it into ``G = σ(z)`` in place (minus 1 on the diagonal for
    positives), then ``∂/∂x = s·G y``, ``∂/∂y = s·Gᵀ x``, ``∂/∂s = Σ_i x_i·(G y)_i`` and
    ``∂/∂b = ΣG``. Autograd would instead keep ``z``, build a gradient matrix for the
    softplus, another for the diagonal and add them: three ``(N, M)`` buffers where this
    needs one. The logits are saved with ``save_for_backward`` (saved-tensor hooks, e.g.
    offloading, see them). Only first derivatives; a second backward through the same
    graph (``retain_graph=True``) recomputes ``z``.
    """

    @staticmethod
    def _logits(x, y, scale, bias):
        z = x @ y.T  # (N, M) cosines
        z.mul_(scale)  # in place: one (N, M) buffer for the logits
        return z if bias is None else z.add_(bias)

    @staticmethod
    def forward(ctx, x, y, scale, bias, positives):
        z = _DenseSoftplusSum._logits(x, y, scale, bias)  # (N, M)
        total = F.softplus(z).sum()
        if positives:  # softplus(-z) = softplus(z) - z: the diagonal pairs become positives
            total = total - z.diagonal().sum()
        ctx.positives, ctx.has_bias, ctx.logits_used = positives, bias is not None, False
        ctx.save_for_backward(x, y, scale, bias if bias is not None else scale, z)
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, y, scale, bias, z = ctx.saved_tensors
        need_x, need_y, need_s, need_b = ctx.needs_input_grad[:4]
        if ctx.logits_used:  # a second backward through this graph (retain_graph): recompute
            z = _DenseSoftplusSum._logits(x, y, scale, bias if ctx.has_bias else None)  # (N, M)
        ctx.logits_used = True
        # σ(z) = d softplus(z) / dz, written over the saved logits (through .data, so that a
        # retained graph can still unpack them and then recomputes them, above)
        g = torch.sigmoid_(z.data)  # (N, M)
        if ctx.positives:
            g.diagonal().sub_(1)  # d(-z_ii) / dz_ii = -1
        grad_x = grad_y = grad_s = grad_b = None
        step = grad_out * scale  # chain rule through z = s · x yᵀ + b
        if need_x or need_s:
            gy = g @ y  # (N, D)
            if need_s:
                grad_s = grad_out * (x * gy).sum()
            if need_x:
                grad_x = gy.mul_(step)
        if need_y:
            grad_y = (g.T @ x).mul_(step)  # (M, D)
        if need_b and ctx.has_bias:
            grad_b = grad_out * g.sum()
        return grad_x, grad_y, grad_s, grad_b, None


class _ChunkedSoftplusSum(torch.autograd.Function):
    """``Σ_ij softplus(s · x_i·y_j + b)``, computed ``chunk_size`` texts at a time.

    The forward pass keeps nothing but the inputs; the backward pass recomputes each
    ``(N, chunk)`` block of logits: memory ``O(N · chunk)``, one extra matmul of compute.
    Gradients: with ``G = σ(z)``, ``∂/∂x = s·G y``, ``∂/∂y = s·Gᵀ x``,
    ``∂/∂b = ΣG`` and ``∂/∂s = Σ_i x_i·(G y)_i``.
    """

    @staticmethod
    def forward(ctx, x, y, scale, bias, chunk_size):
        ctx.chunk_size = chunk_size
        ctx.has_bias = bias is not None
        total = x.new_zeros(())
        for start in range(0, y.shape[0], chunk_size):
            z = (x @ y[start:start + chunk_size].T).mul_(scale)  # (N, c); no scaled copy of x
            if bias is not None:
                z += bias
            total += F.softplus(z).sum()
        ctx.save_for_backward(x, y, scale, bias if bias is not None else scale)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        x, y, scale, bias = ctx.saved_tensors
        need_x, need_y, need_s, need_b = ctx.needs_input_grad[:4]
        gy = torch.zeros_like(x)  # (N, D) accumulates G y
        gx = torch.empty_like(y) if need_y else None  # (M, D) rows of Gᵀ x
        gsum = x.new_zeros(())
        for start in range(0, y.shape[0], ctx.chunk_size):
            yc = y[start:start + ctx.chunk_size]  # (c, D)
            g = (x @ yc.T).mul_(scale)  # (N, c)
            if ctx.has_bias:
                g += bias
            g = torch.sigmoid_(g)  # σ(z) = d softplus(z) / dz
            gy.addmm_(g, yc)
            if need_y:
                torch.mm(g.T, x, out=gx[start:start + ctx.chunk_size])  # (c, D)
            if need_b and ctx.has_bias:
                gsum += g.sum()
        grad_x = gy.mul_(grad_out * scale) if need_x and not need_s else None
        grad_s = grad_out * (x * gy).sum() if need_s else None
        if need_x and need_s:
            grad_x = gy * (grad_out * scale)
        grad_y = gx.mul_(grad_out * scale) if need_y else None
        grad_b = grad_out * gsum if (need_b and ctx.has_bias) else None
        return grad_x, grad_y, grad_s, grad_b, None


def _check_chunk_size(chunk_size) -> None:
    positive_int(chunk_size, "chunk_size", optional=True)


def _check_inputs(image_features, text_features, chunk_size) -> None:
    """Every loss's argument checks: paired features, and a positive ``chunk_size`` or None."""
    _check_features(image_features, text_features)
    _check_chunk_size(chunk_size)


def _siglip_sum(x, y, scale, bias, chunk_size, positives: bool):
    """Σ over the pairs of ``x`` × ``y`` of ``-log σ(label · z)``; labels +1 on the diagonal
    when ``positives`` (a rank's own pairs), -1 everywhere else.

    Every pair is first scored as a negative, ``softplus(z)``; then, since
    ``softplus(-z) - softplus(z) = -z``, subtracting the diagonal turns it into positives.
    """
    if chunk_size is not None and chunk_size < y.shape[0]:
        total = _ChunkedSoftplusSum.apply(x, y, scale, bias, chunk_size)
        if positives:
            diagonal = scale * (x * y).sum(dim=1)  # (N,) O(N·D), no N×N matrix
            total = total - (diagonal.sum() + (0 if bias is None else bias * x.shape[0]))
        return total
    return _DenseSoftplusSum.apply(x, y, scale, bias, positives)


def siglip_loss(image_features, text_features, logit_scale, logit_bias=None, *, chunk_size=None):
    """Pairwise sigmoid loss: ``Σ_ij -log σ(label_ij · z_ij) / N`` with label +1 on the
    diagonal and -1 elsewhere, ``z = logit_scale · x yᵀ + logit_bias`` (SigLIP; open_clip).

    ``chunk_size``: process ``chunk_size`` texts at a time, forward and backward, so the
    ``(N, N)`` logit matrix never exists (peak extra memory ``≈ N × chunk_size``).
    Same value and gradients as the dense loss up to float rounding.
    """
    _check_inputs(image_features, text_features, chunk_size)
    scale = _as_scalar(logit_scale, image_features, "logit_scale")
    bias = None if logit_bias is None else _as_scalar(logit_bias, image_features, "logit_bias")
    total = _siglip_sum(image_features, text_features, scale, bias, chunk_size, positives=True)
    return _finite_or_raise(total / image_features.shape[0], image_features=image_features,
                            text_features=text_features, logit_scale=scale, logit_bias=bias)


# ----------------------------------------------------------------------------- distributed

def _world():
    """``(rank, world_size)`` of the default process group, or ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather_no_grad(x: torch.Tensor, world_size: int) -> list[torch.Tensor]:
    import torch.distributed as dist

    parts = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    return parts


def distributed_clip_loss(image_features, text_features, logit_scale, logit_bias=None, *,
                          gather_with_grad=True, local_loss=False, chunk_size=None):
    """CLIP loss over the global batch of a ``torch.distributed`` job (open_clip's ``ClipLoss``).

    Every rank passes its local ``(n, D)`` features; they are all-gathered into the
    global ``(world·n, D)`` batch, so each image competes with ``world·n`` texts.

    - ``gather_with_grad=True``: gradients flow back through the gather to the rank
      that produced the features. Each rank's feature gradient is then the sum over
      ranks' losses; with DDP's averaging this equals the single-process gradient.
    - ``gather_with_grad=False``: gathered copies are constants; each rank's own slice is
      put back with its graph so the local features still get gradients (equal to the
      single-process gradient only when ``local_loss=False``).
    - ``local_loss=True``: each rank computes only its own ``n`` rows of the logits
      (``n × world·n`` instead of ``world·n × world·n``); pair it with
      ``gather_with_grad=True`` for exact gradients.

    - ``chunk_size``: the log-sum-exps in tiles (see :func:`clip_loss`), so no rank ever
      holds a ``world·n × world·n`` (or ``n × world·n``) logit matrix.

    The mean of the ranks' losses equals :func:`clip_loss` on the concatenated batch.
    Without an initialised process group (or with one process) this is :func:`clip_loss`.
    """
    _check_inputs(image_features, text_features, chunk_size)
    rank, world = _world()
    if world == 1:
        return clip_loss(image_features, text_features, logit_scale, logit_bias, chunk_size=chunk_size)
    scale = _as_scalar(logit_scale, image_features, "logit_scale")
    if gather_with_grad:
        import torch.distributed.nn as dist_nn

        all_images = torch.cat(dist_nn.all_gather(image_features.contiguous()), dim=0)  # (W·n, D)
        all_texts = torch.cat(dist_nn.all_gather(text_features.contiguous()), dim=0)  # (W·n, D)
    else:
        images, texts = _all_gather_no_grad(image_features, world), _all_gather_no_grad(text_features, world)
        images[rank], texts[rank] = image_features, text_features  # keep the local graph
        all_images, all_texts = torch.cat(images, dim=0), torch.cat(texts, dim=0)  # (W·n, D)
    if not local_loss:
        return clip_loss(all_images, all_texts, scale, logit_bias, chunk_size=chunk_size)
    bias = None if logit_bias is None else _as_scalar(logit_bias, image_features, "logit_bias")
    if chunk_size is not None:  # my rows against every column, each direction as rows of its own product
        n = image_features.shape[0]
        chunk = min(chunk_size, all_texts.shape[0])
        lse = (tiled_logsumexp_sum(image_features, all_texts, scale, bias, chunk, 0.5 / n, 0.0)
               + tiled_logsumexp_sum(text_features, all_images, scale, bias, chunk, 0.5 / n, 0.0))
        positives = scale * (image_features * text_features).sum(dim=1)  # (n,)
        loss = lse - positives.mean() - (0 if bias is None else bias)
        return _finite_or_raise(loss, image_features=image_features, text_features=text_features,
                                logit_scale=scale, logit_bias=bias)
    per_image = (scale * image_features) @ all_texts.T  # (n, W·n) my images vs every text
    per_text = (scale * text_features) @ all_images.T  # (n, W·n) my texts vs every image
    positives = scale * (image_features * text_features).sum(dim=1)  # (n,)
    if bias is not None:
        per_image, per_text, positives = per_image + bias, per_text + bias, positives + bias
    loss = (torch.logsumexp(per_image, dim=1).mean() + torch.logsumexp(per_text, dim=1).mean()) / 2 - positives.mean()
    return _finite_or_raise(loss, image_features=image_features, text_features=text_features, logit_scale=scale,
                            logit_bias=bias)


class _RingShift(torch.autograd.Function):
    """Send a tensor to the next rank and receive the previous rank's; the backward
    pass sends the gradient the opposite way (open_clip's ``NeighbourExchange``)."""

    @staticmethod
    def forward(ctx, tensor, send_to, recv_from):
        ctx.send_to, ctx.recv_from = send_to, recv_from
        return _exchange(tensor, send_to, recv_from)

    @staticmethod
    def backward(ctx, grad):
        return _exchange(grad, ctx.recv_from, ctx.send_to), None, None


def _exchange(tensor, send_to, recv_from):
    import torch.distributed as dist

    received = torch.empty_like(tensor, memory_format=torch.contiguous_format)  # recv needs contiguous
    ops = [dist.P2POp(dist.isend, tensor.contiguous(), send_to), dist.P2POp(dist.irecv, received, recv_from)]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


def distributed_siglip_loss(image_features, text_features, logit_scale, logit_bias=None, *, chunk_size=None):
    """Sigmoid loss over the global batch of a ``torch.distributed`` job, without all-gather.

    Each rank scores its own images against its own texts (positives on the diagonal),
    then passes its text features around the ring of ranks ``world-1`` times, scoring
    every received block as negatives (open_clip's ``SigLipLoss``, ``dist_impl="shift"``).
    Only one ``(n, D)`` block of foreign texts is held at a time. Gradients of the
    received texts travel back around the ring to their owners.

    Each rank's loss is its images' share divided by the local ``n`` (as open_clip):
    the mean over ranks equals :func:`siglip_loss` on the concatenated batch, and the
    feature gradients are ``world`` times the single-process ones (DDP's averaging of
    parameter gradients undoes the factor). Without a process group this is :func:`siglip_loss`.
    """
    _check_inputs(image_features, text_features, chunk_size)
    rank, world = _world()
    if world == 1:
        return siglip_loss(image_features, text_features, logit_scale, logit_bias, chunk_size=chunk_size)
    scale = _as_scalar(logit_scale, image_features, "logit_scale")
    bias = None if logit_bias is None else _as_scalar(logit_bias, image_features, "logit_bias")
    total = _siglip_sum(image_features, text_features, scale, bias, chunk_size, positives=True)
    texts = text_features
    for _ in range(world - 1):
        texts = _RingShift.apply(texts, (rank + 1) % world, (rank - 1) % world)  # (n, D) from the left
        total = total + _siglip_sum(image_features, texts, scale, bias, chunk_size, positives=False)
    return _finite_or_raise(total / image_features.shape[0], image_features=image_features,
                            text_features=text_features, logit_scale=scale, logit_bias=bias)


# ----------------------------------------------------------------------------- modules

class ClipLoss(nn.Module):
    """CLIP loss with its own learnable temperature: ``logit_scale = exp(t)``, ``t`` starting
    at ``log(1/0.07)`` and ``exp(t)`` clamped at 100 (CLIP paper).

    Design: the module *owns* the temperature. Its ``forward`` takes open_clip's
    arguments ``(image_features, text_features, logit_scale=None, logit_bias=None)`` so it
    plugs into :func:`mmcourse.train` unchanged (``train`` also optimises a loss module's
    parameters), but a ``logit_scale``/``logit_bias`` passed in by the model is **ignored**:
    the module's parameter is used. Give the model a fixed scale (or none it trains) when
    the loss owns it. The clamp is applied in the forward pass (no gradient while clamped)
    rather than on the parameter after each step as open_clip's training script does.
    ``distributed=True`` uses :func:`distributed_clip_loss` (``gather_with_grad``,
    ``local_loss`` as there).
    """

    def __init__(self, init_temperature: float = CLIP_INIT_TEMPERATURE, max_logit_scale: float = CLIP_MAX_LOGIT_SCALE,
                 learnable: bool = True, distributed: bool = False, gather_with_grad: bool = True,
                 local_loss: bool = False):
        super().__init__()
        if not init_temperature > 0 or not max_logit_scale > 0:
            raise ValueError(f"init_temperature and max_logit_scale must be positive, got {init_temperature}, {max_logit_scale}")
        t = torch.tensor(math.log(1 / init_temperature))  # log of the logit scale
        self.log_logit_scale = nn.Parameter(t, requires_grad=learnable)
        self.max_log_logit_scale = math.log(max_logit_scale)  # clamp for exp(t)
        self.distributed = distributed  # use the all-gather version
        self.gather_with_grad = gather_with_grad
        self.local_loss = local_loss

    @property
    def logit_scale(self) -> torch.Tensor:
        """The multiplier ``exp(t)``, clamped at ``max_logit_scale``."""
        return self.log_logit_scale.clamp(max=self.max_log_logit_scale).exp()

    def forward(self, image_features, text_features, logit_scale=None, logit_bias=None):
        if self.distributed:
            return distributed_clip_loss(image_features, text_features, self.logit_scale,
                                         gather_with_grad=self.gather_with_grad, local_loss=self.local_loss)
        return clip_loss(image_features, text_features, self.logit_scale)

    def extra_repr(self) -> str:
        return f"logit_scale={self.logit_scale.item():.3g}, distributed={self.distributed}"


class SigLipLoss(nn.Module):
    """Sigmoid loss with its own learnable ``logit_scale = exp(t')`` and ``logit_bias = b``,
    starting at ``t' = log 10`` and ``b = -10`` (SigLIP paper, Zhai et al. 2023).

    Like :class:`ClipLoss` it owns its parameters and ignores the ``logit_scale`` /
    ``logit_bias`` a model passes in. ``chunk_size`` bounds memory (see
    :func:`siglip_loss`); ``distributed=True`` uses :func:`distributed_siglip_loss`.
    """

    def __init__(self, init_logit_scale: float = SIGLIP_INIT_LOGIT_SCALE,
                 init_logit_bias: float = SIGLIP_INIT_LOGIT_BIAS, learnable: bool = True,
                 chunk_size: int | None = None, distributed: bool = False):
        super().__init__()
        if not init_logit_scale > 0:
            raise ValueError(f"init_logit_scale must be positive, got {init_logit_scale}")
        _check_chunk_size(chunk_size)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(init_logit_scale)), requires_grad=learnable)
        self.logit_bias = nn.Parameter(torch.tensor(float(init_logit_bias)), requires_grad=learnable)
        self.chunk_size = chunk_size  # texts per block; None = dense
        self.distributed = distributed  # use the ring version

    @property
    def logit_scale(self) -> torch.Tensor:
        """The multiplier ``exp(t')``."""
        return self.log_logit_scale.exp()

    def forward(self, image_features, text_features, logit_scale=None, logit_bias=None):
        fn = distributed_siglip_loss if self.distributed else siglip_loss
        return fn(image_features, text_features, self.logit_scale, self.logit_bias, chunk_size=self.chunk_size)

    def extra_repr(self) -> str:
        return (f"logit_scale={self.logit_scale.item():.3g}, logit_bias={self.logit_bias.item():.3g}, "
                f"chunk_size={self.chunk_size}, distributed={self.distributed}")
