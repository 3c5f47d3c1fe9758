"""Hub ColPali (``vidore/colpali-v1.3`` and friends) through colpali-engine.

ColPali = PaliGemma-3B + a linear projection of every output token to 128 dims
(``custom_text_proj``) + L2 normalisation; pages and queries are scored with MaxSim.
colpali-engine's ``ColPali`` model returns those projected, normalised 128-d vectors
directly (padding positions zeroed by the attention mask) — *not* PaliGemma's raw
2,048-d hidden states, which is what a plain ``PaliGemmaForConditionalGeneration``
with ``output_hidden_states=True`` would give.

``load(name, device)`` returns an :class:`~mmcourse.models.embedder.Embedder` with the
same ``embed_pages`` / ``embed_queries`` (lists of ``(T, 128)``) as ``course/colpali-pages``.
"""
from __future__ import annotations

import torch

from ..errors import MMCourseError
from ..retrieval.maxsim import maxsim
from .embedder import Embedder, check_texts, to_pil_images

__all__ = ["load", "HubColPaliEmbedder"]

INSTALL_HINT = ("ColPali hub checkpoints are loaded through colpali-engine: `pip install colpali-engine` "
                "(it pins its own torch/transformers versions; a separate virtual environment is safest). "
                "Offline, use mmcourse.load_model('course/colpali-pages').")


class HubColPaliEmbedder(Embedder):
    """colpali-engine's model and processor behind the course's multi-vector API."""

    modalities = ("page", "query")

    def __init__(self, name, model, processor, device, batch_size: int = 4):
        super().__init__(name, model, processor, device, logit_scale=1.0, batch_size=batch_size)

    def _run(self, batch) -> list[torch.Tensor]:
        batch = batch.to(self.model.device)
        with torch.no_grad():
            out = self.model(**batch)  # (B, T, 128), L2-normalised, padding zeroed
        mask = batch["attention_mask"].bool()
        return [v[m].float().cpu() for v, m in zip(out, mask)]

    def embed_pages(self, images, batch_size: int | None = None, progress: bool | None = None):
        """One ``(T, 128)`` tensor per page (1,024 image patches + a few text tokens for v1.3)."""
        from tqdm.auto import tqdm

        pils, size = to_pil_images(images), batch_size or self.batch_size
        out = []
        for i in tqdm(range(0, len(pils), size), disable=not progress, desc="embedding pages", leave=False):
            out += self._run(self.processor.process_images(pils[i:i + size]))
        return out

    def embed_queries(self, texts, batch_size: int | None = None, progress: bool | None = None):
        """One ``(T, 128)`` tensor per query (its tokens, plus colpali-engine's augmentation tokens)."""
        texts, size = check_texts(texts, "queries"), batch_size or self.batch_size
        out = []
        for i in range(0, len(texts), size):
            out += self._run(self.processor.process_queries(texts[i:i + size]))
        return out

    def score(self, queries, pages) -> torch.Tensor:
        """MaxSim ``(Nq, Np)`` (the same numbers as ``processor.score_multi_vector``)."""
        return maxsim(queries, pages)


def load(name: str, device: str | None = None, **kwargs) -> HubColPaliEmbedder:
    """Load a ColPali checkpoint (hub id or local folder) with colpali-engine."""
    try:
        from colpali_engine.models import ColPali, ColPaliProcessor
    except ImportError as err:
        raise MMCourseError(f"cannot load {name!r}: colpali-engine is not installed. {INSTALL_HINT}") from err
    from ..env import get_device, resolve_hub_weights

    device = device or get_device()
    source = resolve_hub_weights(name)  # offline without a cache: WeightsUnavailableError within seconds
    dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    model = ColPali.from_pretrained(source, torch_dtype=dtype, device_map=device, **kwargs).eval()
    processor = ColPaliProcessor.from_pretrained(source)
    return HubColPaliEmbedder(name, model, processor, device)
