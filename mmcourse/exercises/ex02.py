"""Exercises for notebook 02: contrastive losses from scratch."""
import math

import torch
import torch.nn.functional as F

from .. import losses
from ._cases import pick_dtype, randn, sizes
from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem, largest_allocation

TITLE = "02 · Contrastive losses: InfoNCE and the sigmoid loss"
SETUP = "import torch\nimport torch.nn.functional as F"


def _features(rng, n, d, dtype=torch.float64):
    g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    x = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1)
    y = F.normalize(x + 0.8 * torch.randn(n, d, generator=g, dtype=dtype), dim=-1)
    return x, y


def _loss_cases(rng, bias=False):
    """A small case, random sizes in both dtypes, N = 1, and large logits (scale 100, anti-aligned pairs)."""
    shapes = [(2, 3, torch.float64)] + [(n, d, pick_dtype(rng)) for n, d in zip(sizes(rng, 3, 12, 3), sizes(rng, 3, 16, 3))]
    shapes += [(1, 4, torch.float64), (6, 8, torch.float32)]
    cases = []
    for k, (n, d, dtype) in enumerate(shapes):
        x, y = _features(rng, n, d, dtype)
        scale = float(rng.uniform(2, 20))
        if k == len(shapes) - 1:  # large logits: every pair is anti-aligned and the scale is CLIP's cap
            y, scale = -x, 100.0
        case = {"image_features": x, "text_features": y, "logit_scale": scale}
        if bias:
            case["logit_bias"] = float(rng.uniform(-5, 1)) if k < len(shapes) - 1 else -10.0
        cases.append(case)
    return cases


def _logits_ref(image_features, text_features, logit_scale):
    return logit_scale * image_features @ text_features.T


q1 = FunctionProblem(
    var="similarity_logits",
    prompt="Write `similarity_logits(image_features, text_features, logit_scale)` returning the `(N, N)` matrix "
           "whose entry `[i, j]` is the scaled cosine similarity of image `i` and text `j` (features are already "
           "L2-normalised).",
    hints=["A matrix product of the two feature matrices gives every dot product at once.",
           "Rows are images, columns texts: `image_features @ text_features.T`, then multiply by the scale."],
    stub="def similarity_logits(image_features, text_features, logit_scale):\n    raise NotImplementedError",
    solution_code="def similarity_logits(image_features, text_features, logit_scale):\n"
                  "    return logit_scale * image_features @ text_features.T  # (N, N)",
    reference=_logits_ref,
    cases=lambda rng: [{k: v for k, v in c.items()} for c in _loss_cases(rng)],
    mistakes=[(lambda image_features, text_features, logit_scale: image_features @ text_features.T,
               "the temperature is missing: multiply by `logit_scale`."),
              (lambda image_features, text_features, logit_scale: logit_scale * text_features @ image_features.T,
               "rows and columns are swapped: rows must be images, columns texts.")],
)


def _clip_ref(image_features, text_features, logit_scale):
    return losses.clip_loss(image_features, text_features, logit_scale)


q2 = FunctionProblem(
    var="clip_loss",
    prompt="Implement CLIP's symmetric InfoNCE loss `clip_loss(image_features, text_features, logit_scale)`: "
           "cross-entropy over each row (image→text) and over each column (text→image), with the matching pair on "
           "the diagonal, averaged over both directions.",
    hints=["The correct 'class' for row i is column i: labels are `torch.arange(N)`.",
           "`F.cross_entropy(logits, labels)` does one direction; the other direction uses `logits.T`.",
           "Average the two directions: `(loss_i2t + loss_t2i) / 2`."],
    stub="def clip_loss(image_features, text_features, logit_scale):\n    raise NotImplementedError",
    solution_code="def clip_loss(image_features, text_features, logit_scale):\n"
                  "    logits = logit_scale * image_features @ text_features.T  # (N, N)\n"
                  "    labels = torch.arange(logits.shape[0])  # (N,) matching pairs on the diagonal\n"
                  "    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2",
    reference=_clip_ref,
    cases=_loss_cases,
    mistakes=[
        (lambda image_features, text_features, logit_scale: F.cross_entropy(
            _logits_ref(image_features, text_features, logit_scale), torch.arange(len(image_features))),
         "only the image→text direction is there: the loss is not symmetric. Add the text→image term (the transpose)."),
        (lambda image_features, text_features, logit_scale: F.cross_entropy(
            _logits_ref(image_features, text_features, logit_scale), torch.arange(len(image_features))) +
         F.cross_entropy(_logits_ref(image_features, text_features, logit_scale).T, torch.arange(len(image_features))),
         "both directions are there but summed: CLIP averages them (divide by 2)."),
        (lambda image_features, text_features, logit_scale: _clip_ref(image_features, text_features, 1.0),
         "the temperature is missing: scale the similarities by `logit_scale` before the softmax."),
    ],
)


def _siglip_ref(image_features, text_features, logit_scale, logit_bias):
    return losses.siglip_loss(image_features, text_features, logit_scale, logit_bias)


def _siglip_mean(image_features, text_features, logit_scale, logit_bias):
    n = len(image_features)
    return _siglip_ref(image_features, text_features, logit_scale, logit_bias) / n


def _siglip_all_positive(image_features, text_features, logit_scale, logit_bias):
    logits = _logits_ref(image_features, text_features, logit_scale) + logit_bias
    return -F.logsigmoid(logits).sum() / len(logits)


q3 = FunctionProblem(
    var="siglip_loss",
    prompt="Implement the SigLIP loss `siglip_loss(image_features, text_features, logit_scale, logit_bias)`: every "
           "pair is its own binary decision, label `+1` on the diagonal and `-1` elsewhere; the loss is "
           "`-log σ(label · (scale · x·y + bias))` summed over all `N²` pairs and divided by `N`.",
    hints=["Build the logits as in CLIP, then add the bias.",
           "A label matrix: `2 * torch.eye(N) - 1` is +1 on the diagonal, -1 elsewhere.",
           "`F.logsigmoid` is the numerically stable `log σ`. Sum everything, divide by N (not N²)."],
    stub="def siglip_loss(image_features, text_features, logit_scale, logit_bias):\n    raise NotImplementedError",
    solution_code="def siglip_loss(image_features, text_features, logit_scale, logit_bias):\n"
                  "    logits = logit_scale * image_features @ text_features.T + logit_bias  # (N, N)\n"
                  "    labels = 2 * torch.eye(logits.shape[0], dtype=logits.dtype) - 1  # +1 diagonal, -1 elsewhere\n"
                  "    return -F.logsigmoid(labels * logits).sum() / logits.shape[0]",
    reference=_siglip_ref,
    cases=lambda rng: _loss_cases(rng, bias=True),
    mistakes=[(_siglip_mean, "you divided by N² (a mean over all pairs): SigLIP divides the sum by N."),
              (_siglip_all_positive, "every pair is treated as a positive: off-diagonal pairs need label -1."),
              (lambda image_features, text_features, logit_scale, logit_bias: _siglip_ref(
                  image_features, text_features, logit_scale, 0.0), "the bias is missing: add `logit_bias` to every logit.")],
)

q4 = NumericProblem(
    var="p_negative_at_init",
    prompt="SigLIP starts with `logit_scale = 10` and `logit_bias = -10`. For an unrelated pair with cosine "
           "similarity 0, what probability `σ(10·0 - 10)` does the model give to 'these match' at initialisation? "
           "Set `p_negative_at_init` to it.",
    hints=["σ(z) = 1 / (1 + e^(-z)).", "z = -10 here."],
    solution_text="σ(-10) = 1 / (1 + e^10) ≈ 4.54e-5. With N² - N negatives and only N positives, starting every pair "
                  "near 'no match' keeps the huge number of easy negatives from dominating the first steps.",
    stub="p_negative_at_init = ____",
    solution_code="p_negative_at_init = 1 / (1 + math.exp(10))",
    answer=1 / (1 + math.exp(10)), rel_tol=0.02,
)

q5 = NumericProblem(
    var="n_negative_pairs",
    prompt="In one batch of N = 256 image–text pairs, how many *negative* pairs does the sigmoid loss score? "
           "Set `n_negative_pairs`.",
    hints=["The loss scores all N × N pairs.", "Only the diagonal is positive."],
    solution_text="N² - N = 65,536 - 256 = 65,280.",
    stub="n_negative_pairs = ____",
    solution_code="n_negative_pairs = 256 * 256 - 256",
    answer=256 * 256 - 256, rel_tol=0.0, abs_tol=0.5,
)

q6 = ChoiceProblem(
    var="answer_batch_size",
    prompt="Why does CLIP's softmax loss benefit from very large batches (CLIP used 32,768: Radford et al. 2021)?",
    options={"a": "Large batches make each gradient step cheaper.",
             "b": "The other items in the batch are the negatives: a bigger batch gives each softmax more and harder negatives.",
             "c": "The softmax is undefined for batches smaller than the embedding dimension.",
             "d": "Large batches remove the need for a temperature."},
    correct="b",
    explanations={"a": "each step costs more, not less (the logit matrix grows as N²).",
                  "b": "in-batch negatives: each image's softmax competes against N-1 texts; more of them means a "
                       "tighter bound and harder negatives. The SigLIP paper reports that its per-pair sigmoid needs less of this; notebook 02 did not reproduce that at the course's scale.",
                  "c": "the softmax is defined for any number of logits ≥ 1.",
                  "d": "the temperature still sets how sharp the softmax is, whatever the batch size."},
    hints=["Where do the negatives of a contrastive loss come from?"],
    stub="answer_batch_size = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_batch_size = 'b'",
)


def _chunked_cases(rng):
    """Chunk sizes that divide N, that do not, chunk = 1, chunk = N and chunk > N."""
    cases = _loss_cases(rng, bias=True)
    for c in cases:
        n = c["image_features"].shape[0]
        options = [1, n, n + int(rng.integers(1, 4))] + ([k for k in range(2, n) if n % k] or [1])
        c["chunk_size"] = int(options[int(rng.integers(len(options)))])
    cases[0]["chunk_size"] = 1
    cases[1]["chunk_size"] = cases[1]["image_features"].shape[0] + 2  # larger than the batch
    n2 = cases[2]["image_features"].shape[0]
    cases[2]["chunk_size"] = next((k for k in range(2, n2) if n2 % k), n2)  # does not divide N (when one exists)
    return cases


def _probe_cases(rng):
    """A batch big enough that an (N, N) block stands out next to (N, chunk) blocks."""
    n, d = 96, 8
    x, y = _features(rng, n, d, torch.float32)
    return [{"image_features": x, "text_features": y, "logit_scale": 10.0, "logit_bias": -10.0,
             "chunk_size": int(rng.choice([7, 16, 25]))}]


def _no_dense_block(fn, case):
    """Fail when the function allocates anything as large as half an (N, N) matrix."""
    n = case["image_features"].shape[0]
    itemsize = case["image_features"].element_size()
    _, nbytes, shape = largest_allocation(fn, **case)
    if nbytes >= n * n * itemsize // 2:
        return (f"your function is right in value but not chunked: it allocated a tensor of shape {shape} "
                f"({nbytes / 1024:.0f} KiB) for N = {n} and chunk_size = {case['chunk_size']}. The point of the "
                f"exercise is that no (N, N) block (logits, labels or a mask) ever exists; keep every block (N, chunk).")
    return None


def _chunked_ref(image_features, text_features, logit_scale, logit_bias, chunk_size):
    return _siglip_ref(image_features, text_features, logit_scale, logit_bias)


def _chunked_diagonal_only_first(image_features, text_features, logit_scale, logit_bias, chunk_size):
    n, total = len(image_features), 0.0
    for start in range(0, n, chunk_size):
        t = text_features[start:start + chunk_size]
        logits = logit_scale * image_features @ t.T + logit_bias  # (N, C)
        labels = -torch.ones_like(logits)
        if start == 0:
            labels[:len(t), :len(t)] += 2 * torch.eye(len(t), dtype=logits.dtype)
        total = total - F.logsigmoid(labels * logits).sum()
    return total / n


def _chunked_block_diagonal(image_features, text_features, logit_scale, logit_bias, chunk_size):
    """Positives on each block's own diagonal (rows 0..C), not at rows start + j."""
    n, total = len(image_features), 0.0
    for start in range(0, n, chunk_size):
        t = text_features[start:start + chunk_size]
        logits = logit_scale * image_features @ t.T + logit_bias  # (N, C)
        labels = -torch.ones_like(logits)
        cols = torch.arange(len(t))
        labels[cols, cols] = 1.0
        total = total - F.logsigmoid(labels * logits).sum()
    return total / n


def _chunked_drops_remainder(image_features, text_features, logit_scale, logit_bias, chunk_size):
    """Loops over whole chunks only: the last, partial chunk is never scored."""
    n, total = len(image_features), image_features.new_zeros(())
    for start in range(0, n - chunk_size + 1, chunk_size):
        t = text_features[start:start + chunk_size]
        logits = logit_scale * image_features @ t.T + logit_bias  # (N, C)
        labels = -torch.ones_like(logits)
        cols = torch.arange(len(t))
        labels[start + cols, cols] = 1.0
        total = total - F.logsigmoid(labels * logits).sum()
    return total / n


q7 = FunctionProblem(
    var="chunked_siglip_loss",
    prompt="Interview level. Implement `chunked_siglip_loss(image_features, text_features, logit_scale, logit_bias, "
           "chunk_size)` that gives exactly the SigLIP loss but only ever builds `(N, chunk_size)` blocks, looping over "
           "chunks of the texts. This is how SigLIP trains with batches far larger than memory. The checker measures "
           "the largest tensor your function allocates: no `(N, N)` matrix (logits, labels or mask) may appear.",
    hints=["Loop `for start in range(0, N, chunk_size)` and score all images against texts[start:start+chunk_size].",
           "In the block, the positives are at rows `start + j`, column `j`: the diagonal moves with the chunk.",
           "Accumulate the summed -log σ over blocks, divide by N at the end. The last chunk may be shorter."],
    stub="def chunked_siglip_loss(image_features, text_features, logit_scale, logit_bias, chunk_size):\n"
         "    raise NotImplementedError",
    solution_code="def chunked_siglip_loss(image_features, text_features, logit_scale, logit_bias, chunk_size):\n"
                  "    n, total = image_features.shape[0], 0.0\n"
                  "    for start in range(0, n, chunk_size):\n"
                  "        texts = text_features[start:start + chunk_size]  # (C, D)\n"
                  "        logits = logit_scale * image_features @ texts.T + logit_bias  # (N, C)\n"
                  "        labels = -torch.ones_like(logits)\n"
                  "        cols = torch.arange(texts.shape[0])\n"
                  "        labels[start + cols, cols] = 1.0  # the positives of this block\n"
                  "        total = total - F.logsigmoid(labels * logits).sum()\n"
                  "    return total / n",
    reference=_chunked_ref,
    cases=_chunked_cases,
    probe=_no_dense_block,
    probe_cases=_probe_cases,
    mistakes=[(_chunked_diagonal_only_first, "only the first chunk has positives: in chunk `start`, the positives sit at "
                                             "rows `start + j`, not nowhere."),
              (_chunked_block_diagonal, "the positives sit on each block's own top-left diagonal: in the chunk that "
                                        "starts at `start`, text `j` belongs to image `start + j`."),
              (_chunked_drops_remainder, "when chunk_size does not divide N, the last, shorter chunk is never scored: "
                                         "`range(0, N, chunk_size)` visits it, slicing past the end is safe.")],
)


# ----------------------------------------------------------------------------- gradients by hand
def _logit_cases(rng):
    """Square logit matrices: small, random, N = 1, large logits (±1e3 rows), float32 and float64."""
    cases = [{"logits": randn(rng, 2, 2) * 3}, {"logits": randn(rng, 1, 1)}]
    for n in sizes(rng, 3, 10, 2):
        cases.append({"logits": randn(rng, n, n, dtype=pick_dtype(rng)) * float(rng.uniform(1, 20))})
    big = randn(rng, 3, 3, dtype=torch.float32) * 5
    big[0] += 1000.0
    big[:, 2] -= 1000.0
    cases.append({"logits": big})
    return cases


def _infonce_grad_ref(logits):
    z = logits.detach().clone().requires_grad_(True)
    labels = torch.arange(z.shape[0])
    loss = (F.cross_entropy(z, labels) + F.cross_entropy(z.T, labels)) / 2
    (grad,) = torch.autograd.grad(loss, z)
    return grad


def _grad_rows_only(logits):
    n = logits.shape[0]
    return (logits.softmax(dim=1) - torch.eye(n, dtype=logits.dtype)) / n


def _grad_no_mean(logits):
    n = logits.shape[0]
    eye = torch.eye(n, dtype=logits.dtype)
    return ((logits.softmax(dim=1) - eye) + (logits.softmax(dim=0) - eye)) / 2


q8 = FunctionProblem(
    var="infonce_logit_grad",
    prompt="Interview level: the gradient by hand. For an `(N, N)` logit matrix `Z` (rows images, columns texts, "
           "matches on the diagonal), CLIP's loss is `L = (CE_rows(Z) + CE_columns(Z)) / 2`, each cross-entropy a mean "
           "over N. Derive `∂L/∂Z` and write `infonce_logit_grad(logits)` returning it, *without autograd*. The checker "
           "compares it with autograd's, including logits of ±1000.",
    hints=["For one row, ∂CE/∂z_j = softmax(z)_j − [j = label]: 'predicted minus target'.",
           "Rows: (softmax over dim 1 − I) / N. Columns: the same with the softmax over dim 0. Average the two.",
           "`softmax` is stable for large logits; `exp` is not."],
    stub="def infonce_logit_grad(logits):\n    raise NotImplementedError",
    solution_code="def infonce_logit_grad(logits):\n"
                  "    n = logits.shape[0]\n"
                  "    eye = torch.eye(n, dtype=logits.dtype)  # (N, N) the targets\n"
                  "    rows = logits.softmax(dim=1) - eye  # image→text: predicted minus target\n"
                  "    cols = logits.softmax(dim=0) - eye  # text→image\n"
                  "    return (rows + cols) / (2 * n)  # (N, N)",
    reference=_infonce_grad_ref,
    cases=_logit_cases,
    mistakes=[(_grad_rows_only, "only the image→text direction: the text→image cross-entropy (a softmax down each "
                                "column) contributes too."),
              (_grad_no_mean, "the direction terms are right but not divided by N: each cross-entropy is a *mean* over "
                              "the N rows (or columns).")],
)


def _backward_cases(rng):
    cases = []
    for n, d, dtype in [(2, 3, torch.float64), (1, 4, torch.float64), (6, 8, torch.float32)] + [
            (n, 5, pick_dtype(rng)) for n in sizes(rng, 3, 9, 2)]:
        x, y = _features(rng, n, d, dtype)
        cases.append({"image_features": x, "text_features": y, "logit_scale": float(rng.uniform(2, 50))})
    return cases


def _backward_ref(image_features, text_features, logit_scale):
    x = image_features.detach().clone().requires_grad_(True)
    y = text_features.detach().clone().requires_grad_(True)
    loss = losses.clip_loss(x, y, logit_scale)
    gx, gy = torch.autograd.grad(loss, (x, y))
    return gx, gy


def _backward_no_scale(image_features, text_features, logit_scale):
    gx, gy = _backward_ref(image_features, text_features, logit_scale)
    return gx / logit_scale, gy / logit_scale


def _backward_rows_only(image_features, text_features, logit_scale):
    logits = logit_scale * image_features @ text_features.T  # (N, N)
    g = _grad_rows_only(logits)
    return logit_scale * g @ text_features, logit_scale * g.T @ image_features


q9 = FunctionProblem(
    var="clip_loss_backward",
    prompt="Now through the similarity: `Z = s · X Yᵀ` with `X` the `(N, D)` image features, `Y` the text features "
           "and `s` the logit scale. Write `clip_loss_backward(image_features, text_features, logit_scale)` returning "
           "the pair `(∂L/∂X, ∂L/∂Y)` of CLIP's loss, by hand (you may call your `infonce_logit_grad` logic; no "
           "autograd). Checked against autograd.",
    hints=["Chain rule through a matrix product: if Z = s·X Yᵀ then ∂L/∂X = s · G Y and ∂L/∂Y = s · Gᵀ X, with G = ∂L/∂Z.",
           "G is the previous exercise's answer."],
    stub="def clip_loss_backward(image_features, text_features, logit_scale):\n    raise NotImplementedError",
    solution_code="def clip_loss_backward(image_features, text_features, logit_scale):\n"
                  "    logits = logit_scale * image_features @ text_features.T  # (N, N)\n"
                  "    n = logits.shape[0]\n"
                  "    eye = torch.eye(n, dtype=logits.dtype)\n"
                  "    g = (logits.softmax(dim=1) - eye + logits.softmax(dim=0) - eye) / (2 * n)  # (N, N) dL/dZ\n"
                  "    return logit_scale * g @ text_features, logit_scale * g.T @ image_features  # (N, D) each",
    reference=_backward_ref,
    cases=_backward_cases,
    mistakes=[(_backward_no_scale, "the logit scale is missing from the chain rule: Z = s · X Yᵀ, so s multiplies both "
                                   "gradients."),
              (_backward_rows_only, "only the image→text cross-entropy is in G: the text→image term (softmax down the "
                                    "columns) contributes to both gradients.")],
)

PROBLEMS = [q1, q2, q3, q4, q5, q6, q7, q8, q9]
