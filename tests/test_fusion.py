"""Score fusion: weighted (normalised) and reciprocal rank fusion, against naive references."""
import random

import pytest

from mmcourse.retrieval import normalize_scores, reciprocal_rank_fusion, weighted_fusion


def test_exported_from_retrieval_package():
    import mmcourse.retrieval as retrieval

    for name in ("normalize_scores", "weighted_fusion", "reciprocal_rank_fusion"):
        assert name in retrieval.fusion.__all__ and hasattr(retrieval, name)


def test_minmax_maps_best_to_one_and_worst_to_zero():
    out = normalize_scores({"a": 0.2, "b": 0.5, "c": 0.35})
    assert out == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.5})
    assert normalize_scores({"a": 0.3, "b": 0.3}) == {"a": 1.0, "b": 1.0}
    assert normalize_scores({"a": -2.0}, "none") == {"a": -2.0}
    assert normalize_scores({}) == {}
    with pytest.raises(ValueError, match="zscore"):
        normalize_scores({"a": 1.0}, "zscore")


def _naive_weighted(scores, weights, has=None):
    names = list(scores)
    normed = {}
    for n in names:
        vals = scores[n]
        lo, hi = min(vals.values()), max(vals.values())
        normed[n] = {d: (v - lo) / (hi - lo) if hi > lo else 1.0 for d, v in vals.items()}
    docs = []
    for n in names:
        for d in scores[n]:
            if d not in docs:
                docs.append(d)
    out = []
    for d in docs:
        num = den = 0.0
        for n in names:
            if has is not None and d not in has[n]:
                continue
            num += weights[n] * normed[n].get(d, 0.0)
            den += weights[n]
        out.append((d, num / den if den else 0.0))
    return sorted(out, key=lambda x: -x[1])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("use_has", [False, True])
def test_weighted_fusion_matches_naive_reference(seed, use_has):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(30)]
    scores = {"text": {d: rng.uniform(-1, 1) for d in rng.sample(docs, 12)},
              "image": {d: rng.uniform(-1, 1) for d in rng.sample(docs, 12)}}
    weights = {"text": rng.random(), "image": rng.random()}
    has = {"text": set(rng.sample(docs, 20)) | set(scores["text"]),
           "image": set(rng.sample(docs, 20)) | set(scores["image"])} if use_has else None
    got = weighted_fusion(scores, weights, has=has)
    want = _naive_weighted(scores, weights, has)
    assert [d for d, _ in got] == [d for d, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want])


def test_weighted_fusion_aligns_by_id_not_position():
    # Sorted lists from two retrievers put different documents at the same position.
    text = {"a": 0.9, "b": 0.8, "c": 0.1}
    image = {"c": 0.9, "b": 0.8, "a": 0.1}
    fused = dict(weighted_fusion({"text": text, "image": image}, {"text": 1, "image": 1}))
    assert fused["b"] == pytest.approx(0.875)  # (0.875 + 0.875) / 2 after min-max
    assert fused["a"] == pytest.approx(0.5) and fused["c"] == pytest.approx(0.5)


def test_missing_modality_is_left_out_with_has_and_counts_zero_without():
    scores = {"text": {"t_only": 0.9, "both": 0.5, "low": 0.1}, "image": {"both": 0.8, "img": 0.2}}
    has = {"text": {"t_only", "both", "low"}, "image": {"both", "img"}}
    with_has = dict(weighted_fusion(scores, has=has))
    assert with_has["t_only"] == pytest.approx(1.0)  # judged by text alone
    without = dict(weighted_fusion(scores))
    assert without["t_only"] == pytest.approx(0.5)  # image counted as 0


def test_zero_weight_and_bad_weights():
    scores = {"text": {"a": 1.0, "b": 0.0}, "image": {"b": 1.0, "a": 0.0}}
    assert weighted_fusion(scores, {"text": 1.0, "image": 0.0})[0][0] == "a"
    with pytest.raises(ValueError, match="audio"):
        weighted_fusion(scores, {"audio": 1.0})
    with pytest.raises(ValueError, match="-1"):
        weighted_fusion(scores, {"text": -1.0})


def test_rrf_hand_computed():
    got = dict(reciprocal_rank_fusion({"text": ["a", "b", "c"], "image": ["b", "d"]}, k=60))
    assert got["a"] == pytest.approx(1 / 61)
    assert got["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert got["c"] == pytest.approx(1 / 63)
    assert got["d"] == pytest.approx(1 / 62)
    ranked = [d for d, _ in reciprocal_rank_fusion({"text": ["a", "b", "c"], "image": ["b", "d"]})]
    assert ranked == ["b", "a", "d", "c"]


def test_rrf_weights_and_errors():
    weighted = reciprocal_rank_fusion({"text": ["a"], "image": ["b"]}, weights={"text": 1.0, "image": 2.0})
    assert weighted[0][0] == "b" and weighted[0][1] == pytest.approx(2 / 61)
    with pytest.raises(ValueError, match="more than once"):
        reciprocal_rank_fusion({"text": ["a", "a"]})
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion({"text": ["a"]}, k=-1)


def test_failure_modes_notebook_07_teaches():
    """Min-max cannot tell a useless list from a good one; RRF gives a noise list's ranks full credit."""
    good = {"right": 0.80, "wrong-a": 0.40, "wrong-b": 0.30}  # the text index: one clear answer
    noise = {"wrong-a": 0.12, "wrong-b": 0.11, "other": 0.10}  # the image index: nothing relevant, all close
    assert normalize_scores(noise) == pytest.approx({"wrong-a": 1.0, "wrong-b": 0.5, "other": 0.0})
    # weighted (each document judged by the lists that can hold it): the noise lifts wrong-a from 0.2 to 0.6
    fused = dict(weighted_fusion({"text": good, "image": noise}, has={"image": set(noise)}))
    assert fused["right"] == 1.0 and fused["wrong-a"] == pytest.approx((0.2 + 1.0) / 2)
    # RRF: a wrong document ranked 2nd by text and 1st by the noise beats the right one ranked 1st by text only
    top = reciprocal_rank_fusion({"text": list(good), "image": list(noise)})[0][0]
    assert top == "wrong-a"
