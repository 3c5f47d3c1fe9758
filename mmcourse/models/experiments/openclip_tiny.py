"""The course's tiny open_clip model: a custom config registered the way open_clip does it.

open_clip describes every architecture with a JSON file (``embed_dim``, ``vision_cfg``,
``text_cfg``) in its ``model_configs`` folder; ``open_clip.add_model_config(path)`` adds
more. :func:`register_tiny_configs` writes two such files for the scenes:

- ``mmcourse-tiny-clip``: a 2-layer ViT on 32-pixel inputs (open_clip's own transform
  resizes the 64-pixel scenes) and a 2-layer text transformer with open_clip's BPE
  tokenizer (its vocabulary ships inside the package, so it works offline);
- ``mmcourse-tiny-sigmoid``: the same towers plus a learnable bias initialised as in
  SigLIP (``init_logit_bias = -10``, scale 10), for open_clip's ``SigLipLoss``.

After registration everything is open_clip's real API: ``create_model_and_transforms``,
``get_tokenizer``, ``encode_image`` / ``encode_text``, and ``mmcourse.load_model("open_clip:...")``.
A model is saved in open_clip's ``local-dir`` layout (``open_clip_config.json`` +
``open_clip_model.safetensors``), which ``load_model(folder)`` reads back.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

__all__ = [
    "TINY_CLIP",
    "TINY_SIGLIP",
    "TinyOpenClipConfig",
    "register_config",
    "register_tiny_configs",
    "create_tiny_openclip",
    "scene_tensors",
    "random_batches",
    "open_clip_loss",
    "sigmoid_bias_init",
    "train_tiny_openclip",
    "save_openclip",
    "check_token_ids",
]

TINY_CLIP = "mmcourse-tiny-clip"
TINY_SIGLIP = "mmcourse-tiny-sigmoid"  # not "...siglip": open_clip.get_tokenizer would then fetch the SigLIP tokenizer from the hub


@dataclass(frozen=True)
class TinyOpenClipConfig:
    """A CPU-sized open_clip ``CLIP``: trains on the scenes in seconds."""

    embed_dim: int = 64  # size of the shared embedding space
    image_size: int = 32  # open_clip's transform resizes the 64-px scenes to this
    patch_size: int = 8  # 32 / 8 = 4 x 4 = 16 patches per image
    vision_width: int = 64  # ViT hidden size
    vision_layers: int = 2  # ViT blocks
    vision_head_width: int = 32  # open_clip sets heads = width / head_width (here 2)
    text_width: int = 64  # text transformer hidden size
    text_heads: int = 2  # text attention heads
    text_layers: int = 2  # text transformer blocks
    context_length: int = 16  # tokens per caption (scene captions need <= 12)
    vocab_size: int = 49408  # open_clip's BPE vocabulary, fixed by its tokenizer
    mlp_ratio: float = 2.0  # MLP hidden size / width in both towers

    def to_open_clip(self, sigmoid: bool = False) -> dict:
        """The JSON open_clip reads; ``sigmoid=True`` adds SigLIP's bias and scale initialisation."""
        cfg = {
            "embed_dim": self.embed_dim,
            "vision_cfg": {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "width": self.vision_width,
                "layers": self.vision_layers,
                "head_width": self.vision_head_width,
                "mlp_ratio": self.mlp_ratio,
            },
            "text_cfg": {
                "context_length": self.context_length,
                "vocab_size": self.vocab_size,
                "width": self.text_width,
                "heads": self.text_heads,
                "layers": self.text_layers,
                "mlp_ratio": self.mlp_ratio,
            },
        }
        if sigmoid:
            cfg["init_logit_scale"] = math.log(10.0)  # SigLIP paper: t' = log 10
            cfg["init_logit_bias"] = -10.0  # SigLIP paper: b = -10
        return cfg


def _config_folder() -> pathlib.Path:
    from ...env import cache_dir

    folder = cache_dir() / "open_clip_configs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def register_config(name: str, model_cfg: dict) -> str:
    """Write ``model_cfg`` as ``<name>.json`` and register it with ``open_clip.add_model_config``.

    Idempotent; re-registering a name with a different config replaces it.
    """
    import open_clip

    if not isinstance(name, str) or not name or "/" in name or name.startswith(("hf-hub:", "local-dir:")):
        raise ValueError(f"config name must be a plain name such as 'my-tiny-clip', got {name!r}")
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in model_cfg]
    if missing:
        raise ValueError(f"an open_clip config needs the keys embed_dim, vision_cfg, text_cfg; missing {missing}")
    path = _config_folder() / f"{name}.json"
    text = json.dumps(model_cfg, indent=2, sort_keys=True)
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)  # atomic: another process never reads half a file
    if open_clip.get_model_config(name) != model_cfg:
        open_clip.add_model_config(path)  # open_clip rescans its registry
    return name


def register_tiny_configs(config: TinyOpenClipConfig = TinyOpenClipConfig()) -> list[str]:
    """Register ``mmcourse-tiny-clip`` and ``mmcourse-tiny-sigmoid``; returns their names.

    Also silences open_clip's "No pretrained weights loaded" warning: these configs have no weights by design.
    """
    _quiet_open_clip()
    return [register_config(TINY_CLIP, config.to_open_clip(sigmoid=False)),
            register_config(TINY_SIGLIP, config.to_open_clip(sigmoid=True))]


def create_tiny_openclip(name: str = TINY_CLIP, device: str = "cpu", seed: int | None = 0, **model_kwargs):
    """``(model, preprocess, tokenizer)`` for a registered tiny config, through open_clip's own API.

    The model returns open_clip's output dict (``output_dict=True``), which
    :func:`mmcourse.train` accepts as is; ``preprocess`` is the eval transform.
    ``model_kwargs`` override the config (e.g. ``init_logit_bias=-4.0``).
    """
    import open_clip

    from ...env import set_seed

    if name in (TINY_CLIP, TINY_SIGLIP):
        register_tiny_configs()
    if seed is not None:
        set_seed(seed)
    _quiet_open_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device, output_dict=True,
                                                                     **model_kwargs)
    tokenizer = open_clip.get_tokenizer(name)
    return model, preprocess, tokenizer


def _quiet_open_clip() -> None:
    """open_clip logs a warning for every random-weight model; the course creates them on purpose."""
    import logging

    class _NoRandomInitWarning(logging.Filter):
        def filter(self, record):
            return "No pretrained weights loaded" not in record.getMessage()

    root = logging.getLogger()
    if not any(isinstance(f, _NoRandomInitWarning) for f in root.filters):
        root.addFilter(_NoRandomInitWarning())


def scene_tensors(scenes: Sequence, preprocess: Callable, tokenizer: Callable) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-process scenes once: ``(images (N, 3, H, W), tokens (N, L))``."""
    if not len(scenes):
        raise ValueError("scene_tensors needs at least one scene")
    images = torch.stack([preprocess(s.image) for s in scenes])  # (N, 3, H, W)
    tokens = tokenizer([s.caption for s in scenes])  # (N, L)
    return images, tokens


def random_batches(*tensors: torch.Tensor, batch_size: int = 64, seed: int = 0) -> Callable[[int], tuple]:
    """A ``step -> batch`` function drawing ``batch_size`` random rows (same rows from every tensor)."""
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"all tensors need the same first dimension, got {[len(t) for t in tensors]}")
    if not 0 < batch_size <= n:
        raise ValueError(f"batch_size must be between 1 and {n}, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)

    def batch(step: int) -> tuple:
        idx = torch.randperm(n, generator=gen)[:batch_size]  # (B,) distinct rows
        return tuple(t[idx] for t in tensors)

    return batch


def open_clip_loss(kind: str):
    """open_clip's own loss module: ``"clip"`` → ``ClipLoss``, ``"siglip"`` → ``SigLipLoss``."""
    from open_clip.loss import ClipLoss, SigLipLoss

    if kind == "clip":
        return ClipLoss()
    if kind == "siglip":
        return SigLipLoss()
    raise ValueError(f"loss kind must be 'clip' or 'siglip', got {kind!r}")


def train_tiny_openclip(scenes: Sequence, loss: str = "clip", steps: int = 200, batch_size: int = 64,
                        lr: float = 3e-3, warmup: int = 0, device: str = "cpu", seed: int = 0, progress: bool = True,
                        freeze_token_table: bool = True, init_logit_bias: float | None = None):
    """Train a tiny open_clip model on ``scenes`` with open_clip's ``ClipLoss`` or ``SigLipLoss``.

    Returns ``(model, preprocess, tokenizer, history)``. ``warmup`` steps raise the learning
    rate linearly to ``lr`` (notebook 03: without it the sigmoid run collapses to the constant
    predictor). For the sigmoid loss the bias starts at ``init_logit_bias``, by default
    ``-log(batch_size)`` (see :func:`sigmoid_bias_init`). ``freeze_token_table`` keeps the
    49408 x 64 token embedding at its random initialisation: it holds 3.2 M of the
    model's 3.3 M parameters, our captions use ~20 of its rows, and updating all of it
    every step would cost more than the rest of the step.
    """
    from ...training import train

    name = {"clip": TINY_CLIP, "siglip": TINY_SIGLIP}.get(loss)
    if name is None:
        raise ValueError(f"loss must be 'clip' or 'siglip', got {loss!r}")
    extra = {}
    if loss == "siglip":
        extra["init_logit_bias"] = sigmoid_bias_init(batch_size) if init_logit_bias is None else init_logit_bias
    model, preprocess, tokenizer = create_tiny_openclip(name, device="cpu", seed=seed, **extra)
    if freeze_token_table:
        model.token_embedding.requires_grad_(False)
    images, tokens = scene_tensors(scenes, preprocess, tokenizer)
    history = train(model, random_batches(images, tokens, batch_size=batch_size, seed=seed), open_clip_loss(loss),
                    steps=steps, lr=lr, warmup=warmup, device=device, seed=seed, progress=progress,
                    desc=f"open_clip {name} ({loss} loss)")
    return model, preprocess, tokenizer, history


def sigmoid_bias_init(batch_size: int) -> float:
    """A sigmoid-loss bias that matches the batch: ``-log(batch_size)`` (the course's heuristic).

    At initialisation every logit is about ``b``; a batch holds 1 positive per N pairs, so
    ``σ(b) = 1/N`` matches the prior. This is not the paper's rule: SigLIP starts at
    ``b = -10`` at every batch size (close to ``-log N`` only for N near 32 k). In notebook 03
    both starts learn once the learning rate is warmed up, and both collapse without.
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2, got {batch_size}")
    return -math.log(batch_size)


def save_openclip(model, folder, model_name: str) -> pathlib.Path:
    """Save in open_clip's ``local-dir`` layout: ``open_clip_config.json`` + ``open_clip_model.safetensors``.

    ``open_clip.create_model_and_transforms("local-dir:<folder>")`` and
    ``mmcourse.load_model(folder)`` read it back (no registration needed).
    """
    import open_clip
    from safetensors.torch import save_file

    model_cfg = open_clip.get_model_config(model_name)
    if model_cfg is None:
        raise ValueError(f"open_clip knows no config {model_name!r}; register it first (register_config)")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    visual = model.visual
    preprocess_cfg = dict(getattr(visual, "preprocess_cfg", {}))
    preprocess_cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in preprocess_cfg.items()}
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    return folder


def _text_limits(model) -> tuple[int, int]:
    """``(vocab_size, context_length)`` of an open_clip ``CLIP`` or a transformers ``SiglipModel``."""
    config = getattr(model, "config", None)
    text_config = getattr(config, "text_config", None)
    if text_config is not None:  # transformers
        return int(text_config.vocab_size), int(text_config.max_position_embeddings)
    vocab = getattr(model, "vocab_size", None)
    context = getattr(model, "context_length", None)
    if vocab is None or context is None:
        text = getattr(model, "text", None)  # open_clip CustomTextCLIP
        vocab = vocab or getattr(text, "vocab_size", None)
        context = context or getattr(text, "context_length", None)
    if vocab is None or context is None:
        raise TypeError(f"cannot find the vocabulary size and context length of a {type(model).__name__}")
    return int(vocab), int(context)


def check_token_ids(model, token_ids: torch.Tensor, exact_length: bool = True) -> torch.Tensor:
    """Raise a clear ``ValueError`` when ``token_ids`` were made by a tokenizer that does not fit ``model``.

    Checks that ids lie in ``[0, vocab_size)`` and that sequences have the model's
    context length (or at most it with ``exact_length=False``). Without this check a
    mismatched tokenizer fails deep inside the model with "index out of range in self"
    or a tensor-size mismatch, or, worse, runs and returns meaningless embeddings.
    """
    if not isinstance(token_ids, torch.Tensor) or token_ids.ndim != 2:
        shape = tuple(token_ids.shape) if isinstance(token_ids, torch.Tensor) else type(token_ids).__name__
        raise ValueError(f"token ids must be a (batch, length) tensor, got {shape}")
    vocab, context = _text_limits(model)
    length = token_ids.shape[1]
    if (exact_length and length != context) or length > context:
        raise ValueError(
            f"token ids have length {length} but the model's text tower takes {context} tokens "
            f"(context_length / max_position_embeddings); tokenize with the model's own tokenizer "
            f"(open_clip.get_tokenizer(name) or the saved processor), which pads to {context}")
    if token_ids.numel():
        lo, hi = int(token_ids.min()), int(token_ids.max())
        if lo < 0 or hi >= vocab:
            raise ValueError(
                f"token id {hi if hi >= vocab else lo} is outside the model's vocabulary of {vocab} tokens: "
                "the tokenizer does not belong to this model (e.g. open_clip's 49408-token BPE ids fed to a "
                "model built for a 30522-token WordPiece vocabulary); use the tokenizer saved with the model")
    return token_ids
