"""Check a FAISS index file before FAISS reads it: only the kinds the course writes, every size bounded.

FAISS's reader trusts the lengths written in the file: a 234-byte file whose header claims
2^28 codes makes it allocate 1 GiB before it notices the file is short, and an inverted list
or graph naming vector 10^9 makes a later search read out of bounds. :func:`check_index_bytes`
walks the bytes of the three layouts :class:`~mmcourse.search.MultimodalIndex` saves —

- ``IDMap,Flat``          ``IxMp`` header ``IxFI`` header codes ids
- ``IDMap,IVF<n>,Flat``   ``IxMp`` header ``IwFl`` header nlist nprobe ``IxFI``(centroids) direct-map ``ilar`` lists ids
- ``IDMap,HNSW<M>,Flat``  ``IxMp`` header ``IHNf`` header graph ``IxFI``(storage) ids

— and checks, before anything is allocated from them, that each length fits in the bytes
that are left, that the metric is inner product, that ``d`` and ``ntotal`` are the ones the
manifest expects, and that every stored vector number points inside the index. Anything
else (another index kind, an L2 metric, trailing bytes) raises :class:`FaissFileError`.
The layout is FAISS's documented ``write_index`` format (faiss/impl/index_write.cpp).
"""
from __future__ import annotations

import struct

import numpy as np

__all__ = ["FaissFileError", "check_index_bytes", "KINDS"]

METRIC_INNER_PRODUCT = 0
KINDS = {"flat": "IxFI", "ivf": "IwFl", "hnsw": "IHNf"}  # course index_type -> inner index fourcc


class FaissFileError(ValueError):
    """The bytes are not a FAISS index of the expected kind and size."""


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = memoryview(data), 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.left():
            raise FaissFileError(f"{what} needs {n} bytes but only {self.left()} are left in the file")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def scalar(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def fourcc(self, what: str) -> str:
        return bytes(self.take(4, what)).decode("latin-1")

    def vector(self, dtype, what: str, count: int | None = None) -> np.ndarray:
        """A FAISS ``WRITEVECTOR``: uint64 count, then count items; the count is checked first."""
        n = self.scalar("Q", f"length of {what}")
        item = np.dtype(dtype).itemsize
        if n > self.left() // item:
            raise FaissFileError(f"{what} claims {n} items ({n * item} bytes) but only {self.left()} bytes are left")
        if count is not None and n != count:
            raise FaissFileError(f"{what} has {n} items, expected {count}")
        return np.frombuffer(self.take(n * item, what), dtype=dtype)


def _header(r: _Reader, what: str, d: int, ntotal: int | None) -> int:
    got_d = r.scalar("i", f"{what} dimension")
    got_n = r.scalar("q", f"{what} ntotal")
    r.take(16, f"{what} header")  # two unused fields
    r.take(1, f"{what} is_trained")
    metric = r.scalar("i", f"{what} metric")
    if metric != METRIC_INNER_PRODUCT:
        raise FaissFileError(f"{what} uses metric {metric}; the course's indexes use inner product (0)")
    if got_d != d:
        raise FaissFileError(f"{what} has dimension {got_d}, expected {d}")
    if got_n < 0 or (ntotal is not None and got_n != ntotal):
        raise FaissFileError(f"{what} holds {got_n} vectors, expected {ntotal}")
    return got_n


def _flat(r: _Reader, what: str, d: int, ntotal: int | None) -> int:
    kind = r.fourcc(what)
    if kind != "IxFI":
        raise FaissFileError(f"{what} is a {kind!r} index; expected a flat inner-product index ('IxFI')")
    n = _header(r, what, d, ntotal)
    codes = r.scalar("Q", f"length of {what} codes")  # written as a count of 4-byte words
    if codes != n * d:
        raise FaissFileError(f"{what} codes hold {codes} floats, expected {n} x {d}")
    r.take(4 * codes, f"{what} codes")
    return n


def _ivf(r: _Reader, d: int, ntotal: int) -> None:
    _header(r, "IVF index", d, ntotal)
    nlist = r.scalar("Q", "IVF nlist")
    r.scalar("Q", "IVF nprobe")
    if not 1 <= nlist <= max(1, ntotal):
        raise FaissFileError(f"IVF index has {nlist} lists for {ntotal} vectors")
    _flat(r, "IVF centroids", d, nlist)
    if r.scalar("b", "IVF direct map type") != 0 or len(r.vector("<i8", "IVF direct map")) != 0:
        raise FaissFileError("IVF index carries a direct map; the course never writes one")
    if r.fourcc("inverted lists") != "ilar":
        raise FaissFileError("IVF inverted lists are not FAISS array lists ('ilar')")
    if r.scalar("Q", "inverted list count") != nlist or r.scalar("Q", "inverted list code size") != 4 * d:
        raise FaissFileError("IVF inverted lists disagree with the index's nlist or dimension")
    layout = r.fourcc("inverted list layout")
    raw = r.vector("<u8", "inverted list sizes")
    if layout == "full":
        if len(raw) != nlist:
            raise FaissFileError(f"inverted list sizes name {len(raw)} lists, expected {nlist}")
        sizes = raw
    elif layout == "sprs":
        pairs = raw.reshape(-1, 2) if len(raw) % 2 == 0 else None
        if pairs is None or (pairs[:, 0] >= nlist).any():
            raise FaissFileError("sparse inverted list sizes are malformed")
        sizes = np.zeros(nlist, dtype=np.uint64)
        sizes[pairs[:, 0]] = pairs[:, 1]
    else:
        raise FaissFileError(f"unknown inverted list layout {layout!r}")
    if int(sizes.sum(dtype=np.float64)) != ntotal:
        raise FaissFileError(f"inverted lists hold {int(sizes.sum(dtype=np.float64))} vectors, expected {ntotal}")
    seen = np.zeros(ntotal, dtype=bool)
    for n in sizes[sizes > 0].tolist():
        r.take(int(n) * 4 * d, "inverted list codes")
        ids = np.frombuffer(r.take(int(n) * 8, "inverted list ids"), dtype="<i8")
        if ((ids < 0) | (ids >= ntotal)).any() or seen[ids].any():
            raise FaissFileError("an inverted list names a vector outside the index, or one twice")
        seen[ids] = True


def _hnsw(r: _Reader, d: int, ntotal: int) -> None:
    _header(r, "HNSW index", d, ntotal)
    r.vector("<f8", "HNSW level probabilities")
    cum = r.vector("<i4", "HNSW neighbours per level")
    levels = r.vector("<i4", "HNSW levels", count=ntotal)
    offsets = r.vector("<u8", "HNSW offsets", count=ntotal + 1)
    neighbours = r.vector("<i4", "HNSW neighbours")
    if len(cum) == 0 or (np.diff(cum) < 0).any() or (levels < 1).any() or (levels >= len(cum)).any():
        raise FaissFileError("HNSW levels are malformed")
    if ntotal and (offsets[0] != 0 or (np.diff(offsets.astype(np.int64)) != cum[levels]).any()
                   or offsets[-1] != len(neighbours)):
        raise FaissFileError("HNSW neighbour offsets are malformed")
    if ((neighbours < -1) | (neighbours >= ntotal)).any():
        raise FaissFileError("an HNSW link names a vector outside the index")
    entry, max_level = r.scalar("i", "HNSW entry point"), r.scalar("i", "HNSW max level")
    r.take(12, "HNSW search parameters")
    if ntotal and not (0 <= entry < ntotal and 0 <= max_level == int(levels.max()) - 1):
        raise FaissFileError("HNSW entry point or top level is malformed")
    _flat(r, "HNSW storage", d, ntotal)


def check_index_bytes(data: bytes, kind: str, d: int, ntotal: int) -> np.ndarray:
    """Check ``data`` is an ``IDMap`` over a course index of ``kind``; returns its ``(ntotal,)`` id map.

    Raises :class:`FaissFileError` naming the first thing that is off. Nothing larger than
    ``data`` itself is allocated.
    """
    if kind not in KINDS:
        raise FaissFileError(f"unknown index kind {kind!r}; expected one of {sorted(KINDS)}")
    r = _Reader(data)
    if r.fourcc("index type") != "IxMp":
        raise FaissFileError("not a FAISS IndexIDMap ('IxMp'), which is what the course writes")
    _header(r, "ID map", d, ntotal)
    inner = r.fourcc("inner index type")
    if inner != KINDS[kind]:
        raise FaissFileError(f"inner index is {inner!r}; a {kind!r} index stores {KINDS[kind]!r}")
    if kind == "flat":
        _header(r, "flat index", d, ntotal)
        if r.scalar("Q", "length of flat codes") != ntotal * d:
            raise FaissFileError(f"flat codes do not hold {ntotal} x {d} floats")
        r.take(4 * ntotal * d, "flat codes")
    elif kind == "ivf":
        _ivf(r, d, ntotal)
    else:
        _hnsw(r, d, ntotal)
    ids = r.vector("<i8", "ID map", count=ntotal)
    if r.left():
        raise FaissFileError(f"{r.left()} unexpected bytes after the index")
    return ids
