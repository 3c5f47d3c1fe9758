"""Hub CLAP checkpoints (``laion/clap-htsat-unfused`` and friends) through transformers.

``load(path_or_id, device)`` wraps ``ClapModel`` and ``ClapProcessor`` in the same
embedder interface as the course checkpoint: ``embed_audio(clips, sampling_rate=...)``
and ``embed_texts(texts)``, both L2-normalised.

Two things changed since many CLAP snippets were written (transformers 5.x):

- the processor's audio argument is ``audio=``; the old ``audios=`` is not accepted;
- ``get_audio_features`` / ``get_text_features`` return a ``BaseModelOutputWithPooling``
  whose ``pooler_output`` holds the (already normalised) projected embeddings, not a tensor.

Clips longer than the feature extractor's ``max_length_s`` (10 s) are cut into 10 s
windows that are embedded separately and averaged, instead of the extractor's random
crop ("rand_trunc") or random fusion crops — so results are deterministic and a long
recording is processed in bounded memory.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import audio as A

__all__ = ["HubClapEmbedder", "load", "audio_inputs"]


def audio_inputs(processor, windows: list[np.ndarray], sampling_rate: int) -> dict:
    """Processor call for audio in transformers 5.x (``audio=``), with a deterministic ``is_longer``.

    The feature extractor in "fusion" mode marks one random clip of a batch as longer
    when none is; windows here never exceed the model's length, so ``is_longer`` is all False.
    """
    inputs = processor(audio=list(windows), sampling_rate=sampling_rate, return_tensors="pt")
    if "is_longer" in inputs:
        inputs["is_longer"] = torch.zeros_like(inputs["is_longer"])
    return inputs


def _pooled(out) -> torch.Tensor:
    return out.pooler_output if hasattr(out, "pooler_output") else out


class HubClapEmbedder:
    """A transformers CLAP model and processor behind the course's embedder interface."""

    def __init__(self, name: str, model, processor, device: str = "cpu"):
        self.name = name
        self.device = str(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.logit_scale = float(model.logit_scale_a.detach().exp())  # audio→text multiplier
        fe = processor.feature_extractor
        self.sampling_rate = int(fe.sampling_rate)
        self.max_seconds = float(fe.max_length_s)
        self.mel_config = A.MelConfig.from_feature_extractor(fe)

    def __repr__(self):
        return f"HubClapEmbedder(name={self.name!r}, device={self.device!r}, logit_scale={self.logit_scale:.1f})"

    @torch.no_grad()
    def _encode_windows(self, windows: list[np.ndarray]) -> torch.Tensor:
        inputs = audio_inputs(self.processor, windows, self.sampling_rate).to(self.device)
        return _pooled(self.model.get_audio_features(**inputs))  # (B, D)

    def embed_audio(self, clips, sampling_rate: int | None = None, batch_size: int = 8,
                    progress: bool = False) -> torch.Tensor:
        """L2-normalised ``(N, D)`` audio embeddings (arrays at ``sampling_rate``, file paths or ``Sound``s)."""
        return A.embed_clips(clips, self._encode_windows, sampling_rate=sampling_rate, target_sr=self.sampling_rate,
                             window_seconds=self.max_seconds, batch_size=batch_size, progress=progress,
                             desc=f"{self.name}: audio")

    @torch.no_grad()
    def embed_texts(self, texts, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """L2-normalised ``(N, D)`` text embeddings."""
        import torch.nn.functional as F
        from tqdm.auto import tqdm

        from .minilm import _check_texts

        texts = _check_texts(texts)
        out = []
        for i in tqdm(range(0, len(texts), batch_size), desc=f"{self.name}: texts", disable=not progress, leave=False):
            tok = self.processor(text=texts[i:i + batch_size], padding=True, return_tensors="pt").to(self.device)
            out.append(F.normalize(_pooled(self.model.get_text_features(**tok)).float(), dim=-1).cpu())
        return torch.cat(out)  # (N, D)


def load(path_or_id: str = "laion/clap-htsat-unfused", device: str | None = None) -> HubClapEmbedder:
    """Load a CLAP checkpoint from a local folder or the hub (cached weights work offline).

    Hub ids go through :func:`mmcourse.env.resolve_hub_weights`, so without cached weights
    and without a network this fails within seconds with a :class:`WeightsUnavailableError`.
    """
    from transformers import ClapModel, ClapProcessor

    from ..env import get_device, resolve_hub_weights

    source = resolve_hub_weights(str(path_or_id))
    model = ClapModel.from_pretrained(source)
    processor = ClapProcessor.from_pretrained(source)
    return HubClapEmbedder(str(path_or_id), model, processor, device or get_device())
