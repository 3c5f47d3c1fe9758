"""transformers image–text dual encoders behind the :class:`Embedder` API.

``CLIPModel``, ``SiglipModel`` and ``VisionTextDualEncoderModel`` share one shape:
``get_image_features(pixel_values)`` and ``get_text_features(input_ids, attention_mask)``
give projected features, and ``logit_scale`` (log of the multiplier) is a parameter;
SigLIP adds ``logit_bias``. Two details the seed's snippets miss:

- in transformers 5.x ``get_image_features`` returns a ``BaseModelOutputWithPooling``
  (features in ``.pooler_output``), not a tensor — :func:`features_from_output` accepts both;
- SigLIP was trained on texts padded to ``max_length`` (64 tokens); padding to the
  longest text in the batch changes its embeddings, so we pad to ``max_length`` for it.

Hub checkpoints loaded here run their forward passes under bfloat16 autocast on a GPU
(or Apple's MPS) — ``mixed_precision=True``, see :func:`~mmcourse.models.embedder.autocast_for`;
on the CPU they stay exact float32. Set ``embedder.mixed_precision = False`` for float32 everywhere.
"""
from __future__ import annotations

import torch
from PIL import Image

from ..embedder import Embedder, features_from_output

__all__ = ["HFDualEncoder", "load", "MODEL_CLASSES"]

# config.model_type -> transformers class name
MODEL_CLASSES: dict[str, str] = {
    "clip": "CLIPModel",
    "siglip": "SiglipModel",
    "vision-text-dual-encoder": "VisionTextDualEncoderModel",
}


class HFDualEncoder(Embedder):
    """An :class:`Embedder` around a transformers dual encoder and its processor."""

    def __init__(self, name: str, model, processor, device, batch_size: int = 64):
        model = model.to(device).eval()
        bias = getattr(model, "logit_bias", None)
        super().__init__(
            name=name, model=model, processor=processor, device=device,
            logit_scale=model.logit_scale.detach().exp().item(),
            logit_bias=None if bias is None else bias.detach().item(),
            batch_size=batch_size,
        )
        self.text_padding = "max_length" if model.config.model_type == "siglip" else True  # see module doc
        self.max_text_length = _max_text_length(model)

    def _encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]  # (B, 3, H, W)
        with self._autocast():
            out = self.model.get_image_features(pixel_values=pixels.to(self.device))
        return features_from_output(out)  # (B, D)

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.processor(text=texts, padding=self.text_padding, truncation=True,
                                max_length=self.max_text_length, return_tensors="pt")
        # SigLIP was trained without an attention mask (its own tokenizer returns none): feed ids only,
        # whatever tokenizer the processor holds; CLIP-style models get the mask
        keys = ("input_ids",) if self.text_padding == "max_length" else ("input_ids", "attention_mask")
        inputs = {k: v.to(self.device) for k, v in tokens.items() if k in keys}
        with self._autocast():
            out = self.model.get_text_features(**inputs)
        return features_from_output(out)  # (B, D)


def _max_text_length(model) -> int:
    text_config = getattr(model.config, "text_config", None)
    return int(getattr(text_config, "max_position_embeddings", 77) or 77)


def load(path_or_id: str, device: str | None = None, name: str | None = None, **kwargs) -> HFDualEncoder:
    """Load a CLIP / SigLIP / VisionTextDualEncoder folder (or resolved hub id) with its processor."""
    import transformers
    from transformers import AutoConfig, AutoProcessor

    from ...env import get_device

    config = AutoConfig.from_pretrained(path_or_id)
    if config.model_type not in MODEL_CLASSES:
        raise ValueError(f"{path_or_id!r} is a {config.model_type!r} model; this backend loads "
                         f"{', '.join(MODEL_CLASSES)}")
    model_class = getattr(transformers, MODEL_CLASSES[config.model_type])
    model = model_class.from_pretrained(path_or_id, **kwargs)
    processor = AutoProcessor.from_pretrained(path_or_id)
    embedder = HFDualEncoder(name or str(path_or_id), model, processor, device or get_device())
    embedder.mixed_precision = True  # hub checkpoints: bf16 autocast on a GPU / MPS (course ones stay float32)
    return embedder
