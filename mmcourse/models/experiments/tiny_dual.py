"""A tiny dual encoder on the scenes data, small enough to train in about a second.

LiT-style: a small convolutional image tower is trained from scratch; the text side
is the real all-MiniLM-L6-v2, frozen, with a trainable linear projection on top. The
MiniLM sentence embeddings of every caption and prompt are computed once and cached,
so a training step costs only the image tower, the projection and the loss.

Used by the batch-size experiment of notebook 02 (InfoNCE vs sigmoid loss), by the
distributed-training notebook and by the exercises. It follows the contract of
:func:`mmcourse.train`: ``model(images, text_embeddings)`` returns
``(image_features, text_features, logit_scale)`` — plus ``logit_bias`` when the config
has one — with L2-normalised ``(B, embed_dim)`` features.

    data = make_scene_data(2048, "train")
    model = TinyDualEncoder(TinyDualConfig.for_loss("siglip"))
    mmcourse.train(model, scene_batches(data, batch_size=32), siglip_loss, steps=500, lr=3e-3, warmup=50)
    evaluate(model, make_scene_data(480, "all", seed=1))  # {'zero_shot_acc': ..., 'r_at_1': ...}
"""
from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...data.shapes import labels as scene_labels
from ...data.shapes import make_scenes
from ...validate import integer

__all__ = [
    "TinyDualConfig",
    "TinyDualEncoder",
    "SceneData",
    "make_scene_data",
    "scene_batches",
    "caption_embeddings",
    "evaluate",
    "run_trial",
    "PROMPT",
]

PROMPT = "a photo of a {label}."  # zero-shot class prompt (one of the training templates)
TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence embedding size


@dataclass
class TinyDualConfig:
    """Sizes and initial temperature of :class:`TinyDualEncoder`."""

    channels: int = 16  # width of the two conv layers of the image tower
    embed_dim: int = 64  # size of the shared embedding space
    text_dim: int = TEXT_DIM  # size of the frozen text embeddings fed to the projection
    init_logit_scale: float = 1 / 0.07  # CLIP's initial multiplier (temperature 0.07)
    init_logit_bias: float | None = None  # None: the model returns no bias (CLIP); SigLIP: -10
    max_logit_scale: float = 100.0  # exp(t) is clamped here, as in CLIP

    @classmethod
    def for_loss(cls, loss: str, **overrides) -> "TinyDualConfig":
        """The published initialisation for ``"clip"`` (scale 1/0.07, no bias) or
        ``"siglip"`` (scale 10, bias -10)."""
        inits = {"clip": dict(init_logit_scale=1 / 0.07, init_logit_bias=None),
                 "siglip": dict(init_logit_scale=10.0, init_logit_bias=-10.0)}
        if loss not in inits:
            raise ValueError(f"loss must be 'clip' or 'siglip', got {loss!r}")
        return cls(**{**inits[loss], **overrides})


class TinyDualEncoder(nn.Module):
    """Conv image tower + linear projection of frozen sentence embeddings.

    ``forward(images (B, 3, S, S), text_embeddings (B, text_dim))`` returns
    ``(image_features, text_features, logit_scale[, logit_bias])``, features L2-normalised.
    """

    def __init__(self, config: TinyDualConfig | None = None):
        super().__init__()
        self.config = config = config or TinyDualConfig()
        c = config.channels
        self.image_tower = nn.Sequential(
            nn.Conv2d(3, c, kernel_size=5, stride=2, padding=2),  # (B, c, S/2, S/2)
            nn.ReLU(),
            nn.Conv2d(c, c, kernel_size=3, stride=2, padding=1),  # (B, c, S/4, S/4)
            nn.ReLU(),
        )
        self.image_head = nn.Linear(2 * c, config.embed_dim)  # from [mean-pool, max-pool]
        self.text_projection = nn.Linear(config.text_dim, config.embed_dim)
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(config.init_logit_scale)))
        self.logit_bias = (nn.Parameter(torch.tensor(float(config.init_logit_bias)))
                           if config.init_logit_bias is not None else None)

    @property
    def logit_scale(self) -> torch.Tensor:
        """The multiplier ``exp(t)``, clamped at ``max_logit_scale``."""
        return self.log_logit_scale.clamp(max=math.log(self.config.max_logit_scale)).exp()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` float images in [0, 1] → ``(B, embed_dim)`` unit vectors."""
        h = self.image_tower(images - 0.5)  # (B, c, S/4, S/4)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)  # (B, 2c)
        return F.normalize(self.image_head(pooled), dim=-1)  # (B, E)

    def encode_text(self, text_embeddings: torch.Tensor) -> torch.Tensor:
        """``(B, text_dim)`` frozen sentence embeddings → ``(B, embed_dim)`` unit vectors."""
        return F.normalize(self.text_projection(text_embeddings), dim=-1)  # (B, E)

    def forward(self, images: torch.Tensor, text_embeddings: torch.Tensor):
        out = (self.encode_image(images), self.encode_text(text_embeddings), self.logit_scale)
        return out if self.logit_bias is None else out + (self.logit_bias,)


# ----------------------------------------------------------------------------- data

@dataclass
class SceneData:
    """Scenes as tensors, ready for training or evaluation."""

    images: torch.Tensor  # (N, 3, S, S) float32 in [0, 1]
    text_embeddings: torch.Tensor  # (N, 384) frozen MiniLM embeddings of the captions
    captions: list[str]  # (N,)
    label_ids: torch.Tensor  # (N,) index into `labels`
    labels: list[str]  # every "colour shape" class name, split "all"

    def __len__(self) -> int:
        return self.images.shape[0]


_EMBEDDINGS: dict[str, torch.Tensor] = {}  # text -> (384,) for this session


def _embedding_cache_file():
    from ...env import cache_dir

    return cache_dir() / "tiny_dual" / "minilm_sentence_embeddings.pt"


def caption_embeddings(texts: list[str]) -> torch.Tensor:
    """Frozen all-MiniLM-L6-v2 embeddings ``(N, 384)`` of ``texts``.

    Each distinct text is embedded once and remembered, in memory and on disk under
    ``cache_dir()`` (scene captions come from a few templates, so after the first run
    no notebook has to load MiniLM to train a tiny dual encoder). A missing or
    unreadable cache file is rebuilt; the file is replaced atomically.
    """
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a non-empty list of strings")
    path = _embedding_cache_file()
    if any(t not in _EMBEDDINGS for t in texts) and path.exists():
        try:
            _EMBEDDINGS.update(torch.load(path, weights_only=True))
        except Exception:  # corrupt or half-written: recompute below and overwrite
            pass
    missing = sorted({t for t in texts if t not in _EMBEDDINGS})
    if missing:
        from ..hub.minilm import embed_sentences

        _EMBEDDINGS.update(zip(missing, embed_sentences(missing)))  # (M, 384) rows
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({t: e.clone() for t, e in _EMBEDDINGS.items()}, tmp)
        os.replace(tmp, path)
    return torch.stack([_EMBEDDINGS[t] for t in texts])  # (N, 384)


@functools.lru_cache(maxsize=16)
def _scene_data(n: int, split: str, seed: int, size: int) -> SceneData:
    scenes = make_scenes(n, split=split, seed=seed, size=size)
    pixels = np.stack([np.asarray(s.image, dtype=np.uint8) for s in scenes])  # (N, S, S, 3)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255).contiguous()  # (N, 3, S, S)
    captions = [s.caption for s in scenes]
    all_labels = scene_labels("all")
    label_ids = torch.tensor([all_labels.index(s.label) for s in scenes])  # (N,)
    return SceneData(images, caption_embeddings(captions), captions, label_ids, all_labels)


def make_scene_data(n: int, split: str = "train", seed: int = 0, size: int = 24) -> SceneData:
    """``n`` scenes of a split (see :func:`mmcourse.data.shapes.make_scenes`) as tensors,
    with their captions' frozen MiniLM embeddings. Cached: treat the tensors as read-only."""
    return _scene_data(int(n), split, int(seed), int(size))


def scene_batches(data: SceneData, batch_size: int, seed: int = 0):
    """A ``step -> (images, text_embeddings)`` function for :func:`mmcourse.train`:
    shuffles ``data`` each epoch (deterministically from ``seed``), drops the last
    incomplete batch."""
    integer(batch_size, "batch_size", minimum=1, maximum=len(data))
    per_epoch = len(data) // batch_size
    generator = torch.Generator().manual_seed(seed)
    order: dict[int, torch.Tensor] = {}

    def batch(step: int):
        epoch, i = divmod(step, per_epoch)
        if epoch not in order:
            order.clear()
            order[epoch] = torch.randperm(len(data), generator=generator)
        idx = order[epoch][i * batch_size:(i + 1) * batch_size]  # (B,)
        return data.images[idx], data.text_embeddings[idx]

    return batch


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model: TinyDualEncoder, data: SceneData, prompt: str = PROMPT) -> dict[str, float]:
    """Quality of ``model`` on ``data`` (use scenes not seen in training, e.g. split ``"all"``
    with another seed, or ``"heldout"`` for compositions never seen), by
    :func:`mmcourse.scene_benchmark.scene_metrics`:

    - ``zero_shot_acc``: each image classified among all 24 "colour shape" labels by
      cosine similarity with the prompt ``prompt.format(label=...)`` (chance 1/24);
    - ``r_at_1``: text→image retrieval; each caption queries all images of ``data`` and
      counts as found if the top image shows the caption's colour and shape.
    """
    from ...scene_benchmark import scene_metrics

    model.eval()
    image_f = model.encode_image(data.images)  # (N, E)
    class_f = model.encode_text(caption_embeddings([prompt.format(label=label) for label in data.labels]))  # (L, E)
    text_f = model.encode_text(data.text_embeddings)  # (N, E)
    return scene_metrics(image_f, class_f, data.label_ids, image_f, text_f, data.label_ids,
                         direction="text_to_image")


def run_trial(loss: str, batch_size: int, seed: int, train_data: SceneData, eval_data: SceneData,
              examples: int = 32768, lr: float = 3e-3, warmup: float = 0.1,
              config: TinyDualConfig | None = None) -> dict:
    """Train a fresh :class:`TinyDualEncoder` with ``loss`` (``"clip"`` or ``"siglip"``, their
    published inits) on ``examples`` training examples in batches of ``batch_size`` (so
    ``examples // batch_size`` AdamW steps), then :func:`evaluate` it on ``eval_data``.

    The learning rate rises linearly from ``lr / warmup_steps`` to ``lr`` over the first
    ``warmup`` fraction of the steps, then stays at ``lr``: the same rule for every loss
    and batch size. Without the warm-up, the first full-size Adam steps of a large-batch
    run (few steps in all) can knock the sigmoid loss into a state it does not leave in
    time. Returns the metrics plus the run's settings, final loss and seconds."""
    from ...losses import clip_loss, siglip_loss
    from ...training import train

    loss_fn = {"clip": clip_loss, "siglip": siglip_loss}.get(loss)
    if loss_fn is None:
        raise ValueError(f"loss must be 'clip' or 'siglip', got {loss!r}")
    torch.manual_seed(seed)
    config = TinyDualConfig.for_loss(loss, **({} if config is None else {
        k: v for k, v in vars(config).items() if k not in ("init_logit_scale", "init_logit_bias")}))
    model = TinyDualEncoder(config)
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must be a fraction of the steps in [0, 1), got {warmup!r}")
    steps = max(1, examples // batch_size)
    warmup_steps = round(warmup * steps)
    start = time.perf_counter()
    history = train(model, scene_batches(train_data, batch_size, seed), loss_fn, steps=steps, lr=lr,
                    warmup=warmup_steps, seed=seed, device="cpu", progress=False)
    metrics = evaluate(model, eval_data)
    return {"loss": loss, "batch_size": batch_size, "seed": seed, "steps": steps, "lr": lr,
            "warmup_steps": warmup_steps, "losses": list(history.losses),
            "final_loss": history.final_loss, "seconds": time.perf_counter() - start, **metrics}
