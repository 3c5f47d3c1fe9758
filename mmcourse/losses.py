"""Contrastive losses, all with open_clip's signature
``(image_features, text_features, logit_scale, logit_bias=None)``.

``logit_scale`` is the multiplier (the exp of the learned log-temperature), as in open_clip.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(image_features, text_features, logit_scale, logit_bias=None):
    """Symmetric InfoNCE: cross-entropy image→text and text→image, averaged."""
    logits = logit_scale * image_features @ text_features.T  # (N, N)
    if logit_bias is not None:
        logits = logits + logit_bias
    labels = torch.arange(logits.shape[0], device=logits.device)  # (N,)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def siglip_loss(image_features, text_features, logit_scale, logit_bias=None):
    """Pairwise sigmoid loss: -log σ(z·(t·x·y + b)) summed over all pairs, divided by N."""
    logits = logit_scale * image_features @ text_features.T  # (N, N)
    if logit_bias is not None:
        logits = logits + logit_bias
    n = logits.shape[0]
    signs = 2 * torch.eye(n, device=logits.device, dtype=logits.dtype) - 1  # +1 diagonal, -1 elsewhere
    return -F.logsigmoid(signs * logits).sum() / n
