"""Distributed contrastive training of the tiny dual encoder, for real, with ``torchrun``.

    torchrun --nproc_per_node=2 -m mmcourse.scale.train_ddp --loss clip --local-batch 32 --out ddp.json
    python -m mmcourse.scale.train_ddp --single-process --world-size 2 --local-batch 32 --out one.json

Each of the ``world_size`` processes (ranks) holds a replica of the model wrapped in
``DistributedDataParallel`` and takes its own ``local_batch`` slice of every global
batch, so the global batch is ``world_size × local_batch``. The contrastive loss needs
every image to meet every text of the global batch: :func:`mmcourse.losses.distributed_clip_loss`
all-gathers the features (with or without gradient, optionally computing only the
local rows: ``--local-loss``), :func:`mmcourse.losses.distributed_siglip_loss` passes
text blocks around a ring instead. Backend: NCCL when CUDA is available, else gloo.

``--single-process`` runs the same global batches in one process with the ordinary
loss: the reference the distributed curve must match. The output JSON holds the loss
history (mean over ranks = the loss of the global batch), the run's settings, the
bytes the loss saves for the backward pass on one rank, and the time; a ``.grad0.npy``
next to it holds the first step's averaged gradient (for gradient comparisons).

:func:`launch` and :func:`run_single` start both from Python (the notebook and the
tests use them); they return the parsed JSON.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import socket
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..validate import positive_int

__all__ = ["DDPConfig", "VARIANTS", "variant_config", "main", "run", "launch", "run_single", "load_grad0",
           "free_port", "saved_bytes"]


@dataclass
class DDPConfig:
    """One distributed (or reference single-process) training run."""

    loss: str = "clip"  # "clip" (all-gather) or "siglip" (ring exchange of text blocks)
    gather_with_grad: bool = True  # CLIP: let gradients flow back through the all-gather
    local_loss: bool = False  # CLIP: each rank computes only its own rows of the logits
    steps: int = 30  # optimiser steps
    local_batch: int = 32  # pairs per rank per step
    world_size: int = 2  # ranks; for --single-process, the world it imitates
    train_size: int = 1024  # training scenes (each rank draws the same ones)
    lr: float = 2e-3  # AdamW learning rate
    seed: int = 0  # model init and batch order

    def __post_init__(self):
        if self.loss not in ("clip", "siglip"):
            raise ValueError(f"loss must be 'clip' or 'siglip', got {self.loss!r}")
        if self.loss == "siglip" and (self.local_loss or not self.gather_with_grad):
            raise ValueError("--local-loss / --no-gather-with-grad are CLIP all-gather options; "
                             "the SigLIP ring exchange always sends gradients back")
        for name in ("steps", "local_batch", "world_size", "train_size"):
            value = getattr(self, name)
            positive_int(value, name)
        if self.world_size * self.local_batch > self.train_size:
            raise ValueError(f"global batch {self.world_size}×{self.local_batch} exceeds train_size {self.train_size}")

    @property
    def global_batch(self) -> int:
        return self.world_size * self.local_batch


def saved_bytes(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), bytes of tensors autograd saved for the backward pass)``.

    The activation memory a loss costs: for CLIP it is dominated by the logits matrix,
    ``(W·n)²`` entries with the full loss, ``n × W·n`` with ``local_loss``.
    """
    seen: dict[tuple, int] = {}

    def pack(t):
        if t.device.type != "meta":
            seen[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args, **kwargs)
    return out, sum(seen.values())


def _loss_fn(config: DDPConfig):
    from ..losses import distributed_clip_loss, distributed_siglip_loss

    if config.loss == "siglip":
        return distributed_siglip_loss
    return functools.partial(distributed_clip_loss, gather_with_grad=config.gather_with_grad,
                             local_loss=config.local_loss)


def _flat_grad(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]).cpu().numpy()


VARIANTS = {  # name -> DDPConfig overrides, for --variants
    "clip": dict(loss="clip", gather_with_grad=True, local_loss=False),
    "clip-nograd": dict(loss="clip", gather_with_grad=False, local_loss=False),
    "clip-local": dict(loss="clip", gather_with_grad=True, local_loss=True),
    "clip-local-nograd": dict(loss="clip", gather_with_grad=False, local_loss=True),
    "siglip": dict(loss="siglip", gather_with_grad=True, local_loss=False),
}


def variant_config(base: DDPConfig, name: str) -> DDPConfig:
    """``base`` with the loss settings of a named variant (see ``VARIANTS``)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; expected one of {sorted(VARIANTS)}")
    return DDPConfig(**{**asdict(base), **VARIANTS[name]})


def _train_one(config: DDPConfig, data, rank: int, world: int, device, distributed: bool) -> tuple[dict, np.ndarray]:
    import torch.distributed as dist

    from ..env import set_seed
    from ..models.experiments.tiny_dual import TinyDualConfig, TinyDualEncoder, scene_batches
    from ..training import train, unpack_outputs

    global_batches = scene_batches(data, config.global_batch, seed=config.seed)
    lo, hi = (rank * config.local_batch, (rank + 1) * config.local_batch) if distributed else (0, config.global_batch)

    def batches(step: int):
        images, texts = global_batches(step)  # (G, 3, S, S), (G, 384): the same on every rank
        return images[lo:hi], texts[lo:hi]  # this rank's slice

    set_seed(config.seed)
    model = TinyDualEncoder(TinyDualConfig.for_loss(config.loss)).to(device)
    if distributed:
        ddp_kwargs = {"device_ids": [device.index]} if device.type == "cuda" else {}
        model = torch.nn.parallel.DistributedDataParallel(model, **ddp_kwargs)
    loss_fn = _loss_fn(config)

    # Step 0 outside the loop: the averaged gradient and the loss's saved-tensor bytes.
    a, b, scale, bias = unpack_outputs(model(*[t.to(device) for t in batches(0)]))
    args = (a, b, scale) if bias is None else (a, b, scale, bias)
    loss0, loss_bytes = saved_bytes(loss_fn, *args)
    loss0.backward()
    grad0 = _flat_grad(model)
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    start = time.perf_counter()
    history = train(model, batches, loss_fn, steps=config.steps, lr=config.lr, seed=config.seed,
                    device=device, progress=rank == 0, desc=f"{config.loss} rank 0/{world}")
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None

    rank_losses = [history.losses]
    if distributed:
        rank_losses = [None] * world
        dist.all_gather_object(rank_losses, history.losses)
    result = {
        "config": asdict(config),
        "ranks": world,
        "local_batch": config.local_batch if distributed else config.global_batch,
        "global_batch": config.global_batch,
        "losses": np.mean(np.asarray(rank_losses), axis=0).tolist(),  # mean over ranks = global loss
        "rank_losses": rank_losses,
        "loss_saved_bytes": loss_bytes,
        "cuda_peak_bytes": peak,
        "seconds": seconds,
    }
    return result, grad0


def run(config: DDPConfig, out: str | os.PathLike, single_process: bool = False,
        variants: list[str] | None = None) -> dict:
    """Train once per variant (inside a torchrun rank, or alone with ``single_process``).

    Rank 0 writes ``out``: ``{"mode", "backend", "device", "runs": {variant: result}}``, and
    ``<out>.<variant>.grad0.npy`` with each run's first averaged gradient.
    """
    import torch.distributed as dist

    from ..models.experiments.tiny_dual import make_scene_data

    distributed = not single_process
    if distributed:
        if "RANK" not in os.environ:
            raise RuntimeError("not started by torchrun: launch with `torchrun --nproc_per_node=2 -m "
                               "mmcourse.scale.train_ddp ...`, or pass --single-process")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device(f"cuda:{local_rank}") if backend == "nccl" else torch.device("cpu")
        if backend == "nccl":
            torch.cuda.set_device(device)
        dist.init_process_group(backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        if world != config.world_size:
            raise ValueError(f"torchrun started {world} ranks but --world-size is {config.world_size}")
    else:
        backend, rank, world = "none", 0, 1
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    configs = {name: variant_config(config, name) for name in variants} if variants else {"run": config}

    try:
        # Rank 0 builds the scene data (and, the first time, the MiniLM caption cache) first.
        if rank == 0:
            data = make_scene_data(config.train_size, "train", seed=config.seed)
        if distributed:
            dist.barrier()
        if rank != 0:
            data = make_scene_data(config.train_size, "train", seed=config.seed)
        runs, grads = {}, {}
        for name, cfg in configs.items():
            runs[name], grads[name] = _train_one(cfg, data, rank, world, device, distributed)
        result = {"mode": "single-process" if single_process else "torchrun", "backend": backend,
                  "device": str(device), "world_size": config.world_size, "runs": runs}
        if rank == 0:
            out = pathlib.Path(out)
            out.parent.mkdir(parents=True, exist_ok=True)
            for name, grad in grads.items():
                np.save(out.with_name(f"{out.stem}.{name}.grad0.npy"), grad)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(json.dumps(result))
            os.replace(tmp, out)
        if distributed:
            dist.barrier()  # leave together: rank 0 hosts the rendezvous store the others still use
        return result
    finally:
        if distributed and dist.is_initialized():
            dist.destroy_process_group()


def load_grad0(out: str | os.PathLike, variant: str = "run") -> np.ndarray:
    """The first step's averaged gradient that a run saved next to its JSON ``out``."""
    out = pathlib.Path(out)
    return np.load(out.with_name(f"{out.stem}.{variant}.grad0.npy"))


def _parser() -> argparse.ArgumentParser:
    d = DDPConfig()
    p = argparse.ArgumentParser(prog="python -m mmcourse.scale.train_ddp", description=__doc__.split("\n\n")[0])
    p.add_argument("--loss", choices=("clip", "siglip"), default=d.loss)
    p.add_argument("--gather-with-grad", action=argparse.BooleanOptionalAction, default=d.gather_with_grad,
                   help="CLIP: gradients flow through the all-gather (default: on)")
    p.add_argument("--local-loss", action=argparse.BooleanOptionalAction, default=d.local_loss,
                   help="CLIP: each rank computes only its rows of the logits (default: off)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--local-batch", type=int, default=d.local_batch)
    p.add_argument("--world-size", type=int, default=None,
                   help="ranks (default: torchrun's WORLD_SIZE; with --single-process, the world to imitate)")
    p.add_argument("--train-size", type=int, default=d.train_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--single-process", action="store_true",
                   help="one process, global batch = world_size × local_batch, ordinary loss (the reference)")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated runs in one launch, e.g. clip,clip-nograd,siglip (from {sorted(VARIANTS)}); "
                        "they override --loss/--gather-with-grad/--local-loss")
    p.add_argument("--out", required=True, help="JSON file for the loss history (written by rank 0)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    world = args.world_size or int(os.environ.get("WORLD_SIZE", 1))
    config = DDPConfig(loss=args.loss, gather_with_grad=args.gather_with_grad, local_loss=args.local_loss,
                       steps=args.steps, local_batch=args.local_batch, world_size=world,
                       train_size=args.train_size, lr=args.lr, seed=args.seed)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    for name in variants or []:
        variant_config(config, name)  # fail before starting anything
    return run(config, args.out, single_process=args.single_process, variants=variants)


# ----------------------------------------------------------------------------- launching from Python

def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flags(config: DDPConfig, variants: list[str] | None) -> list[str]:
    flags = ["--variants", ",".join(variants)] if variants else []
    return flags + ["--loss", config.loss,
            "--gather-with-grad" if config.gather_with_grad else "--no-gather-with-grad",
            "--local-loss" if config.local_loss else "--no-local-loss",
            "--steps", str(config.steps), "--local-batch", str(config.local_batch),
            "--world-size", str(config.world_size), "--train-size", str(config.train_size),
            "--lr", str(config.lr), "--seed", str(config.seed)]


def _env() -> dict:
    env = dict(os.environ)
    # Everything stays on this machine: rendezvous on 127.0.0.1, gloo on the loopback device.
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    elif sys.platform == "darwin":
        env.setdefault("GLOO_SOCKET_IFNAME", "lo0")
    env.setdefault("OMP_NUM_THREADS", "1")  # what torchrun would set: one thread per rank
    here = str(pathlib.Path(__file__).resolve().parents[2])  # make this mmcourse importable by the ranks
    env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a launcher and every worker it started: SIGTERM to its process group (torchrun
    forwards it to the ranks and waits for them), then SIGKILL to whatever is left."""
    if sys.platform == "win32":  # pragma: no cover - no process groups: kill the launcher
        proc.kill()
        proc.wait()
        return
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # the whole group is gone
            break
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
        try:  # the launcher exited: kill any rank it left behind (same group)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    proc.wait()


def _run(cmd: list[str], out: pathlib.Path, timeout: float) -> dict:
    # Its own session (= process group), so that on a timeout we can stop the launcher *and* its workers.
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=sys.platform != "win32")
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        proc.communicate()
        raise TimeoutError(f"{' '.join(cmd[:6])} ... did not finish within {timeout:g} s; it and its workers "
                           f"were stopped") from None
    except BaseException:  # Ctrl-C in the notebook, etc.: leave no workers behind
        _stop_group(proc)
        raise
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed with exit code {proc.returncode}:\n"
                           f"{stderr[-3000:]}")
    return json.loads(out.read_text())


def launch(config: DDPConfig, out: str | os.PathLike, variants: list[str] | None = None,
           timeout: float = 600) -> dict:
    """Run ``torchrun --nproc_per_node=world_size -m mmcourse.scale.train_ddp`` on this machine
    (rendezvous on a free loopback port) and return its JSON."""
    out = pathlib.Path(out)
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={config.world_size}",
           "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           "-m", "mmcourse.scale.train_ddp", *_flags(config, variants), "--out", str(out)]
    return _run(cmd, out, timeout)


def run_single(config: DDPConfig, out: str | os.PathLike, variants: list[str] | None = None,
               timeout: float = 600) -> dict:
    """The reference: the same global batches in one process (a subprocess, like :func:`launch`)."""
    out = pathlib.Path(out)
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "mmcourse.scale.train_ddp", *_flags(config, variants), "--single-process", "--out", str(out)]
    return _run(cmd, out, timeout)


if __name__ == "__main__":
    main()
