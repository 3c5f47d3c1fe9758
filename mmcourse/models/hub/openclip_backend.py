"""open_clip models behind the :class:`Embedder` API.

Spec (what follows ``"open_clip:"`` in :func:`mmcourse.load_model`):

- ``"ViT-B-32/laion2b_s34b_b79k"``: architecture / pretrained tag (``open_clip.list_pretrained()``);
- ``"ViT-B-32"``: architecture only, random weights — any config open_clip knows, including
  one registered with ``open_clip.add_model_config(path_to_json_or_folder)``;
- ``pretrained="file.pt"`` keyword: a local checkpoint (or a tag) for the architecture;
- ``"hf-hub:org/repo"`` / ``"local-dir:/path"``: open_clip's own schemas.

Hub weights go through :func:`mmcourse.models.hub.access.resolve_hub_weights` first, so a missing
download fails within seconds offline instead of hanging. A pretrained tag whose weights live
on the hub (``laion2b_s34b_b79k`` → ``laion/CLIP-ViT-B-32-laion2B-s34B-b79K``) is found in the
Hugging Face cache exactly where open_clip's own download puts it.

On a GPU (or Apple's MPS) forward passes run under bfloat16 autocast (``mixed_precision``);
on the CPU they stay exact float32.
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
from PIL import Image

from ..embedder import STANDIN_MARK, Embedder

__all__ = ["OpenClipEmbedder", "OpenClipProcessor", "load"]

_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@dataclass
class OpenClipProcessor:
    """open_clip's two pre-processing pieces, kept together like a transformers processor."""

    preprocess: Callable[[Image.Image], torch.Tensor]  # PIL image -> (3, H, W) tensor (eval transform)
    tokenizer: Callable[[list[str]], torch.Tensor]  # texts -> (B, context_length) token ids


class OpenClipEmbedder(Embedder):
    """An :class:`Embedder` around an open_clip ``CLIP`` / ``CustomTextCLIP`` model."""

    mixed_precision = True  # bf16 autocast on a GPU / MPS; exact float32 on the CPU

    def __init__(self, name: str, model, preprocess, tokenizer, device, batch_size: int = 64):
        model = model.to(device).eval()
        bias = getattr(model, "logit_bias", None)
        super().__init__(
            name=name, model=model, processor=OpenClipProcessor(preprocess, tokenizer), device=device,
            logit_scale=model.logit_scale.detach().exp().item(),
            logit_bias=None if bias is None else bias.detach().item(),
            batch_size=batch_size,
        )

    def _encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = torch.stack([self.processor.preprocess(img) for img in images])  # (B, 3, H, W)
        with self._autocast():
            return self.model.encode_image(pixels.to(self.device))  # (B, D)

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.processor.tokenizer(texts)  # (B, L)
        with self._autocast():
            return self.model.encode_text(tokens.to(self.device))  # (B, D)


def _marked_standin(weights: str | None) -> bool:
    """True when a safetensors weights file carries the stand-in mark in its metadata."""
    if not weights or not str(weights).endswith(".safetensors") or not os.path.isfile(weights):
        return False
    from safetensors import safe_open

    with safe_open(weights, framework="pt") as f:
        return (f.metadata() or {}).get(STANDIN_MARK) == "1"


def _local_weights(folder: str) -> str | None:
    for fname in _WEIGHT_FILES:
        path = pathlib.Path(folder) / fname
        if path.is_file():
            return str(path)
    return None


def _resolve_tag(arch: str, tag: str) -> str:
    """A pretrained tag → a local weights file when cached (or the tag itself when online)."""
    import open_clip

    from ...errors import WeightsUnavailableError
    from .access import hub_offline_flag, hub_reachable, resolve_hub_weights

    if os.path.isfile(os.path.expanduser(tag)):
        return os.path.expanduser(tag)
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        known = open_clip.list_pretrained_tags_by_model(arch)
        raise ValueError(f"open_clip has no pretrained tag {tag!r} for {arch!r}; known tags: {', '.join(known) or 'none'}")
    hub_id = (cfg.get("hf_hub") or "").strip("/")
    if hub_id:
        source = resolve_hub_weights(hub_id)  # raises WeightsUnavailableError offline, within seconds
        if os.path.isdir(source):
            weights = _local_weights(source)
            if weights:
                return weights
        return tag
    if hub_offline_flag() or not hub_reachable():
        raise WeightsUnavailableError(f"open_clip weights {arch}/{tag} come from a URL and the network is "
                                      "unreachable; download them once online, then pass pretrained=<file>.")
    return tag


def load(spec: str, device: str | None = None, name: str | None = None, pretrained: str | None = None,
         **kwargs) -> OpenClipEmbedder:
    """Create an open_clip model, its eval transform and tokenizer from ``spec`` (see module doc)."""
    import open_clip

    from ...env import get_device
    from .access import resolve_hub_weights

    device = device or get_device()
    display = name or f"open_clip:{spec}"
    if not spec:
        raise ValueError("empty open_clip spec; write 'open_clip:<architecture>[/<pretrained tag>]'")
    if spec.startswith("hf-hub:"):
        source = resolve_hub_weights(spec[len("hf-hub:"):])
        model_name = f"local-dir:{source}" if os.path.isdir(source) else spec
    elif spec.startswith("local-dir:"):
        model_name = spec
    else:
        arch, _, tag = spec.partition("/")
        if tag and pretrained:
            raise ValueError(f"give the pretrained weights once: either in the name ({spec!r}) or as pretrained=")
        tag = tag or pretrained
        if arch not in open_clip.list_models():
            raise ValueError(f"open_clip knows no architecture {arch!r}; register your config with "
                             "open_clip.add_model_config(path) or choose from open_clip.list_models()")
        model_name = arch
        pretrained = _resolve_tag(arch, tag) if tag else None
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=None if model_name.startswith("local-dir:") else pretrained, device=device, **kwargs)
    tokenizer = open_clip.get_tokenizer(model_name)
    embedder = OpenClipEmbedder(display, model, preprocess, tokenizer, device)
    weights = _local_weights(model_name[len("local-dir:"):]) if model_name.startswith("local-dir:") else pretrained
    embedder.is_standin = _marked_standin(weights)
    return embedder
