"""MaxSim speed and memory, all in one process (``make bench``).

Two benchmarks. The first (below) scores 32 queries at once with :func:`maxsim`
against colpali-engine's formula; the second,
:func:`test_single_query_vs_maxsim_cpu`, scores **one query** with a
:class:`~mmcourse.retrieval.MaxSimIndex` against ``maxsim-cpu`` (Rust + libxsmm, the
``bench`` extra) on maxsim-cpu's own shapes, next to the machine's streaming-read floor.

First benchmark:

32 queries x 30 tokens against 1,000 pages x 1,030 patches x 128 dims (ColPali's sizes:
1,024 image patches + 6 text tokens, 128-d projection).

- Reference: the padded-batch einsum formula of colpali-engine's ``score_multi_vector``
  (``einsum("bnd,csd->bcns").max(dim=3)[0].sum(dim=2)`` over batches of 128 queries and
  128 pages, each batch zero-padded with ``pad_sequence``). colpali-engine itself pins
  an older torch than ours, so the formula is written out here.
- Goals: ``maxsim`` time <= 0.6x the reference, peak extra memory <= 1/4, same scores;
  and >= 0.5 of the GFLOP/s of a 2048 x 2048 float32 matmul measured in the same run
  (MaxSim does 2 * Tq * P * D FLOPs per query-page pair).

Each measurement is repeated and the median is reported: other processes sharing the
CPU make single timings noisy, ratios taken in the same run much less so. Also printed,
not asserted: the load average before and after, and MaxSim's parts alone on one thread
(best of 3: the 2048 x 2048 matmul, the plain K = 128 products, and the max pass), which show how
close to the machine's limit the products with K = 128 can get at all.

Peak memory on CPU: :func:`mmcourse.memory.peak_memory` (the kernel's resident-set
high-water mark, with glibc giving large blocks fresh pages while it measures). On CUDA:
``torch.cuda.max_memory_allocated``.
"""
from __future__ import annotations

import os
import statistics
import time

import pytest
import torch

from mmcourse.memory import peak_memory, peak_memory_supported
from mmcourse.retrieval import maxsim

N_QUERIES, Q_TOKENS = 32, 30
N_PAGES, PAGE_PATCHES, DIM = 1000, 1030, 128
REPEATS = 3


def colpali_engine_formula(qs, ps, batch_size: int = 128, device="cpu"):
    """colpali-engine's ``score_multi_vector``: padded batches, one 4-D einsum, max, sum."""
    rows = []
    for i in range(0, len(qs), batch_size):
        q = torch.nn.utils.rnn.pad_sequence(qs[i:i + batch_size], batch_first=True, padding_value=0).to(device)
        row = []
        for j in range(0, len(ps), batch_size):
            p = torch.nn.utils.rnn.pad_sequence(ps[j:j + batch_size], batch_first=True, padding_value=0).to(device)
            row.append(torch.einsum("bnd,csd->bcns", q, p).max(dim=3)[0].sum(dim=2))  # (b, c)
        rows.append(torch.cat(row, dim=1).cpu())
    return torch.cat(rows, dim=0).to(torch.float32)


# ---- peak memory -------------------------------------------------------------------------
def peak_extra_mib(fn, device) -> tuple[float, object]:
    """Run ``fn()`` and return (peak memory above the starting point in MiB, its result)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20, out
    peak = peak_memory(fn)
    return peak.mib, peak.result


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def matmul_gflops(device, flops: float, n: int = 2048) -> float:
    """Sustained GFLOP/s of back-to-back n x n float32 matmuls doing about ``flops`` work.

    Timed over the same amount of work as MaxSim (not the best of a few short runs), so
    both see the same share of a busy machine.
    """
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b  # warm-up
    count = max(1, round(flops / (2 * n**3)))

    def run():
        for _ in range(count):
            a @ b

    return 2 * n**3 * count / timed(run, device) / 1e9


def one_thread_parts(device, flops: float, repeats: int = 3) -> tuple[float, float, float]:
    """MaxSim's parts alone, on one thread (as each of ``maxsim``'s CPU workers runs), each the
    best of ``repeats`` runs over a twentieth of the work: GFLOP/s of 2048 x 2048 matmuls, GFLOP/s
    of plain one-page products ``(P, D) @ (D, Nq*Tq)`` (K = D = 128, what MaxSim is made of), and
    the time of the max over patches of those products as a fraction of the products' time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.randn(2048, 2048, device=device)
        square = max(1, round(flops / 20 / (2 * 2048**3)))
        t_square = min(timed(lambda: [a @ a for _ in range(square)], device) for _ in range(repeats))
        page = torch.randn(PAGE_PATCHES, DIM, device=device)  # (P, D)
        tokens = torch.randn(N_QUERIES * Q_TOKENS, DIM, device=device)  # (Nq*Tq, D)
        sims = torch.empty(PAGE_PATCHES, N_QUERIES * Q_TOKENS, device=device)  # (P, Nq*Tq)
        count = max(1, round(flops / 20 / (2 * sims.numel() * DIM)))
        t_mm = min(timed(lambda: [torch.mm(page, tokens.T, out=sims) for _ in range(count)], device)
                   for _ in range(repeats))
        t_max = min(timed(lambda: [sims.amax(dim=0) for _ in range(count)], device) for _ in range(repeats))
    finally:
        torch.set_num_threads(threads)
    return 2 * 2048**3 * square / t_square / 1e9, 2 * sims.numel() * DIM * count / t_mm / 1e9, t_max / t_mm


def test_maxsim_speed_memory_and_matmul_efficiency():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not peak_memory_supported():
        pytest.skip("peak-memory measurement needs Linux (/proc/self/clear_refs)")
    gen = torch.Generator().manual_seed(0)
    qs = [torch.nn.functional.normalize(torch.randn(Q_TOKENS, DIM, generator=gen), dim=-1).to(device)
          for _ in range(N_QUERIES)]
    ps = [torch.nn.functional.normalize(torch.randn(PAGE_PATCHES, DIM, generator=gen), dim=-1).to(device)
          for _ in range(N_PAGES)]
    flops = 2 * N_QUERIES * Q_TOKENS * N_PAGES * PAGE_PATCHES * DIM

    ours = lambda: maxsim(qs, ps)  # noqa: E731
    ref = lambda: colpali_engine_formula(qs, ps, device=device)  # noqa: E731
    load_before = os.getloadavg()
    with torch.inference_mode():
        mem_ours, s_ours = peak_extra_mib(ours, device)
        mem_ref, s_ref = peak_extra_mib(ref, device)
        diff = (s_ours.cpu() - s_ref).abs().max().item()
        t_ours, t_ref, gf_mm = [], [], []
        for _ in range(REPEATS):  # interleaved, so contention hits both alike
            gf_mm.append(matmul_gflops(device, flops))
            t_ours.append(timed(ours, device))
            t_ref.append(timed(ref, device))
        gf_1t_square, gf_1t_k128, max_fraction = one_thread_parts(device, flops)
    load_after = os.getloadavg()
    t_o, t_r, g_mm = statistics.median(t_ours), statistics.median(t_ref), statistics.median(gf_mm)
    g_ours = flops / t_o / 1e9
    print(f"\nMaxSim {N_QUERIES}x{Q_TOKENS} queries vs {N_PAGES}x{PAGE_PATCHES}x{DIM} pages on {device} "
          f"({torch.get_num_threads()} threads), median of {REPEATS}:")
    print(f"  mmcourse.maxsim        {t_o:7.3f} s   peak +{mem_ours:7.1f} MiB   {g_ours:6.1f} GFLOP/s")
    print(f"  colpali-engine formula {t_r:7.3f} s   peak +{mem_ref:7.1f} MiB")
    print(f"  2048x2048 fp32 matmuls, same work                       {g_mm:6.1f} GFLOP/s")
    print(f"  one thread: 2048x2048 matmul {gf_1t_square:.1f} GFLOP/s, plain one-page K={DIM} products {gf_1t_k128:.1f} GFLOP/s "
          f"({gf_1t_k128 / gf_1t_square:.2f} of it), their max over patches {max_fraction:.2f} of the products' time")
    print(f"  time ratio {t_o / t_r:.2f} (goal <= 0.6)   memory ratio {mem_ours / mem_ref:.3f} (goal <= 0.25)   "
          f"matmul efficiency {g_ours / g_mm:.2f} (goal >= 0.5)   max |score diff| {diff:.2e}")
    print(f"  all timings: ours {[round(t, 3) for t in t_ours]}  ref {[round(t, 3) for t in t_ref]}  "
          f"matmul GFLOP/s {[round(g, 1) for g in gf_mm]}")
    print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (other programs share these cores)")
    from mmcourse.results import record_bench

    record_bench("bench.maxsim.engine_time_ratio", t_o / t_r, "{:.2f}")
    record_bench("bench.maxsim.engine_memory_ratio", mem_ours / mem_ref, "{:.3f}")
    record_bench("bench.maxsim.engine_ours_mib", mem_ours, "{:.1f}")
    record_bench("bench.maxsim.engine_ref_mib", mem_ref, "{:.0f}")
    record_bench("bench.maxsim.matmul_efficiency", g_ours / g_mm, "{:.2f}")
    assert diff <= 1e-3, diff
    assert t_o / t_r <= 0.6, (t_o, t_r)
    assert mem_ours / mem_ref <= 0.25, (mem_ours, mem_ref)
    assert g_ours / g_mm >= 0.5, (g_ours, g_mm)


# ---- one query against a packed index, versus maxsim-cpu (issue 21) -------------------------------
SQ_TOKENS, SQ_PAGES, SQ_DIM = 32, 1000, 128
SQ_SHAPES = {"uniform512": (512, 512), "uniform1024": (1024, 1024), "variable128_1536": (128, 1536)}
SQ_REPEATS, BATCH_QUERIES = 5, 32
SINGLE_GOAL, SINGLE_AIM, FLOOR_GOAL, BATCH_GOAL = 1.0, 0.7, 0.5, 0.5


def _unit_rows(rng, shape):
    import numpy as np

    a = rng.standard_normal(shape).astype(np.float32)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _best_interleaved(fns: dict, repeats: int) -> dict:
    """Best wall time of each function, the functions taking turns (so background load hits all alike)."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def test_single_query_vs_maxsim_cpu():
    """One query (32 x 128) against 1,000 pages on maxsim-cpu's three shapes; 32 queries batched vs per query.

    Floor: ``amax`` over the packed corpus (every byte read once, all threads): no
    single-query scorer can be faster than reading its pages. ``floor fraction`` is
    floor time / our time (1.0 = at memory speed). Arithmetic bound: a single query does
    ``Tq/2`` FLOP per float32 byte, so running at the floor needs ``Tq/2`` x the floor's
    GB/s in GFLOP/s; the best fraction of the floor any scorer can reach is the machine's
    matmul GFLOP/s (2048 x 2048 float32, measured here) divided by that.
    """
    try:
        import maxsim_cpu
    except ImportError:
        print("\nSKIP maxsim-cpu comparison: maxsim-cpu is not installed (pip install 'mmcourse[bench]'; "
              "wheels exist for Linux x86-64 and Apple-silicon macOS)")
        pytest.skip("maxsim-cpu is not installed")
    import numpy as np

    from mmcourse.results import record_bench
    from mmcourse.retrieval import MaxSimIndex

    rng = np.random.default_rng(0)
    query = _unit_rows(rng, (SQ_TOKENS, SQ_DIM))  # (Tq, D)
    q_torch = [torch.from_numpy(query)]
    load_before = os.getloadavg()[0]
    print(f"\nOne query {SQ_TOKENS}x{SQ_DIM} vs {SQ_PAGES} pages, {torch.get_num_threads()} threads, "
          f"best of {SQ_REPEATS} interleaved; load average {load_before:.2f}")
    failures = []
    for name, (shortest, longest) in SQ_SHAPES.items():
        lengths = rng.integers(shortest, longest + 1, SQ_PAGES)
        if shortest == longest:
            corpus = _unit_rows(rng, (SQ_PAGES, longest, SQ_DIM))  # (N, L, D)
            pages = [torch.from_numpy(p) for p in corpus]
            reference = lambda c=corpus: maxsim_cpu.maxsim_scores(query, c)  # noqa: E731
        else:
            corpus = [_unit_rows(rng, (int(n), SQ_DIM)) for n in lengths]
            pages = [torch.from_numpy(p) for p in corpus]
            reference = lambda c=corpus: maxsim_cpu.maxsim_scores_variable(query, c)  # noqa: E731
        index = MaxSimIndex(pages)
        index16 = MaxSimIndex(pages, dtype=torch.float16)
        square = torch.randn(2048, 2048)
        times = _best_interleaved({
            "ours": lambda: index.scores(q_torch),
            "ours_fp16": lambda: index16.scores(q_torch),
            "maxsim_cpu": reference,
            "floor": lambda: index.packed.amax(),
            "matmul": lambda: square @ square,
        }, SQ_REPEATS)
        ours = index.scores(q_torch)[0].numpy()
        diff = float(np.abs(ours - np.asarray(reference())).max())
        diff16 = float(np.abs(index16.scores(q_torch)[0].numpy() - ours).max())
        with torch.inference_mode():
            mem = peak_memory(lambda: index.scores(q_torch), repeats=2).mib if peak_memory_supported() else float("nan")
        ratio = times["ours"] / times["maxsim_cpu"]
        floor_fraction = times["floor"] / times["ours"]
        gbs = index.nbytes / times["ours"] / 1e9
        flops = 2 * SQ_TOKENS * index.packed.shape[0] * SQ_DIM
        matmul_gflops = 2 * 2048**3 / times["matmul"] / 1e9
        needed_gflops = SQ_TOKENS / 2 * index.nbytes / times["floor"] / 1e9  # to keep pace with memory
        arithmetic_bound = min(1.0, matmul_gflops / needed_gflops)
        print(f"  {name:17s} ours {times['ours'] * 1e3:6.1f} ms ({gbs:4.1f} GB/s, {flops / times['ours'] / 1e9:5.1f} "
              f"GFLOP/s)  fp16 storage {times['ours_fp16'] * 1e3:6.1f} ms  maxsim-cpu "
              f"{times['maxsim_cpu'] * 1e3:6.1f} ms  ratio {ratio:.2f} (goal <= {SINGLE_GOAL}, aim {SINGLE_AIM})")
        print(f"  {'':17s} floor {times['floor'] * 1e3:5.1f} ms ({index.nbytes / times['floor'] / 1e9:4.1f} GB/s) "
              f"-> floor fraction {floor_fraction:.2f} (goal >= {FLOOR_GOAL}); at the floor one query needs "
              f"{needed_gflops:.0f} GFLOP/s, matmul here {matmul_gflops:.0f} -> best reachable {arithmetic_bound:.2f}; "
              f"max |diff| vs maxsim-cpu {diff:.1e}, fp16 vs fp32 {diff16:.1e} (bound {index16.tolerance(q_torch):.3f}); "
              f"peak extra {mem:.1f} MiB")
        record_bench(f"bench.maxsim.single_query_{name}_ratio", ratio, "{:.2f}")
        record_bench(f"bench.maxsim.single_query_{name}_ms", times["ours"] * 1e3, "{:.0f}")
        record_bench(f"bench.maxsim.single_query_{name}_maxsim_cpu_ms", times["maxsim_cpu"] * 1e3, "{:.0f}")
        record_bench(f"bench.maxsim.single_query_{name}_floor_fraction", floor_fraction, "{:.2f}")
        record_bench(f"bench.maxsim.single_query_{name}_arithmetic_bound", arithmetic_bound, "{:.2f}")
        if diff > 1e-4:
            failures.append(f"{name}: scores differ from maxsim-cpu by {diff}")
        if ratio > SINGLE_GOAL:
            failures.append(f"{name}: single-query ratio {ratio:.2f} > {SINGLE_GOAL}")
        if name == "uniform512":  # batched: 32 queries at once vs maxsim-cpu called per query
            queries = [_unit_rows(rng, (SQ_TOKENS, SQ_DIM)) for _ in range(BATCH_QUERIES)]
            q_all = [torch.from_numpy(q) for q in queries]
            batch = _best_interleaved({
                "ours": lambda: index.scores(q_all),
                "maxsim_cpu": lambda: [maxsim_cpu.maxsim_scores(q, corpus) for q in queries],
            }, 2)
            batch_ratio = batch["ours"] / batch["maxsim_cpu"]
            print(f"  {BATCH_QUERIES} queries on {name}: ours batched {batch['ours']:.2f} s, maxsim-cpu per query "
                  f"{batch['maxsim_cpu']:.2f} s, ratio {batch_ratio:.2f} (goal <= {BATCH_GOAL})")
            record_bench("bench.maxsim.batched32_uniform512_ratio", batch_ratio, "{:.2f}")
            if batch_ratio > BATCH_GOAL:
                failures.append(f"batched ratio {batch_ratio:.2f} > {BATCH_GOAL}")
        del index, index16, pages, corpus
    load_after = os.getloadavg()[0]
    print(f"  load average {load_before:.2f} -> {load_after:.2f}. Floor fraction: reported, not asserted — one query "
          f"does {SQ_TOKENS // 2} FLOP per byte read, more than this CPU's arithmetic sustains per byte of its memory "
          f"speed ('best reachable' above: the floor fraction the measured matmul speed allows at all)")
    record_bench("bench.maxsim.single_query_load_average", load_after, "{:.1f}")
    assert not failures, failures
