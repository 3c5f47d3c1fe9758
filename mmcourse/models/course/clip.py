"""``course/clip-shapes``: the course's own CLIP, trained on first use, offline, in about a minute.

Recipe (LiT-style, "locked text"): the text tower is the real pretrained
all-MiniLM-L6-v2, frozen; the vision tower is a small ResNet trained from scratch on
the scenes' *training* colour–shape combinations with plain CLIP loss, to land next to
the sentence embeddings of their captions. Both live in one transformers
``VisionTextDualEncoderModel`` (saved with ``save_pretrained``), so the checkpoint loads
like any hub dual encoder.

Two changes to the library class (:class:`CourseDualEncoder`):

- all-MiniLM-L6-v2 was trained to be read by *mean pooling* over tokens
  (sentence-transformers' pipeline), while ``VisionTextDualEncoderModel`` reads BERT's
  ``pooler_output`` (the [CLS] token through an untrained-for-this dense layer); the class
  mean-pools and normalises, exactly as sentence-transformers does (checked in the tests).
  Its config carries ``text_pooling="mean"`` so :func:`mmcourse.load_model` picks it;
- a CNN pools to ``(B, C, 1, 1)``; image features are flattened to ``(B, C)`` before the
  visual projection.

The text projection (384 → 32) is not learned: it is fixed to the 32 principal directions
of the centred training captions (PCA), the directions in which captions of different
combinations differ. A learned projection fits the 18 training combinations and maps every
other direction of MiniLM's space (where "crimson" or "disc" differ from "red" or "circle")
arbitrarily; the fixed one keeps MiniLM's own geometry there, so held-out combinations and
paraphrases land where MiniLM puts them.

What we measured (held-out-combination zero-shot accuracy over all 24 labels, templates /
paraphrases, ``tests/test_course_clip.py``'s evaluation, seed 0 unless said, one run each):

- v1 (tiny ViT, learned random-init projection 384→128, 900 steps): 0.63–0.73 / 0.43–0.53;
  nearly every error put a held-out image on a *seen* combination of the same colour, and
  a shape probe fitted on seen combinations scored below chance on held-out ones (shape
  features did not transfer across colours); 2500 steps (too slow) reached 0.86 / 0.80;
- ResNet instead of the ViT, 600 steps: 0.81 / 0.55 (shapes transfer across colours);
  + projection initialised from PCA and learned: 0.85 / 0.79 (seed 1: 0.79 / 0.62);
- PCA projection frozen, 900 steps: 128 dims 1.00 / 0.79; 32 dims of the *centred*
  captions 0.98 / 0.92 (seed 1: 0.98 / 0.73; 1200 steps, seed 1: 0.98 / 0.78);
  16 dims, or the 18 directions of the per-combination mean captions: worse paraphrases;
- this recipe (32 dims, 1200 steps, one thread): 0.99 / 0.81. Paraphrase accuracy varies
  with the seed by about ±0.1 (it depends on where MiniLM puts the paraphrases); the
  templates' does not;
- did not help: attribute-only captions ("something red", "a star") as extra CLIP
  batches, with or without grayscale images for the shape captions; flips and quarter
  turns; 32×32 inputs; more images per combination (500); weight decay 1.0; lr 6e-3.

Because the text tower is frozen and the training captions are a small finite set,
their pooled features are computed once before training; a training step only runs
the vision tower and the visual projection.
"""
from __future__ import annotations

import pathlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import VisionTextDualEncoderModel

from ..embedder import features_from_output

__all__ = ["NAME", "Config", "CourseDualEncoder", "TRAIN_TEMPLATES", "build_model", "caption_pca",
           "train", "load", "load_folder", "mean_pool"]

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
class Config:
    """Everything that determines the checkpoint (its hash names the cache folder)."""

    image_size: int = 64  # scenes are drawn at 64×64 pixels (32×32 learned shapes much slower)
    vision_tower: str = "resnet"  # "resnet" (small CNN), "vit" (CLIP's tiny ViT: shapes did not transfer
    #                               across colours in 900 steps) or "convnext" (slower per step on CPU)
    cnn_widths: tuple = (32, 64, 128)  # ResNet / ConvNeXt only: channels of the stages (stem = first width)
    cnn_depths: tuple = (1, 1, 1)  # ResNet / ConvNeXt only: blocks per stage
    convnext_layer_scale: float = 1e-6  # ConvNeXt only: residual layer-scale init (1e-6 = library default)
    patch_size: int = 8  # ViT only: 8×8 patches → 64 tokens
    width: int = 64  # ViT only: hidden size
    layers: int = 2  # ViT only: transformer blocks
    heads: int = 4  # ViT only: attention heads
    mlp_ratio: int = 2  # ViT only: MLP hidden size = mlp_ratio × width
    projection_dim: int = 32  # joint space size (16: paraphrases worse; 128: paraphrases worse)
    text_projection: str = "pca"  # "pca": fixed to the centred training captions' principal directions;
    #                                "learned": library init, trained (fits 18 combos, paraphrases fail)
    images_per_combo: int = 120  # training pool: images drawn per training colour–shape combination (500: no better)
    augment: bool = False  # random flips and quarter turns of training images (hurt in our runs)
    steps: int = 1200  # AdamW steps (900: held-out paraphrases less reliable across seeds)
    lr: float = 3e-3  # peak learning rate (6e-3: worse)
    warmup: int = 50  # linear warm-up steps, then cosine decay
    weight_decay: float = 0.1  # AdamW weight decay (1.0 underfits)
    logit_scale_init: float = 50.0  # initial temperature multiplier (frozen-text cosines are close together)
    max_logit_scale: float = 100.0  # clamp of the learned temperature multiplier, as in CLIP
    train_threads: int = 1  # CPU threads while training: batches of 18 small images gain nothing from more, a
    #                         busy machine makes 2 threads several times slower, and a fixed count gives
    #                         the same numbers on every machine
    seed: int = 0  # everything (scenes, init, batches) follows from it

    def version(self) -> str:
        """Short hash of the config: a changed recipe gets a fresh cache folder."""
        from .checkpoints import config_digest

        return f"v2-{config_digest(self)}"


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


def build_model(config: Config):
    """Untrained model and processor: small CNN or ViT (random) + frozen all-MiniLM-L6-v2.

    The text projection is still the library's random init here; :func:`train`
    sets it (``text_projection="pca"``) from the training captions.
    """
    from transformers import (CLIPVisionConfig, CLIPVisionModel, ConvNextConfig, ConvNextModel, ResNetConfig,
                              ResNetModel, VisionTextDualEncoderConfig)

    from ..hub.minilm import load_minilm

    tokenizer, text_model = load_minilm("cpu")
    torch.manual_seed(config.seed)
    if config.vision_tower == "resnet":
        widths = list(config.cnn_widths)
        vision_config = ResNetConfig(num_channels=3, embedding_size=widths[0], hidden_sizes=widths,
                                     depths=list(config.cnn_depths), layer_type="basic",
                                     downsample_in_first_stage=False)
        vision_config.hidden_size = widths[-1]  # the pooled feature size the visual projection reads
        vision_model = ResNetModel(vision_config)
    elif config.vision_tower == "convnext":
        widths = list(config.cnn_widths)
        # hidden_size: the pooled feature size the dual encoder's visual projection reads
        vision_config = ConvNextConfig(num_channels=3, patch_size=4, hidden_sizes=widths,
                                       depths=list(config.cnn_depths), num_stages=len(widths),
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
        raise ValueError(f"vision_tower must be 'resnet', 'convnext' or 'vit', got {config.vision_tower!r}")
    if config.text_projection not in ("pca", "learned"):
        raise ValueError(f"text_projection must be 'pca' or 'learned', got {config.text_projection!r}")
    dual_config = VisionTextDualEncoderConfig.from_vision_text_configs(
        vision_config, text_model.config, projection_dim=config.projection_dim,
        logit_scale_init_value=float(np.log(config.logit_scale_init)))
    dual_config.text_pooling = "mean"  # tells load_model to use CourseDualEncoder
    model = CourseDualEncoder(dual_config, vision_model=vision_model, text_model=text_model)
    model.text_model.requires_grad_(False)
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


def _training_pool(config: Config, processor=None):
    """Training images (drawn from the training split only), balanced per combination.

    Returns ``(pixels, combo_ids, combos)``: ``pixels`` is ``(18·n, 3, S, S)`` as the model's
    own processor prepares them (or ``(18·n, H, W, 3)`` uint8 when ``processor`` is None).
    """
    from ...data import shapes

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


def _caption_features(combos, tokenizer, text_model) -> torch.Tensor:
    """Frozen pooled MiniLM features of every training caption, ``(len(combos)·T, 384)``."""
    captions = [t.format(color=c, shape=s) for c, s in combos for t in TRAIN_TEMPLATES]
    tokens = tokenizer(captions, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        out = text_model(**tokens, return_dict=True)
    return mean_pool(out.last_hidden_state, tokens["attention_mask"])  # (C, 384)


def caption_pca(caption_features: torch.Tensor, dim: int) -> torch.Tensor:
    """The ``dim`` principal directions of the centred caption features, ``(dim, 384)`` orthonormal rows."""
    centred = caption_features - caption_features.mean(0)  # (C, 384)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)  # (min(C, 384), 384)
    if dim > vh.shape[0]:
        raise ValueError(f"projection_dim={dim} exceeds the {vh.shape[0]} directions the captions span")
    return vh[:dim]  # (dim, 384)


def train(config: Config | None = None, progress: bool = True, device: str = "cpu"):
    """Train ``course/clip-shapes`` from scratch; returns ``(model, processor, history)``.

    Each step holds every training combination once (so no two images in a batch are
    negatives of each other by accident), each image with a random caption template.
    With ``text_projection="pca"`` the text projection is set to :func:`caption_pca` of
    the training captions and frozen: only the vision tower, the visual projection and
    the temperature learn.
    """
    from ... import training
    from ...losses import clip_loss

    config = config or Config()
    model, processor = build_model(config)
    pixels, combo_ids, combos = _training_pool(config, processor)
    caption_features = _caption_features(combos, processor.tokenizer, model.text_model)  # (18·T, 384)
    if config.text_projection == "pca":
        with torch.no_grad():
            model.text_projection.weight.copy_(caption_pca(caption_features, config.projection_dim))  # (D, 384)
        model.text_projection.requires_grad_(False)
    n_templates = len(TRAIN_TEMPLATES)
    members = [torch.nonzero(combo_ids == i).flatten() for i in range(len(combos))]
    gen = torch.Generator().manual_seed(config.seed)

    def batch(step: int):
        picks, captions = [], []
        for i, idx in enumerate(members):  # one image of every training combination, a random caption each
            picks.append(idx[torch.randint(len(idx), (1,), generator=gen)].item())
            captions.append(i * n_templates + int(torch.randint(n_templates, (1,), generator=gen)))
        x = pixels[picks]  # (18, 3, S, S)
        if config.augment:
            turns = torch.randint(4, (len(picks),), generator=gen)
            flips = torch.randint(2, (len(picks),), generator=gen)
            x = torch.stack([torch.rot90(img.flip(2) if f else img, int(k), dims=(1, 2))
                             for img, k, f in zip(x, turns, flips)])  # random flip and quarter turn
        return x, torch.tensor(captions)

    step_model = _LockedTextStep(model, caption_features, config.max_logit_scale)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.train_threads)
    try:
        history = training.train(step_model, batch, clip_loss, steps=config.steps, lr=config.lr,
                        weight_decay=config.weight_decay, warmup=config.warmup, schedule="cosine",
                        device=device, seed=config.seed, progress=progress, desc=f"training {NAME}")
    finally:
        torch.set_num_threads(threads)
    model.to("cpu").eval()
    return model, processor, history


# ----------------------------------------------------------------------------- loading
def load_folder(folder: str | pathlib.Path, device: str | None = None, name: str = NAME):
    """A saved course dual encoder (this class, or any ``text_pooling="mean"`` folder) as an Embedder."""
    from transformers import AutoProcessor

    from ...env import get_device
    from ..hub.hf_dual import HFDualEncoder

    model = CourseDualEncoder.from_pretrained(str(folder))
    model.requires_grad_(False)
    processor = AutoProcessor.from_pretrained(str(folder))
    return HFDualEncoder(name, model, processor, device or get_device())


def load(device: str | None = None, config: Config | None = None, progress: bool = True):
    """``course/clip-shapes`` as an Embedder: from the verified cache, or trained now and cached."""
    from ...env import resolve_device
    from .checkpoints import load_course_checkpoint, write_json

    device = resolve_device(device)  # a bad device string fails now, not after training
    config = config or Config()

    def build(folder: pathlib.Path) -> None:
        model, processor, history = train(config, progress=progress)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        write_json(folder, "training.json",
                   {"config": asdict(config), "losses": history.losses, "seconds": history.seconds})

    return load_course_checkpoint(NAME, config.version(), build, lambda folder: load_folder(folder, device))
