"""Turning logits into probabilities: softmax (CLIP) versus sigmoid (SigLIP).

The same logit matrix ``(N_images, N_labels)`` can be read two ways:

- **softmax over the labels** (how CLIP is trained and used): each row sums to 1, so
  the labels compete — "which one of these is it?" Adding an unrelated label lowers
  every other label's probability; two correct labels have to share the mass.
- **sigmoid per entry** (how SigLIP is trained): each label gets an independent
  yes/no probability ``σ(logit)``; rows need not sum to 1 — "is this label true?"
  Several labels can be likely at once (multi-label), or none.

SigLIP's logits already include its learned bias (``scale · cos + bias``), so
``sigmoid_probs`` is exactly ``torch.sigmoid(logits)``. A CLIP-style model has no bias,
so its sigmoid "probabilities" are meaningless (all close to 1 for positive cosines):
use each model with the read-out it was trained with. The bar chart of both read-outs is
:func:`mmcourse.viz.plot_sigmoid_vs_softmax`.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["sigmoid_probs", "softmax_probs", "probability_table"]


def _check_logits(logits) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        logits = torch.as_tensor(logits, dtype=torch.float32)
    if logits.ndim not in (1, 2) or logits.numel() == 0:
        raise ValueError(f"logits must have shape (N_labels,) or (N_images, N_labels), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        logits = logits.float()
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("logits contain NaN or inf")
    return logits


def sigmoid_probs(logits) -> torch.Tensor:
    """Independent per-label probabilities ``σ(logits)`` (SigLIP's read-out); same shape as ``logits``."""
    return torch.sigmoid(_check_logits(logits))  # (N, L), each entry in (0, 1)


def softmax_probs(logits) -> torch.Tensor:
    """Probabilities over the labels (CLIP's read-out): each row sums to 1; same shape as ``logits``."""
    return torch.softmax(_check_logits(logits), dim=-1)  # (N, L), rows sum to 1


def probability_table(logits, labels: Sequence[str], row: int = 0) -> list[dict]:
    """One row per label of image ``row``: its logit, sigmoid and softmax probability.

    Returns a list of dicts (``label``, ``logit``, ``sigmoid``, ``softmax``), sorted by
    logit, ready for ``pandas.DataFrame`` or printing.
    """
    logits = _check_logits(logits)
    if logits.ndim == 1:
        logits = logits[None]  # (1, L)
    if len(labels) != logits.shape[1]:
        raise ValueError(f"got {len(labels)} labels for logits with {logits.shape[1]} columns")
    if not 0 <= row < logits.shape[0]:
        raise IndexError(f"row {row} out of range for {logits.shape[0]} images")
    z = logits[row]  # (L,)
    sig, soft = sigmoid_probs(z), softmax_probs(z)
    rows = [{"label": lab, "logit": float(z[i]), "sigmoid": float(sig[i]), "softmax": float(soft[i])}
            for i, lab in enumerate(labels)]
    return sorted(rows, key=lambda r: -r["logit"])
