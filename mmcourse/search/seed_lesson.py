"""The seed lesson's ``MultimodalSearchIndex`` scoring, reproduced to study its bugs.

**Do not use this for search.** It keeps the seed's logic on purpose, so notebook 07
and the tests can show what goes wrong:

1. *Scores fused by rank position, not by document.* ``index.search(q, n)`` returns
   each index's similarities **sorted best first**; the seed adds the two sorted
   lists elementwise, so position ``i`` mixes the ``i``-th best text document with the
   ``i``-th best image document (usually two different documents), then reads
   position ``i`` as document ``i`` of the corpus. The sum of two descending lists is
   descending, so the ranking is simply the insertion order of the corpus.
2. *Zero vectors for missing modalities.* A text-only document gets an all-zero image
   vector, which every query scores exactly 0: it is "scored" by an index it is not in,
   and outranks real images whose similarity is negative.
3. *Hard-coded placeholder sizes* (768 for text, 512 for images): with a 384-d text
   model such as all-MiniLM-L6-v2 the placeholder rows do not even stack.

Embedders are duck-typed like :class:`mmcourse.search.MultimodalIndex`'s: the text model
and the CLIP model each need ``embed_texts``; the CLIP model also ``embed_images``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SeedMultimodalSearchIndex"]


def _row(vectors) -> np.ndarray:
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().cpu().float().numpy()
    return np.asarray(vectors, dtype=np.float32)[0]


class SeedMultimodalSearchIndex:
    """The seed's index with its scoring unchanged (bugs included); see the module docstring."""

    def __init__(self, text_model, clip_model, text_weight: float = 0.5,
                 text_placeholder_dim: int = 768, image_placeholder_dim: int = 512):
        self.text_model = text_model
        self.clip_model = clip_model
        self.text_weight = text_weight
        self.image_weight = 1 - text_weight
        self.text_placeholder_dim = text_placeholder_dim  # the seed hard-codes 768
        self.image_placeholder_dim = image_placeholder_dim  # the seed hard-codes 512
        self.text_index = None
        self.image_index = None
        self.docs = []

    def index_documents(self, documents) -> None:
        import faiss

        self.docs = list(documents)
        text_embs, image_embs = [], []
        for doc in self.docs:
            text_embs.append(_row(self.text_model.embed_texts([doc.text])) if doc.text
                             else np.zeros(self.text_placeholder_dim))  # bug 2 (and 3)
            image_embs.append(_row(self.clip_model.embed_images([doc.image])) if doc.image is not None
                              else np.zeros(self.image_placeholder_dim))  # bug 2 (and 3)
        text_embs = np.array(text_embs, dtype=np.float32)  # fails if the placeholder size is wrong
        image_embs = np.array(image_embs, dtype=np.float32)
        self.text_index = faiss.IndexFlatIP(text_embs.shape[1])
        self.text_index.add(text_embs)
        self.image_index = faiss.IndexFlatIP(image_embs.shape[1])
        self.image_index.add(image_embs)

    def search(self, query, k: int = 10) -> list[dict]:
        n = len(self.docs)
        if isinstance(query, str):
            text_q = _row(self.text_model.embed_texts([query]))[None]
            clip_q = _row(self.clip_model.embed_texts([query]))[None]
            text_sims = self.text_index.search(text_q, n)[0][0]  # sorted best first
            image_sims = self.image_index.search(clip_q, n)[0][0]  # sorted best first
        else:
            image_q = _row(self.clip_model.embed_images([query]))[None]
            text_sims = np.zeros(n)
            image_sims = self.image_index.search(image_q, n)[0][0]
        final_sims = self.text_weight * text_sims + self.image_weight * image_sims  # bug 1: by position
        top = np.argsort(-final_sims)[:k]
        return [{"doc_id": self.docs[i].id, "score": float(final_sims[i])} for i in top]
