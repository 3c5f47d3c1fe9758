"""Embedding arithmetic: does ``a + b`` retrieve what holds both ``a`` and ``b``?

ImageBind's composition test (a photo of birds + the sound of waves → birds at a beach),
as one measurable number: for every ordered pair of items ``(i, j)``, the query is
``normalize(first[i] + second[j])``, where ``first`` and ``second`` may come from different
modalities; it is a hit when the gallery's top ``k`` holds an entry whose contents are
exactly ``{i, j}``. Scored with :func:`~mmcourse.retrieval.metrics.recall_at_k` (``hit=True``).
"""
from __future__ import annotations

import itertools
from typing import Sequence

import torch
import torch.nn.functional as F

from .metrics import recall_at_k

__all__ = ["composition_hit_rate"]


def composition_hit_rate(first: torch.Tensor, second: torch.Tensor, gallery: torch.Tensor,
                         contents: Sequence[set], k: int = 1) -> float:
    """Share of ordered pairs ``(i, j)``, ``i != j``, whose summed query finds the gallery entry holding both.

    ``first``, ``second``: ``(K, D)`` embeddings of the same ``K`` items (row ``i`` = item ``i``);
    ``gallery``: ``(G, D)`` normalised embeddings; ``contents[g]``: the set of item indices that
    gallery entry ``g`` shows. Every pair needs at least one entry with exactly its two items.
    """
    if first.shape != second.shape or first.dim() != 2:
        raise ValueError(f"first and second must be (K, D) of one shape, got {tuple(first.shape)} and "
                         f"{tuple(second.shape)}")
    if gallery.dim() != 2 or gallery.shape[1] != first.shape[1] or len(contents) != len(gallery):
        raise ValueError(f"gallery must be (G, {first.shape[1]}) with one contents set per row, got "
                         f"{tuple(gallery.shape)} and {len(contents)} contents")
    pairs = list(itertools.permutations(range(len(first)), 2))
    index = {frozenset(c): [] for c in contents}
    for g, c in enumerate(contents):
        index[frozenset(c)].append(g)
    missing = [p for p in pairs if frozenset(p) not in index]
    if missing:
        raise ValueError(f"no gallery entry holds exactly items {set(missing[0])}; every pair needs one")
    i, j = (torch.tensor(side) for side in zip(*pairs))
    queries = F.normalize(first[i] + second[j], dim=-1)  # (P, D), P = K·(K-1)
    relevant = [index[frozenset(p)] for p in pairs]
    return recall_at_k(queries @ gallery.T, relevant, k=k, hit=True)  # (P, G) scores
