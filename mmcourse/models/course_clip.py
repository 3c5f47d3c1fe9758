"""``course/clip-shapes``: the course's own CLIP, trained on first use, offline, in under a minute.

Recipe (LiT-style, "locked text"): the text tower is the real pretrained
all-MiniLM-L6-v2, frozen; the vision tower is a tiny ViT trained from scratch on
the scenes' *training* colour–shape combinations to land next to the sentence
embeddings of their captions. Both live in one transformers
``VisionTextDualEncoderModel`` (saved with ``save_pretrained``), so the checkpoint loads
like any hub dual encoder.

One change to the library class: all-MiniLM-L6-v2 was trained to be read by *mean
pooling* over tokens (sentence-transformers' pipeline), while ``VisionTextDualEncoderModel``
reads BERT's ``pooler_output`` (the [CLS] token through an untrained-for-this dense layer).
:class:`CourseDualEncoder` overrides ``get_text_features`` to mean-pool and normalise,
exactly as sentence-transformers does (checked in the tests). Its config carries
``text_pooling="mean"`` so :func:`mmcourse.load_model` picks this class for the folder.

Because the text tower is frozen and the training captions are a small finite set,
their pooled features are computed once before training; a training step only runs
the vision tower and the two projections.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import VisionTextDualEncoderModel

from .embedder import features_from_output

__all__ = ["NAME", "CourseClipConfig", "CourseDualEncoder", "TRAIN_TEMPLATES", "build_model",
           "train_course_clip", "load", "mean_pool"]

NAME = "course/clip-shapes"

# Training captions: the scenes' templates plus a few more word orders (no paraphrase words).
TRAIN_TEMPLATES: tuple[str, ...] = (
    "a photo of a {color} {shape}.",
    "a {color} {shape}",
    "a drawing of a {color} {shape}.",
    "a picture showing a {color} {shape}.",
    "a simple {color} {shape} on a plain background",
    "{color} {shape}",
    "an image of a {color} {shape}",
    "the {shape} is {color}",
    "a {shape} coloured {color}",
    "there is a {color} {shape} in the picture",
)


@dataclass
class CourseClipConfig:
    """Everything that determines the checkpoint (its hash names the cache folder)."""

    image_size: int = 64  # scenes are drawn at 64×64 pixels
    vision_tower: str = "convnext"  # "convnext" (small CNN: learns shapes fast) or "vit"
    convnext_widths: tuple = (32, 64, 128)  # channels of the ConvNeXt stages (stem: 4×4 patches)
    convnext_depths: tuple = (1, 1, 1)  # blocks per ConvNeXt stage
    patch_size: int = 8  # ViT only: 8×8 patches → 64 tokens
    width: int = 64  # ViT only: hidden size
    layers: int = 2  # ViT only: transformer blocks
    heads: int = 4  # ViT only: attention heads
    mlp_ratio: int = 2  # ViT only: MLP hidden size = mlp_ratio × width
    projection_dim: int = 384  # joint space size (= MiniLM's sentence embedding size)
    train_text_projection: bool = False  # False: text projection stays the identity (image tower learns MiniLM's space)
    images_per_combo: int = 120  # training pool: images drawn per training colour–shape combination
    repeats_per_step: int = 1  # each step holds every training combo this many times (one caption each)
    steps: int = 700  # AdamW steps
    lr: float = 3e-3  # peak learning rate
    warmup: int = 50  # linear warm-up steps, then cosine decay
    weight_decay: float = 0.05  # AdamW weight decay
    max_logit_scale: float = 100.0  # clamp of the learned temperature multiplier, as in CLIP
    seed: int = 0  # everything (scenes, init, batches) follows from it

    def version(self) -> str:
        """Short hash of the config: a changed recipe gets a fresh cache folder."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"v1-{digest}"


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over real tokens (padding excluded), then L2-normalised: sentence-transformers' reading."""
    if attention_mask is None:
        pooled = last_hidden_state.mean(1)  # (B, H)
    else:
        mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
        pooled = (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
    return F.normalize(pooled, dim=-1)  # (B, H)


class CourseDualEncoder(VisionTextDualEncoderModel):
    """``VisionTextDualEncoderModel`` whose text features mean-pool the tokens (see module doc)."""

    def get_text_features(self, input_ids=None, attention_mask=None, position_ids=None, token_type_ids=None,
                          **kwargs) -> torch.Tensor:
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                              token_type_ids=token_type_ids, return_dict=True)
        pooled = mean_pool(out.last_hidden_state, attention_mask)  # (B, 384)
        return self.text_projection(pooled)  # (B, D)


# ----------------------------------------------------------------------------- building
def _processor(tokenizer, image_size: int):
    from transformers import CLIPImageProcessor, VisionTextDualEncoderProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    return VisionTextDualEncoderProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_model(config: CourseClipConfig):
    """Untrained model and processor: tiny ViT (random) + frozen all-MiniLM-L6-v2."""
    from transformers import (CLIPVisionConfig, CLIPVisionModel, ConvNextConfig, ConvNextModel,
                              VisionTextDualEncoderConfig)

    from .minilm import load_minilm

    tokenizer, text_model = load_minilm("cpu")
    torch.manual_seed(config.seed)
    if config.vision_tower == "convnext":
        widths = list(config.convnext_widths)
        # hidden_size: the pooled feature size the dual encoder's visual projection reads
        vision_config = ConvNextConfig(num_channels=3, patch_size=4, hidden_sizes=widths,
                                       depths=list(config.convnext_depths), num_stages=len(widths),
                                       image_size=config.image_size, hidden_size=widths[-1])
        vision_model = ConvNextModel(vision_config)
    elif config.vision_tower == "vit":
        vision_config = CLIPVisionConfig(
            hidden_size=config.width, intermediate_size=config.mlp_ratio * config.width,
            num_hidden_layers=config.layers, num_attention_heads=config.heads,
            image_size=config.image_size, patch_size=config.patch_size)
        vision_model = CLIPVisionModel(vision_config)
    else:
        raise ValueError(f"vision_tower must be 'convnext' or 'vit', got {config.vision_tower!r}")
    dual_config = VisionTextDualEncoderConfig.from_vision_text_configs(
        vision_config, text_model.config, projection_dim=config.projection_dim)
    dual_config.text_pooling = "mean"  # tells load_model to use CourseDualEncoder
    model = CourseDualEncoder(dual_config, vision_model=vision_model, text_model=text_model)
    model.text_model.requires_grad_(False)
    text_dim = text_model.config.hidden_size
    if not config.train_text_projection:
        if config.projection_dim != text_dim:
            raise ValueError(f"a frozen identity text projection needs projection_dim == {text_dim}")
        with torch.no_grad():
            model.text_projection.weight.copy_(torch.eye(text_dim))
        model.text_projection.requires_grad_(False)
    return model, _processor(tokenizer, config.image_size)


def pixels_from_uint8(images: torch.Tensor, processor) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 at the model's size → normalised ``(B, 3, H, W)``, as the processor does."""
    ip = processor.image_processor
    mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
    x = images.permute(0, 3, 1, 2).float() * ip.rescale_factor  # (B, 3, H, W) in [0, 1]
    return (x - mean) / std  # (B, 3, H, W)


class _LockedTextStep(torch.nn.Module):
    """Training view of the model: pixels and caption ids → (image feats, text feats, scale)."""

    def __init__(self, model: CourseDualEncoder, caption_features: torch.Tensor, max_logit_scale: float):
        super().__init__()
        self.model = model
        self.register_buffer("caption_features", caption_features)  # (C, 384) pooled, frozen
        self.max_logit_scale = max_logit_scale

    def forward(self, pixel_values: torch.Tensor, caption_ids: torch.Tensor):
        image = features_from_output(self.model.get_image_features(pixel_values=pixel_values))  # (B, D)
        text = self.model.text_projection(self.caption_features[caption_ids])  # (B, D)
        scale = self.model.logit_scale.exp().clamp(max=self.max_logit_scale)
        return F.normalize(image, dim=-1), F.normalize(text, dim=-1), scale


def _training_pool(config: CourseClipConfig):
    """Images ``(18·n, 64, 64, 3)`` uint8 and combo index per image, drawn from the training split."""
    from ..data import shapes

    combos = list(shapes.TRAIN_COMBOS)
    scenes = shapes.make_scenes(len(combos) * config.images_per_combo * 2, "train",
                                seed=config.seed, size=config.image_size)
    by_combo: dict[int, list[np.ndarray]] = {i: [] for i in range(len(combos))}
    for s in scenes:
        group = by_combo[combos.index((s.color, s.shape))]
        if len(group) < config.images_per_combo:
            group.append(np.asarray(s.image))
    images = [img for i in range(len(combos)) for img in by_combo[i]]
    combo_ids = [i for i in range(len(combos)) for _ in by_combo[i]]
    return torch.from_numpy(np.stack(images)), torch.tensor(combo_ids), combos


def _caption_features(combos, tokenizer, text_model) -> torch.Tensor:
    """Frozen pooled MiniLM features of every training caption, ``(len(combos)·T, 384)``."""
    captions = [t.format(color=c, shape=s) for c, s in combos for t in TRAIN_TEMPLATES]
    tokens = tokenizer(captions, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = text_model(**tokens, return_dict=True)
    return mean_pool(out.last_hidden_state, tokens["attention_mask"])  # (C, 384)


def train_course_clip(config: CourseClipConfig | None = None, progress: bool = True, device: str = "cpu"):
    """Train ``course/clip-shapes`` from scratch; returns ``(model, processor, history)``.

    Each step holds every training combination once per ``repeats_per_step`` (so no two
    images in a batch are negatives of each other by accident... unless repeats > 1),
    each image with a random caption template and a random flip / quarter turn.
    """
    from ..losses import clip_loss
    from ..train import train

    config = config or CourseClipConfig()
    model, processor = build_model(config)
    images, combo_ids, combos = _training_pool(config)
    caption_features = _caption_features(combos, processor.tokenizer, model.text_model)
    n_templates = len(TRAIN_TEMPLATES)
    members = [torch.nonzero(combo_ids == i).flatten() for i in range(len(combos))]
    gen = torch.Generator().manual_seed(config.seed)

    def batch(step: int):
        picks, captions = [], []
        for _ in range(config.repeats_per_step):
            for i, idx in enumerate(members):
                picks.append(idx[torch.randint(len(idx), (1,), generator=gen)].item())
                captions.append(i * n_templates + int(torch.randint(n_templates, (1,), generator=gen)))
        x = images[picks]  # (B, H, W, 3) uint8
        turns = torch.randint(4, (len(picks),), generator=gen)
        flips = torch.randint(2, (len(picks),), generator=gen)
        x = torch.stack([torch.rot90(img.flip(1) if f else img, int(k), dims=(0, 1))
                         for img, k, f in zip(x, turns, flips)])
        return pixels_from_uint8(x, processor), torch.tensor(captions)

    step_model = _LockedTextStep(model, caption_features, config.max_logit_scale)
    history = train(step_model, batch, clip_loss, steps=config.steps, lr=config.lr,
                    weight_decay=config.weight_decay, warmup=config.warmup, schedule="cosine",
                    device=device, seed=config.seed, progress=progress, desc=f"training {NAME}")
    model.to("cpu").eval()
    return model, processor, history


# ----------------------------------------------------------------------------- loading
def load_folder(folder: str | pathlib.Path, device: str | None = None, name: str = NAME):
    """Load a saved course dual encoder (this class or any ``text_pooling="mean"`` folder)."""
    from transformers import AutoProcessor

    from ..env import get_device
    from .hf_dual import HFDualEncoder

    model = CourseDualEncoder.from_pretrained(str(folder))
    model.requires_grad_(False)
    processor = AutoProcessor.from_pretrained(str(folder))
    return HFDualEncoder(name, model, processor, device or get_device())


def load(device: str | None = None, config: CourseClipConfig | None = None, progress: bool = True):
    """``course/clip-shapes`` as an Embedder: from the verified cache, or trained now and cached."""
    from .checkpoints import load_course_checkpoint

    config = config or CourseClipConfig()

    def build(folder: pathlib.Path) -> None:
        model, processor, history = train_course_clip(config, progress=progress)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        (folder / "training.json").write_text(json.dumps(
            {"config": asdict(config), "losses": history.losses, "seconds": history.seconds}))

    return load_course_checkpoint(NAME, config.version(), build, lambda folder: load_folder(folder, device))
