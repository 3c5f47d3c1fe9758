"""MultimodalIndex: id-aligned fusion, missing modalities, validation, persistence.

Unit tests use table-lookup embedders (the index is duck-typed and must not depend on
the course model); one test runs the real default text model, all-MiniLM-L6-v2.
"""
import json
import math

import numpy as np
import pytest
import torch

from mmcourse.retrieval import weighted_fusion
from mmcourse.search import (Document, IndexConfig, IndexFileError, MultimodalIndex, SearchHit,
                             SeedMultimodalSearchIndex)


@pytest.fixture(autouse=True)
def _one_faiss_thread():
    # Small indexes: OpenMP hand-offs would cost more than the searches on a shared CPU.
    from mmcourse.scale.indexes import single_threaded_faiss

    with single_threaded_faiss():
        yield


def unit(cos: float, dim: int = 3, axis: int = 1) -> list[float]:
    """A unit vector whose cosine with e0 is ``cos`` (the rest on ``axis``)."""
    v = [0.0] * dim
    v[0], v[axis] = cos, math.sqrt(max(0.0, 1 - cos * cos))
    return v


class TableEmbedder:
    """Looks texts and images (any hashable stand-in) up in tables; counts calls."""

    def __init__(self, texts=None, images=None):
        self.texts, self.images = dict(texts or {}), dict(images or {})
        self.calls = {"texts": 0, "images": 0}

    def embed_texts(self, texts):
        self.calls["texts"] += 1
        return torch.tensor([self.texts[t] for t in texts], dtype=torch.float32)  # (N, D)

    def embed_images(self, images):
        self.calls["images"] += 1
        return torch.tensor([self.images[i] for i in images], dtype=torch.float32)  # (N, D)


# Documents A, B, C in this order; C is the best match in *both* modalities for query "q".
TEXT_COS = {"A": 0.1, "B": 0.5, "C": 0.95}
IMAGE_COS = {"A": 0.0, "B": 0.3, "C": 0.9}


def abc_corpus():
    text_model = TableEmbedder({"q": unit(1.0), **{f"text {d}": unit(c) for d, c in TEXT_COS.items()}})
    clip = TableEmbedder({"q": unit(1.0)}, {f"img {d}": unit(c) for d, c in IMAGE_COS.items()})
    docs = [Document(d, text=f"text {d}", image=f"img {d}", metadata={"n": i}) for i, d in enumerate("ABC")]
    return text_model, clip, docs


def test_seed_approach_gets_top1_wrong_and_ours_right():
    text_model, clip, docs = abc_corpus()
    seed = SeedMultimodalSearchIndex(text_model, clip, text_placeholder_dim=3, image_placeholder_dim=3)
    seed.index_documents(docs)
    seed_ids = [r["doc_id"] for r in seed.search("q", k=3)]
    assert seed_ids == ["A", "B", "C"]  # sorted lists summed by position: just the insertion order
    assert seed.search("q", k=1)[0]["score"] == pytest.approx(0.5 * 0.95 + 0.5 * 0.9)  # C's scores, credited to A

    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    for fusion in ("weighted", "rrf"):
        hits = index.search(text="q", k=3, fusion=fusion)
        assert [h.id for h in hits] == ["C", "B", "A"], fusion
    top = index.search(text="q", k=1)[0]
    assert isinstance(top, SearchHit)
    assert top.scores == pytest.approx({"text": 0.95, "image": 0.9})
    assert top.score == pytest.approx(1.0)  # best in both after min-max


def test_seed_placeholder_sizes_break_with_a_384d_text_model():
    text_model = TableEmbedder({"hello": [1.0] * 384})
    clip = TableEmbedder({}, {"img": [1.0] * 8})
    seed = SeedMultimodalSearchIndex(text_model, clip)  # the seed's 768 / 512 placeholders
    with pytest.raises(ValueError):
        seed.index_documents([Document("t", text="hello"), Document("i", image="img")])


def missing_modality_corpus():
    # T: text only, a perfect text match. I: image only, similarity -0.2 to the image query.
    text_model = TableEmbedder({"q": unit(1.0), "text T": unit(1.0), "text B": unit(0.2)})
    clip = TableEmbedder({"q": unit(1.0)}, {"img I": unit(-0.2), "img B": unit(0.6), "query img": unit(1.0)})
    docs = [Document("T", text="text T"), Document("I", image="img I"), Document("B", text="text B", image="img B")]
    return text_model, clip, docs


def test_text_only_document_is_never_scored_by_the_image_index():
    text_model, clip, docs = missing_modality_corpus()
    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    assert index.count("image") == 2 and index.count("text") == 2 and len(index) == 3
    assert index.faiss_index("image").ntotal == 2  # no placeholder rows
    hits = index.search(image="query img", k=10)
    assert [h.id for h in hits] == ["B", "I"]  # T is not in the image index at all
    assert all("text" not in h.scores for h in hits)
    for fusion in ("weighted", "rrf"):
        by_id = {h.id: h for h in index.search(text="q", k=10, fusion=fusion)}
        assert set(by_id) == {"T", "I", "B"}
        assert "image" not in by_id["T"].scores and "text" not in by_id["I"].scores
        assert by_id["T"].scores["text"] == pytest.approx(1.0)
    # by default a missing modality counts 0 (weights keep their meaning) ...
    assert {h.id: h.score for h in index.search(text="q")} == pytest.approx({"T": 0.5, "B": 0.5, "I": 0.0})
    # ... or, with missing="skip", a text-only document is judged by its text alone
    skip = {h.id: h.score for h in index.search(text="q", missing="skip")}
    assert skip == pytest.approx({"T": 1.0, "B": 0.5, "I": 0.0})
    with pytest.raises(ValueError, match="missing"):
        index.search(text="q", missing="ignore")

    # The seed's zero vector *is* scored: exactly 0, above the real image at -0.2.
    seed = SeedMultimodalSearchIndex(text_model, clip, text_placeholder_dim=3, image_placeholder_dim=3)
    seed.index_documents(docs)
    sims, rows = seed.image_index.search(np.asarray([unit(1.0)], dtype=np.float32), 3)
    assert [seed.docs[r].id for r in rows[0]] == ["B", "T", "I"] and sims[0][1] == 0.0


def test_text_query_uses_text_model_and_clip_text_tower_image_query_uses_image_tower():
    text_model, clip, docs = abc_corpus()
    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    before_t, before_c = dict(text_model.calls), dict(clip.calls)
    index.search(text="q")
    assert text_model.calls["texts"] == before_t["texts"] + 1
    assert clip.calls["texts"] == before_c["texts"] + 1 and clip.calls["images"] == before_c["images"]
    clip.images["query"] = unit(1.0)
    hits = index.search(image="query")
    assert clip.calls["images"] == before_c["images"] + 1 and text_model.calls["texts"] == before_t["texts"] + 1
    assert [h.id for h in hits] == ["C", "B", "A"] and all(set(h.scores) == {"image"} for h in hits)


def test_weight_zero_skips_a_modality_and_matches_single_index_search():
    text_model, clip, docs = abc_corpus()
    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    calls = clip.calls["texts"]
    only_text = index.search(text="q", weights=1.0)
    assert clip.calls["texts"] == calls  # the image side was not even embedded
    assert all(set(h.scores) == {"text"} for h in only_text)
    assert [h.id for h in only_text] == ["C", "B", "A"]
    only_image = index.search(text="q", weights={"image": 1.0})
    assert all(set(h.scores) == {"image"} for h in only_image)


def test_query_with_neither_text_nor_image_is_a_value_error():
    text_model, clip, docs = abc_corpus()
    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    with pytest.raises(ValueError, match="neither"):
        index.search()
    with pytest.raises(ValueError, match="neither"):
        index.search_vectors({})
    with pytest.raises(ValueError, match="fusion"):
        index.search(text="q", fusion="sum")
    with pytest.raises(ValueError, match="weight"):
        index.search(text="q", weights=1.5)


def snapshot(index, queries):
    return len(index), [index.count(m) for m in ("text", "image")], [index.search(text=q, k=5) for q in queries]


def test_wrong_dimension_leaves_the_index_unchanged():
    text_model, clip, docs = abc_corpus()
    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    before = snapshot(index, ["q"])
    text_model.texts["good"] = unit(0.7)
    clip.images["bad img"] = [1.0, 0.0, 0.0, 0.0]  # 4-d, the image index holds 3-d
    batch = [Document("D", text="good"), Document("E", text="good", image="bad img")]
    with pytest.raises(ValueError, match="dimension 4"):
        index.add(batch)
    assert snapshot(index, ["q"]) == before and "D" not in index
    with pytest.raises(ValueError, match="dimension"):
        index.add_vectors(["F"], text=np.ones((1, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="dimension 2"):
        index.search_vectors({"text": np.ones(2)})
    with pytest.raises(ValueError, match="zero vector"):
        index.add_vectors(["G"], text=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        index.add_vectors(["H"], image=np.full((1, 3), np.nan))
    assert snapshot(index, ["q"]) == before


def test_duplicate_id_leaves_the_index_unchanged():
    text_model, clip, docs = abc_corpus()
    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    before = snapshot(index, ["q"])
    text_model.texts["new"] = unit(0.99)
    with pytest.raises(ValueError, match="duplicate document id 'B'"):
        index.add([Document("Z", text="new"), Document("B", text="new")])
    with pytest.raises(ValueError, match="duplicate document id 'Y'"):
        index.add([Document("Y", text="new"), Document("Y", text="new")])
    assert snapshot(index, ["q"]) == before and "Z" not in index and "Y" not in index
    with pytest.raises(ValueError, match="neither text nor image"):
        index.add([Document("W")])
    with pytest.raises(TypeError, match="str or int"):
        index.add([Document(1.5, text="new")])
    with pytest.raises(TypeError, match="JSON"):
        index.add([Document("V", text="new", metadata={"x": object()})])
    assert snapshot(index, ["q"]) == before


def test_image_without_clip_model_is_a_clear_error():
    index = MultimodalIndex(text_model=TableEmbedder({"a": unit(1.0)}))
    with pytest.raises(ValueError, match="clip="):
        index.add([Document("x", text="a", image="img")])
    assert len(index) == 0


def random_index(index_type, n=2000, seed=0, dim_t=16, dim_i=8, **config):
    rng = np.random.default_rng(seed)
    ids = [f"doc{i}" for i in range(n)]
    text = {d: rng.standard_normal(dim_t) for d in ids if rng.random() < 0.8}
    image = {d: rng.standard_normal(dim_i) for d in ids if d not in text or rng.random() < 0.5}
    index = MultimodalIndex(text_model=TableEmbedder(), config=IndexConfig(index_type=index_type, **config))
    index.add_vectors(ids, text=text, image=image, metadata=[{"i": i} for i in range(n)])
    queries = [{"text": rng.standard_normal(dim_t), "image": rng.standard_normal(dim_i)} for _ in range(10)]
    return index, text, image, queries


@pytest.mark.parametrize("missing", ["zero", "skip"])
def test_flat_search_matches_numpy_reference(missing):
    index, text, image, queries = random_index("flat", n=500, candidates=40)
    for q in queries:
        ref_scores = {}
        for modality, table in (("text", text), ("image", image)):
            ids = list(table)
            mat = np.stack([table[d] / np.linalg.norm(table[d]) for d in ids])
            sims = mat @ (q[modality] / np.linalg.norm(q[modality]))
            top = np.argsort(-sims, kind="stable")[:40]
            ref_scores[modality] = {ids[j]: float(sims[j]) for j in top}
        has = {"text": set(text), "image": set(image)} if missing == "skip" else None
        ref = weighted_fusion(ref_scores, {"text": 0.3, "image": 0.7}, has=has)[:10]
        got = index.search_vectors(q, k=10, weights=0.3, missing=missing)
        assert [h.id for h in got] == [d for d, _ in ref]
        assert [h.score for h in got] == pytest.approx([s for _, s in ref], abs=1e-5)
        for hit in got:
            for modality, s in hit.scores.items():
                assert s == pytest.approx(ref_scores[modality][hit.id], abs=1e-5)


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_approximate_indexes_agree_with_flat(index_type):
    flat, _, _, queries = random_index("flat")
    approx, _, _, _ = random_index(index_type, nprobe=32, ef_search=128)
    overlap = []
    for q in queries:
        want = {h.id for h in flat.search_vectors({"text": q["text"]}, k=10, weights=1.0)}
        got = {h.id for h in approx.search_vectors({"text": q["text"]}, k=10, weights=1.0)}
        overlap.append(len(want & got) / 10)
    assert np.mean(overlap) >= 0.9, overlap


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip_gives_identical_results(index_type, tmp_path):
    index, _, _, queries = random_index(index_type)
    index.save(tmp_path / "idx")
    loaded = MultimodalIndex.load(tmp_path / "idx", text_model=index.text_model)
    assert len(loaded) == len(index) and loaded.ids == index.ids
    assert [loaded.count(m) for m in ("text", "image")] == [index.count(m) for m in ("text", "image")]
    assert loaded.document("doc7") == index.document("doc7")
    for q in queries:
        for fusion in ("weighted", "rrf"):
            assert loaded.search_vectors(q, k=10, fusion=fusion) == index.search_vectors(q, k=10, fusion=fusion)
    # it keeps working after loading
    loaded.add_vectors(["extra"], text=np.ones((1, 16)))
    assert "extra" in loaded


def test_round_trip_with_real_documents(tmp_path):
    text_model, clip, docs = abc_corpus()
    index = MultimodalIndex(clip=clip, text_model=text_model)
    index.add(docs)
    index.save(tmp_path / "abc")
    loaded = MultimodalIndex.load(tmp_path / "abc", clip=clip, text_model=text_model)
    assert loaded.search(text="q", k=3) == index.search(text="q", k=3)
    assert loaded.document("B") == {"id": "B", "text": "text B", "metadata": {"n": 1}, "modalities": ["text", "image"]}
    no_clip = MultimodalIndex.load(tmp_path / "abc", text_model=text_model)
    with pytest.raises(ValueError, match="clip="):
        no_clip.search(text="q")


def test_corrupt_index_files_give_a_clear_error(tmp_path):
    index, _, _, _ = random_index("flat", n=200)
    folder = index.save(tmp_path / "idx")
    faiss_file = folder / "text.faiss"
    good = faiss_file.read_bytes()

    faiss_file.write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(IndexFileError, match="text.faiss is corrupt"):
        MultimodalIndex.load(folder)

    faiss_file.write_bytes(b"not a faiss index" * 10)  # garbage that also passes the checksum
    manifest = json.loads((folder / "index.json").read_text())
    import hashlib
    manifest["files"]["text"] = {"bytes": faiss_file.stat().st_size,
                                 "sha256": hashlib.sha256(faiss_file.read_bytes()).hexdigest()}
    (folder / "index.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFileError, match="not an index this course wrote"):
        MultimodalIndex.load(folder)

    faiss_file.write_bytes(good)
    (folder / "index.json").write_text('{"format_version": 1, "con')
    with pytest.raises(IndexFileError, match="index.json is not valid JSON"):
        MultimodalIndex.load(folder)
    (folder / "index.json").unlink()
    with pytest.raises(IndexFileError, match="not found"):
        MultimodalIndex.load(folder)


def test_default_text_model_is_minilm():
    index = MultimodalIndex()
    index.add([Document("cat", text="a ginger cat sleeping on a sofa"),
               Document("rocket", text="a rocket lifting off from the launch pad"),
               Document("coffee", text="a cup of hot coffee on a saucer")])
    assert index.faiss_index("text").d == 384
    assert index.search(text="a kitten napping", k=1)[0].id == "cat"
    assert index.search(text="spacecraft launch", k=1)[0].id == "rocket"


def test_ranked_id_metrics_hand_computed():
    from mmcourse.retrieval.metrics import ndcg_at_k_ids, recall_at_k_ids

    assert recall_at_k_ids(["a", "x", "b"], {"a", "b", "c", "d"}, 2) == 0.25
    assert ndcg_at_k_ids(["a", "b"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert ndcg_at_k_ids(["x", "a"], {"a"}, 2) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k_ids(["x"], {"a"}, 1) == 0.0


def test_mixed_corpus_has_every_kind_of_document_and_complete_labels():
    from mmcourse.search import mixed_corpus

    docs, queries = mixed_corpus(seed=0)
    kinds = {"both": 0, "text": 0, "image": 0}
    for d in docs:
        kinds["both" if d.text and d.image is not None else "text" if d.text else "image"] += 1
    assert kinds == {"both": 24 * 2 + 18, "text": 24, "image": 24 * 2}
    assert len({d.id for d in docs}) == len(docs)
    by_id = {d.id: d for d in docs}
    shape_queries = [q for q in queries if q.kind == "shape"]
    assert len(shape_queries) == 24 and len(queries) == 24 + 18
    for q in shape_queries:  # relevant = every document of that label, and nothing else
        label = next(iter({by_id[i].metadata["label"] for i in q.relevant}))
        assert {i for i, d in by_id.items() if d.metadata["label"] == label} == q.relevant
        assert len(q.relevant) == 5
