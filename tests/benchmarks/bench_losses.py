"""Benchmark: our losses against open_clip's, same process, forward + backward.

Goals (issue 4): time ratio ours / open_clip <= 1.0 for clip_loss and siglip_loss at
N in {256, 1024, 4096}, D = 512 (we aim for <= 0.8); chunked sigmoid peak memory
<= 1/4 of dense at N = 4096. Timings interleave ours and the reference and keep each
one's best of several repeats, so background load hits both alike.
"""
import math
import time

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss

from mmcourse.losses import clip_loss, siglip_loss
from mmcourse.memory import peak_memory, peak_memory_supported

D = 512
GOAL, AIM = 1.0, 0.8


def _features(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(n, D, generator=g), dim=-1).requires_grad_()
    y = F.normalize(torch.randn(n, D, generator=g), dim=-1).requires_grad_()
    t = torch.tensor(math.log(10.0), requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    return x, y, t, b


def _fwd_bwd(fn, x, y, t, b):
    x.grad = y.grad = t.grad = b.grad = None
    fn(x, y, t.exp(), b).backward()


def _best_times(fns, args, repeats):
    best = [math.inf] * len(fns)
    for fn in fns:  # warm-up
        _fwd_bwd(fn, *args)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            _fwd_bwd(fn, *args)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", ["clip", "siglip"])
@pytest.mark.parametrize("n", [256, 1024, 4096])
def test_loss_speed_vs_open_clip(name, n):
    ours, reference = {"clip": (clip_loss, ClipLoss()), "siglip": (siglip_loss, SigLipLoss())}[name]
    ours_s, ref_s = _best_times([ours, reference], _features(n), repeats={256: 20, 1024: 8, 4096: 4}[n])
    ratio = ours_s / ref_s
    print(f"\n{name}_loss N={n} D={D}: ours {ours_s * 1e3:.1f} ms, open_clip {ref_s * 1e3:.1f} ms, "
          f"ratio {ratio:.2f} (goal <= {GOAL}, aim <= {AIM})")
    from mmcourse.results import record_bench

    record_bench(f"bench.losses.{name}_vs_open_clip_{n}", ratio, "{:.2f}")
    assert ratio <= GOAL, ratio


@pytest.mark.skipif(not peak_memory_supported(), reason="peak memory needs Linux /proc/self/clear_refs")
def test_chunked_sigmoid_peak_memory():
    x, y, t, b = _features(4096)
    dense = peak_memory(lambda: _fwd_bwd(siglip_loss, x, y, t, b), repeats=3).mib
    chunked = peak_memory(lambda: _fwd_bwd(lambda *a: siglip_loss(*a, chunk_size=256), x, y, t, b), repeats=3).mib
    reference = peak_memory(lambda: _fwd_bwd(SigLipLoss(), x, y, t, b), repeats=3).mib
    print(f"\nsigmoid loss N=4096 D={D} peak extra memory: open_clip {reference:.1f} MiB, "
          f"ours dense {dense:.1f} MiB, ours chunked(256) {chunked:.1f} MiB, chunked/dense {chunked / dense:.2f} (goal <= 0.25)")
    from mmcourse.results import record_bench

    record_bench("bench.losses.sigmoid_4096_dense_mib", dense, "{:.0f}")
    record_bench("bench.losses.sigmoid_4096_chunked_mib", chunked, "{:.0f}")
    record_bench("bench.losses.sigmoid_4096_open_clip_mib", reference, "{:.0f}")
    assert chunked <= dense / 4, (chunked, dense)


# ---- tiled InfoNCE (issue 21) --------------------------------------------------------------------
TILED_N, TILED_CHUNK = 8192, 1024
TILED_MEMORY_GOAL, TILED_TIME_GOAL = 1 / 8, 1.3


@pytest.mark.skipif(not peak_memory_supported(), reason="peak memory needs Linux /proc/self/clear_refs")
def test_tiled_clip_loss_memory_and_time_vs_dense():
    """clip_loss(chunk_size=1024) against the dense clip_loss at N = 8,192, D = 512, forward + backward."""
    import os

    from mmcourse.results import record_bench

    x, y, t, b = _features(TILED_N)
    dense = lambda *a: clip_loss(*a)  # noqa: E731
    tiled = lambda *a: clip_loss(*a, chunk_size=TILED_CHUNK)  # noqa: E731
    load_before = os.getloadavg()[0]
    mem_dense = peak_memory(lambda: _fwd_bwd(dense, x, y, t, b), repeats=2).mib
    mem_tiled = peak_memory(lambda: _fwd_bwd(tiled, x, y, t, b), repeats=2).mib
    t_dense, t_tiled = _best_times([dense, tiled], (x, y, t, b), repeats=3)  # interleaved, best of 3
    load_after = os.getloadavg()[0]
    print(f"\nclip_loss N={TILED_N} D={D} forward+backward: dense {t_dense:.2f} s, peak +{mem_dense:.0f} MiB; "
          f"tiled(chunk {TILED_CHUNK}) {t_tiled:.2f} s, peak +{mem_tiled:.0f} MiB; load average {load_before:.2f} "
          f"-> {load_after:.2f}")
    record_bench("bench.losses.tiled_clip_8192_dense_mib", mem_dense, "{:.0f}")
    record_bench("bench.losses.tiled_clip_8192_tiled_mib", mem_tiled, "{:.0f}")
    memory_ratio = record_bench("bench.losses.tiled_clip_8192_memory_ratio", mem_tiled / mem_dense, "{:.3f}")
    time_ratio = record_bench("bench.losses.tiled_clip_8192_time_ratio", t_tiled / t_dense, "{:.2f}")
    print(f"  memory ratio {memory_ratio} (goal <= {TILED_MEMORY_GOAL:.3f}), time ratio {time_ratio} "
          f"(goal <= {TILED_TIME_GOAL})")
    assert mem_tiled / mem_dense <= TILED_MEMORY_GOAL, (mem_tiled, mem_dense)
    assert t_tiled / t_dense <= TILED_TIME_GOAL, (t_tiled, t_dense)
