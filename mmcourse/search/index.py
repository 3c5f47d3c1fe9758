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

import hashlib
import json
import math
import os
import pathlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Hashable, Iterable, Mapping, NamedTuple

import numpy as np

from mmcourse.errors import MMCourseError
from mmcourse.retrieval.fusion import reciprocal_rank_fusion, weighted_fusion

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
        from mmcourse.models.minilm import embed_sentences

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


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        # 1. validate every vector of the batch (shape, dimension, finiteness) ...
        ready = {}
        for modality, (rows, raw) in vectors.items():
            matrix = _as_matrix(raw, len(rows), f"{modality} vectors")
            expected = self._dims.get(modality)
            if expected is not None and matrix.shape[1] != expected:
                raise ValueError(f"{modality} vectors have dimension {matrix.shape[1]}, "
                                 f"but the {modality} index holds vectors of dimension {expected}")
            ready[modality] = (rows, matrix)
        # 2. ... build (and train) any missing FAISS index, still without touching the stored state ...
        new_indexes = {m: self._new_faiss(m_matrix.shape[1], m_matrix)
                       for m, (_, m_matrix) in ready.items() if m not in self._faiss}
        # 3. ... then commit.
        start = len(self._ids)
        self._faiss.update(new_indexes)
        for modality, (rows, matrix) in ready.items():
            internal = np.asarray([start + j for j in rows], dtype=np.int64)
            self._faiss[modality].add_with_ids(matrix, internal)
            self._dims[modality] = matrix.shape[1]
            self._has[modality].update(internal.tolist())
        for doc_id, text, meta in zip(ids, texts, metadata):
            self._pos[doc_id] = len(self._ids)
            self._ids.append(doc_id)
            self._texts.append(text)
            self._metadata.append(meta)

    def _new_faiss(self, dim: int, training: np.ndarray):
        import faiss

        cfg = self.config
        if cfg.index_type == "flat":
            index = faiss.index_factory(dim, "IDMap,Flat", faiss.METRIC_INNER_PRODUCT)
        elif cfg.index_type == "ivf":
            nlist = max(1, min(cfg.nlist, len(training) // 39))  # FAISS wants >= 39 points per centroid
            index = faiss.index_factory(dim, f"IDMap,IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
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
        weights = self._check_weights(weights)
        queries = {}
        if text is not None and weights["text"] > 0 and self._has["text"]:
            queries["text"] = self.text_model.embed_texts([text])
        if weights["image"] > 0 and self._has["image"]:
            if self.clip is None:
                raise ValueError("searching the image index needs a CLIP-family model: MultimodalIndex(clip=...) "
                                 "or MultimodalIndex.load(path, clip=...)")
            queries["image"] = self.clip.embed_images([image]) if image is not None else self.clip.embed_texts([text])
        return self.search_vectors(queries, k=k, fusion=fusion, weights=weights, candidates=candidates,
                                   missing=missing)

    def search_vectors(self, queries: Mapping[str, Any], k: int = 10, fusion: str = "weighted",
                       weights: float | Mapping[str, float] | None = None,
                       candidates: int | None = None, missing: str = "zero") -> list[SearchHit]:
        """Search with precomputed query vectors, ``{"text": (D_t,), "image": (D_i,)}`` (either or both)."""
        if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
        if missing not in MISSING:
            raise ValueError(f"unknown missing-modality rule {missing!r}; expected one of {MISSING}")
        for modality in queries:
            self._check_modality(modality)
        if not queries:
            raise ValueError("a query needs text, an image, or both; got neither")
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

    @staticmethod
    def _check_modality(modality: str) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> pathlib.Path:
        """Write ``index.json`` (ids, texts, metadata, config) and one ``<modality>.faiss`` per index to a folder."""
        import faiss

        folder = pathlib.Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        staged, checksums = [], {}
        for modality, index in self._faiss.items():
            tmp = folder / f"{modality}.faiss.tmp"
            faiss.write_index(index, str(tmp))
            checksums[modality] = _sha256(tmp)
            staged.append((tmp, folder / f"{modality}.faiss"))
        manifest = {
            "format_version": FORMAT_VERSION,
            "config": asdict(self.config),
            "dims": self._dims,
            "checksums": checksums,
            "ids": self._ids,
            "texts": self._texts,
            "metadata": self._metadata,
            "has": {m: sorted(self._has[m]) for m in MODALITIES},
        }
        tmp = folder / "index.json.tmp"
        tmp.write_text(json.dumps(manifest))
        staged.append((tmp, folder / "index.json"))
        for src, dst in staged:  # all written: now swap them in
            os.replace(src, dst)
        for modality in MODALITIES:  # an index emptied since an earlier save must not linger
            if modality not in self._faiss and (folder / f"{modality}.faiss").exists():
                (folder / f"{modality}.faiss").unlink()
        return folder

    @classmethod
    def load(cls, path, clip=None, text_model=None) -> "MultimodalIndex":
        """Read a folder written by :meth:`save`; raises :class:`IndexFileError` if anything is off."""
        import faiss

        folder = pathlib.Path(path)
        manifest_path = folder / "index.json"
        if not manifest_path.is_file():
            raise IndexFileError(f"{manifest_path} not found: expected a folder written by MultimodalIndex.save")
        try:
            manifest = json.loads(manifest_path.read_text())
            version = manifest["format_version"]
            config = IndexConfig(**{f.name: manifest["config"][f.name] for f in fields(IndexConfig)})
            dims, checksums = manifest["dims"], manifest["checksums"]
            ids, texts, metadata, has = manifest["ids"], manifest["texts"], manifest["metadata"], manifest["has"]
        except (ValueError, KeyError, TypeError) as err:
            raise IndexFileError(f"{manifest_path} is corrupt or not an index manifest ({err!r})") from err
        if version != FORMAT_VERSION:
            raise IndexFileError(f"{manifest_path} has format version {version}, expected {FORMAT_VERSION}")
        if not (len(ids) == len(texts) == len(metadata)) or len(set(map(repr, ids))) != len(ids):
            raise IndexFileError(f"{manifest_path} is inconsistent: ids, texts and metadata differ in length or repeat")
        index = cls(clip=clip, text_model=text_model, config=config)
        for modality, checksum in checksums.items():
            file = folder / f"{modality}.faiss"
            if not file.is_file():
                raise IndexFileError(f"{file} is missing (listed in {manifest_path.name})")
            if _sha256(file) != checksum:
                raise IndexFileError(f"{file} is corrupt: its checksum does not match the one saved in "
                                     f"{manifest_path.name}; rebuild the index or restore the file")
            try:
                stored = faiss.read_index(str(file))
            except RuntimeError as err:
                raise IndexFileError(f"{file} could not be read by FAISS: {str(err).splitlines()[0]}") from err
            if stored.ntotal != len(has[modality]) or stored.d != dims[modality]:
                raise IndexFileError(f"{file} holds {stored.ntotal} vectors of dimension {stored.d}, but the manifest "
                                     f"expects {len(has[modality])} of dimension {dims[modality]}")
            index._apply_search_params(stored)
            index._faiss[modality] = stored
            index._dims[modality] = int(dims[modality])
            index._has[modality] = set(has[modality])
        index._ids = list(ids)
        index._pos = {doc_id: i for i, doc_id in enumerate(ids)}
        index._texts = list(texts)
        index._metadata = list(metadata)
        return index
