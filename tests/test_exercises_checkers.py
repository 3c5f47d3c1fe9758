"""The checkers hold: model solutions pass, named and held-back wrong answers fail, feedback never shows the answer.

Every FunctionProblem ships some wrong implementations as named mistakes (targeted
feedback); this file holds more that the learner never sees. Each must be rejected on
every seed, including the edge cases, and no failure message may contain the
reference output.
"""
import copy
import importlib
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmcourse import losses
from mmcourse.exercises import problem_kinds as core

TOPICS = ["ex01", "ex02", "ex03", "ex04", "ex05", "ex06", "ex07", "ex08", "interview_tasks"]
SEEDS = [0, 1, 2, 12345]


def _problems():
    out = {}
    for topic in TOPICS:
        try:
            module = importlib.import_module(f"mmcourse.exercises.{topic}")
        except ModuleNotFoundError:
            continue
        for i, p in enumerate(getattr(module, "PROBLEMS", []), start=1):
            name = next((k for k, v in vars(module).items() if v is p and re.fullmatch(r"q\d+|t\d+", k)), f"q{i}")
            out[f"{topic}.{name}"] = p
    return out


PROBLEMS = _problems()
FUNCTION_PROBLEMS = {k: p for k, p in PROBLEMS.items() if isinstance(p, core.FunctionProblem)}


def _sim(a, b, s):
    return s * a @ b.T


# ---------------------------------------------------------------- wrong implementations held back from learners
def _dense_siglip(image_features, text_features, logit_scale, logit_bias, chunk_size):
    return losses.siglip_loss(image_features, text_features, logit_scale, logit_bias)


def _chunked_with_dense_labels(image_features, text_features, logit_scale, logit_bias, chunk_size):
    n, total = len(image_features), 0.0
    labels = 2 * torch.eye(n, dtype=image_features.dtype) - 1  # (N, N): the block the exercise forbids
    for start in range(0, n, chunk_size):
        logits = logit_scale * image_features @ text_features[start:start + chunk_size].T + logit_bias  # (N, C)
        total = total - F.logsigmoid(labels[:, start:start + chunk_size] * logits).sum()
    return total / n


def _chunked_mean_per_chunk(image_features, text_features, logit_scale, logit_bias, chunk_size):
    n, parts = len(image_features), []
    for start in range(0, n, chunk_size):
        t = text_features[start:start + chunk_size]
        logits = logit_scale * image_features @ t.T + logit_bias  # (N, C)
        labels = -torch.ones_like(logits)
        cols = torch.arange(len(t))
        labels[start + cols, cols] = 1.0
        parts.append(-F.logsigmoid(labels * logits).sum() / len(t))
    return sum(parts) / len(parts)


def _naive_clip(image_features, text_features, logit_scale):
    logits = logit_scale * image_features @ text_features.T
    e = logits.exp()
    i2t = -(e.diag() / e.sum(1)).log().mean()
    t2i = -(e.diag() / e.sum(0)).log().mean()
    return (i2t + t2i) / 2


def _naive_siglip(image_features, text_features, logit_scale, logit_bias):
    logits = logit_scale * image_features @ text_features.T + logit_bias
    labels = 2 * torch.eye(len(logits), dtype=logits.dtype) - 1
    return -torch.log(torch.sigmoid(labels * logits)).sum() / len(logits)


def _rrf_by_position(rankings, n_docs, k=60):
    out = np.zeros(n_docs)
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            if rank - 1 < n_docs:
                out[rank - 1] += 1 / (k + rank)
    return out


def _rrf_mean(rankings, n_docs, k=60):
    out = np.zeros(n_docs)
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            out[doc] += 1 / (k + rank)
    return out / max(1, len(rankings))


HELD = {
    "ex01.q1": [lambda x: x / x.abs().max(dim=-1, keepdim=True).values, lambda x: x / (x ** 2).sum(-1, keepdim=True),
                lambda x: x / x.norm()],
    "ex01.q2": [lambda image_features, text_features, logit_scale: torch.sigmoid(
                    _sim(F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1), logit_scale)),
                lambda image_features, text_features, logit_scale: _sim(
                    F.normalize(image_features, dim=-1), text_features, logit_scale).softmax(-1),
                lambda image_features, text_features, logit_scale: _sim(
                    F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1), 1 / logit_scale).softmax(-1)],
    "ex01.q3": [lambda template_embeddings: F.normalize(F.normalize(template_embeddings, dim=0).mean(0), dim=-1),
                lambda template_embeddings: F.normalize(template_embeddings, dim=-1).sum(0),
                lambda template_embeddings: F.normalize(template_embeddings[0], dim=-1)],
    "ex01.q4": [lambda query, gallery, k: torch.topk(gallery @ query, k).values,
                lambda query, gallery, k: torch.argsort(gallery @ query, descending=True)[1:k + 1],
                lambda query, gallery, k: torch.topk((gallery - query).norm(dim=1), k).indices],
    "ex02.q1": [lambda image_features, text_features, logit_scale: image_features @ text_features.T / logit_scale,
                lambda image_features, text_features, logit_scale: logit_scale * image_features @ image_features.T,
                lambda image_features, text_features, logit_scale: logit_scale * (image_features * text_features).sum(-1)],
    "ex02.q2": [_naive_clip,
                lambda image_features, text_features, logit_scale: -(logit_scale * (image_features * text_features).sum(-1)).mean(),
                lambda image_features, text_features, logit_scale: -F.log_softmax(
                    _sim(image_features, text_features, logit_scale).flatten(), 0)[::len(image_features) + 1].mean()],
    "ex02.q3": [_naive_siglip,
                lambda image_features, text_features, logit_scale, logit_bias: F.binary_cross_entropy_with_logits(
                    _sim(image_features, text_features, logit_scale) + logit_bias,
                    torch.eye(len(image_features), dtype=image_features.dtype)),
                lambda image_features, text_features, logit_scale, logit_bias: -F.logsigmoid(
                    torch.eye(len(image_features), dtype=image_features.dtype)
                    * (_sim(image_features, text_features, logit_scale) + logit_bias)).sum() / len(image_features)],
    "ex02.q7": [_dense_siglip, _chunked_with_dense_labels, _chunked_mean_per_chunk],
    "ex03.q1": [lambda logits: logits.exp() / (1 + logits.exp()), lambda logits: torch.sigmoid(-logits),
                lambda logits: (logits > 0).to(logits.dtype)],
    "ex03.q2": [lambda logits: (logits - logits.max(dim=-1, keepdim=True).values).exp(),
                lambda logits: logits.log_softmax(-1), lambda logits: logits.flatten().softmax(0).reshape(logits.shape),
                lambda logits: (logits - logits.max(dim=0, keepdim=True).values).exp()
                / (logits - logits.max(dim=0, keepdim=True).values).exp().sum(-1, keepdim=True)],
    "ex04.q1": [lambda wave, length: np.pad(wave, (0, length - len(wave))), lambda wave, length: wave[:length],
                lambda wave, length: np.pad(wave[:length], (0, length - len(wave[:length])), mode="edge")],
    "ex04.q2": [lambda wave: wave.mean(axis=1), lambda wave: wave.mean(), lambda wave: wave.max(axis=0)],
    "ex04.q4": [lambda n_samples, hop_length: math.ceil(n_samples / hop_length) + 1,
                lambda n_samples, hop_length: (n_samples - 1) // hop_length + 1,
                lambda n_samples, hop_length: 1 + (n_samples + hop_length // 2) // hop_length],
    "ex05.q1": [lambda audio_features, label_text_features: (audio_features @ label_text_features.T).max(-1).values,
                lambda audio_features, label_text_features: torch.argsort(audio_features @ label_text_features.T, -1)[:, 0],
                lambda audio_features, label_text_features: (label_text_features @ audio_features.T).argmax(-1)],
    "ex05.q2": [lambda new_features, image_features, logit_scale: losses.clip_loss(
                    F.normalize(new_features, dim=-1), image_features, 1.0),
                lambda new_features, image_features, logit_scale: 2 * losses.clip_loss(
                    F.normalize(new_features, dim=-1), image_features, logit_scale),
                lambda new_features, image_features, logit_scale: losses.clip_loss(
                    F.normalize(new_features, dim=0), image_features, logit_scale)],
    "ex05.q3": [lambda image_embedding, sound_embedding: (F.normalize(image_embedding, dim=-1)
                                                          + F.normalize(sound_embedding, dim=-1)) / 2,
                lambda image_embedding, sound_embedding: F.normalize(image_embedding * sound_embedding, dim=-1),
                lambda image_embedding, sound_embedding: F.normalize(
                    F.normalize(image_embedding, dim=-1) - F.normalize(sound_embedding, dim=-1), dim=-1)],
    "ex06.q1": [lambda query, document: (query @ document.T).max(),
                lambda query, document: (query @ document.T).max(dim=1).values.max(),
                lambda query, document: (query.mean(0) @ document.T).max()],
    "ex06.q2": [lambda query, documents, mask: torch.einsum("qd,ntd->nqt", query, documents).masked_fill(
                    ~mask[:, None, :], 0.0).max(2).values.sum(1),
                lambda query, documents, mask: torch.einsum("qd,ntd->nqt", query, documents).masked_fill(
                    mask[:, None, :], float("-inf")).max(2).values.sum(1),
                lambda query, documents, mask: (torch.einsum("qd,ntd->nqt", query, documents).sum(2)
                                                / mask.sum(1)[:, None]).sum(1)],
    "ex07.q1": [_rrf_by_position, _rrf_mean,
                lambda rankings, n_docs, k=60: np.array([sum(1 / (k + d + 1) for r in rankings if d in r) for d in range(n_docs)])],
    "ex07.q2": [lambda ranked_ids, relevant_ids, k: len(set(ranked_ids[:k + 1]) & set(relevant_ids)) / len(set(relevant_ids)),
                lambda ranked_ids, relevant_ids, k: float(bool(set(ranked_ids[:k]) & set(relevant_ids))),
                lambda ranked_ids, relevant_ids, k: len(set(ranked_ids[:k]) & set(relevant_ids)) / max(1, len(ranked_ids[:k]))],
    "ex07.q3": [lambda text_ids, text_scores, image_ids, image_scores, n_docs, w:
                w * text_scores[np.argsort(text_ids)] + (1 - w) * image_scores[np.argsort(image_ids)],
                lambda text_ids, text_scores, image_ids, image_scores, n_docs, w: _scatter_reversed(
                    text_ids, text_scores, image_ids, image_scores, n_docs, w),
                lambda text_ids, text_scores, image_ids, image_scores, n_docs, w: _scatter(
                    image_ids, image_scores, text_ids, text_scores, n_docs, w)],
}


def _plain_gather_loss(image_features, text_features, logit_scale):
    return losses.distributed_clip_loss(image_features, text_features, logit_scale, gather_with_grad=False)


def _plain_gather_local_loss(image_features, text_features, logit_scale):
    return losses.distributed_clip_loss(image_features, text_features, logit_scale, gather_with_grad=False,
                                        local_loss=True)


def _ivfpq_fixed_times_m(n_vectors, dim, m, nbits, nlist, id_bytes=8):
    """Each sub-quantiser's codebook counted with full-dimension centroids: m times too large."""
    return float(n_vectors * (m * nbits / 8 + id_bytes) + nlist * dim * 4 + m * 2 ** nbits * dim * 4)


def _merge_by_id(shard_ids, shard_scores, k):
    ids, scores = np.concatenate(list(shard_ids)), np.concatenate(list(shard_scores))
    order = np.argsort(ids)[:k]
    return ids[order], scores[order]


def _merge_per_shard_quota(shard_ids, shard_scores, k):
    """Takes k // shards hits from each shard: the global top-k may all sit in one shard."""
    quota = max(1, k // max(1, len(shard_ids)))
    ids = np.concatenate([np.asarray(i)[:quota] for i in shard_ids])
    scores = np.concatenate([np.asarray(sc)[:quota] for sc in shard_scores])
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]


HELD.update({
    "ex02.q8": [lambda logits: (logits.softmax(1) - torch.eye(len(logits), dtype=logits.dtype)
                                + logits.softmax(0) - torch.eye(len(logits), dtype=logits.dtype)) / len(logits),
                lambda logits: (logits.exp() / logits.exp().sum(1, keepdim=True)
                                + logits.exp() / logits.exp().sum(0, keepdim=True)
                                - 2 * torch.eye(len(logits), dtype=logits.dtype)) / (2 * len(logits))],
    "ex02.q9": [lambda image_features, text_features, logit_scale: tuple(
                    reversed(FUNCTION_PROBLEMS["ex02.q9"].reference(image_features, text_features, logit_scale))),
                lambda image_features, text_features, logit_scale: (
                    FUNCTION_PROBLEMS["ex02.q9"].reference(image_features, text_features, logit_scale)[0],) * 2],
    "ex06.q6": [lambda n_patches, dim, bytes_per_value, budget_bytes: FUNCTION_PROBLEMS["ex06.q6"].reference(
                    n_patches, dim, bytes_per_value, budget_bytes) + 1,
                lambda n_patches, dim, bytes_per_value, budget_bytes: FUNCTION_PROBLEMS["ex06.q6"].reference(
                    n_patches, dim, bytes_per_value * 8, budget_bytes),
                lambda n_patches, dim, bytes_per_value, budget_bytes: max(1, round(n_patches * dim * bytes_per_value
                                                                                   / budget_bytes))],
    "ex08.q1": [_plain_gather_loss, _plain_gather_local_loss],
    "ex08.q2": [lambda shard_ids, shard_scores, k: (np.argsort(-np.concatenate(list(shard_scores)), kind="stable")[:k],
                                                    -np.sort(-np.concatenate(list(shard_scores)))[:k]),
                lambda shard_ids, shard_scores, k: _merge_by_id(shard_ids, shard_scores, k),
                lambda shard_ids, shard_scores, k: _merge_per_shard_quota(shard_ids, shard_scores, k)],
    "ex08.q3": [lambda n_vectors, dim, m, nbits, nlist, id_bytes=8: _ivfpq_fixed_times_m(n_vectors, dim, m, nbits, nlist,
                                                                                         id_bytes),
                lambda n_vectors, dim, m, nbits, nlist, id_bytes=8: float(n_vectors * (dim * 4 + id_bytes)),
                lambda n_vectors, dim, m, nbits, nlist, id_bytes=8: float(n_vectors * (m * nbits / 8 + id_bytes)
                                                                          + nlist * dim * 4)],
})


def _scatter(text_ids, text_scores, image_ids, image_scores, n_docs, w):
    text, image = np.zeros(n_docs), np.zeros(n_docs)
    text[text_ids] = text_scores
    image[image_ids] = image_scores
    return w * text + (1 - w) * image


def _scatter_reversed(text_ids, text_scores, image_ids, image_scores, n_docs, w):
    return _scatter(text_ids, text_scores[::-1], image_ids, image_scores[::-1], n_docs, w)


def _solution(problem):
    ns = {"torch": torch, "F": F, "np": np, "math": math, "dist": torch.distributed}
    exec(problem.solution_code, ns)
    return ns[problem.var]


def _stripped(result):
    """The message without the learner-visible case and the replay line (they hold inputs, not answers)."""
    text = result.message.replace(result.case_text, "")
    text = re.sub(r"your output: .*?(?=\non this case|\Z)", "", text, flags=re.S)  # the learner's own values
    return re.sub(r"seed \d+|seed=\d+", "", text)


@pytest.mark.parametrize("name", sorted(FUNCTION_PROBLEMS))
def test_each_function_problem_has_named_and_held_wrong_answers(name):
    problem = FUNCTION_PROBLEMS[name]
    held = HELD.get(name, [])
    assert problem.mistakes, f"{name}: no named mistake"
    assert held, f"{name}: no held-back wrong answer"
    assert len(problem.mistakes) + len(held) >= 3, name
    assert len(held) >= len(problem.mistakes) or len(held) >= 3, f"{name}: hold back more than you name"


@pytest.mark.parametrize("name", sorted(FUNCTION_PROBLEMS))
def test_model_solution_passes_on_every_seed(name):
    problem = FUNCTION_PROBLEMS[name]
    fn = _solution(problem)
    for seed in SEEDS:
        result = problem.check({problem.var: fn}, quiet=True, seed=seed)
        assert result, (name, seed, result.message)


@pytest.mark.parametrize("name", sorted(FUNCTION_PROBLEMS))
def test_wrong_answers_fail_without_revealing_the_reference(name):
    problem = FUNCTION_PROBLEMS[name]
    wrongs = [(fn, msg) for fn, msg in problem.mistakes] + [(fn, None) for fn in HELD.get(name, [])]
    for seed in SEEDS:
        for j, (wrong, message) in enumerate(wrongs):
            result = problem.check({problem.var: wrong}, quiet=True, seed=seed)
            assert result.status == core.INCORRECT, (name, seed, j, message, result.message)
            text = _stripped(result)
            if result.case is not None:
                want = problem._call(problem.reference, copy.deepcopy(result.case))
                refs = [core._fmt(x) for x in (want if isinstance(want, tuple) else (want,))]
                for ref in refs:
                    if len(ref) >= 4:  # a bare "1" or "0." could appear in any sentence
                        found = re.search(r"(?<![\d.])" + re.escape(ref) + r"(?!\d)", text)
                        assert not found, (name, seed, j, ref, result.message)
            assert "expected output" not in text and "reference output" not in text


@pytest.mark.parametrize("name", sorted(FUNCTION_PROBLEMS))
def test_learner_bugs_are_a_clear_cross_never_a_crash(name):
    problem = FUNCTION_PROBLEMS[name]

    def raises(**case):
        raise RuntimeError("boom")

    r = problem.check({problem.var: raises}, quiet=True, seed=3)
    assert r.status == core.INCORRECT and "RuntimeError: boom" in r.message
    r = problem.check({problem.var: lambda **case: "a string"}, quiet=True, seed=3)
    assert r.status == core.INCORRECT and "str" in r.message and "expected" in r.message
    r = problem.check({problem.var: lambda **case: {"a": 1}}, quiet=True, seed=3)
    assert r.status == core.INCORRECT
    r = problem.check({problem.var: lambda **case: np.zeros((7, 5, 3))}, quiet=True, seed=3)
    assert r.status == core.INCORRECT and ("shape" in r.message or "tuple" in r.message)
    r = problem.check({problem.var: 42}, quiet=True)
    assert r.status == core.INCORRECT and "function" in r.message
    r = problem.check({problem.var: lambda **case: None}, quiet=True)
    assert r.status == core.NOT_ATTEMPTED


def _mutate(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        value.mul_(0).add_(1)
    elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
        value[...] = 1.0
    elif isinstance(value, list):
        for v in value:
            _mutate(v)


@pytest.mark.parametrize("name", sorted(FUNCTION_PROBLEMS))
def test_a_learner_that_mutates_its_inputs_cannot_steer_the_reference(name):
    problem = FUNCTION_PROBLEMS[name]
    if problem.batch_runner is not None:
        pytest.skip("runs the function in other processes: nothing shared to mutate")
    reference = problem.reference

    def mutating(**case):
        for v in case.values():
            _mutate(v)
        return reference(**case)  # right for the inputs it has just destroyed

    cases = problem.cases(np.random.default_rng(5))
    def is_float(v):
        if isinstance(v, torch.Tensor):
            return v.is_floating_point()
        if isinstance(v, np.ndarray):
            return v.dtype.kind == "f"
        return isinstance(v, list) and any(is_float(x) for x in v)

    if not any(is_float(v) for c in cases for v in c.values()):
        pytest.skip("no float array inputs to mutate")
    assert problem.check({problem.var: mutating}, quiet=True, seed=5).status == core.INCORRECT


# ---------------------------------------------------------------- the four wrong answers the issue lists
def test_issue_dense_call_is_rejected_as_not_chunked():
    from mmcourse.exercises import ex02

    r = ex02.q7.check({"chunked_siglip_loss": _dense_siglip}, quiet=True)
    assert r.status == core.INCORRECT and "not chunked" in r.message


def test_issue_naive_softmax_is_rejected_on_large_logits():
    from mmcourse.exercises import ex03

    naive = lambda logits: logits.exp() / logits.exp().sum(dim=-1, keepdim=True)  # noqa: E731
    r = ex03.q2.check({"softmax_probs": naive}, quiet=True)
    assert r.status == core.INCORRECT and "stable" in r.message


def test_issue_rounded_frame_count_is_rejected():
    from mmcourse.exercises import ex04

    for seed in range(20):
        r = ex04.q4.check({"n_frames": lambda n_samples, hop_length: round(n_samples / hop_length) + 1}, quiet=True,
                          seed=seed)
        assert r.status == core.INCORRECT


def test_issue_argsort_scatter_is_rejected_on_top_k_lists():
    from mmcourse.exercises import ex07

    for seed in range(20):
        r = ex07.q3.check({"fuse_by_id": HELD["ex07.q3"][0]}, quiet=True, seed=seed)
        assert r.status == core.INCORRECT


def test_recalled_facts_give_no_direction_and_computed_ones_do():
    from mmcourse.exercises import ex01, ex02

    for value in (70.0, 80.0):
        msg = ex01.q6.check({"clip_imagenet_zero_shot": value}, quiet=True).message
        assert "low" not in msg and "high" not in msg
    assert "too low" in ex02.q5.check({"n_negative_pairs": 10}, quiet=True).message


def test_wrong_choice_explanations_do_not_name_the_right_option():
    for name, p in PROBLEMS.items():
        if isinstance(p, core.ChoiceProblem):
            for letter, why in p.explanations.items():
                if letter != p.correct:
                    assert f"({p.correct})" not in why, (name, letter)
                    assert p.options[p.correct][:40].lower() not in why.lower(), (name, letter)


def test_fresh_seeds_are_used_and_replayable():
    from mmcourse.exercises import ex07

    wrong = HELD["ex07.q3"][1]
    first = ex07.q3.check({"fuse_by_id": wrong}, quiet=True)
    seed = int(re.search(r"seed (\d+)", first.message).group(1))
    again = ex07.q3.check({"fuse_by_id": wrong}, quiet=True, seed=seed)
    assert again.message == first.message
