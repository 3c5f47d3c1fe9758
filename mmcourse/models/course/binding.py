"""ImageBind-style binding: encoders for new modalities trained against *frozen image embeddings* only.

The image tower (here ``course/clip-shapes``) is the anchor. A new modality's encoder
learns, with InfoNCE (:func:`mmcourse.losses.clip_loss` through :func:`mmcourse.train`),
to land next to the embedding of the image it co-occurs with. It never sees text, yet
because the image space is already aligned with text, text retrieval *emerges*.

- :class:`SensorTower`: a small 1-D CNN for IMU-like traces;
- the audio side reuses ``course/clap-sounds``' :class:`~mmcourse.models.course.clap.AudioTower`
  (same size, so binding and text supervision compare fairly);
- :class:`ImageTower`: a trainable copy of a dual encoder's image side, for the ablation that
  unfreezes the anchor;
- :class:`BoundEncoder`: any tower + a learnable temperature, with the ``model(*batch)``
  contract of :func:`mmcourse.train`;
- :func:`bind`: train one tower against fixed anchor embeddings (images for binding, caption
  embeddings for the text-supervised baseline: the same function serves both).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...losses import clip_loss
from ...training import History, train


class SensorTower(nn.Module):
    """IMU-like trace ``(B, T)`` → unit-norm embedding ``(B, embed_dim)``."""

    def __init__(self, embed_dim: int = 384, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        layers, c_in = [], 1
        for c_out in channels:
            layers += [nn.Conv1d(c_in, c_out, 7, padding=3), nn.BatchNorm1d(c_out), nn.GELU(), nn.MaxPool1d(2)]
            c_in = c_out
        self.blocks = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * c_in, embed_dim)

    def forward(self, trace: torch.Tensor) -> torch.Tensor:
        x = self.blocks(trace.unsqueeze(1))  # (B, C, T')
        pooled = torch.cat([x.mean(-1), x.amax(-1)], dim=1)  # (B, 2C)
        return F.normalize(self.proj(pooled), dim=-1)  # (B, D)


def identity_head(dim: int) -> nn.Linear:
    """A ``D → D`` linear layer that starts as the identity: the "last layer" of the anchor tower,
    for the ablation that lets the anchor side learn too."""
    head = nn.Linear(dim, dim)
    with torch.no_grad():
        head.weight.copy_(torch.eye(dim))
        head.bias.zero_()
    return head


class ImageTower(nn.Module):
    """A trainable copy of a transformers dual encoder's image side: pixels ``(B, 3, H, W)`` → features ``(B, D)``.

    The same computation as ``get_image_features`` (vision tower's pooled output, then the visual
    projection), on copied weights, so training it never touches the original model. Used as the
    ``anchor_head`` of :func:`bind` to let binding move the image space (the unfrozen ablation)."""

    def __init__(self, dual_encoder: nn.Module):
        super().__init__()
        self.vision_model = copy.deepcopy(dual_encoder.vision_model)
        self.visual_projection = copy.deepcopy(dual_encoder.visual_projection)
        self.requires_grad_(True)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixel_values).pooler_output  # (B, W), or (B, W, 1, 1) from a CNN
        return self.visual_projection(pooled.flatten(1))  # (B, D)


class BoundEncoder(nn.Module):
    """``(inputs, anchor_features) → (features, anchor_features, logit_scale)`` for :func:`mmcourse.train`.

    With ``anchor_head`` the anchors pass through a trainable layer first (the unfrozen ablation)."""

    def __init__(self, tower: nn.Module, init_logit_scale: float = 20.0, anchor_head: nn.Module | None = None):
        super().__init__()
        self.tower = tower
        self.anchor_head = anchor_head
        self.log_logit_scale = nn.Parameter(torch.tensor(float(np.log(init_logit_scale))))

    def forward(self, inputs: torch.Tensor, anchor_features: torch.Tensor):
        scale = self.log_logit_scale.exp().clamp(max=100.0)
        if self.anchor_head is not None:
            anchor_features = self.anchor_head(anchor_features)  # (B, D)
        return self.tower(inputs), F.normalize(anchor_features, dim=-1), scale


@dataclass
class BindConfig:
    """How one tower is bound (defaults: a few seconds on 2 CPU cores)."""

    steps: int = 150  # AdamW steps
    batch_size: int = 24  # pairs per step
    lr: float = 3e-3  # peak learning rate (warm-up, cosine decay)
    warmup: int = 15
    seed: int = 0


def bind(tower: nn.Module, inputs: torch.Tensor, anchors: torch.Tensor, config: BindConfig = BindConfig(),
         groups: np.ndarray | None = None, progress: bool = True, desc: str = "binding",
         anchor_head: nn.Module | None = None) -> tuple[nn.Module, History]:
    """Train ``tower`` so that ``tower(inputs[i])`` lands next to the fixed ``anchors[i]``.

    ``inputs`` ``(N, ...)`` are the new modality's features, ``anchors`` ``(N, D)`` the frozen
    embeddings it co-occurs with. ``groups`` (one id per row, e.g. the scene label) makes each
    batch draw distinct groups, so no in-batch "negative" is secretly a positive.
    ``anchor_head`` (trained in place, e.g. :func:`identity_head`) unfreezes the anchor side.
    """
    if len(inputs) != len(anchors):
        raise ValueError(f"inputs and anchors must pair up row by row: {len(inputs)} vs {len(anchors)} rows")
    model = BoundEncoder(tower, anchor_head=anchor_head)
    rng = np.random.default_rng(config.seed)
    groups = np.arange(len(inputs)) if groups is None else np.asarray(groups)
    members = {g: np.flatnonzero(groups == g) for g in np.unique(groups)}
    keys = list(members)
    per_batch = min(config.batch_size, len(keys))

    def batch(step):
        chosen = rng.choice(len(keys), per_batch, replace=False)
        idx = torch.as_tensor([rng.choice(members[keys[c]]) for c in chosen])
        return inputs[idx], anchors[idx]

    history = train(model, batch, clip_loss, steps=config.steps, lr=config.lr, warmup=config.warmup,
                    schedule="cosine", seed=config.seed, progress=progress, desc=desc, device="cpu")
    return model.tower.eval(), history


@torch.no_grad()
def embed(tower: nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Embeddings ``(N, D)`` of a trained tower, in eval mode, on the CPU."""
    tower.eval()
    return torch.cat([tower(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)])
