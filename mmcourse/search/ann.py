"""Kept for old imports: FAISS thread control now lives with the index-choice benchmark.

The index-choice benchmark (flat / IVF / HNSW / IVF-PQ, recall against latency) is
:mod:`mmcourse.scale.indexes`; notebooks 07 and 08 and ``make bench`` all use it.
"""
from mmcourse.scale.indexes import single_threaded_faiss

__all__ = ["single_threaded_faiss"]
