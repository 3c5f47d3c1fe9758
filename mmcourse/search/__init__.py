"""Hybrid multimodal search on FAISS.

- :class:`MultimodalIndex` — per-modality FAISS indexes keyed by document id, fused
  by id (weighted or reciprocal rank fusion), flat / IVF / HNSW, save and load;
- :class:`SeedMultimodalSearchIndex` — the seed lesson's index with its scoring bugs
  kept, for notebook 07 and the tests to show what goes wrong;
- :func:`mixed_corpus` / :func:`evaluate_search` — labelled queries over scenes, photos,
  text-only and image-only documents; recall@k and nDCG@k;

The index-choice benchmark (flat / IVF / HNSW / IVF-PQ) is :mod:`mmcourse.scale.indexes`.
"""
from .index import *  # noqa: F401,F403  MultimodalIndex, Document, SearchHit, IndexConfig, ...
from .index import __all__ as _index_all
from .seed_lesson import SeedMultimodalSearchIndex
from .corpus import LabelledQuery, embed_queries, evaluate_search, mixed_corpus

__all__ = list(_index_all) + ["SeedMultimodalSearchIndex", "LabelledQuery", "embed_queries", "evaluate_search",
                              "mixed_corpus"]
