"""Ranking metrics shared by every retrieval notebook: Recall@k, nDCG@k, mAP.

Input forms (the same for all three):

- ``scores``: ``(Q, N)`` matrix, one row per query, one column per candidate; higher means
  more relevant (cosine similarities, logits, BM25 scores...). torch tensor, numpy array or
  nested list. Candidates are ranked per row by descending score; ties keep column order.
- ``relevance``, one of:

  - an ``(Q, N)`` numpy array or torch tensor of the same shape: ``0`` = not relevant, ``> 0`` = relevant
    (a graded value — e.g. 2 = highly, 1 = partly relevant — counts as the gain in nDCG;
    Recall and mAP only look at ``> 0``);
  - a length-``Q`` sequence of ints: the single relevant column of each query (e.g.
    ``range(Q)`` when query ``i`` matches candidate ``i``, the usual paired retrieval);
  - a length-``Q`` sequence of lists/sets of ints: the relevant columns of each query
    (a nested Python list is always read this way; pass a dense matrix as an array).

Every query needs at least one relevant candidate (otherwise ``ValueError`` naming it).
Each function returns the mean over queries as a float, or with ``per_query=True`` a
numpy array ``(Q,)``.

Id-list form, for one query whose results are already ranked (a search engine's hits):
:func:`recall_at_k_ids` and :func:`ndcg_at_k_ids` take the ranked ids and the set of
relevant ids (binary relevance; the same discounts as :func:`ndcg_at_k`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..validate import is_int, positive_int

__all__ = ["recall_at_k", "top_k_accuracy", "hit_at_k_chance", "ndcg_at_k", "mean_average_precision", "relevance_matrix",
           "recall_at_k_ids", "ndcg_at_k_ids"]


def _scores(scores: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(scores, torch.Tensor):
            scores = scores.detach().cpu().float().numpy()
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"scores must be a non-empty (Q, N) matrix, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError("scores contain NaN")
    return arr


def relevance_matrix(relevance: Any, shape: tuple[int, int]) -> np.ndarray:
    """Any accepted relevance form → a ``(Q, N)`` float matrix of gains (0 = not relevant)."""
    q, n = shape
    try:
        import torch

        if isinstance(relevance, torch.Tensor):
            relevance = relevance.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(relevance, np.ndarray) and relevance.ndim == 2:
        rel = np.asarray(relevance, dtype=np.float64)
        if rel.shape != (q, n):
            raise ValueError(f"relevance matrix has shape {rel.shape}, scores have shape {(q, n)}")
        if (rel < 0).any():
            raise ValueError("relevance values must be >= 0 (0 = not relevant)")
    else:
        items = list(relevance)
        if len(items) != q:
            raise ValueError(f"relevance gives {len(items)} queries, scores have {q} rows")
        rel = np.zeros((q, n))
        for i, r in enumerate(items):
            cols = [r] if isinstance(r, (int, np.integer)) else list(r)
            for c in cols:
                if not is_int(c) or not 0 <= c < n:
                    raise ValueError(f"query {i}: relevant index {c!r} is not a column index in [0, {n})")
                rel[i, int(c)] = 1.0
    empty = np.flatnonzero((rel > 0).sum(1) == 0)
    if len(empty):
        raise ValueError(f"query {int(empty[0])} has no relevant candidate ({len(empty)} such queries); "
                         "drop those queries first")
    return rel


def _ranked(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")  # (Q, N) column indices, best first


def _check_k(k: Any, n: int) -> int:
    return min(positive_int(k, "k"), n)


def _reduce(values: np.ndarray, per_query: bool):
    return values if per_query else float(values.mean())


def recall_at_k(scores, relevance, k: int, per_query: bool = False, hit: bool = False):
    """Fraction of each query's relevant candidates found in its top ``k``.

    With ``hit=True``: 1 if *any* relevant candidate is in the top ``k``, else 0 (the
    "R@k" of image–caption retrieval papers, where an image has several correct captions).
    With one relevant candidate per query both definitions agree.
    """
    s = _scores(scores)
    rel = relevance_matrix(relevance, s.shape) > 0
    k = _check_k(k, s.shape[1])
    top = _ranked(s)[:, :k]  # (Q, k)
    found = np.take_along_axis(rel, top, axis=1).sum(1)  # (Q,)
    values = (found > 0).astype(float) if hit else found / rel.sum(1)
    return _reduce(values, per_query)


def top_k_accuracy(scores, truth, k: int = 1, per_query: bool = False):
    """Classification read of a score matrix ``(N, L)``: the share of rows whose true class
    ``truth[i]`` ranks in the top ``k`` (``k=1``: plain accuracy, ``argmax == truth``; ties go
    to the lower column, as ``argmax`` does). It is :func:`recall_at_k` with one relevant
    column per row, under the name classification uses.
    """
    return recall_at_k(scores, truth, k, per_query=per_query, hit=True)


def hit_at_k_chance(n_candidates: int, n_relevant: int, k: int) -> float:
    """What ``recall_at_k(..., hit=True)`` scores for a random ranking: the chance that at
    least one of ``n_relevant`` among ``n_candidates`` lands in the top ``k``,
    ``1 - C(n - r, k) / C(n, k)``."""
    import math

    if not 1 <= n_relevant <= n_candidates:
        raise ValueError(f"need 1 <= n_relevant <= n_candidates, got n_relevant={n_relevant!r}, "
                         f"n_candidates={n_candidates!r}")
    k = _check_k(k, n_candidates)
    return 1 - math.comb(n_candidates - n_relevant, k) / math.comb(n_candidates, k)


def ndcg_at_k(scores, relevance, k: int, per_query: bool = False):
    """Normalised discounted cumulative gain at ``k`` with graded relevance (linear gains).

    ``DCG@k = Σ_{i=1..k} gain(rank i) / log2(i + 1)``, divided by the DCG of the ideal
    ordering. Same definition as ``sklearn.metrics.ndcg_score`` (without its tie averaging).
    """
    s = _scores(scores)
    rel = relevance_matrix(relevance, s.shape)
    k = _check_k(k, s.shape[1])
    gains = np.take_along_axis(rel, _ranked(s)[:, :k], axis=1)  # (Q, k)
    ideal = -np.sort(-rel, axis=1)[:, :k]  # (Q, k)
    return _reduce(_dcg(gains) / _dcg(ideal), per_query)


def _dcg(gains: np.ndarray) -> np.ndarray:
    """``Σ_i gains[..., i] / log2(i + 2)`` over the last axis (rank 1 first)."""
    return (gains / np.log2(np.arange(2, gains.shape[-1] + 2))).sum(-1)


def recall_at_k_ids(ranked: list, relevant: set, k: int) -> float:
    """Share of the ``relevant`` ids found in the first ``k`` of ``ranked`` (0.0 when nothing is relevant)."""
    k = _check_k(k, max(len(ranked), 1))
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def ndcg_at_k_ids(ranked: list, relevant: set, k: int) -> float:
    """Binary-relevance nDCG@k of one ranked id list (0.0 when nothing is relevant)."""
    k_ideal = min(_check_k(k, max(len(relevant), 1)), len(relevant))
    if not k_ideal:
        return 0.0
    gains = np.array([doc in relevant for doc in ranked[:k]], dtype=float)  # (<= k,)
    return float(_dcg(gains) / _dcg(np.ones(k_ideal)))


def mean_average_precision(scores, relevance, k: int | None = None, per_query: bool = False):
    """Mean over queries of average precision: the mean of precision@i at each relevant rank i.

    With ``k``, only the top ``k`` count and AP is divided by ``min(#relevant, k)`` (mAP@k).
    """
    s = _scores(scores)
    rel = relevance_matrix(relevance, s.shape) > 0
    n = s.shape[1]
    k = n if k is None else _check_k(k, n)
    hits = np.take_along_axis(rel, _ranked(s)[:, :k], axis=1).astype(float)  # (Q, k)
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)  # (Q, k) precision@i
    values = (precision * hits).sum(1) / np.minimum(rel.sum(1), k)
    return _reduce(values, per_query)
