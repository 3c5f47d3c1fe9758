"""Exercises for notebook 08: production and scale (distributed losses, sharded search, index memory)."""
import numpy as np
import torch
import torch.nn.functional as F

from .. import losses
from ._cases import pick_dtype
from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem
from .distributed import WORLD, run_two_ranks

TITLE = "08 · Production and scale: distributed losses, sharded search, index memory"
SETUP = "import numpy as np\nimport torch\nimport torch.distributed as dist\nimport torch.nn.functional as F"


# ----------------------------------------------------------------------------- q1: the distributed CLIP loss
def _dist_cases(rng):
    """Per-rank batches of 1, 2 and 5 rows; float64 and float32; a large scale."""
    out = []
    for n, d, scale in [(2, 4, 10.0), (1, 3, 5.0), (5, 8, float(rng.uniform(2, 30))), (3, 6, 100.0)]:
        dtype = torch.float64 if n != 5 else pick_dtype(rng)
        g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
        x = F.normalize(torch.randn(WORLD * n, d, generator=g, dtype=dtype), dim=-1)  # (W·n, D) global batch
        y = F.normalize(x + 0.7 * torch.randn(WORLD * n, d, generator=g, dtype=dtype), dim=-1)
        out.append({"image_features": x, "text_features": y, "logit_scale": scale})
    return out


def _dist_reference(image_features, text_features, logit_scale):
    """What every correct distributed loss gives: the mean of the ranks' losses and each rank's feature gradient.

    With gradients through the gather, a rank's local features receive the gradient of
    *every* rank's loss: world × the one-process gradient (DDP's averaging divides by world).
    """
    x = image_features.clone().requires_grad_(True)
    y = text_features.clone().requires_grad_(True)
    loss = losses.clip_loss(x, y, logit_scale)
    loss.backward()
    return loss.detach(), WORLD * x.grad, WORLD * y.grad


def _dist_plain_gather(image_features, text_features, logit_scale):
    """Gather without gradients, own slice put back (open_clip's default): each rank keeps only its own loss's share."""
    loss, gx, gy = _dist_reference(image_features, text_features, logit_scale)
    return loss, gx / WORLD, gy / WORLD


def _dist_local_only(image_features, text_features, logit_scale):
    """Each rank scores its own batch only (no gather): a smaller loss with fewer negatives."""
    n = image_features.shape[0] // WORLD
    gx, gy, vals = torch.zeros_like(image_features), torch.zeros_like(text_features), []
    for r in range(WORLD):
        x = image_features[r * n:(r + 1) * n].clone().requires_grad_(True)
        y = text_features[r * n:(r + 1) * n].clone().requires_grad_(True)
        loss = losses.clip_loss(x, y, logit_scale)
        loss.backward()
        vals.append(loss.detach())
        gx[r * n:(r + 1) * n], gy[r * n:(r + 1) * n] = x.grad, y.grad
    return torch.stack(vals).mean(), gx, gy


q1 = FunctionProblem(
    var="distributed_clip_loss",
    prompt="Interview level. Write `distributed_clip_loss(image_features, text_features, logit_scale)` for a "
           "`torch.distributed` job: each rank passes its local `(n, D)` features; gather every rank's features so "
           "each image competes with all `world·n` texts, and make the gradient flow back *through* the gather to "
           "the rank that produced the features. The checker runs your function on 2 processes (gloo, CPU), calls "
           "`backward()` on each rank's loss, and compares the mean loss and every rank's feature gradients with a "
           "one-process run on the whole batch (×2: DDP's averaging divides by the world size).\n\n"
           "Define any helper (an `autograd.Function`, say) *inside* the function or in the same cell.",
    hints=["`dist.all_gather(parts, x)` fills `parts` but records no graph: the gathered copies are constants.",
           "Wrap the gather in a `torch.autograd.Function`: forward all-gathers and concatenates; backward must return "
           "this rank's slice of the *sum over ranks* of the incoming gradient (`dist.all_reduce`, then slice). "
           "(`torch.distributed.nn.functional.all_gather` does exactly this.)",
           "Then the loss is the ordinary CLIP loss on the gathered `(world·n, D)` features, or only your `n` rows "
           "of it (the 'local loss') averaged the same way."],
    stub="def distributed_clip_loss(image_features, text_features, logit_scale):\n    raise NotImplementedError",
    solution_code=(
        "class GatherWithGrad(torch.autograd.Function):\n"
        "    @staticmethod\n"
        "    def forward(ctx, x):\n"
        "        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]\n"
        "        dist.all_gather(parts, x.contiguous())\n"
        "        return torch.cat(parts, dim=0)  # (W·n, D)\n\n"
        "    @staticmethod\n"
        "    def backward(ctx, grad):\n"
        "        grad = grad.contiguous()\n"
        "        dist.all_reduce(grad)  # every rank's loss depends on my features: sum their gradients\n"
        "        n = grad.shape[0] // dist.get_world_size()\n"
        "        return grad[dist.get_rank() * n:(dist.get_rank() + 1) * n]  # (n, D) my slice\n\n\n"
        "def distributed_clip_loss(image_features, text_features, logit_scale):\n"
        "    images = GatherWithGrad.apply(image_features)  # (W·n, D)\n"
        "    texts = GatherWithGrad.apply(text_features)  # (W·n, D)\n"
        "    logits = logit_scale * images @ texts.T  # (W·n, W·n)\n"
        "    labels = torch.arange(logits.shape[0])\n"
        "    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2"),
    reference=_dist_reference,
    cases=_dist_cases,
    batch_runner=run_two_ranks,
    mistakes=[(_dist_plain_gather, "the loss is right but every gradient is half what it should be: the gathered "
                                   "copies carry no gradient, so each rank only gets its own loss's share. Make the "
                                   "gather differentiable (its backward sums over ranks)."),
              (_dist_local_only, "each rank only sees its own batch: the other ranks' features never became "
                                 "negatives. Gather them first.")],
)


# ----------------------------------------------------------------------------- q2: merge top-k from shards
def _merge_ref(shard_ids, shard_scores, k):
    ids = np.concatenate([np.asarray(i, dtype=np.int64) for i in shard_ids] + [np.zeros(0, np.int64)])
    scores = np.concatenate([np.asarray(s, dtype=np.float64) for s in shard_scores] + [np.zeros(0)])
    order = np.lexsort((ids, -scores))[:k]  # by score, highest first; ties by the smaller id
    return ids[order], scores[order]


def _merge_cases(rng):
    """Shards returning k, fewer than k, none; k larger than all hits together; one shard; ties."""
    def shard(n_hits, base):
        ids = base + rng.permutation(1000)[:n_hits]
        return ids.astype(np.int64), np.sort(rng.uniform(-1, 1, n_hits))[::-1].copy()

    cases = []
    for hits, k in [([3, 3], 3), ([4, 1, 0], 4), ([2], 5), ([5, 5, 5, 5], 7), ([0, 2], 1), ([3, 2], 5)]:
        parts = [shard(h, 1000 * j) for j, h in enumerate(hits)]
        cases.append({"shard_ids": [p[0] for p in parts], "shard_scores": [p[1] for p in parts], "k": k})
    hits = [int(h) for h in rng.integers(0, 9, int(rng.integers(2, 6)))]
    parts = [shard(h, 1000 * j) for j, h in enumerate(hits)]
    cases.append({"shard_ids": [p[0] for p in parts], "shard_scores": [p[1] for p in parts], "k": int(rng.integers(1, 12))})
    return cases


def _merge_first_k_each(shard_ids, shard_scores, k):
    """Takes the first shard's hits, then the next shard's, …: concatenation order, not score order."""
    ids = np.concatenate(list(shard_ids) + [np.zeros(0, np.int64)])[:k]
    scores = np.concatenate(list(shard_scores) + [np.zeros(0)])[:k]
    return ids, scores


def _merge_ascending(shard_ids, shard_scores, k):
    ids, scores = np.concatenate(list(shard_ids)), np.concatenate(list(shard_scores))
    order = np.argsort(scores)[:k]
    return ids[order], scores[order]


q2 = FunctionProblem(
    var="merge_topk",
    prompt="A sharded index: each shard returns its own hits, best first, as `shard_ids[s]` (global document ids, "
           "int) and `shard_scores[s]` (similarities, higher is better). A shard may return fewer than `k` hits, or "
           "none. Write `merge_topk(shard_ids, shard_scores, k)` returning the global top `min(k, total hits)` as a "
           "pair `(ids, scores)` of numpy arrays, best first; break ties by the smaller id.",
    hints=["Every shard's list is sorted, but the lists interleave: the global top-k can take 0 or k hits from any shard.",
           "Concatenate ids and scores (the lists may have different lengths, even 0), then sort by score, descending.",
           "`np.lexsort((ids, -scores))` sorts by score, then by id; keep the first k."],
    stub="def merge_topk(shard_ids, shard_scores, k):\n    raise NotImplementedError",
    solution_code="def merge_topk(shard_ids, shard_scores, k):\n"
                  "    ids = np.concatenate([np.asarray(i, dtype=np.int64) for i in shard_ids] + [np.zeros(0, np.int64)])\n"
                  "    scores = np.concatenate([np.asarray(s, dtype=float) for s in shard_scores] + [np.zeros(0)])\n"
                  "    order = np.lexsort((ids, -scores))[:k]  # score descending, then id ascending\n"
                  "    return ids[order], scores[order]",
    reference=_merge_ref,
    cases=_merge_cases,
    atol=0, rtol=0,
    mistakes=[(_merge_first_k_each, "you kept the first k hits in shard order: the lists interleave, so sort the "
                                    "merged hits by score."),
              (_merge_ascending, "that is the k *lowest* scores: similarities rank highest first.")],
)


# ----------------------------------------------------------------------------- q3: IVF-PQ memory
def _ivfpq_ref(n_vectors, dim, m, nbits, nlist, id_bytes=8):
    codes = n_vectors * (m * nbits / 8 + id_bytes)  # one code and one id per vector
    centroids = nlist * dim * 4  # coarse quantiser, float32
    codebooks = m * (2 ** nbits) * (dim / m) * 4  # m sub-quantisers of 2^nbits centroids of dim/m floats
    return float(codes + centroids + codebooks)


def _ivfpq_cases(rng):
    cases = [dict(n_vectors=1000, dim=64, m=8, nbits=8, nlist=16), dict(n_vectors=1, dim=32, m=4, nbits=4, nlist=1),
             dict(n_vectors=10**9, dim=512, m=64, nbits=8, nlist=65536, id_bytes=8),
             dict(n_vectors=10**6, dim=768, m=96, nbits=4, nlist=4096, id_bytes=4)]
    m = int(rng.choice([8, 16, 32]))
    cases.append(dict(n_vectors=int(rng.integers(1, 10**8)), dim=m * int(rng.integers(2, 9)), m=m,
                      nbits=int(rng.choice([4, 8])), nlist=int(rng.choice([256, 1024, 4096])),
                      id_bytes=int(rng.choice([4, 8]))))
    return cases


q3 = FunctionProblem(
    var="ivfpq_bytes",
    prompt="Estimate the memory of a FAISS `IndexIVFPQ`. Write `ivfpq_bytes(n_vectors, dim, m, nbits, nlist, "
           "id_bytes=8)`: each vector is stored as a code of `m` sub-quantiser indices of `nbits` bits each, plus its "
           "id (`id_bytes`); the index also holds the `nlist` coarse centroids (float32, `dim` each) and the PQ "
           "codebooks (`m` sub-quantisers, `2**nbits` centroids each, of `dim / m` float32 numbers). Return the total "
           "in bytes (a float). Ignore list headers.",
    hints=["Per vector: m · nbits / 8 bytes of code + id_bytes.",
           "Fixed part: nlist · dim · 4 (coarse centroids) + m · 2^nbits · (dim/m) · 4 = 2^nbits · dim · 4 (codebooks)."],
    stub="def ivfpq_bytes(n_vectors, dim, m, nbits, nlist, id_bytes=8):\n    raise NotImplementedError",
    solution_code="def ivfpq_bytes(n_vectors, dim, m, nbits, nlist, id_bytes=8):\n"
                  "    per_vector = m * nbits / 8 + id_bytes  # code + id\n"
                  "    centroids = nlist * dim * 4  # coarse quantiser (float32)\n"
                  "    codebooks = m * 2 ** nbits * (dim / m) * 4  # PQ sub-quantisers\n"
                  "    return float(n_vectors * per_vector + centroids + codebooks)",
    reference=_ivfpq_ref,
    cases=_ivfpq_cases,
    atol=0.5, rtol=1e-9,
    mistakes=[(lambda n_vectors, dim, m, nbits, nlist, id_bytes=8: _ivfpq_ref(n_vectors, dim, m, nbits, nlist, 0),
               "the ids are missing: IVF lists store each vector's id next to its code (often as large as the code)."),
              (lambda n_vectors, dim, m, nbits, nlist, id_bytes=8: _ivfpq_ref(n_vectors, dim, m, nbits * 8, nlist, id_bytes),
               "each sub-quantiser index takes nbits *bits*, not nbits bytes."),
              (lambda n_vectors, dim, m, nbits, nlist, id_bytes=8: float(n_vectors * (m * nbits / 8 + id_bytes)),
               "the per-vector part is right; the fixed part (coarse centroids and PQ codebooks) is missing.")],
)

q4 = NumericProblem(
    var="codes_scanned",
    prompt="An IVF index over 100 M vectors with `nlist = 65,536` lists, searched with `nprobe = 32`. About how many "
           "PQ codes does one query scan (assume balanced lists)? Set `codes_scanned`.",
    hints=["Each probed list holds about N / nlist vectors."],
    solution_text="100e6 × 32 / 65,536 ≈ 48,800 codes, i.e. 0.05 % of the collection: that is why IVF is fast; with "
                  "m = 64 table look-ups per code it is ~3 M look-ups per query, well under a millisecond per core.",
    stub="codes_scanned = ____",
    solution_code="codes_scanned = 100e6 * 32 / 65536",
    answer=100e6 * 32 / 65536, rel_tol=0.02,
    mistakes=[(100e6 / 65536, "that is one list: nprobe lists are scanned."),
              (100e6 * 65536 / 32, "the ratio is upside down: a list holds N / nlist vectors.")],
)

q5 = NumericProblem(
    var="gradient_factor_world8",
    prompt="A CLIP job on 8 GPUs gathers features *without* gradients (each rank puts its own slice back with its "
           "graph, `local_loss=False`), then DDP averages the gradients. By what factor is the gradient of the "
           "features scaled, compared with one process on the whole global batch? Set `gradient_factor_world8`.",
    hints=["Each rank's features get the gradient of its own copy of the loss only; DDP then divides by the world size."],
    solution_text="1/8 = 0.125: each rank receives ∂L/∂x_r from its own loss and none from the 7 others, and DDP divides "
                  "by 8. Notebook 08 measures 0.5 with 2 ranks. Gather with gradients to fix it.",
    stub="gradient_factor_world8 = ____",
    solution_code="gradient_factor_world8 = 1 / 8",
    answer=0.125, rel_tol=1e-3,
    mistakes=[(0.5, "0.5 is the 2-rank figure (notebook 08); here there are 8 ranks."),
              (1.0, "with no gradient through the gather, the other ranks' losses never reach your features.")],
)

q6 = ChoiceProblem(
    var="answer_local_loss",
    prompt="In open_clip's `ClipLoss`, which settings give each rank the same gradient as one process on the global "
           "batch (after DDP's averaging)?",
    options={"a": "`gather_with_grad=False, local_loss=False` (the defaults).",
             "b": "`gather_with_grad=False, local_loss=True`.",
             "c": "`gather_with_grad=True`, with `local_loss` either True (less memory) or False.",
             "d": "Any setting: DDP's gradient averaging makes them all equal."},
    correct="c",
    explanations={"a": "the gathered copies are constants; only the own slice carries a graph, so each rank misses the "
                       "other ranks' losses and the averaged gradient is divided by the world size (notebook 08: ×0.5).",
                  "b": "each rank's loss covers its own rows against constant copies: the gradient that other ranks' "
                       "rows send to your features (as their negatives) is lost.",
                  "c": "the gather's backward sums every rank's gradient back to the producer; local_loss only decides "
                       "whether each rank computes all rows or its own n rows of the logits.",
                  "d": "averaging cannot restore gradient terms that were never computed."},
    hints=["Which terms of the loss depend on rank r's features, and which rank computes them?"],
    stub="answer_local_loss = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_local_loss = 'c'",
)

PROBLEMS = [q1, q2, q3, q4, q5, q6]
