"""Exercises for notebook 06: ColPali's late interaction (MaxSim)."""
import torch

from ._cases import randn, sizes
from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem

TITLE = "06 · ColPali: MaxSim late interaction"
SETUP = "import torch"


def _pair_ref(query, document):
    from ..retrieval import maxsim

    return maxsim([query], [document])[0, 0]


q1 = FunctionProblem(
    var="maxsim_pair",
    prompt="Write `maxsim_pair(query, document)`: `query` is `(Tq, D)` (one vector per query token), `document` is "
           "`(Td, D)` (one vector per page patch). For each query token take its best-matching patch, then sum over "
           "query tokens. Return a 0-d tensor.",
    hints=["All token–patch similarities at once: `query @ document.T`, shape `(Tq, Td)`.",
           "Max over the patches (`dim=1`), then sum over the query tokens."],
    stub="def maxsim_pair(query, document):\n    raise NotImplementedError",
    solution_code="def maxsim_pair(query, document):\n"
                  "    sims = query @ document.T  # (Tq, Td)\n"
                  "    return sims.max(dim=1).values.sum()",
    reference=_pair_ref,
    cases=lambda rng: [{"query": randn(rng, tq, d, normalize=True), "document": randn(rng, td, d, normalize=True)}
                       for tq, td, d in [(2, 3, 4), (5, 9, 8), (1, 4, 3), (3, 1, 4), (1, 1, 2)]
                       + list(zip(sizes(rng, 2, 8, 2), sizes(rng, 2, 20, 2), sizes(rng, 3, 16, 2)))],
    mistakes=[(lambda query, document: (query @ document.T).max(dim=0).values.sum(),
               "the max runs over query tokens: for each *query token* find its best patch (max over `dim=1`)."),
              (lambda query, document: (query @ document.T).max(dim=1).values.mean(),
               "ColPali sums the per-token maxima; a mean changes the scale (and ranks differently across query lengths)."),
              (lambda query, document: (query @ document.T).sum(), "summing all similarities is not MaxSim: take the max per query token first.")],
)


def _masked_ref(query, documents, mask):
    from ..retrieval import maxsim

    docs = [d[m] for d, m in zip(documents, mask)]
    return maxsim([query], docs)[0]


def _masked_cases(rng):
    """Real similarities all negative (padding would win), or mixed; a page with one real patch; float32 too."""
    cases = []
    shapes = [(2, 2, 3, 3, -1, torch.float64), (3, 4, 6, 5, -1, torch.float64), (1, 3, 5, 4, -1, torch.float32),
              (2, 3, 4, 4, 1, torch.float64)]
    shapes += [(int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(2, 9)), 6, int(rng.choice([-1, 1])),
                torch.float32) for _ in range(2)]
    for tq, nd, td, d, sign, dtype in shapes:
        base = randn(rng, d, normalize=True, dtype=dtype)  # (D,) the query's direction
        query = torch.nn.functional.normalize(base + 0.3 * randn(rng, tq, d, dtype=dtype), dim=-1)  # (Tq, D)
        # sign -1: every real patch points away from the query, so all real similarities are negative
        documents = torch.nn.functional.normalize(sign * base + 0.6 * randn(rng, nd, td, d, dtype=dtype), dim=-1)
        lengths = torch.tensor([int(x) for x in rng.integers(1, td + 1, size=nd)])
        lengths[0] = max(1, td - 1)  # at least one document is padded (when Td > 1)
        if nd > 1:
            lengths[-1] = 1  # a page with a single real patch
        mask = torch.arange(td)[None, :] < lengths[:, None]  # (Nd, Td) True = real patch
        cases.append({"query": query, "documents": documents * mask[..., None], "mask": mask})  # padding = zeros
    return cases


q2 = FunctionProblem(
    var="maxsim_padded",
    prompt="Pages have different numbers of patches, so they are stored padded: `documents` is `(Nd, Td, D)` with "
           "zero vectors as padding and `mask` `(Nd, Td)` is `True` on real patches. Write `maxsim_padded(query, "
           "documents, mask)` returning the `(Nd,)` MaxSim scores of one `(Tq, D)` query. Careful: a padding vector "
           "has similarity 0 with everything, and real similarities can all be negative.",
    hints=["`torch.einsum('qd,ntd->nqt', query, documents)` gives `(Nd, Tq, Td)` similarities.",
           "Before the max, set the padded positions to `-inf` with `masked_fill(~mask[:, None, :], float('-inf'))`."],
    stub="def maxsim_padded(query, documents, mask):\n    raise NotImplementedError",
    solution_code="def maxsim_padded(query, documents, mask):\n"
                  "    sims = torch.einsum('qd,ntd->nqt', query, documents)  # (Nd, Tq, Td)\n"
                  "    sims = sims.masked_fill(~mask[:, None, :], float('-inf'))  # padding never wins\n"
                  "    return sims.max(dim=2).values.sum(dim=1)  # (Nd,)",
    reference=_masked_ref,
    cases=_masked_cases,
    mistakes=[(lambda query, documents, mask: torch.einsum('qd,ntd->nqt', query, documents).max(2).values.sum(1),
               "the mask is ignored: a zero padding vector scores 0, which beats every real patch when all real "
               "similarities are negative. Mask padded positions with -inf before the max.")],
)

q3 = NumericProblem(
    var="bytes_per_page_fp16",
    prompt="ColPali stores 1,030 vectors of 128 dimensions per page. How many bytes does one page take in float16? "
           "Set `bytes_per_page_fp16`.",
    hints=["vectors × dimensions × bytes per number; float16 is 2 bytes."],
    solution_text="1,030 × 128 × 2 = 263,680 bytes ≈ 258 KiB per page, versus 384 × 4 = 1,536 bytes for one MiniLM vector "
                  "in float32: multi-vector retrieval buys its quality with storage.",
    stub="bytes_per_page_fp16 = ____",
    solution_code="bytes_per_page_fp16 = 1030 * 128 * 2",
    answer=1030 * 128 * 2, rel_tol=0.0, abs_tol=0.5,
)

q4 = NumericProblem(
    var="maxsim_flops",
    prompt="How many floating-point operations does one query–page MaxSim take with 30 query tokens, 1,030 patches and "
           "128 dimensions (count the similarity matrix as multiply-adds, 2 FLOPs each; ignore the max and the sum)? "
           "Set `maxsim_flops`.",
    hints=["The similarity matrix is Tq × P dot products of length D."],
    solution_text="2 · 30 · 1,030 · 128 = 7,910,400 FLOPs per pair: scoring 1,000 pages is ~7.9 GFLOP per query.",
    stub="maxsim_flops = ____",
    solution_code="maxsim_flops = 2 * 30 * 1030 * 128",
    answer=2 * 30 * 1030 * 128, rel_tol=1e-6,
)

q5 = ChoiceProblem(
    var="answer_multivector",
    prompt="Why does a multi-vector (MaxSim) page representation find a number in a table cell that one mean-pooled "
           "page vector misses?",
    options={"a": "Each query token can match the one patch that holds its evidence; a single pooled vector averages "
                  "that patch with hundreds of irrelevant ones.",
             "b": "Multi-vector models are always larger.",
             "c": "MaxSim uses a higher temperature.",
             "d": "Mean pooling cannot be normalised."},
    correct="a",
    explanations={"a": "late interaction keeps local evidence addressable; pooling dilutes it (notebook 06 measures the gap).",
                  "b": "the course compares the same model, pooled and not pooled: size is not the difference.",
                  "c": "MaxSim has no temperature at retrieval time; it sums per-token maxima.",
                  "d": "a mean vector normalises like any other."},
    hints=["What happens to one small patch's vector when you average it with 1,000 others?"],
    stub="answer_multivector = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_multivector = 'a'",
)



def _pool_ref(n_patches, dim, bytes_per_value, budget_bytes):
    per_vector = dim * bytes_per_value
    for factor in range(1, n_patches + 1):
        if -(-n_patches // factor) * per_vector <= budget_bytes:
            return factor
    raise ValueError("budget below one vector")  # never drawn: the cases always fit one vector


def _pool_cases(rng):
    """ColPali's 1,030 × 128 pages in fp32 / fp16 / binary; budgets that make the rounding matter; everything fits."""
    cases = [dict(n_patches=10, dim=4, bytes_per_value=1, budget_bytes=14),  # 3.5 vectors: ceil(10/3) = 4 does not fit
             dict(n_patches=1030, dim=128, bytes_per_value=2, budget_bytes=100_000),
             dict(n_patches=1030, dim=128, bytes_per_value=4, budget_bytes=1030 * 128 * 4),  # no pooling needed
             dict(n_patches=1030, dim=128, bytes_per_value=0.125, budget_bytes=16),  # one binary vector
             dict(n_patches=7, dim=2, bytes_per_value=4, budget_bytes=8 * 3.5)]
    for _ in range(3):
        n, d = int(rng.integers(2, 2000)), int(rng.choice([64, 128, 256]))
        b = float(rng.choice([4, 2, 1, 0.125]))
        budget = float(rng.uniform(1, n)) * d * b
        cases.append(dict(n_patches=n, dim=d, bytes_per_value=b, budget_bytes=budget))
    return cases


def _pool_ratio(n_patches, dim, bytes_per_value, budget_bytes):
    return -(-n_patches * dim * bytes_per_value // budget_bytes)


def _pool_floor(n_patches, dim, bytes_per_value, budget_bytes):
    per_vector = dim * bytes_per_value
    for factor in range(1, n_patches + 1):
        if (n_patches // factor) * per_vector <= budget_bytes:
            return factor
    return n_patches


q6 = FunctionProblem(
    var="smallest_pool_factor",
    prompt="**A pooling budget** (notebook 06 promised it). Hierarchical token pooling with factor `f` keeps "
           "`ceil(n_patches / f)` vectors per page (notebook 06's `pool_tokens`). Write `smallest_pool_factor(n_patches, "
           "dim, bytes_per_value, budget_bytes)` returning the smallest integer factor whose pooled page fits the "
           "budget (`bytes_per_value`: 4 for fp32, 2 for fp16, 1/8 for binary). The budget always fits at least one "
           "vector. Notebook 06 measured the nDCG each factor costs: the smallest factor that fits keeps the most "
           "quality.",
    hints=["A page pooled by f stores ceil(n_patches / f) · dim · bytes_per_value bytes.",
           "Dividing the page size by the budget gives a factor for n/f vectors, but the pooler keeps ceil(n/f): "
           "check the rounding, or simply try f = 1, 2, … until it fits."],
    stub="def smallest_pool_factor(n_patches, dim, bytes_per_value, budget_bytes):\n    raise NotImplementedError",
    solution_code="def smallest_pool_factor(n_patches, dim, bytes_per_value, budget_bytes):\n"
                  "    per_vector = dim * bytes_per_value  # bytes\n"
                  "    for factor in range(1, n_patches + 1):\n"
                  "        if -(-n_patches // factor) * per_vector <= budget_bytes:  # ceil(n / f) vectors\n"
                  "            return factor",
    reference=_pool_ref,
    cases=_pool_cases,
    atol=0, rtol=0,
    mistakes=[(_pool_ratio, "page size / budget would be right if pooling kept n/f vectors, but it keeps ceil(n/f): "
                            "your factor can leave the page just over the budget."),
              (_pool_floor, "the pooler keeps ceil(n_patches / f) vectors, not floor: the last, partial group is a "
                            "vector too.")],
)

PROBLEMS = [q1, q2, q3, q4, q5, q6]
