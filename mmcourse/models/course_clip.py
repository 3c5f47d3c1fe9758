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
           "train_course_clip", "load", "load_folder", "mean_pool"]

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
# Attribute-only captions (no paraphrase words): a caption that names one attribute.
COLOR_TEMPLATES: tuple[str, ...] = (
    "something {color}",
    "a {color} thing",
    "a photo of something {color}.",
    "a {color} object",
    "an object coloured {color}",
)
SHAPE_TEMPLATES: tuple[str, ...] = (
    "a {shape}",
    "a photo of a {shape}.",
    "a drawing of a {shape}.",
    "the object is a {shape}",
    "a {shape} of some colour",
)


@dataclass
class CourseClipConfig:
    """Everything that determines the checkpoint (its hash names the cache folder)."""

    image_size: int = 64  # scenes are drawn at 64×64 pixels
    vision_tower: str = "vit"  # "vit" (CLIP's tiny ViT) or "convnext" (small CNN; learned slower in our runs)
    convnext_widths: tuple = (32, 64, 128)  # channels of the ConvNeXt stages (stem: 4×4 patches)
    convnext_depths: tuple = (1, 1, 1)  # blocks per ConvNeXt stage
    convnext_layer_scale: float = 1e-6  # ConvNeXt's residual layer-scale init (1e-6 = library default)
    patch_size: int = 8  # ViT only: 8×8 patches → 64 tokens
    width: int = 64  # ViT only: hidden size
    layers: int = 2  # ViT only: transformer blocks
    heads: int = 4  # ViT only: attention heads
    mlp_ratio: int = 2  # ViT only: MLP hidden size = mlp_ratio × width
    projection_dim: int = 128  # joint space size
    train_text_projection: bool = True  # False: identity text projection (image tower must learn raw MiniLM space; paraphrases then fail)
    images_per_combo: int = 120  # training pool: images drawn per training colour–shape combination
    augment: bool = False  # random flips and quarter turns of training images (slowed learning in our runs)
    repeats_per_step: int = 1  # each step holds every training combo this many times (one caption each)
    steps: int = 900  # AdamW steps
    lr: float = 3e-3  # peak learning rate
    warmup: int = 50  # linear warm-up steps, then cosine decay
    weight_decay: float = 0.1  # AdamW weight decay (keeps the text projection from overfitting 18 combos)
    logit_scale_init: float = 50.0  # initial temperature multiplier (frozen-text cosines are close together)
    max_logit_scale: float = 100.0  # clamp of the learned temperature multiplier, as in CLIP
    gray_shapes: bool = False  # shape-only groups see their images in grayscale (shape without colour)
    text_projection_init: str = "random"  # "random" (library init) or "pca": the training captions' principal directions
    attribute_groups: int = 0  # per step, this many extra colour-only (6) and shape-only (4) mini-batches
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

    def get_image_features(self, pixel_values=None, **kwargs):
        out = self.vision_model(pixel_values=pixel_values, return_dict=True, **kwargs)
        pooled = out.pooler_output.flatten(1)  # (B, C): a CNN pools to (B, C, 1, 1)
        out.pooler_output = self.visual_projection(pooled)  # (B, D)
        return out


# ----------------------------------------------------------------------------- building
def _processor(tokenizer, image_size: int):
    from transformers import CLIPImageProcessor, VisionTextDualEncoderProcessor

    image_processor = CLIPImageProcessor(  # any image → shortest side resized, centre crop, normalised
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    return VisionTextDualEncoderProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_model(config: CourseClipConfig):
    """Untrained model and processor: tiny ViT (random) + frozen all-MiniLM-L6-v2."""
    from transformers import (CLIPVisionConfig, CLIPVisionModel, ConvNextConfig, ConvNextModel, ResNetConfig, ResNetModel,
                              VisionTextDualEncoderConfig)

    from .minilm import load_minilm

    tokenizer, text_model = load_minilm("cpu")
    torch.manual_seed(config.seed)
    if config.vision_tower == "resnet":
        widths = list(config.convnext_widths)
        vision_config = ResNetConfig(num_channels=3, embedding_size=widths[0], hidden_sizes=widths,
                                     depths=list(config.convnext_depths), layer_type="basic",
                                     downsample_in_first_stage=False)
        vision_config.hidden_size = widths[-1]  # the pooled feature size the visual projection reads
        vision_model = ResNetModel(vision_config)
    elif config.vision_tower == "convnext":
        widths = list(config.convnext_widths)
        # hidden_size: the pooled feature size the dual encoder's visual projection reads
        vision_config = ConvNextConfig(num_channels=3, patch_size=4, hidden_sizes=widths,
                                       depths=list(config.convnext_depths), num_stages=len(widths),
                                       image_size=config.image_size, hidden_size=widths[-1],
                                       layer_scale_init_value=config.convnext_layer_scale)
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
        vision_config, text_model.config, projection_dim=config.projection_dim,
        logit_scale_init_value=float(np.log(config.logit_scale_init)))
    dual_config.text_pooling = "mean"  # tells load_model to use CourseDualEncoder
    model = CourseDualEncoder(dual_config, vision_model=vision_model, text_model=text_model)
    model.text_model.requires_grad_(False)
    text_dim = text_model.config.hidden_size
    if not config.train_text_projection and config.text_projection_init == "random":
        if config.projection_dim != text_dim:
            raise ValueError(f"a frozen identity text projection needs projection_dim == {text_dim}")
        with torch.no_grad():
            model.text_projection.weight.copy_(torch.eye(text_dim))
        model.text_projection.requires_grad_(False)
    return model, _processor(tokenizer, config.image_size)


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


def _training_pool(config: CourseClipConfig, processor=None):
    """Training images (drawn from the training split only), balanced per combination.

    Returns ``(pixels, combo_ids, combos)``: ``pixels`` is ``(18·n, 3, S, S)`` as the model's
    own processor prepares them (or ``(18·n, H, W, 3)`` uint8 when ``processor`` is None).
    """
    from ..data import shapes

    combos = list(shapes.TRAIN_COMBOS)
    scenes = shapes.make_scenes(len(combos) * config.images_per_combo * 2, "train", seed=config.seed)
    by_combo: dict[int, list] = {i: [] for i in range(len(combos))}
    for s in scenes:
        group = by_combo[combos.index((s.color, s.shape))]
        if len(group) < config.images_per_combo:
            group.append(s.image)
    images = [img for i in range(len(combos)) for img in by_combo[i]]
    combo_ids = torch.tensor([i for i in range(len(combos)) for _ in by_combo[i]])
    if processor is None:
        return torch.from_numpy(np.stack([np.array(img) for img in images])), combo_ids, combos
    pixels = torch.cat([processor(images=images[i:i + 512], return_tensors="pt")["pixel_values"]
                        for i in range(0, len(images), 512)])  # (N, 3, S, S)
    return pixels, combo_ids, combos


def _pooled_features(captions: list[str], tokenizer, text_model) -> torch.Tensor:
    """Frozen pooled MiniLM features of ``captions``, ``(len(captions), 384)``."""
    tokens = tokenizer(captions, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = text_model(**tokens, return_dict=True)
    return mean_pool(out.last_hidden_state, tokens["attention_mask"])  # (C, 384)


def _caption_features(combos, tokenizer, text_model) -> torch.Tensor:
    """Frozen pooled MiniLM features of every training caption, ``(len(combos)·T, 384)``."""
    captions = [t.format(color=c, shape=s) for c, s in combos for t in TRAIN_TEMPLATES]
    return _pooled_features(captions, tokenizer, text_model)


def _grayscale(pixels: torch.Tensor, processor) -> torch.Tensor:
    """Normalised pixels ``(B, 3, S, S)`` → the same images in grayscale (luma), normalised again."""
    mean = torch.tensor(processor.image_processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_processor.image_std).view(1, 3, 1, 1)
    rgb = pixels * std + mean  # (B, 3, S, S) in [0, 1]
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)  # (B, 1, S, S)
    return (luma.expand_as(rgb) - mean) / std  # (B, 3, S, S)


def grouped_clip_loss(sizes):
    """``clip_loss`` summed over consecutive groups of a batch (each group its own CLIP batch)."""
    from ..losses import clip_loss

    def loss(image_features, text_features, logit_scale, logit_bias=None):
        total, start = 0.0, 0
        for n in sizes:
            total = total + clip_loss(image_features[start:start + n], text_features[start:start + n],
                                      logit_scale, logit_bias)
            start += n
        return total

    return loss


def train_course_clip(config: CourseClipConfig | None = None, progress: bool = True, device: str = "cpu"):
    """Train ``course/clip-shapes`` from scratch; returns ``(model, processor, history)``.

    Each step holds every training combination once per ``repeats_per_step`` (so no two
    images in a batch are negatives of each other by accident... unless repeats > 1),
    each image with a random caption template; then ``attribute_groups`` colour-only
    groups (one image per colour, "something red") and shape-only groups (one image per
    shape, "a star"), each group a CLIP batch of its own.
    """
    from ..data import shapes
    from ..losses import clip_loss
    from ..training import train

    config = config or CourseClipConfig()
    model, processor = build_model(config)
    pixels, combo_ids, combos = _training_pool(config, processor)
    tok, text_model = processor.tokenizer, model.text_model
    colors, shape_names = list(shapes.COLORS), list(shapes.SHAPES)
    caption_features = torch.cat([
        _caption_features(combos, tok, text_model),
        _pooled_features([t.format(color=c) for c in colors for t in COLOR_TEMPLATES], tok, text_model),
        _pooled_features([t.format(shape=s) for s in shape_names for t in SHAPE_TEMPLATES], tok, text_model),
    ])  # (18·T + 6·Tc + 4·Ts, 384)
    color_offset = len(combos) * len(TRAIN_TEMPLATES)
    shape_offset = color_offset + len(colors) * len(COLOR_TEMPLATES)
    if config.text_projection_init == "combo_pca":
        # rows = the principal directions of the per-combination mean captions: what tells combinations
        # apart, not how a caption is worded
        means = caption_features[:color_offset].view(len(combos), len(TRAIN_TEMPLATES), -1).mean(1)  # (18, 384)
        _, _, vh = torch.linalg.svd(means, full_matrices=False)  # (18, 384)
        with torch.no_grad():
            model.text_projection.weight.copy_(vh[:config.projection_dim])  # (D, 384)
        model.text_projection.requires_grad_(config.train_text_projection)
    if config.text_projection_init == "pca":
        # rows = the top principal directions of the (centred) training captions: the projection keeps
        # the few directions in which the captions differ and drops the rest of MiniLM's 384
        captions = caption_features[:color_offset]  # (18·T, 384)
        _, _, vh = torch.linalg.svd(captions - captions.mean(0), full_matrices=False)  # (18·T, 384)
        with torch.no_grad():
            model.text_projection.weight.copy_(vh[:config.projection_dim])  # (D, 384)
        model.text_projection.requires_grad_(config.train_text_projection)
    n_templates = len(TRAIN_TEMPLATES)
    members = [torch.nonzero(combo_ids == i).flatten() for i in range(len(combos))]
    by_color = [[i for i, (c, _) in enumerate(combos) if c == color] for color in colors]
    by_shape = [[i for i, (_, s) in enumerate(combos) if s == shape] for shape in shape_names]
    gen = torch.Generator().manual_seed(config.seed)

    def pick(combo: int) -> int:
        idx = members[combo]
        return idx[torch.randint(len(idx), (1,), generator=gen)].item()

    def choice(seq):
        return seq[int(torch.randint(len(seq), (1,), generator=gen))]

    def batch(step: int):
        picks, captions = [], []
        for _ in range(config.repeats_per_step):
            for i in range(len(combos)):
                picks.append(pick(i))
                captions.append(i * n_templates + int(torch.randint(n_templates, (1,), generator=gen)))
        for _ in range(config.attribute_groups):
            for k, group in enumerate(by_color):
                picks.append(pick(choice(group)))
                captions.append(color_offset + k * len(COLOR_TEMPLATES) + choice(range(len(COLOR_TEMPLATES))))
            for k, group in enumerate(by_shape):
                picks.append(pick(choice(group)))
                captions.append(shape_offset + k * len(SHAPE_TEMPLATES) + choice(range(len(SHAPE_TEMPLATES))))
        x = pixels[picks]  # (B, 3, S, S)
        if config.gray_shapes and config.attribute_groups:
            is_shape = torch.tensor([c >= shape_offset for c in captions])  # (B,)
            x = torch.where(is_shape[:, None, None, None], _grayscale(x, processor), x)  # (B, 3, S, S)
        if config.augment:
            turns = torch.randint(4, (len(picks),), generator=gen)
            flips = torch.randint(2, (len(picks),), generator=gen)
            x = torch.stack([torch.rot90(img.flip(2) if f else img, int(k), dims=(1, 2))
                             for img, k, f in zip(x, turns, flips)])  # random flip and quarter turn
        return x, torch.tensor(captions)

    sizes = [len(combos)] * config.repeats_per_step + [len(colors), len(shape_names)] * config.attribute_groups
    loss_fn = clip_loss if len(sizes) == 1 else grouped_clip_loss(sizes)
    step_model = _LockedTextStep(model, caption_features, config.max_logit_scale)
    history = train(step_model, batch, loss_fn, steps=config.steps, lr=config.lr,
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
