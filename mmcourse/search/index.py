"""``MultimodalIndex``: hybrid text + image search on FAISS, fused by document id.

Two FAISS indexes, one per modality, both keyed by the same integer id per document:

- ``"text"``: document texts embedded by a dedicated text model (all-MiniLM-L6-v2);
- ``"image"``: document images embedded by a CLIP-family image tower.

A document stores only the modalities it has: no placeholder vectors, so a text-only
document is never scored by the image index. A text query searches the text index with
the text model and the image index with the CLIP text tower (text → image); an image
query searches the image index. Each index returns its top ``candidates``; the lists are
fused **by document id** (weighted average of normalised scores, or reciprocal rank
fusion) — never by position in the two sorted lists.

Embedders are duck-typed: any object with ``embed_texts(list[str])`` (and, for the CLIP
side, ``embed_images(list[PIL.Image])``) returning ``(N, D)`` tensors or arrays.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Hashable, Iterable, Mapping, NamedTuple

import numpy as np

from mmcourse.errors import MMCourseError
from mmcourse.integrity import file_entry, is_file_entry, sha256_bytes
from mmcourse.retrieval.fusion import reciprocal_rank_fusion, weighted_fusion
from mmcourse.validate import positive_int

__all__ = [
    "MODALITIES", "INDEX_TYPES", "FUSIONS", "MISSING", "Document", "SearchHit", "IndexConfig",
    "IndexFileError", "MiniLMTextEmbedder", "MultimodalIndex",
]

MODALITIES = ("text", "image")
INDEX_TYPES = ("flat", "ivf", "hnsw")
FUSIONS = ("weighted", "rrf")
MISSING = ("zero", "skip")
FORMAT_VERSION = 1


class IndexFileError(MMCourseError):
    """A saved index is missing, corrupt or inconsistent."""


@dataclass
class Document:
    """One searchable item. It needs a text, an image, or both."""

    id: str | int  # unique key, returned by search
    text: str | None = None  # embedded by the text model
    image: Any = None  # PIL image, embedded by the CLIP image tower
    metadata: dict = field(default_factory=dict)  # JSON-serialisable, kept with the index


class SearchHit(NamedTuple):
    """One ranked result: the fused score and the raw similarity from each index that retrieved it."""

    id: str | int
    score: float
    scores: dict  # {"text": cosine, "image": cosine}; a modality is absent if its index did not return the doc


@dataclass
class IndexConfig:
    """How the per-modality FAISS indexes are built and searched."""

    index_type: str = "flat"  # "flat" exact scan, "ivf" inverted lists (approximate), "hnsw" graph (approximate)
    nlist: int = 256  # ivf: number of clusters (capped so each has >= 39 training vectors)
    nprobe: int = 16  # ivf: clusters visited per query (recall ↑, speed ↓)
    hnsw_m: int = 32  # hnsw: links per node
    ef_construction: int = 80  # hnsw: candidate list while building
    ef_search: int = 64  # hnsw: candidate list while searching (recall ↑, speed ↓)
    candidates: int = 100  # per-modality depth retrieved before fusion (at least k)
    rrf_k: float = 60.0  # reciprocal rank fusion damping constant (Cormack et al. 2009)

    def __post_init__(self):
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index_type {self.index_type!r}; expected one of {INDEX_TYPES}")
        for name in ("nlist", "nprobe", "hnsw_m", "ef_construction", "ef_search", "candidates"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")


class MiniLMTextEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings behind the ``embed_texts`` interface."""

    def __init__(self, device: str = "cpu"):
        self.device = device

    def embed_texts(self, texts):
        from mmcourse.models.hub.minilm import embed_sentences

        return embed_sentences(list(texts), device=self.device)  # (N, 384)


def _as_matrix(vectors, n: int, what: str) -> np.ndarray:
    """``(n, D)`` float32, C-contiguous, finite, non-zero rows; raises ValueError otherwise."""
    if hasattr(vectors, "detach"):  # torch tensor
        vectors = vectors.detach().to("cpu").float().numpy()
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] != n or array.shape[1] < 1:
        raise ValueError(f"{what}: expected an array of shape ({n}, D), got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    norms = np.linalg.norm(array, axis=1)
    if (norms == 0).any():
        raise ValueError(f"{what}: row {int(np.argmin(norms))} is a zero vector, which has no direction; "
                         "leave the modality out instead of storing a placeholder")
    return np.ascontiguousarray(array / norms[:, None], dtype=np.float32)  # (n, D), unit rows


def _check_id(doc_id) -> Hashable:
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        raise TypeError(f"document id must be a str or int, got {doc_id!r} ({type(doc_id).__name__})")
    return doc_id


def _faiss_add(index, matrix: np.ndarray, internal: np.ndarray) -> None:
    """The one place vectors enter a FAISS index (fault-injection tests patch FAISS underneath it)."""
    index.add_with_ids(matrix, internal)


def _remove_from(index, start: int, ntotal: int) -> None:
    """Remove the internal ids >= ``start`` that an interrupted add left in ``index``."""
    import faiss

    if index.ntotal != ntotal:
        index.remove_ids(faiss.IDSelectorRange(start, 2**62))
    if index.ntotal != ntotal:  # pragma: no cover - FAISS failed inside its own add
        raise RuntimeError(f"could not roll back a failed add: the index holds {index.ntotal} vectors, "
                           f"expected {ntotal}; rebuild it")


def _ivf_contents(index) -> tuple[np.ndarray, np.ndarray]:
    """Every vector of an ``IDMap,IVF,Flat`` index with its id: ``(N, D)`` float32 and ``(N,)`` int64."""
    import faiss

    ivf = faiss.downcast_index(index.index)
    lists, d = ivf.invlists, ivf.d
    vectors = np.empty((ivf.ntotal, d), dtype=np.float32)  # (N, D), row = inner id
    for list_no in range(ivf.nlist):
        n = lists.list_size(list_no)
        if n:
            inner = faiss.rev_swig_ptr(lists.get_ids(list_no), n).copy()  # (n,)
            codes = faiss.rev_swig_ptr(lists.get_codes(list_no), n * lists.code_size)
            vectors[inner] = np.frombuffer(bytes(codes), dtype=np.float32).reshape(n, d)
    return vectors, faiss.vector_to_array(index.id_map).astype(np.int64)  # id_map: inner id -> internal id


class MultimodalIndex:
    """Hybrid text + image search over FAISS; see the module docstring.

    >>> index = MultimodalIndex(clip=model)          # text model defaults to all-MiniLM-L6-v2
    >>> index.add([Document("a", text="a red circle", image=img), Document("b", text="...")])
    >>> index.search(text="red circle", k=5, fusion="rrf")
    [SearchHit(id='a', score=..., scores={'text': ..., 'image': ...}), ...]
    """

    def __init__(self, clip=None, text_model=None, index_type: str = "flat", config: IndexConfig | None = None):
        if config is None:
            config = IndexConfig(index_type=index_type)
        elif index_type != "flat" and index_type != config.index_type:
            raise ValueError(f"index_type={index_type!r} disagrees with config.index_type={config.index_type!r}")
        self.config = config
        self.clip = clip  # embed_images / embed_texts (text -> image); needed for images
        self.text_model = text_model if text_model is not None else MiniLMTextEmbedder()
        self._ids: list = []  # internal int id -> document id
        self._pos: dict = {}  # document id -> internal int id
        self._texts: list = []  # internal id -> text or None
        self._metadata: list = []  # internal id -> metadata dict
        self._has: dict[str, set] = {m: set() for m in MODALITIES}  # internal ids stored per modality
        self._faiss: dict = {}  # modality -> faiss.IndexIDMap
        self._dims: dict[str, int] = {}  # modality -> vector size

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, doc_id) -> bool:
        return doc_id in self._pos

    def count(self, modality: str) -> int:
        """Number of documents stored in one modality's index."""
        self._check_modality(modality)
        return len(self._has[modality])

    @property
    def ids(self) -> list:
        return list(self._ids)

    def document(self, doc_id) -> dict:
        """``{"id", "text", "metadata", "modalities"}`` of a stored document (images are not kept)."""
        if doc_id not in self._pos:
            raise KeyError(f"no document with id {doc_id!r}")
        i = self._pos[doc_id]
        return {"id": doc_id, "text": self._texts[i], "metadata": dict(self._metadata[i]),
                "modalities": [m for m in MODALITIES if i in self._has[m]]}

    def faiss_index(self, modality: str):
        """The FAISS index of one modality (``None`` before anything was added to it)."""
        self._check_modality(modality)
        return self._faiss.get(modality)

    def __repr__(self) -> str:
        counts = ", ".join(f"{m}={len(self._has[m])}" for m in MODALITIES)
        return f"MultimodalIndex({self.config.index_type}, documents={len(self)}, {counts})"

    # ------------------------------------------------------------------ adding
    def add(self, documents: Iterable[Document]) -> None:
        """Embed and store documents. The whole batch is validated first: on any error nothing is added."""
        documents = list(documents)
        ids, texts, metadata = self._check_documents(documents)
        text_rows = [j for j, d in enumerate(documents) if d.text is not None]
        image_rows = [j for j, d in enumerate(documents) if d.image is not None]
        vectors = {}
        if text_rows:
            vectors["text"] = (text_rows, self.text_model.embed_texts([documents[j].text for j in text_rows]))
        if image_rows:
            if self.clip is None:
                raise ValueError("documents with images need a CLIP-family model: MultimodalIndex(clip=...)")
            vectors["image"] = (image_rows, self.clip.embed_images([documents[j].image for j in image_rows]))
        self._add_checked(ids, texts, metadata, vectors)

    def add_vectors(self, ids, text=None, image=None, metadata=None, texts=None) -> None:
        """Store precomputed embeddings (for large synthetic corpora and benchmarks).

        ids:      document ids, one per document.
        text:     ``(len(ids), D)`` vectors aligned with ids, or ``{id: vector}`` for the
                  documents that have a text; ``None`` when none has one. Same for ``image``.
        metadata: optional list of dicts aligned with ids; ``texts`` optional list of strings.
        """
        ids = list(ids)
        n = len(ids)
        metadata = [{} for _ in ids] if metadata is None else list(metadata)
        texts = [None] * n if texts is None else list(texts)
        if len(metadata) != n or len(texts) != n:
            raise ValueError(f"metadata and texts must have one entry per id ({n})")
        docs = [Document(i, text=t, metadata=m) for i, t, m in zip(ids, texts, metadata)]
        ids, texts, metadata = self._check_documents(docs, need_content=False)
        vectors = {}
        for modality, given in (("text", text), ("image", image)):
            if given is None:
                continue
            if isinstance(given, Mapping):
                if not given:
                    continue
                where = {doc_id: j for j, doc_id in enumerate(ids)}
                unknown = [doc_id for doc_id in given if doc_id not in where]
                if unknown:
                    raise ValueError(f"{modality} vectors given for unknown id(s) {unknown[:5]}")
                sizes = {np.asarray(v).size for v in given.values()}
                if len(sizes) != 1:
                    raise ValueError(f"{modality} vectors differ in size: {sorted(sizes)}")
                rows = [where[doc_id] for doc_id in given]
                vectors[modality] = (rows, np.stack([np.asarray(v, dtype=np.float32).ravel() for v in given.values()]))
            else:
                vectors[modality] = (list(range(n)), given)
        covered = set()
        for rows, _ in vectors.values():
            covered.update(rows)
        empty = [ids[j] for j in range(n) if j not in covered]
        if empty:
            raise ValueError(f"document(s) {empty[:5]} have neither a text nor an image vector")
        self._add_checked(ids, texts, metadata, vectors)

    def _check_documents(self, documents, need_content: bool = True):
        ids, texts, metadata, seen = [], [], [], set()
        for j, doc in enumerate(documents):
            doc_id = _check_id(getattr(doc, "id", None))
            if doc_id in self._pos or doc_id in seen:
                raise ValueError(f"duplicate document id {doc_id!r} (ids must be unique across the index)")
            seen.add(doc_id)
            text, image = getattr(doc, "text", None), getattr(doc, "image", None)
            if text is not None and not isinstance(text, str):
                raise TypeError(f"document {doc_id!r}: text must be a str or None, got {type(text).__name__}")
            if need_content and text is None and image is None:
                raise ValueError(f"document {doc_id!r} has neither text nor image: nothing to index")
            meta = getattr(doc, "metadata", None) or {}
            try:
                meta = json.loads(json.dumps(meta))
            except (TypeError, ValueError) as err:
                raise TypeError(f"document {doc_id!r}: metadata must be JSON-serialisable ({err})") from err
            if not isinstance(meta, dict):
                raise TypeError(f"document {doc_id!r}: metadata must be a dict, got {type(meta).__name__}")
            ids.append(doc_id)
            texts.append(text)
            metadata.append(meta)
        return ids, texts, metadata

    def _add_checked(self, ids, texts, metadata, vectors) -> None:
        """Validate, then commit all or nothing: a failure anywhere leaves the index exactly as it was."""
        # 1. validate every vector of the batch (shape, dimension, finiteness) ...
        ready = {}
        for modality, (rows, raw) in vectors.items():
            matrix = _as_matrix(raw, len(rows), f"{modality} vectors")
            expected = self._dims.get(modality)
            if expected is not None and matrix.shape[1] != expected:
                raise ValueError(f"{modality} vectors have dimension {matrix.shape[1]}, "
                                 f"but the {modality} index holds vectors of dimension {expected}")
            ready[modality] = (rows, matrix)
        start = len(self._ids)
        # 2. ... the new Python state, built beside the old one ...
        new_ids = self._ids + list(ids)
        new_pos = dict(self._pos)
        new_pos.update((doc_id, start + j) for j, doc_id in enumerate(ids))
        new_texts, new_metadata = self._texts + list(texts), self._metadata + list(metadata)
        new_has = {m: set(s) for m, s in self._has.items()}
        # 3. ... FAISS indexes that are built fresh (new, retrained, or copied because they cannot
        #    remove vectors) are filled off to the side; the others are added to in place and,
        #    if a later step fails, the vectors just added are removed again.
        replaced, in_place = {}, []
        try:
            for modality, (rows, matrix) in ready.items():
                internal = np.asarray([start + j for j in rows], dtype=np.int64)  # (n,)
                new_has[modality].update(internal.tolist())
                old = self._faiss.get(modality)
                if old is None:
                    index = self._new_faiss(matrix.shape[1], matrix)
                    _faiss_add(index, matrix, internal)
                    replaced[modality] = index
                elif self._needs_retraining(old, old.ntotal + len(matrix)):
                    replaced[modality] = self._retrained(old, matrix, internal)
                elif self.config.index_type == "hnsw":  # HNSW cannot remove vectors: add to a copy
                    import faiss

                    index = faiss.clone_index(old)
                    self._apply_search_params(index)
                    _faiss_add(index, matrix, internal)
                    replaced[modality] = index
                else:
                    in_place.append((modality, old, old.ntotal))
                    _faiss_add(old, matrix, internal)
        except BaseException:
            for modality, index, before in in_place:  # undo what reached the live indexes
                _remove_from(index, start, before)
            raise
        # 4. commit: plain assignments, which cannot fail half-way
        self._faiss.update(replaced)
        for modality, (_, matrix) in ready.items():
            self._dims[modality] = matrix.shape[1]
        self._ids, self._pos, self._texts, self._metadata, self._has = new_ids, new_pos, new_texts, new_metadata, new_has

    def _ivf_lists(self, total: int) -> int:
        """IVF lists for ``total`` training vectors: at most ``config.nlist``, at least 39 vectors each."""
        return max(1, min(self.config.nlist, total // 39))  # FAISS wants >= 39 points per centroid

    def _needs_retraining(self, index, total: int) -> bool:
        """An IVF index trained on few vectors is retrained once the collection supports twice its lists."""
        if self.config.index_type != "ivf":
            return False
        import faiss

        return self._ivf_lists(total) >= 2 * faiss.downcast_index(index.index).nlist

    def _retrained(self, old, matrix: np.ndarray, internal: np.ndarray):
        """A new IVF index trained on the old vectors plus ``matrix``, holding both (old one untouched)."""
        stored, stored_ids = _ivf_contents(old)  # (N, D), (N,)
        everything = np.concatenate([stored, matrix])  # (N + n, D)
        index = self._new_faiss(matrix.shape[1], everything)
        _faiss_add(index, everything, np.concatenate([stored_ids, internal]))
        return index

    def _new_faiss(self, dim: int, training: np.ndarray):
        import faiss

        cfg = self.config
        if cfg.index_type == "flat":
            index = faiss.index_factory(dim, "IDMap,Flat", faiss.METRIC_INNER_PRODUCT)
        elif cfg.index_type == "ivf":
            index = faiss.index_factory(dim, f"IDMap,IVF{self._ivf_lists(len(training))},Flat",
                                        faiss.METRIC_INNER_PRODUCT)
            index.train(training)
        else:
            index = faiss.index_factory(dim, f"IDMap,HNSW{cfg.hnsw_m},Flat", faiss.METRIC_INNER_PRODUCT)
        self._apply_search_params(index)
        return index

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the search-time knobs (IVF ``nprobe``, HNSW ``ef_search``) without rebuilding."""
        for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
            if value is not None:
                if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                    raise ValueError(f"{name} must be an int >= 1, got {value!r}")
                setattr(self.config, name, value)
        for index in self._faiss.values():
            self._apply_search_params(index)

    def _apply_search_params(self, index) -> None:
        import faiss

        inner = faiss.downcast_index(index.index)
        if self.config.index_type == "ivf":
            inner.nprobe = self.config.nprobe
        elif self.config.index_type == "hnsw":
            inner.hnsw.efConstruction = self.config.ef_construction
            inner.hnsw.efSearch = self.config.ef_search

    # ------------------------------------------------------------------ searching
    def search(self, text: str | None = None, image=None, k: int = 10, fusion: str = "weighted",
               weights: float | Mapping[str, float] | None = None, candidates: int | None = None,
               missing: str = "zero") -> list[SearchHit]:
        """Ranked hits for a text query, an image query, or both.

        text:    searches the text index (text model) and, unless an image is also given,
                 the image index (CLIP text tower: text → image).
        image:   a PIL image; searches the image index (CLIP image tower).
        fusion:  ``"weighted"`` (weighted average of min-max normalised scores) or ``"rrf"``.
        weights: ``{"text": w_t, "image": w_i}``, or one float ``w`` meaning
                 ``{"text": w, "image": 1 - w}``; ``None`` weighs both equally. A modality
                 with weight 0 is not searched at all.
        missing: weighted fusion only. ``"zero"``: a document an index did not return (or
                 cannot hold: no image) gets 0 from it, so the weights keep their meaning;
                 ``"skip"``: an index that cannot hold the document is left out of its
                 average (a text-only document is judged by its text alone).
        """
        if text is None and image is None:
            raise ValueError("a query needs text, an image, or both; got neither")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"text query must be a str, got {type(text).__name__}")
        k, candidates = positive_int(k, "k"), positive_int(candidates, "candidates", optional=True)
        self._check_not_empty()
        weights = self._check_weights(weights)
        queries = {}
        if text is not None and weights["text"] > 0 and self._has["text"]:
            queries["text"] = self.text_model.embed_texts([text])
        if weights["image"] > 0 and self._has["image"]:
            if self.clip is None:
                raise ValueError("searching the image index needs a CLIP-family model: MultimodalIndex(clip=...) "
                                 "or MultimodalIndex.load(path, clip=...)")
            queries["image"] = self.clip.embed_images([image]) if image is not None else self.clip.embed_texts([text])
        if not queries:
            asked = [m for m in MODALITIES if weights[m] > 0]
            raise ValueError(f"nothing to search: this query can only use the {' and '.join(asked)} index, which "
                             f"holds no documents ({self!r}); change the weights or add such documents")
        return self.search_vectors(queries, k=k, fusion=fusion, weights=weights, candidates=candidates,
                                   missing=missing)

    def search_vectors(self, queries: Mapping[str, Any], k: int = 10, fusion: str = "weighted",
                       weights: float | Mapping[str, float] | None = None,
                       candidates: int | None = None, missing: str = "zero") -> list[SearchHit]:
        """Search with precomputed query vectors, ``{"text": (D_t,), "image": (D_i,)}`` (either or both)."""
        k, candidates = positive_int(k, "k"), positive_int(candidates, "candidates", optional=True)
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
        if missing not in MISSING:
            raise ValueError(f"unknown missing-modality rule {missing!r}; expected one of {MISSING}")
        for modality in queries:
            self._check_modality(modality)
        if not queries:
            raise ValueError("a query needs text, an image, or both; got neither")
        self._check_not_empty()
        weights = self._check_weights(weights)
        depth = max(k, candidates if candidates is not None else self.config.candidates)
        scores: dict[str, dict] = {}
        for modality, vector in queries.items():
            index = self._faiss.get(modality)
            if weights[modality] == 0 or index is None or index.ntotal == 0:
                continue
            q = _as_matrix(vector, 1, f"{modality} query")  # (1, D)
            if q.shape[1] != self._dims[modality]:
                raise ValueError(f"{modality} query has dimension {q.shape[1]}, expected {self._dims[modality]}")
            sims, found = index.search(q, min(depth, index.ntotal))  # (1, depth) each, best first
            scores[modality] = {int(i): float(s) for s, i in zip(sims[0], found[0]) if i >= 0}
        if fusion == "weighted":
            fused = weighted_fusion(scores, {m: weights[m] for m in scores},
                                    has=self._has if missing == "skip" else None)
        else:
            fused = reciprocal_rank_fusion({m: list(s) for m, s in scores.items()},
                                           k=self.config.rrf_k, weights={m: weights[m] for m in scores})
        return [SearchHit(self._ids[i], score, {m: s[i] for m, s in scores.items() if i in s})
                for i, score in fused[:k]]

    @staticmethod
    def _check_weights(weights) -> dict[str, float]:
        if weights is None:
            return {"text": 0.5, "image": 0.5}
        if isinstance(weights, (int, float)) and not isinstance(weights, bool):
            if not 0 <= weights <= 1:
                raise ValueError(f"a single weight is the text share and must lie in [0, 1], got {weights!r}")
            return {"text": float(weights), "image": 1.0 - float(weights)}
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights must be a float in [0, 1] or a dict over {MODALITIES}, got {weights!r}")
        unknown = sorted(set(weights) - set(MODALITIES))
        if unknown:
            raise ValueError(f"weights name unknown modality {unknown}; expected some of {MODALITIES}")
        out = {m: float(weights.get(m, 0.0)) for m in MODALITIES}
        if any(not (math.isfinite(w) and w >= 0) for w in out.values()) or sum(out.values()) == 0:
            raise ValueError(f"weights must be finite, >= 0 and not all 0, got {dict(weights)}")
        return out

    def _check_not_empty(self) -> None:
        if not self._ids:
            raise ValueError("the index is empty: add documents (add / add_vectors) before searching")

    @staticmethod
    def _check_modality(modality: str) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> pathlib.Path:
        """Write the index to the folder ``path``, all or nothing.

        The folder holds ``index.json`` (ids, texts, metadata, config, sizes and SHA-256 of
        the FAISS files) and one ``<modality>.faiss`` per modality. Everything is written
        into a new sibling folder and flushed to disk first; only then does that folder take
        the place of ``path`` (one atomic exchange on Linux). A crash at any point leaves
        the previous index at ``path`` loadable, and concurrent saves never share a file.
        ``path`` must be new, empty, or a folder an earlier ``save`` wrote.
        """
        folder = pathlib.Path(path)
        _check_replaceable(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would become the index folder's mode
        try:
            files = {}
            for modality in MODALITIES:
                if modality in self._faiss:
                    files[modality] = _write_faiss(self._faiss[modality], staging / f"{modality}.faiss")
            manifest = {
                "format_version": FORMAT_VERSION,
                "config": asdict(self.config),
                "dims": dict(self._dims),
                "files": files,
                "ids": self._ids,
                "texts": self._texts,
                "metadata": self._metadata,
                "has": {m: sorted(self._has[m]) for m in MODALITIES},
            }
            _write_synced(staging / MANIFEST, json.dumps(manifest).encode())
            _fsync_dir(staging)
            _swap_in(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # the old index after a swap, or a failed write
        return folder

    @classmethod
    def load(cls, path, clip=None, text_model=None) -> "MultimodalIndex":
        """Read a folder written by :meth:`save`; raises :class:`IndexFileError` if anything is off.

        **An index folder is trusted input**, like any file you hand a binary parser: load
        only folders you saved or got from someone you trust. The SHA-256 sums in
        ``index.json`` catch accidental damage (a torn copy, a flipped bit), not tampering:
        whoever can edit a ``.faiss`` file can edit the sums beside it. So the checks do not
        rest on them. The manifest must match the schema ``save`` writes exactly; each FAISS
        file must be one of the kinds the course writes (ID map over flat / IVF / HNSW, inner
        product), with every length in it checked against the bytes actually present before
        FAISS reads it (a crafted header cannot make it allocate), and every id it stores
        must name a document of the manifest. Any failure is an :class:`IndexFileError`.
        """
        import faiss

        from .faiss_file import FaissFileError, check_index_bytes

        folder = pathlib.Path(path)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise IndexFileError(f"{manifest_path} not found: expected a folder written by MultimodalIndex.save")
        try:
            raw = manifest_path.read_bytes()
            manifest = json.loads(raw)
        except (OSError, ValueError) as err:
            raise IndexFileError(f"{manifest_path} is not valid JSON ({err})") from err
        config, dims, files, ids, texts, metadata, has = _check_manifest(manifest, manifest_path)
        index = cls(clip=clip, text_model=text_model, config=config)
        for modality in MODALITIES:  # file names come from MODALITIES, never from the manifest
            if modality not in files:
                continue
            file = folder / f"{modality}.faiss"
            expected = files[modality]
            try:
                size = file.stat().st_size if file.is_file() else None
                if size is None:
                    raise IndexFileError(f"{file} is missing (listed in {MANIFEST})")
                if size != expected["bytes"]:
                    raise IndexFileError(f"{file} is corrupt: it has {size} bytes, but {MANIFEST} says "
                                         f"{expected['bytes']}; rebuild the index or restore the file")
                data = file.read_bytes()
            except OSError as err:
                raise IndexFileError(f"{file} could not be read ({err})") from err
            if sha256_bytes(data) != expected["sha256"]:
                raise IndexFileError(f"{file} is corrupt: its checksum does not match the one saved in "
                                     f"{MANIFEST}; rebuild the index or restore the file")
            try:
                stored_ids = check_index_bytes(data, config.index_type, dims[modality], len(has[modality]))
            except FaissFileError as err:
                raise IndexFileError(f"{file} is not an index this course wrote: {err}") from err
            if sorted(stored_ids.tolist()) != has[modality]:
                raise IndexFileError(f"{file} stores vectors for documents other than the {len(has[modality])} "
                                     f"that {MANIFEST} lists for {modality!r}")
            try:
                stored = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            except RuntimeError as err:  # pragma: no cover - the checks above let only well-formed files through
                raise IndexFileError(f"{file} could not be read by FAISS: {str(err).splitlines()[0]}") from err
            index._apply_search_params(stored)
            index._faiss[modality] = stored
            index._dims[modality] = dims[modality]
            index._has[modality] = set(has[modality])
        index._ids = list(ids)
        index._pos = {doc_id: i for i, doc_id in enumerate(ids)}
        index._texts = list(texts)
        index._metadata = list(metadata)
        return index


# ---------------------------------------------------------------------- saving, all or nothing

MANIFEST = "index.json"
_SAVED_NAMES = {MANIFEST} | {f"{m}.faiss" for m in MODALITIES}


def _check_replaceable(folder: pathlib.Path) -> None:
    """``save`` replaces the whole folder: refuse one that holds anything ``save`` did not write."""
    if folder.exists() and not folder.is_dir():
        raise IndexFileError(f"{folder} exists and is not a folder; choose a folder path for the index")
    if folder.is_dir():
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in _SAVED_NAMES)
        if foreign:
            raise IndexFileError(f"refusing to replace {folder}: it holds files that MultimodalIndex.save did not "
                                 f"write ({', '.join(foreign[:5])}); save to a new or empty folder")


def _write_faiss(index, path: pathlib.Path) -> dict:
    """Write one FAISS index to ``path``, flushed to disk; returns its ``{"bytes", "sha256"}``."""
    import faiss

    faiss.write_index(index, str(path))
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())
    _after_write(path)
    return file_entry(path)


def _after_write(path: pathlib.Path) -> None:
    """Called after each file of a save is on disk (fault-injection tests make it fail)."""


def _write_synced(path: pathlib.Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    _after_write(path)


def _fsync_dir(folder: pathlib.Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _folder_lock(folder: pathlib.Path):
    """One swap at a time per index folder (saves in other processes included)."""
    with open(folder.parent / f".{folder.name}.lock", "a") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: swaps still use unique names
            pass
        yield


def _exchange(a: pathlib.Path, b: pathlib.Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - old glibc
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _swap_in(staging: pathlib.Path, folder: pathlib.Path) -> None:
    """Put ``staging`` at ``folder``; the previous index, if any, ends up at ``staging`` (to be deleted).

    On Linux one ``renameat2(RENAME_EXCHANGE)`` does it: at every instant ``folder`` is either
    the old or the new index, and concurrent saves need no lock (each exchange is atomic).
    Elsewhere two renames under a file lock; a crash between them leaves the old index in a
    ``.<name>.saving-*.old`` folder beside ``folder``.
    """
    try:
        os.rename(staging, folder)  # no index there yet (an existing non-empty folder makes this fail)
    except OSError:
        if not _exchange(staging, folder):  # pragma: no cover - no atomic exchange on this system
            with _folder_lock(folder):
                backup = staging.with_name(staging.name + ".old")
                os.replace(folder, backup)
                os.replace(staging, folder)
                os.replace(backup, staging)
    _fsync_dir(folder.parent)


# ---------------------------------------------------------------------- loading, strictly

_MANIFEST_KEYS = {"format_version", "config", "dims", "files", "ids", "texts", "metadata", "has"}


def _check_manifest(manifest, where):
    """Every field of ``index.json`` checked against what ``save`` writes; returns the parsed parts."""
    def bad(what):
        return IndexFileError(f"{where} is not an index manifest this course wrote: {what}")

    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    if not isinstance(manifest, dict) or set(manifest) != _MANIFEST_KEYS:
        got = sorted(manifest) if isinstance(manifest, dict) else type(manifest).__name__
        raise bad(f"expected the keys {sorted(_MANIFEST_KEYS)}, got {got}")
    if manifest["format_version"] != FORMAT_VERSION or not is_int(manifest["format_version"]):
        raise bad(f"format version {manifest['format_version']!r}, expected {FORMAT_VERSION}")
    raw_config = manifest["config"]
    names = {f.name for f in fields(IndexConfig)}
    if not isinstance(raw_config, dict) or set(raw_config) != names:
        raise bad(f"config must have exactly the fields {sorted(names)}")
    if not isinstance(raw_config["rrf_k"], (int, float)) or isinstance(raw_config["rrf_k"], bool) \
            or not (math.isfinite(raw_config["rrf_k"]) and raw_config["rrf_k"] > 0):
        raise bad(f"config rrf_k must be a positive number, got {raw_config['rrf_k']!r}")
    try:
        config = IndexConfig(**raw_config)
    except (TypeError, ValueError) as err:
        raise bad(f"config is invalid ({err})") from err
    ids, texts, metadata = manifest["ids"], manifest["texts"], manifest["metadata"]
    if not (isinstance(ids, list) and isinstance(texts, list) and isinstance(metadata, list)):
        raise bad("ids, texts and metadata must be lists")
    if not (len(ids) == len(texts) == len(metadata)):
        raise bad(f"ids, texts and metadata differ in length ({len(ids)}, {len(texts)}, {len(metadata)})")
    if not all(isinstance(i, str) or is_int(i) for i in ids):
        raise bad("every document id must be a str or an int")
    if len(set(ids)) != len(ids):
        raise bad("document ids repeat")
    if not all(t is None or isinstance(t, str) for t in texts) or not all(isinstance(m, dict) for m in metadata):
        raise bad("texts must be strings or null, metadata must be objects")
    dims, files, has = manifest["dims"], manifest["files"], manifest["has"]
    if not (isinstance(dims, dict) and isinstance(files, dict) and isinstance(has, dict)):
        raise bad("dims, files and has must be objects")
    if set(has) != set(MODALITIES) or not set(files) <= set(MODALITIES) or set(dims) != set(files):
        raise bad(f"has must name exactly {MODALITIES}; files and dims the same subset of them")
    covered = set()
    for modality in MODALITIES:
        rows = has[modality]
        if not isinstance(rows, list) or not all(is_int(r) and 0 <= r < len(ids) for r in rows) \
                or rows != sorted(set(rows)):
            raise bad(f"has[{modality!r}] must be sorted, unique document numbers below {len(ids)}")
        if bool(rows) != (modality in files):
            raise bad(f"{modality!r} lists {len(rows)} documents but {'a' if modality in files else 'no'} file")
        covered.update(rows)
        if modality in files:
            entry, d = files[modality], dims[modality]
            if not (is_int(d) and 1 <= d <= 65536):
                raise bad(f"dims[{modality!r}] must be an int in [1, 65536], got {d!r}")
            if not is_file_entry(entry):
                raise bad(f"files[{modality!r}] must be {{'bytes': int, 'sha256': 64 hex digits}}")
    if len(covered) != len(ids):
        raise bad("a document is stored in no modality")
    return config, dims, files, ids, texts, metadata, has
