"""One contrastive training loop shared by every notebook.

The contract is the one open_clip uses, so open_clip models and losses plug in
unchanged:

- ``model(*batch)`` returns ``(features_a, features_b, logit_scale)`` or
  ``(features_a, features_b, logit_scale, logit_bias)``, or a dict with the keys
  ``image_features``, ``text_features``, ``logit_scale`` and optionally ``logit_bias``;
  ``logit_scale`` is the multiplier (already ``exp``-ed), as in open_clip.
- ``loss_fn(features_a, features_b, logit_scale[, logit_bias])`` returns a scalar
  (or open_clip's dict of named losses, which are summed).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from .env import ONE_THREAD_TRAINING_PARAMS, get_device, set_seed, small_model_threads, torch_threads
from .validate import positive_int



@dataclass
class History:
    """What a training run produced."""

    losses: list[float] = field(default_factory=list)  # one per step
    seconds: float = 0.0  # wall-clock time of the loop
    lrs: list[float] = field(default_factory=list)  # learning rate per step

    @property
    def final_loss(self) -> float:
        """Mean of the last 10 % of the losses (less noisy than the last one)."""
        tail = self.losses[-max(1, len(self.losses) // 10):]
        return sum(tail) / len(tail)


def to_device(batch: Any, device) -> Any:
    """Move tensors (also inside tuples, lists and dicts) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    if hasattr(batch, "to") and callable(batch.to):  # e.g. transformers' BatchEncoding
        return batch.to(device)
    return batch


def unpack_outputs(out) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Normalise a model's output to ``(features_a, features_b, logit_scale, logit_bias)``."""
    if isinstance(out, dict):
        missing = [k for k in ("image_features", "text_features", "logit_scale") if k not in out]
        if missing:
            raise ValueError(f"model returned a dict without {missing}; got keys {sorted(out)}")
        return out["image_features"], out["text_features"], out["logit_scale"], out.get("logit_bias")
    if isinstance(out, (tuple, list)) and len(out) in (3, 4):
        return out[0], out[1], out[2], (out[3] if len(out) == 4 else None)
    raise ValueError(
        "model(*batch) must return (features_a, features_b, logit_scale[, logit_bias]) "
        f"or open_clip's output dict; got {type(out).__name__}"
        + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
    )


def _loss_value(loss) -> torch.Tensor:
    if isinstance(loss, dict):  # open_clip's output_dict=True
        return sum(loss.values())
    return loss


def _lr_at(step: int, steps: int, lr: float, warmup: int, schedule: str) -> float:
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "cosine":
        progress = (step - warmup) / max(1, steps - warmup)
        return lr * 0.5 * (1 + math.cos(math.pi * progress))
    return lr


def train(
    model: torch.nn.Module,
    batches: Callable[[int], Any] | Iterable[Any],
    loss_fn: Callable[..., torch.Tensor],
    *,
    steps: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    warmup: int = 0,
    schedule: str = "constant",
    params: Iterable[torch.nn.Parameter] | None = None,
    grad_clip: float | None = None,
    device: str | torch.device | None = None,
    seed: int | None = 0,
    progress: bool = True,
    desc: str = "training",
    threads: int | None = None,
) -> History:
    """Train any two-tower ``model`` with any contrastive ``loss_fn`` for ``steps`` AdamW steps.

    ``batches`` is either a function ``step -> batch`` or an iterable of batches; each
    batch is a tuple passed as ``model(*batch)`` after moving its tensors to ``device``.
    ``params`` defaults to the model's parameters that require gradients (plus the
    loss's, when ``loss_fn`` is a module with learnable scale or bias).
    Returns a :class:`History` with one loss per step.

    ``threads``: torch CPU threads for the loop. ``None`` picks one thread on CPU for a small
    model (fewer than ``env.ONE_THREAD_TRAINING_PARAMS`` parameters, frozen ones included), which gains
    nothing from more, while on a busy machine extra threads spin-wait for cores they do not
    get (several times slower); larger models keep torch's setting. An int sets it.
    """
    positive_int(steps, "steps")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    if seed is not None:
        set_seed(seed)
    device = torch.device(device or get_device())
    model.to(device).train()
    if params is None:
        params = [p for p in model.parameters() if p.requires_grad]
        if isinstance(loss_fn, torch.nn.Module):
            loss_fn.to(device)
            params += [p for p in loss_fn.parameters() if p.requires_grad]
    params = list(params)
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if threads is None:
        threads = small_model_threads(model, device, ONE_THREAD_TRAINING_PARAMS)
    with torch_threads(threads if device.type == "cpu" else None):
        history = _loop(model, batches, loss_fn, optimizer, params, steps=steps, lr=lr, warmup=warmup,
                        schedule=schedule, grad_clip=grad_clip, device=device, progress=progress, desc=desc)
    model.eval()
    return history


def _loop(model, batches, loss_fn, optimizer, params, *, steps, lr, warmup, schedule, grad_clip, device,
          progress, desc) -> History:

    next_batch = batches if callable(batches) else iter(batches).__next__
    history = History()
    from tqdm.auto import tqdm

    bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
    start = time.perf_counter()
    for step in bar:
        try:
            batch = next_batch(step) if callable(batches) else next_batch()
        except StopIteration:
            raise ValueError(f"batches ran out after {step} of {steps} steps") from None
        if not isinstance(batch, (tuple, list)):
            batch = (batch,)
        rate = _lr_at(step, steps, lr, warmup, schedule)
        for group in optimizer.param_groups:
            group["lr"] = rate
        a, b, scale, bias = unpack_outputs(model(*to_device(batch, device)))
        loss = _loss_value(loss_fn(a, b, scale) if bias is None else loss_fn(a, b, scale, bias))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower lr (now {rate:g})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        history.losses.append(float(loss.detach()))
        history.lrs.append(rate)
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{history.losses[-1]:.3f}")
    history.seconds = time.perf_counter() - start
    return history
