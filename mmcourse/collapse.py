"""Telling a collapsed contrastive model from one that learned.

A two-tower model has *collapsed* when its embeddings no longer depend on the input: every
image maps to (nearly) one direction, every text to another, and every pair gets the same
logit. Two numbers show it:

- :func:`constant_sigmoid_loss`: the sigmoid loss (per image, as in SigLIP and open_clip) of a
  model that scores every pair of an N-pair batch with the same probability p. Its minimum,
  at p = 1/N, is the loss a model reaches with no information about which pairs match:
  a training curve that flattens there has learned nothing.
- :func:`mean_pairwise_cosine`: the average cosine between different rows of a feature matrix;
  1.0 means every input got the same embedding.
"""
from __future__ import annotations

import math

import torch

from .validate import integer

__all__ = ["constant_sigmoid_loss", "mean_pairwise_cosine"]


def constant_sigmoid_loss(batch_size: int, p: float | None = None) -> float:
    """Sigmoid loss of a constant predictor on ``batch_size`` pairs: ``-log p - (N-1) log(1-p)``.

    With ``p=None`` the best constant, ``p = 1/N`` (one positive among N candidates per image),
    which gives ``log N + (N-1) log(N/(N-1))`` — about ``log N + 1`` for large N.
    """
    n = integer(batch_size, "batch_size", minimum=2)
    p = 1.0 / n if p is None else float(p)
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be a probability strictly between 0 and 1, got {p!r}")
    return -math.log(p) - (n - 1) * math.log1p(-p)


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean cosine between different rows of ``features`` ``(N, D)``; 1.0 means all rows point the same way."""
    if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[0] < 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must be an (N, D) tensor with N >= 2, got {shape}")
    unit = torch.nn.functional.normalize(features.detach().float(), dim=-1)  # (N, D)
    cos = unit @ unit.T  # (N, N)
    n = cos.shape[0]
    return float((cos.sum() - cos.diagonal().sum()) / (n * (n - 1)))
