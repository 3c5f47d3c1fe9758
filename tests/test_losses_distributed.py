"""Distributed losses on 2 CPU processes (gloo over loopback) = one process on the whole batch.

One spawn runs every case (starting processes is the slow part); each rank writes its
losses and gradients to a file and the test process compares them with the
single-process losses on the concatenated batch (whose parity with open_clip is
checked in test_losses.py; the workers skip importing open_clip to start faster).
"""
import math
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from mmcourse.losses import clip_loss, distributed_clip_loss, distributed_siglip_loss, siglip_loss

WORLD, N_LOCAL, DIM = 2, 5, 8
# case name -> (loss, keyword arguments)
CASES = {
    "clip": ("clip", dict(gather_with_grad=True, local_loss=False)),
    "clip_local": ("clip", dict(gather_with_grad=True, local_loss=True)),
    "clip_no_grad_gather": ("clip", dict(gather_with_grad=False, local_loss=False)),
    "siglip": ("siglip", dict()),
    "siglip_chunked": ("siglip", dict(chunk_size=2)),
    "clip_tiled": ("clip", dict(gather_with_grad=True, local_loss=False, chunk_size=3)),  # 3 does not divide 10
    "clip_local_tiled": ("clip", dict(gather_with_grad=True, local_loss=True, chunk_size=3)),
}


def _global_batch(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(WORLD * N_LOCAL, DIM, generator=g, dtype=dtype), dim=-1)
    y = F.normalize(torch.randn(WORLD * N_LOCAL, DIM, generator=g, dtype=dtype), dim=-1)
    return x, y


def _run(fn, x, y, bias):
    x, y = x.clone().requires_grad_(), y.clone().requires_grad_()
    t = torch.tensor(math.log(10.0), dtype=x.dtype, requires_grad=True)
    b = torch.tensor(-5.0, dtype=x.dtype, requires_grad=True) if bias else None
    loss = fn(x, y, t.exp(), b)
    loss.backward()
    return {"loss": loss.detach(), "x": x.grad, "y": y.grad, "t": t.grad, "b": None if b is None else b.grad}


def _worker(rank, init_method, out_dir):
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=WORLD)
    try:
        x, y = _global_batch()
        mine = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
        results = {}
        for name, (kind, kwargs) in CASES.items():
            for bias in (False, True):
                ours = distributed_clip_loss if kind == "clip" else distributed_siglip_loss
                results[name, bias] = _run(lambda *a, f=ours, k=kwargs: f(*a, **k), x[mine], y[mine], bias)
        torch.save(results, f"{out_dir}/rank{rank}.pt")
        # Both ranks leave together: rank 0 hosts the rendezvous store, and tearing it down while
        # the other rank still talks to it can abort the process ("terminate called ...").
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(f"tcp://127.0.0.1:{_free_port()}", str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def _check(ranks, name, bias, feature_factor):
    x, y = _global_batch()
    single = _run(clip_loss if name.startswith("clip") else siglip_loss, x, y, bias)
    per_rank = [r[name, bias] for r in ranks]
    # the mean of the ranks' losses is the loss of the whole batch
    torch.testing.assert_close(sum(r["loss"] for r in per_rank) / WORLD, single["loss"], atol=1e-10, rtol=0)
    # each rank's feature gradients: `feature_factor` times the single-process ones for its rows
    for key in ("x", "y"):
        torch.testing.assert_close(torch.cat([r[key] for r in per_rank]), feature_factor * single[key], atol=1e-10, rtol=0)
    # scale and bias: DDP averages parameter gradients over ranks
    for key in ("t",) + (("b",) if bias else ()):
        torch.testing.assert_close(sum(r[key] for r in per_rank) / WORLD, single[key], atol=1e-10, rtol=0)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("name", ["clip", "clip_local", "siglip", "siglip_chunked", "clip_tiled", "clip_local_tiled"])
def test_distributed_equals_single_process(ranks, name, bias):
    # gradients flow back to the owner through the gather/exchange: each rank's features
    # get the sum over ranks' losses, WORLD times the gradient of the mean loss
    _check(ranks, name, bias, feature_factor=WORLD)


@pytest.mark.parametrize("bias", [False, True])
def test_gather_without_grad_gives_single_process_gradients(ranks, bias):
    # every rank computes the whole loss; only its own slice carries a graph
    _check(ranks, "clip_no_grad_gather", bias, feature_factor=1)


def test_without_process_group_falls_back_to_single_process():
    x, y = _global_batch()
    assert float(distributed_clip_loss(x, y, 10.0)) == float(clip_loss(x, y, 10.0))
    # the tiled loss hands row blocks to whichever worker thread is free, so its float64 sum may
    # differ from run to run in the last bit: equal to rounding, not bit for bit
    assert float(distributed_clip_loss(x, y, 10.0, chunk_size=4)) == pytest.approx(
        float(clip_loss(x, y, 10.0, chunk_size=4)), rel=1e-14, abs=0)
    assert float(distributed_siglip_loss(x, y, 10.0, -10.0)) == float(siglip_loss(x, y, 10.0, -10.0))
