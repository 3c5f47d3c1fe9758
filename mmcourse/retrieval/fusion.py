"""Score fusion: combine ranked lists from several retrievers into one ranking.

Two standard recipes, both keyed by **document id** (never by rank position):

- :func:`weighted_fusion` — normalise each retriever's scores to a common range
  (cosine similarities from two different models are not comparable as they are),
  then take a weighted average per document;
- :func:`reciprocal_rank_fusion` — ignore the scores, use only the ranks:
  ``score(d) = sum_m w_m / (k + rank_m(d))`` (Cormack, Clarke & Büttcher, SIGIR 2009,
  who used ``k = 60``).

Inputs are plain mappings ``{retriever name: {doc id: score}}`` so the functions work
with any index, not only :class:`mmcourse.search.MultimodalIndex`.
"""
from __future__ import annotations

import math
from collections.abc import Container, Hashable, Iterable, Mapping

__all__ = ["normalize_scores", "weighted_fusion", "reciprocal_rank_fusion", "NORMALIZATIONS"]

NORMALIZATIONS = ("minmax", "none")


def normalize_scores(scores: Mapping[Hashable, float], method: str = "minmax") -> dict:
    """Rescale one retriever's scores.

    ``"minmax"`` maps the best score to 1 and the worst *retrieved* score to 0 (all
    equal → all 1); ``"none"`` keeps the raw scores.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {method!r}; expected one of {NORMALIZATIONS}")
    scores = dict(scores)
    if method == "none" or not scores:
        return scores
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    if not span > 0:
        return {doc: 1.0 for doc in scores}
    return {doc: (s - lo) / span for doc, s in scores.items()}


def _check_weights(weights: Mapping[str, float] | None, names: Iterable[str]) -> dict[str, float]:
    names = list(names)
    if weights is None:
        return {name: 1.0 for name in names}
    weights = dict(weights)
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"weights name unknown retriever(s) {unknown}; expected some of {names}")
    for name, w in weights.items():
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"weight for {name!r} must be a finite number >= 0, got {w!r}")
    return {name: float(weights.get(name, 0.0)) for name in names}


def _ranked(fused: dict) -> list[tuple[Hashable, float]]:
    # Highest score first; ties keep first-seen order (sorted() is stable).
    return sorted(fused.items(), key=lambda item: -item[1])


def weighted_fusion(
    scores: Mapping[str, Mapping[Hashable, float]],
    weights: Mapping[str, float] | None = None,
    normalize: str = "minmax",
    has: Mapping[str, Container] | None = None,
) -> list[tuple[Hashable, float]]:
    """Weighted average of normalised scores, aligned by document id.

    scores:    ``{retriever: {doc id: score}}`` — each retriever's candidates.
    weights:   ``{retriever: weight >= 0}``; missing names weigh 0, ``None`` = equal.
    normalize: ``"minmax"`` (default) or ``"none"``, applied per retriever.
    has:       optional ``{retriever: ids that retriever can score}``. A document absent
               from a retriever's candidates counts as 0 for it; with ``has`` given, a
               retriever that *cannot* score the document (e.g. an image index for a
               text-only document) is left out of that document's average instead of
               counting as 0.

    Returns ``[(doc id, fused score), ...]``, best first.
    """
    weights = _check_weights(weights, scores)
    normed = {name: normalize_scores(s, normalize) for name, s in scores.items()}
    fused: dict = {}
    for name, per_doc in normed.items():
        for doc in per_doc:
            fused.setdefault(doc, 0.0)
    for doc in fused:
        total, weight_sum = 0.0, 0.0
        for name, per_doc in normed.items():
            w = weights[name]
            if has is not None and name in has and doc not in has[name]:
                continue  # this retriever never saw the document: no evidence either way
            total += w * per_doc.get(doc, 0.0)
            weight_sum += w
        fused[doc] = total / weight_sum if weight_sum > 0 else 0.0
    return _ranked(fused)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Iterable[Hashable]],
    k: float = 60.0,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[Hashable, float]]:
    """Reciprocal rank fusion: ``score(d) = sum_m w_m / (k + rank_m(d))``, ranks from 1.

    rankings: ``{retriever: [doc id, ...]}``, each best first (a document missing from a
              list contributes nothing for that retriever).
    k:        damping constant (60 in the original paper); larger k flattens the ranks.
    """
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k >= 0):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    rankings = {name: list(ids) for name, ids in rankings.items()}
    weights = _check_weights(weights, rankings)
    fused: dict = {}
    for name, ids in rankings.items():
        if len(set(ids)) != len(ids):
            raise ValueError(f"ranking {name!r} lists a document id more than once")
        w = weights[name]
        for rank, doc in enumerate(ids, start=1):
            fused[doc] = fused.get(doc, 0.0) + w / (k + rank)
    return _ranked(fused)
