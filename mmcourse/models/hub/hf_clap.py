"""Hub CLAP checkpoints (``laion/clap-htsat-unfused`` and friends) through transformers.

``load(path_or_id, device)`` wraps ``ClapModel`` and ``ClapProcessor`` in the same
embedder interface as the course checkpoint: ``embed_audio(clips, sampling_rate=...)``
and ``embed_texts(texts)``, both L2-normalised.

Two things changed since many CLAP snippets were written (transformers 5.x):

- the processor's audio argument is ``audio=``; the old ``audios=`` is not accepted;
- ``get_audio_features`` / ``get_text_features`` return a ``BaseModelOutputWithPooling``
  whose ``pooler_output`` holds the (already normalised) projected embeddings, not a tensor.

On a GPU (or Apple's MPS) the forward passes run under bfloat16 autocast
(``mixed_precision``); on the CPU they stay exact float32.

Clips longer than the feature extractor's ``max_length_s`` (10 s) are cut into 10 s
windows that are embedded separately and averaged, instead of the extractor's random
crop ("rand_trunc") or random fusion crops — so results are deterministic and a long
recording is processed in bounded memory.
"""
from __future__ import annotations

import numpy as np
import torch

from ... import audio as A
from ..embedder import Embedder, features_from_output, in_thread_scope

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


class HubClapEmbedder(Embedder):
    """A transformers CLAP model and processor behind the course's embedder interface."""

    modalities = ("audio", "text")
    mixed_precision = True  # bf16 autocast on a GPU / MPS; exact float32 on the CPU

    def __init__(self, name: str, model, processor, device: str = "cpu", batch_size: int = 8):
        model = model.to(str(device)).eval()
        super().__init__(name, model, processor, device, float(model.logit_scale_a.detach().exp()),
                         batch_size=batch_size)  # audio→text multiplier
        fe = processor.feature_extractor
        self.sampling_rate = int(fe.sampling_rate)  # 48 kHz for the LAION checkpoints
        self.max_seconds = float(fe.max_length_s)  # one window; longer clips are averaged over windows
        self.mel_config = A.MelConfig.from_feature_extractor(fe)  # the same features, for plots

    @torch.no_grad()
    def _encode_windows(self, windows: list[np.ndarray]) -> torch.Tensor:
        inputs = audio_inputs(self.processor, windows, self.sampling_rate).to(self.device)
        with self._autocast():
            return features_from_output(self.model.get_audio_features(**inputs))  # (B, D)

    @in_thread_scope
    def embed_audio(self, clips, sampling_rate: int | None = None, batch_size: int | None = None,
                    progress: bool | None = None) -> torch.Tensor:
        """L2-normalised ``(N, D)`` audio embeddings (arrays at ``sampling_rate``, file paths or ``Sound``s)."""
        n = len(clips) if isinstance(clips, (list, tuple)) else 1
        return A.embed_clips(clips, self._encode_windows, sampling_rate=sampling_rate, target_sr=self.sampling_rate,
                             window_seconds=self.max_seconds, batch_size=batch_size or self.batch_size,
                             progress=(n >= 64) if progress is None else progress, desc=f"{self.name}: audio")

    @torch.no_grad()
    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.processor(text=texts, padding=True, return_tensors="pt").to(self.device)
        with self._autocast():
            return features_from_output(self.model.get_text_features(**tokens))  # (B, D)


def load(path_or_id: str = "laion/clap-htsat-unfused", device: str | None = None, name: str | None = None,
         **kwargs) -> HubClapEmbedder:
    """Load a CLAP checkpoint from a local folder or the hub (cached weights work offline).

    Hub ids go through :func:`mmcourse.models.hub.access.resolve_hub_weights`, so without cached weights
    and without a network this fails within seconds with a :class:`WeightsUnavailableError`.
    ``name`` (default: ``path_or_id`` as given) is what the embedder reports, never the cache folder.
    """
    from transformers import ClapModel, ClapProcessor

    from ...env import get_device
    from .access import resolve_hub_weights

    source = resolve_hub_weights(str(path_or_id))
    model = ClapModel.from_pretrained(source)
    processor = ClapProcessor.from_pretrained(source)
    return HubClapEmbedder(name or str(path_or_id), model, processor, device or get_device(), **kwargs)
