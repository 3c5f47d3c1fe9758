"""The one interface every model in the course shares: an :class:`Embedder`.

Whatever the backend (transformers, open_clip, a course checkpoint), a loaded model
offers the same things, so a notebook's code runs unchanged in both worlds:

- ``embed_images(images)`` / ``embed_texts(texts)`` → ``torch.Tensor (N, D)``, float32,
  L2-normalised, on the CPU, computed in batches (with a progress bar for large inputs);
  audio and document models add ``embed_audio``, ``embed_pages``, ``embed_queries``;
- ``logit_scale`` (float, the multiplier, already exp-ed) and ``logit_bias`` (float or None);
- ``model`` and ``processor``: the library objects themselves, for anyone who wants to
  go below the course's API;
- ``name`` (what the learner asked for, e.g. ``"openai/clip-vit-base-patch32"``) and ``device``;
- ``is_standin``: True for a tiny random-weight stand-in of a hub model (see
  :mod:`mmcourse.testing.standins`), whose numbers mean nothing: notebooks assert quality
  claims only when it is False (:func:`is_standin`);
- ``mixed_precision``: True for hub backends, whose forward passes then run under bfloat16
  autocast on a GPU or Apple's MPS (:func:`autocast_for`); the CPU always computes in float32.

A backend subclasses :class:`Embedder` and implements ``_encode_images(list[PIL.Image])``
and/or ``_encode_texts(list[str])`` returning un-normalised features ``(B, D)``; the base
class checks and converts inputs, batches, normalises and moves results to the CPU.

Accepted images: PIL images of any mode (converted to RGB), numpy arrays ``HW``,
``HWC`` (C = 1, 3 or 4) or a batch ``BHWC``, torch tensors ``HW``, ``CHW`` (C = 1, 3 or 4)
or a batch ``BCHW``; uint8 values in 0..255 or floats in [0, 1]. A single image or a
list/tuple of them.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..env import inference_threads
from ..validate import positive_int

__all__ = [
    "Embedder",
    "to_pil_images",
    "check_texts",
    "features_from_output",
    "l2_normalize",
    "batched",
    "is_standin",
    "autocast_for",
    "STANDIN_MARK",
]

PROGRESS_MIN_ITEMS = 512  # with progress=None, show a bar only for inputs at least this long
# a stand-in's config.json (transformers) or weights-file metadata (open_clip) carries this key
STANDIN_MARK = "mmcourse_standin"


def is_standin(model: Any) -> bool:
    """True when ``model`` (an :class:`Embedder` or a library model) is a random-weight stand-in.

    Stand-ins let every pretrained code path run offline in tests; their embeddings are
    random, so a notebook asserts a quality claim only where ``not is_standin(model)``:
    on the course checkpoints and on real hub checkpoints.
    """
    if isinstance(model, Embedder):
        return model.is_standin
    return bool(getattr(getattr(model, "config", None), STANDIN_MARK, False))


def autocast_for(device: str | torch.device):
    """bfloat16 autocast where the device supports it (CUDA with bf16, Apple's MPS); on the CPU, nothing.

    Hub backends run their forward passes inside it: half the memory traffic on a GPU, and
    exact float32 on the CPU (where the parity tests run). ``torch.autocast(device_type=...)``
    is the current API (``torch.cuda.amp.autocast`` is deprecated).
    """
    kind = torch.device(device).type
    if kind == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    if kind == "mps":
        try:
            return torch.autocast(device_type="mps", dtype=torch.bfloat16)
        except (RuntimeError, ValueError):  # an older torch / macOS without bf16 on MPS
            return contextlib.nullcontext()
    return contextlib.nullcontext()


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length: ``x / ‖x‖`` (a zero row stays zero)."""
    return F.normalize(x, p=2, dim=-1)  # (N, D)


def features_from_output(out: Any) -> torch.Tensor:
    """The feature tensor inside whatever ``get_image_features`` / ``get_text_features`` returned.

    transformers 4.x returned a tensor ``(B, D)``; transformers 5.x returns a
    ``BaseModelOutputWithPooling`` whose ``pooler_output`` holds the projected
    features. Both are accepted here (as are ``image_embeds``/``text_embeds`` outputs).
    """
    if isinstance(out, torch.Tensor):
        return out
    for key in ("pooler_output", "image_embeds", "text_embeds", "audio_embeds"):
        value = getattr(out, key, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"cannot find a feature tensor in a {type(out).__name__}")


# ----------------------------------------------------------------------------- inputs
_IMAGE_FORMS = ("PIL.Image.Image (any mode), numpy array HW / HWC / BHWC, or torch tensor HW / CHW / BCHW "
                "(uint8 0..255 or float in [0, 1])")


def _array_to_pil(arr: np.ndarray, where: str) -> Image.Image:
    """``HW`` or ``HWC`` array → RGB PIL image."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"{where}: expected an image of shape HW or HWC with C in (1, 3, 4), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        pass
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{where}: float image contains NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{where}: float images must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}] "
                             "(convert 0..255 data to uint8 first)")
        arr = np.round(arr * 255.0).astype(np.uint8)
    else:
        raise TypeError(f"{where}: expected a uint8 or float image, got dtype {arr.dtype}")
    img = Image.fromarray(np.ascontiguousarray(arr))
    return img if img.mode == "RGB" else img.convert("RGB")


def _one_to_pil(item: Any, where: str) -> list[Image.Image]:
    """One image (or a batch array/tensor) → list of RGB PIL images."""
    if isinstance(item, Image.Image):
        return [item if item.mode == "RGB" else item.convert("RGB")]
    if isinstance(item, torch.Tensor):
        t = item.detach().cpu()
        if t.ndim == 4:  # (B, C, H, W)
            return [img for i in range(t.shape[0]) for img in _one_to_pil(t[i], f"{where}[{i}]")]
        if t.ndim == 3:  # (C, H, W) -> (H, W, C)
            if t.shape[0] not in (1, 3, 4):
                raise ValueError(f"{where}: expected a CHW tensor with C in (1, 3, 4), got shape {tuple(t.shape)}")
            t = t.permute(1, 2, 0)
        if t.dtype == torch.bfloat16:
            t = t.float()
        return [_array_to_pil(t.numpy(), where)]
    if isinstance(item, np.ndarray):
        if item.ndim == 4:  # (B, H, W, C)
            return [img for i in range(item.shape[0]) for img in _one_to_pil(item[i], f"{where}[{i}]")]
        return [_array_to_pil(item, where)]
    hint = " (a file path? open it with PIL.Image.open(path))" if isinstance(item, str) else ""
    raise TypeError(f"{where}: expected an image ({_IMAGE_FORMS}), got {type(item).__name__}{hint}")


def to_pil_images(images: Any) -> list[Image.Image]:
    """Check and convert images to a non-empty list of RGB PIL images.

    Raises ``ValueError`` for an empty input or a badly shaped array, ``TypeError``
    naming the offending type otherwise.
    """
    if isinstance(images, (Image.Image, np.ndarray, torch.Tensor)):
        out = _one_to_pil(images, "images")
    elif isinstance(images, (str, bytes, dict)) or not isinstance(images, Iterable):
        raise TypeError(f"images: expected an image or a list of images ({_IMAGE_FORMS}), "
                        f"got {type(images).__name__}")
    else:
        out = [img for i, item in enumerate(images) for img in _one_to_pil(item, f"images[{i}]")]
    if not out:
        raise ValueError("images: expected at least one image, got an empty input")
    return out


def check_texts(texts: Any, what: str = "texts") -> list[str]:
    """A non-empty list of strings (a single string becomes a list of one)."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, dict)) or not isinstance(texts, Iterable):
        raise TypeError(f"{what}: expected a string or a list of strings, got {type(texts).__name__}")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{what}: expected at least one string, got an empty list")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}]: expected a string, got {type(t).__name__} ({t!r:.40})")
    return texts


def batched(items: Sequence[Any], encode: Callable[[list[Any]], torch.Tensor], batch_size: int,
            progress: bool | None = None, desc: str = "embedding") -> torch.Tensor:
    """Run ``encode`` over ``items`` in batches; return the L2-normalised rows, float32, on the CPU.

    ``progress=None`` shows a tqdm bar only for inputs of ``PROGRESS_MIN_ITEMS`` or more.
    """
    positive_int(batch_size, "batch_size")
    from tqdm.auto import tqdm

    show = len(items) >= PROGRESS_MIN_ITEMS if progress is None else bool(progress)
    chunks = []
    starts = range(0, len(items), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc=desc, disable=not show, leave=False, unit="batch"):
            feats = encode(list(items[start:start + batch_size]))  # (B, D)
            chunks.append(l2_normalize(feats.float()).cpu())
    return torch.cat(chunks)  # (N, D)


def in_thread_scope(method):
    """Decorate an ``embed_*`` method so its forward passes run in ``self.thread_scope()``."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self.thread_scope():
            return method(self, *args, **kwargs)
    return run


# ----------------------------------------------------------------------------- base class
class Embedder:
    """Base class of every loaded model: a uniform, batched, normalised embedding API.

    Subclasses set the attributes in ``__init__`` (call ``super().__init__``) and
    implement ``_encode_images`` and/or ``_encode_texts``.
    """

    modalities: tuple[str, ...] = ("image", "text")  # what embed_* methods this model supports
    mixed_precision: bool = False  # hub backends: bfloat16 autocast on a GPU / MPS (see autocast_for)

    def __init__(self, name: str, model: Any, processor: Any, device: str | torch.device,
                 logit_scale: float, logit_bias: float | None = None, batch_size: int = 64):
        self.name = name  # how it was loaded, e.g. "course/clip-shapes"
        self.model = model  # the library model (transformers / open_clip / torch module)
        self.processor = processor  # the library's pre-processing (processor, transforms, tokenizer)
        self.device = str(device)  # where the model runs; outputs always come back on the CPU
        self.logit_scale = float(logit_scale)  # similarity multiplier (exp of the learned temperature)
        self.logit_bias = None if logit_bias is None else float(logit_bias)  # SigLIP-style bias, else None
        self.batch_size = int(batch_size)  # default batch size of the embed_* methods
        self.is_standin = is_standin(model)  # a random-weight stand-in: no quality claim holds for it

    # -- public API ------------------------------------------------------------------
    @in_thread_scope
    def embed_images(self, images, batch_size: int | None = None, progress: bool | None = None) -> torch.Tensor:
        """L2-normalised image embeddings, ``torch.Tensor (N, D)`` on the CPU."""
        pils = to_pil_images(images)
        return batched(pils, self._encode_images, batch_size or self.batch_size, progress, "embedding images")

    @in_thread_scope
    def embed_texts(self, texts, batch_size: int | None = None, progress: bool | None = None) -> torch.Tensor:
        """L2-normalised text embeddings, ``torch.Tensor (N, D)`` on the CPU."""
        texts = check_texts(texts)
        return batched(texts, self._encode_texts, batch_size or self.batch_size, progress, "embedding texts")

    def logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The model's own logits between two sets of embeddings: ``scale · a @ bᵀ (+ bias)``."""
        out = self.logit_scale * a @ b.T  # (Na, Nb)
        return out if self.logit_bias is None else out + self.logit_bias

    def thread_scope(self):
        """The context every ``embed_*`` method runs its forward passes in: one torch thread for a
        small model on a CPU (:func:`mmcourse.env.small_model_threads`), else torch's own setting."""
        return inference_threads(self.model, self.device)

    # -- for subclasses --------------------------------------------------------------
    def _autocast(self):
        """The context a backend runs its forward pass in: bf16 autocast if ``mixed_precision``, else none."""
        return autocast_for(self.device) if self.mixed_precision else contextlib.nullcontext()

    def _encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        raise NotImplementedError(f"{self.name!r} does not embed images (it supports: {', '.join(self.modalities)})")

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError(f"{self.name!r} does not embed texts (it supports: {', '.join(self.modalities)})")

    def __repr__(self) -> str:
        bias = "" if self.logit_bias is None else f", logit_bias={self.logit_bias:.3g}"
        standin = ", stand-in" if self.is_standin else ""
        return (f"{type(self).__name__}(name={self.name!r}, device={self.device!r}, "
                f"model={type(self.model).__name__}, logit_scale={self.logit_scale:.3g}{bias}{standin})")
