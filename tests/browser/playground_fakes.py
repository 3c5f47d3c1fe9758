"""Small deterministic stand-ins for the course's models, so every playground can be driven
without training a checkpoint: used by tests/test_widgets.py and by the browser test's notebook."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

COLOR_RGB = {"red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220)}


def similarities(n: int = 6, dim: int = 16, noise: float = 0.6, seed: int = 0) -> np.ndarray:
    """(n, n) cosine similarities of paired unit vectors: the diagonal pairs match best."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, dim))
    b = a + noise * rng.normal(size=(n, dim))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T  # (n, n)


def color_images(size: int = 48):
    """One solid square per colour, named like the zero-shot labels."""
    return [Image.new("RGB", (size, size), rgb) for rgb in COLOR_RGB.values()], list(COLOR_RGB)


class FakeEmbedder:
    """Image features = mean RGB + a constant; text features = colour-word counts + 'blurry' weight.

    Adding the word 'blurry' to a template moves every label's text vector off the colour
    axes by the same amount, so the probabilities get flatter: templates visibly matter.
    """

    logit_scale = 3.0  # low, so probabilities stay away from 0 and 1 and edits show

    def __init__(self):
        self.text_calls: list[list[str]] = []

    def embed_images(self, images):
        feats = [list(np.asarray(im.convert("RGB"), dtype=float).mean(axis=(0, 1)) / 255.0) + [0.5] for im in images]
        return _unit(np.array(feats))  # (N, 4)

    def embed_texts(self, texts):
        self.text_calls.append(list(texts))
        feats = [[t.count(c) + 0.05 for c in COLOR_RGB] + [1.5 * t.count("blurry")] for t in texts]
        return _unit(np.array(feats, dtype=float))  # (M, 4)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fake_page(grid=(6, 8), dim: int = 8, seed: int = 0):
    """A page image, its (rows*cols, D) patch vectors, and 3 query tokens each planted on one patch.

    Returns (page, patches, queries, tokens, planted) where planted[i] is token i's (row, col).
    """
    rows, cols = grid
    rng = np.random.default_rng(seed)
    patches = 0.3 * rng.normal(size=(rows * cols, dim))  # (P, D)
    tokens = ["invoice", "total", "date"]
    planted = [(1, 2), (4, cols - 2), (0, cols - 1)]
    queries = _unit(rng.normal(size=(len(tokens), dim)))  # (T, D)
    for q, (r, c) in zip(queries, planted):
        patches[r * cols + c] = q + 0.05 * rng.normal(size=dim)
    page = Image.new("RGB", (cols * 20, rows * 20), "white")
    draw = ImageDraw.Draw(page)
    for r in range(rows):
        draw.line([(4, r * 20 + 10), (cols * 20 - 4, r * 20 + 10)], fill=(90, 90, 90), width=3)
    return page, patches, queries, tokens, planted


class FakeHybridSearch:
    """Six documents; an image score and a text score per (query, doc); weight blends them.

    At weight 0 (text only) 'sunset' ranks docs 0,1,2 first; at weight 1 (image only) docs 3,4,5.
    """

    def __init__(self):
        self.text = {"sunset": np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3]),
                     "cat": np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7])}
        self.image = {q: s[::-1].copy() for q, s in self.text.items()}
        self.thumbnails = [Image.new("RGB", (32, 32), (40 * i, 200 - 30 * i, 120)) for i in range(6)]
        self.captions = [f"doc {i}" for i in range(6)]
        self.calls: list[tuple[str, float]] = []

    def __call__(self, query, weight):
        self.calls.append((query, weight))
        scores = weight * self.image[query] + (1 - weight) * self.text[query]  # (6,)
        order = np.argsort(-scores, kind="stable")
        return [(int(i), float(scores[i])) for i in order]


class FakeTokenizer:
    """Splits on spaces and adds [CLS]/[SEP], like a BERT tokenizer's visible behaviour."""

    def __call__(self, text):
        return {"input_ids": list(range(len(text.split()) + 2))}

    def convert_ids_to_tokens(self, ids):
        return ["[CLS]", *self._last.split(), "[SEP]"][: len(ids)]


class FakeMultiVectorModel:
    """embed_pages / embed_queries like course/colpali-pages, over fake_page()'s planted vectors."""

    class config:  # noqa: N801  (mirrors model.config.grid of the course model)
        grid = 6

    def __init__(self):
        self.page, patches, queries, self.tokens, self.planted = fake_page(grid=(6, 6))
        self.patches, self.queries = patches, queries
        self.processor = FakeTokenizer()

    def embed_pages(self, images):
        return [self.patches for _ in images]

    def embed_queries(self, texts):
        self.processor._last = texts[0]
        return [np.vstack([np.zeros((1, self.queries.shape[1])), self.queries, np.zeros((1, self.queries.shape[1]))])
                for _ in texts]
