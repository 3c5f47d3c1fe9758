"""Recall@k, nDCG@k, mAP against hand-computed cases and scikit-learn; similarity and zero-shot ensembling."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmcourse

from mmcourse.models.embedder import Embedder
from mmcourse.retrieval import (class_embeddings, mean_average_precision, ndcg_at_k, recall_at_k, similarity,
                                zero_shot_classify)

# One query, four candidates. Ranking by score: 0 (0.9), 2 (0.5), 3 (0.3), 1 (0.1).
SCORES = np.array([[0.9, 0.1, 0.5, 0.3]])
GRADED = np.array([[0.0, 0.0, 2.0, 1.0]])  # candidate 2 highly relevant, 3 partly


def test_recall_by_hand():
    assert recall_at_k(SCORES, [{2, 3}], k=1) == 0.0
    assert recall_at_k(SCORES, [{2, 3}], k=2) == 0.5  # one of two relevant in the top 2
    assert recall_at_k(SCORES, [{2, 3}], k=3) == 1.0
    assert recall_at_k(SCORES, [{2, 3}], k=2, hit=True) == 1.0
    assert recall_at_k(SCORES, GRADED, k=2) == 0.5  # dense form, graded values count as relevant
    assert recall_at_k(SCORES, [2], k=2) == 1.0  # one relevant index per query
    assert recall_at_k(SCORES, [1], k=3) == 0.0
    assert recall_at_k(SCORES, [1], k=100) == 1.0  # k larger than N means "all"


def test_map_by_hand():
    # relevant at ranks 2 and 3: (1/2 + 2/3) / 2
    assert mean_average_precision(SCORES, [{2, 3}]) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert mean_average_precision(SCORES, [0]) == 1.0
    assert mean_average_precision(SCORES, [1]) == pytest.approx(1 / 4)
    # mAP@2: only rank 2 counts, divided by min(2 relevant, k=2)
    assert mean_average_precision(SCORES, [{2, 3}], k=2) == pytest.approx((1 / 2) / 2)


def test_ndcg_by_hand():
    dcg = 0 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3) + 0 / math.log2(4)
    assert ndcg_at_k(SCORES, GRADED, k=3) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(SCORES, GRADED, k=1) == 0.0
    assert ndcg_at_k(np.array([[0.1, 0.2, 0.9, 0.5]]), GRADED, k=4) == pytest.approx(1.0)  # ideal order


def test_per_query_and_mean():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6]])
    per = recall_at_k(scores, [0, 1, 1], k=1, per_query=True)
    assert per.tolist() == [1.0, 1.0, 0.0]
    assert recall_at_k(scores, [0, 1, 1], k=1) == pytest.approx(2 / 3)
    assert recall_at_k(torch.tensor(scores), torch.tensor([0, 1, 1]), k=1) == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn(seed):
    from sklearn.metrics import average_precision_score, ndcg_score

    rng = np.random.default_rng(seed)
    scores = rng.random((6, 12))  # no ties
    graded = rng.integers(0, 3, size=(6, 12)).astype(float)
    graded[:, 0] = np.maximum(graded[:, 0], 1)  # every query has a relevant candidate
    for k in (1, 3, 12):
        assert ndcg_at_k(scores, graded, k) == pytest.approx(ndcg_score(graded, scores, k=k))
    binary = graded > 0
    expected = np.mean([average_precision_score(binary[i], scores[i]) for i in range(6)])
    assert mean_average_precision(scores, binary.astype(float)) == pytest.approx(expected)


def test_metric_input_errors():
    with pytest.raises(ValueError, match="no relevant"):
        recall_at_k(SCORES, [set()], k=1)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(SCORES, [0], k=0)
    with pytest.raises(ValueError, match="queries"):
        recall_at_k(SCORES, [0, 1], k=1)
    with pytest.raises(ValueError, match="column index"):
        recall_at_k(SCORES, [7], k=1)
    with pytest.raises(ValueError, match="shape"):
        ndcg_at_k(SCORES, np.zeros((1, 3)), k=1)
    with pytest.raises(ValueError, match=r"\(Q, N\)"):
        mean_average_precision(np.zeros(4), [0])


def test_similarity_is_cosine():
    a, b = torch.randn(3, 5), torch.randn(4, 5)
    expected = F.cosine_similarity(a[:, None], b[None], dim=-1)
    torch.testing.assert_close(similarity(a, b), expected, atol=1e-6, rtol=0)
    assert similarity(a[0], b).shape == (1, 4)
    with pytest.raises(ValueError, match="sizes differ"):
        similarity(a, torch.randn(2, 6))


class _FakeEmbedder(Embedder):
    """Texts map to fixed random vectors (seeded by the text); images to given vectors."""

    def __init__(self):
        super().__init__("fake", model=None, processor=None, device="cpu", logit_scale=10.0)

    def _encode_texts(self, texts):
        return torch.stack([torch.randn(8, generator=torch.Generator().manual_seed(sum(map(ord, t))))
                            for t in texts])

    def _encode_images(self, images):
        return torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32)).mean((0, 1)).repeat(3)[:8]
                            for im in images])


def test_prompt_ensembling_is_renormalised_mean():
    model = _FakeEmbedder()
    templates = ["a photo of a {}.", "a drawing of a {}."]
    got = class_embeddings(model, ["cat", "dog"], templates)
    for i, label in enumerate(["cat", "dog"]):
        each = F.normalize(model._encode_texts([t.format(label) for t in templates]), dim=-1)
        torch.testing.assert_close(got[i], F.normalize(each.mean(0), dim=0), atol=1e-6, rtol=0)
    # a function label -> prompts works too
    same = class_embeddings(model, ["cat", "dog"], lambda label: [t.format(label) for t in templates])
    torch.testing.assert_close(same, got)


def test_zero_shot_probabilities():
    from PIL import Image

    model = _FakeEmbedder()
    images = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255), (10, 200, 30))]
    probs = zero_shot_classify(model, images, ["cat", "dog", "bird"])
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    logits = 10.0 * similarity(model.embed_images(images), class_embeddings(model, ["cat", "dog", "bird"]))
    torch.testing.assert_close(probs, logits.softmax(1), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="labels"):
        zero_shot_classify(model, images, [])
    with pytest.raises(ValueError, match="activation"):
        zero_shot_classify(model, images, ["cat"], activation="relu")


@pytest.mark.parametrize("n,r,k", [(6, 1, 1), (6, 2, 3), (7, 3, 2), (5, 5, 1), (4, 1, 9)])
def test_hit_at_k_chance_matches_every_ranking(n, r, k):
    """The closed form equals the mean hit over all n! rankings."""
    import itertools

    from mmcourse.retrieval import hit_at_k_chance

    hits = [any(c < r for c in order[:k]) for order in itertools.permutations(range(n))]
    assert hit_at_k_chance(n, r, k) == pytest.approx(np.mean(hits), abs=1e-12)
    with pytest.raises(ValueError, match="n_relevant"):
        hit_at_k_chance(n, 0, k)


def test_composition_hit_rate_by_hand():
    from mmcourse.retrieval import composition_hit_rate

    items = torch.eye(3)  # three orthogonal "concepts"
    pairs = [(0, 1), (0, 2), (1, 2)]
    gallery = torch.nn.functional.normalize(torch.stack([items[a] + items[b] for a, b in pairs] + list(items)), dim=-1)
    contents = [set(p) for p in pairs] + [{0}, {1}, {2}]
    assert composition_hit_rate(items, items, gallery, contents, k=1) == 1.0
    # a second modality that swaps items 1 and 2: only pairs whose sum still lands on the right scene hit
    swapped = items[[0, 2, 1]]
    # (0,1)->0+2 wrong, (0,2)->0+1 wrong, (1,0)->1+0 right, (1,2)->1+1 wrong, (2,0)->2+0 right, (2,1)->2+2 wrong
    assert composition_hit_rate(items, swapped, gallery, contents, k=1) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="no gallery entry holds exactly"):
        composition_hit_rate(items, items, gallery[:2], contents[:2])
    with pytest.raises(ValueError, match="one shape"):
        composition_hit_rate(items, items[:2], gallery, contents)


def test_text_only_label_accuracy_counts_prompts_nearest_their_own_label():
    from mmcourse.retrieval import text_only_label_accuracy

    vectors = {"cat": [1.0, 0.0], "dog": [0.0, 1.0], "kitty": [0.9, 0.1], "pup": [0.2, 0.8], "hound": [0.7, 0.3]}

    def embed(texts):  # a toy text tower: 'hound' sits nearer 'cat' than 'dog'
        return torch.tensor([vectors[t] for t in texts])

    synonyms = {"cat": ["kitty"], "dog": ["pup", "hound"]}
    acc = text_only_label_accuracy(embed, ["cat", "dog"], lambda label: synonyms[label], lambda label: [label])
    assert acc == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labels"):
        text_only_label_accuracy(embed, "cat", lambda label: [label])


def test_top_k_accuracy_is_argmax_accuracy_and_its_top_k_form():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(50, 7, generator=g)  # (N, L)
    truth = torch.randint(7, (50,), generator=g)  # (N,)
    assert mmcourse.top_k_accuracy(scores, truth) == pytest.approx((scores.argmax(1) == truth).float().mean().item())
    in_top3 = (scores.topk(3, dim=1).indices == truth[:, None]).any(1).float()  # (N,)
    assert mmcourse.top_k_accuracy(scores, truth, k=3) == pytest.approx(in_top3.mean().item())
    assert mmcourse.top_k_accuracy(scores, truth, per_query=True).tolist() == (scores.argmax(1) == truth).float().tolist()


def test_top_k_accuracy_breaks_ties_like_argmax_and_checks_the_truth():
    tied = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])  # (2, 3) two tied maxima per row
    assert mmcourse.top_k_accuracy(tied, [0, 2], per_query=True).tolist() == [1.0, 0.0]  # argmax: 0 and 1
    with pytest.raises(ValueError, match="not a column index"):
        mmcourse.top_k_accuracy(tied, [0, 3])
