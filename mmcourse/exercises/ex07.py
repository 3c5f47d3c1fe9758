"""Exercises for notebook 07: hybrid search and fusion."""
import numpy as np

from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem

TITLE = "07 · Hybrid search: fusing modalities correctly"
SETUP = "import numpy as np"


def _rankings(rng, n_docs, n_lists):
    return [list(map(int, rng.permutation(n_docs)[: rng.integers(0, n_docs + 1)])) for _ in range(n_lists)]


def _rrf_cases(rng):
    """Partial lists of different lengths, an empty list, one list, a document in no list, k = 1."""
    cases = [{"rankings": [[2, 0], [0, 3, 1]], "n_docs": 5, "k": 60},
             {"rankings": [[1, 0, 2], []], "n_docs": 4, "k": 1},
             {"rankings": [[0]], "n_docs": 1, "k": 60}]
    for _ in range(3):
        n = int(rng.integers(3, 12))
        cases.append({"rankings": _rankings(rng, n, int(rng.integers(1, 4))), "n_docs": n, "k": int(rng.choice([1, 10, 60]))})
    return cases


def _rrf_ref(rankings, n_docs, k=60):
    from ..retrieval import reciprocal_rank_fusion

    fused = dict(reciprocal_rank_fusion({f"list{i}": r for i, r in enumerate(rankings)}, k=k))
    return np.array([fused.get(doc, 0.0) for doc in range(n_docs)])


def _rrf_zero_based(rankings, n_docs, k=60):
    out = np.zeros(n_docs)
    for ranking in rankings:
        for rank, doc in enumerate(ranking):
            out[doc] += 1 / (k + rank)
    return out


q1 = FunctionProblem(
    var="rrf",
    prompt="Reciprocal rank fusion. `rankings` is a list of rankings (each a list of document ids `0..n_docs-1`, best "
           "first; a list may miss some documents). Return a numpy array `(n_docs,)` with each document's fused score "
           "`Σ 1 / (k + rank)`, ranks counted from 1, and 0 for a document no list contains.",
    hints=["`for rank, doc in enumerate(ranking, start=1)`.", "Accumulate into `np.zeros(n_docs)`."],
    stub="def rrf(rankings, n_docs, k=60):\n    raise NotImplementedError",
    solution_code="def rrf(rankings, n_docs, k=60):\n"
                  "    scores = np.zeros(n_docs)\n"
                  "    for ranking in rankings:\n"
                  "        for rank, doc in enumerate(ranking, start=1):\n"
                  "            scores[doc] += 1 / (k + rank)\n"
                  "    return scores",
    reference=_rrf_ref,
    cases=_rrf_cases,
    mistakes=[(_rrf_zero_based, "ranks start at 1 in RRF: the top document gets 1/(k+1), not 1/k.")],
)


def _recall_ref(ranked_ids, relevant_ids, k):
    relevant = set(relevant_ids)
    return len(set(list(ranked_ids)[:k]) & relevant) / len(relevant)


def _recall_cases(rng):
    """Several relevant documents, one, a relevant one never retrieved, k = 1, k past the end of the ranking."""
    out = [{"ranked_ids": [3, 0, 4, 1], "relevant_ids": [0, 2], "k": 2},
           {"ranked_ids": [2, 1], "relevant_ids": [1, 4, 0], "k": 5},
           {"ranked_ids": [0, 1, 2], "relevant_ids": [2], "k": 1},
           {"ranked_ids": [4, 1, 0, 3], "relevant_ids": [0], "k": 2}]
    for _ in range(3):
        n = int(rng.integers(4, 15))
        ranked = list(map(int, rng.permutation(n)[: rng.integers(2, n + 1)]))
        relevant = list(map(int, rng.choice(n, int(rng.integers(1, 4)), replace=False)))
        out.append({"ranked_ids": ranked, "relevant_ids": relevant, "k": int(rng.integers(1, n + 2))})
    return out


q2 = FunctionProblem(
    var="recall_at_k",
    prompt="Write `recall_at_k(ranked_ids, relevant_ids, k)`: the fraction of the relevant documents that appear among "
           "the first `k` ranked ids.",
    hints=["`set(ranked_ids[:k]) & set(relevant_ids)`", "Divide by the number of relevant documents, not by k."],
    stub="def recall_at_k(ranked_ids, relevant_ids, k):\n    raise NotImplementedError",
    solution_code="def recall_at_k(ranked_ids, relevant_ids, k):\n"
                  "    found = set(ranked_ids[:k]) & set(relevant_ids)\n"
                  "    return len(found) / len(set(relevant_ids))",
    reference=_recall_ref,
    cases=_recall_cases,
    mistakes=[(lambda ranked_ids, relevant_ids, k: len(set(ranked_ids[:k]) & set(relevant_ids)) / k,
               "dividing by k gives precision@k: recall divides by the number of relevant documents.")],
)


def _fuse_ref(text_ids, text_scores, image_ids, image_scores, n_docs, w):
    text, image = np.zeros(n_docs), np.zeros(n_docs)
    text[text_ids] = text_scores
    image[image_ids] = image_scores
    return w * text + (1 - w) * image


def _fuse_cases(rng):
    """Top-k lists (not permutations): partial, of different lengths, one empty, and one full permutation."""
    def hits(n, k):
        ids = rng.permutation(n)[:k]
        return ids, np.sort(rng.uniform(0, 1, k))[::-1].copy()

    out = []
    for n, kt, ki, w in [(6, 3, 3, 0.5), (8, 5, 2, 0.3), (5, 0, 4, 0.8), (4, 4, 4, 0.6), (9, 2, 6, 0.5)]:
        (t_ids, t_sc), (i_ids, i_sc) = hits(n, kt), hits(n, ki)
        out.append({"text_ids": t_ids, "text_scores": t_sc, "image_ids": i_ids, "image_scores": i_sc, "n_docs": n, "w": w})
    n = int(rng.integers(5, 20))
    (t_ids, t_sc), (i_ids, i_sc) = hits(n, int(rng.integers(1, n + 1))), hits(n, int(rng.integers(1, n + 1)))
    out.append({"text_ids": t_ids, "text_scores": t_sc, "image_ids": i_ids, "image_scores": i_sc, "n_docs": n,
                "w": float(rng.uniform(0, 1))})
    return out


q3 = FunctionProblem(
    var="fuse_by_id",
    prompt="FAISS returns each index's hits *sorted by score*: `text_ids[i]` has score `text_scores[i]`, and the same "
           "position in the image results is usually a *different* document. Write `fuse_by_id(text_ids, text_scores, "
           "image_ids, image_scores, n_docs, w)` returning the `(n_docs,)` fused scores `w · text + (1 - w) · image`, "
           "with each score placed at its document id. (This is the seed lesson's first bug.)",
    hints=["Scatter each result list into a dense array indexed by document id first.",
           "`text = np.zeros(n_docs); text[text_ids] = text_scores`, the same for images, then combine."],
    stub="def fuse_by_id(text_ids, text_scores, image_ids, image_scores, n_docs, w):\n    raise NotImplementedError",
    solution_code="def fuse_by_id(text_ids, text_scores, image_ids, image_scores, n_docs, w):\n"
                  "    text, image = np.zeros(n_docs), np.zeros(n_docs)\n"
                  "    text[text_ids] = text_scores  # place each score at its document\n"
                  "    image[image_ids] = image_scores\n"
                  "    return w * text + (1 - w) * image",
    reference=_fuse_ref,
    cases=_fuse_cases,
    mistakes=[(lambda text_ids, text_scores, image_ids, image_scores, n_docs, w: w * text_scores + (1 - w) * image_scores,
               "you added the score lists position by position: position i of each list is a different document. "
               "Align by id first (this is exactly the seed's bug).")],
)

q4 = NumericProblem(
    var="rrf_score",
    prompt="With k = 60 (the value Cormack et al. 2009 proposed), a document is ranked 1st by the text retriever and 3rd by the image retriever. What is its RRF "
           "score? Set `rrf_score`.",
    hints=["1/(k + rank) per list, summed."],
    solution_text="1/61 + 1/63 ≈ 0.03227.",
    stub="rrf_score = ____",
    solution_code="rrf_score = 1 / 61 + 1 / 63",
    answer=1 / 61 + 1 / 63, rel_tol=1e-3,
)

q5 = ChoiceProblem(
    var="answer_missing_modality",
    prompt="The seed lesson's index stores a zero vector for a document without an image. What does that do to an "
           "image query?",
    options={"a": "Nothing: zero vectors are ignored by FAISS.",
             "b": "The document gets image similarity exactly 0, which outranks every document whose real similarity is "
                  "negative and drags down the fused score of text-only documents; missing must mean 'not scored', not 0.",
             "c": "FAISS raises an error on zero vectors.",
             "d": "The document is removed from the index."},
    correct="b",
    explanations={"a": "FAISS scores every stored vector, zeros included.",
                  "b": "a placeholder is a real point in the space. Keep per-modality indexes keyed by id and fuse only the "
                       "modalities a document has (notebook 07 shows both effects).",
                  "c": "FAISS accepts zero vectors like any other vector; nothing raises.",
                  "d": "nothing removes it; it stays and gets a made-up score."},
    hints=["What is the inner product of any query with the zero vector?"],
    stub="answer_missing_modality = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_missing_modality = 'b'",
)

PROBLEMS = [q1, q2, q3, q4, q5]
