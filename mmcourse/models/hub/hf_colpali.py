"""Hub ColPali and ColQwen2 through transformers' own classes (no colpali-engine).

ColPali = PaliGemma-3B + a linear projection of every output token to 128 dims + L2
normalisation; pages and queries are scored with MaxSim. transformers ships it as
``ColPaliForRetrieval`` / ``ColPaliProcessor`` (checkpoint ``vidore/colpali-v1.3-hf``), and
ColQwen2 (Qwen2-VL-2B underneath, dynamic image resolution) as ``ColQwen2ForRetrieval`` /
``ColQwen2Processor`` (``vidore/colqwen2-v1.0-hf``). Both return ``outputs.embeddings``:
``(B, T, 128)``, L2-normalised, padding positions zeroed by the attention mask — *not*
the VLM's raw hidden states, which ``output_hidden_states=True`` on the base model would give.
The ids without ``-hf`` (``vidore/colpali-v1.3``) are colpali-engine's adapters; use the
``-hf`` conversions here.

``load(path_or_id, device)`` returns an :class:`~mmcourse.models.embedder.Embedder` with the
same ``embed_pages`` / ``embed_queries`` (lists of ``(T, 128)``), ``score`` (MaxSim) and
single-vector baselines as ``course/colpali-pages``. What a page's tokens are:

- ColPali: ``image_seq_length`` image patches (1,024 = 32 × 32 for v1.3, row-major; see
  ``patch_grid``), then the prompt's tokens (``<bos>Describe the image.\\n``);
- a query: ``<bos>Question: <query>`` + 10 ``<pad>`` "query augmentation" tokens + ``\\n``,
  all of them kept (the model was trained to use them).

**Slow on a CPU.** ColPali has about 3 B parameters (ColQwen2 about 2 B): on a laptop CPU a
page takes tens of seconds and float32 weights need ~12 GB of memory; prefer a GPU, where the
weights load in bfloat16 (~6 GB). On the CPU ``load`` warns; use a handful of pages, or
``course/colpali-pages`` offline.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ...retrieval.maxsim import maxsim
from ..embedder import Embedder, check_texts, in_thread_scope, to_pil_images

__all__ = ["load", "HubColPaliEmbedder", "MODEL_CLASSES", "CPU_WARN_PARAMETERS"]

# config.model_type -> (model class, processor class) in transformers
MODEL_CLASSES: dict[str, tuple[str, str]] = {
    "colpali": ("ColPaliForRetrieval", "ColPaliProcessor"),
    "colqwen2": ("ColQwen2ForRetrieval", "ColQwen2Processor"),
}
CPU_WARN_PARAMETERS = 500_000_000  # warn about CPU speed above this many parameters
_NOT_MODEL_INPUTS = ("labels",)  # the processor adds training labels for pages; the forward pass ignores them


class HubColPaliEmbedder(Embedder):
    """transformers' ColPali / ColQwen2 model and processor behind the course's multi-vector API."""

    modalities = ("page", "query")
    mixed_precision = True  # bf16 autocast on a GPU / MPS (the weights are bf16 there already)

    def __init__(self, name, model, processor, device, batch_size: int = 4):
        super().__init__(name, model, processor, device, logit_scale=1.0, batch_size=batch_size)
        vision = getattr(model.config.vlm_config, "vision_config", None)
        grid = None
        if model.config.model_type == "colpali" and vision is not None:
            side = vision.image_size // vision.patch_size
            grid = (side, side)
        self.patch_grid = grid  # (rows, cols) of a ColPali page's first rows*cols vectors; None for ColQwen2
        self.embedding_dim = int(model.config.embedding_dim)  # 128

    @torch.no_grad()
    def _run(self, batch) -> list[torch.Tensor]:
        inputs = {k: v.to(self.device) for k, v in batch.items() if k not in _NOT_MODEL_INPUTS}
        with self._autocast():
            out = self.model(**inputs).embeddings  # (B, T, 128), L2-normalised, padding zeroed
        mask = inputs["attention_mask"].bool()  # (B, T)
        return [v[m].float().cpu() for v, m in zip(out, mask)]

    @in_thread_scope
    def embed_pages(self, images, batch_size: int | None = None, progress: bool | None = None) -> list[torch.Tensor]:
        """One ``(T, 128)`` L2-normalised tensor per page, on the CPU (see the module doc for T)."""
        from tqdm.auto import tqdm

        pils, size = to_pil_images(images), batch_size or self.batch_size
        show = len(pils) > size if progress is None else bool(progress)
        out = []
        for i in tqdm(range(0, len(pils), size), disable=not show, desc=f"{self.name}: pages", leave=False):
            out += self._run(self.processor.process_images(images=pils[i:i + size]))
        return out

    @in_thread_scope
    def embed_queries(self, texts, batch_size: int | None = None, progress: bool | None = None) -> list[torch.Tensor]:
        """One ``(T, 128)`` L2-normalised tensor per query (its tokens plus the augmentation tokens)."""
        texts, size = check_texts(texts, "queries"), batch_size or self.batch_size
        out = []
        for i in range(0, len(texts), size):
            out += self._run(self.processor.process_queries(text=texts[i:i + size]))
        return out

    def embed_pages_single(self, images, **kwargs) -> torch.Tensor:
        """Mean-pooled, re-normalised single vectors ``(N, 128)`` (the single-vector baseline)."""
        return F.normalize(torch.stack([p.mean(0) for p in self.embed_pages(images, **kwargs)]), dim=-1)

    def embed_queries_single(self, texts, **kwargs) -> torch.Tensor:
        return F.normalize(torch.stack([q.mean(0) for q in self.embed_queries(texts, **kwargs)]), dim=-1)

    def page_patches(self, page: torch.Tensor) -> torch.Tensor:
        """A ColPali page's patch vectors as a grid ``(rows, cols, 128)`` (for similarity maps)."""
        if self.patch_grid is None:
            raise ValueError(f"{self.name!r} has no fixed patch grid (ColQwen2 sizes its grid per image)")
        rows, cols = self.patch_grid
        if page.ndim != 2 or page.shape[0] < rows * cols:
            raise ValueError(f"expected one page's (T >= {rows * cols}, D) tensor, got shape {tuple(page.shape)}")
        return page[: rows * cols].reshape(rows, cols, -1)  # (rows, cols, D)

    def score(self, queries, pages) -> torch.Tensor:
        """MaxSim ``(Nq, Np)`` (the same numbers as ``processor.score_retrieval``)."""
        return maxsim(queries, pages)


def load(path_or_id: str = "vidore/colpali-v1.3-hf", device: str | None = None, name: str | None = None,
         **kwargs) -> HubColPaliEmbedder:
    """Load a ColPali / ColQwen2 checkpoint (hub id or local folder) with transformers.

    On a CUDA GPU the weights load in bfloat16 (about 6 GB for ColPali); elsewhere in float32
    (Apple's MPS then runs under bf16 autocast), and on the CPU with a warning that a
    3 B-parameter model is slow there (see the module doc). ``dtype=`` overrides.
    """
    import transformers
    from transformers import AutoConfig

    from ...env import get_device
    from .access import resolve_hub_weights

    device = str(device or get_device())
    source = resolve_hub_weights(str(path_or_id))  # offline without cached weights: an error within seconds
    config = AutoConfig.from_pretrained(source)
    if config.model_type not in MODEL_CLASSES:
        raise ValueError(f"{path_or_id!r} is a {config.model_type!r} model; this backend loads "
                         f"{', '.join(MODEL_CLASSES)} (e.g. 'vidore/colpali-v1.3-hf')")
    model_name, processor_name = MODEL_CLASSES[config.model_type]
    on_cuda = device.split(":")[0] == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    kwargs.setdefault("dtype", torch.bfloat16 if on_cuda else torch.float32)  # MPS: float32 weights, bf16 autocast
    model = getattr(transformers, model_name).from_pretrained(source, **kwargs).to(device).eval()
    processor = getattr(transformers, processor_name).from_pretrained(source)
    n_params = sum(p.numel() for p in model.parameters())
    if device == "cpu" and n_params > CPU_WARN_PARAMETERS:
        warnings.warn(f"{path_or_id}: {n_params / 1e9:.1f} B parameters on the CPU is slow (tens of seconds "
                      "per page, ~4 bytes per parameter of memory); use a GPU, a few pages, or "
                      "'course/colpali-pages' offline.", stacklevel=2)
    return HubColPaliEmbedder(name or str(path_or_id), model, processor, device)
