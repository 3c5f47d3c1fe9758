"""Zero-shot classification with prompt ensembling, and cosine similarity.

Zero-shot classification turns class names into text prompts, embeds them, and picks
the class whose text embedding is closest to the image embedding. *Prompt ensembling*
(Radford et al. 2021, section 3.1.4) embeds several prompts per class ("a photo of a
{}.", "a drawing of a {}.", ...), averages the L2-normalised embeddings and normalises
the mean again: one class embedding that is less sensitive to the wording of any one prompt.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import top_k_accuracy

__all__ = ["DEFAULT_TEMPLATES", "similarity", "class_embeddings", "zero_shot_logits", "zero_shot_classify",
           "text_only_label_accuracy"]

DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)  # CLIP's standard single prompt

Templates = Union[str, Sequence[str], Callable[[str], Sequence[str]], None]


def _as_2d_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor or numpy array of embeddings, got {type(x).__name__}")
    if x.ndim == 1:
        x = x.unsqueeze(0)  # (1, D)
    if x.ndim != 2:
        raise ValueError(f"{what}: expected embeddings of shape (N, D) or (D,), got {tuple(x.shape)}")
    return x.float()


def similarity(a, b) -> torch.Tensor:
    """Cosine similarity matrix ``(Na, Nb)`` between two sets of embeddings (normalised here)."""
    a, b = _as_2d_tensor(a, "a"), _as_2d_tensor(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding sizes differ: a has D={a.shape[1]}, b has D={b.shape[1]}")
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T  # (Na, Nb)


def _prompts_for(label: str, templates: Templates) -> list[str]:
    if templates is None:
        templates = DEFAULT_TEMPLATES
    if callable(templates):
        prompts = list(templates(label))
    else:
        if isinstance(templates, str):
            templates = [templates]
        prompts = [t.format(label) if "{}" in t else t.format(label=label) for t in templates]
    if not prompts:
        raise ValueError(f"no prompts for label {label!r}: templates gave an empty list")
    return prompts


def class_embeddings(model, labels: Sequence[str], templates: Templates = None) -> torch.Tensor:
    """One L2-normalised text embedding per label ``(L, D)``: the renormalised mean over its prompts.

    ``templates``: a format string or a list of them with ``{}`` (or ``{label}``) where the label
    goes; or a function ``label -> list of prompts`` (e.g. ``mmcourse.data.shapes.paraphrase_prompts``);
    ``None`` means ``DEFAULT_TEMPLATES`` ("a photo of a {}.").
    """
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
        raise ValueError(f"labels must be a non-empty list of class names, got {labels!r:.60}")
    prompts = [_prompts_for(str(label), templates) for label in labels]
    flat = [p for group in prompts for p in group]
    text = model.embed_texts(flat)  # (sum of prompts, D), normalised
    out, start = [], 0
    for group in prompts:
        out.append(text[start:start + len(group)].mean(0))  # (D,) mean of unit vectors
        start += len(group)
    return F.normalize(torch.stack(out), dim=-1)  # (L, D) renormalised


def zero_shot_logits(image_embeddings: torch.Tensor, class_embeds: torch.Tensor, logit_scale: float,
                     logit_bias: float | None = None) -> torch.Tensor:
    """``logit_scale · cos(image, class) (+ logit_bias)``, shape ``(N, L)``."""
    logits = logit_scale * similarity(image_embeddings, class_embeds)  # (N, L)
    return logits if logit_bias is None else logits + logit_bias


def zero_shot_classify(model, images, labels: Sequence[str], templates: Templates = None,
                       activation: str = "softmax") -> torch.Tensor:
    """Probabilities ``(N, L)`` that each image shows each label, with prompt ensembling.

    ``model`` is an :class:`~mmcourse.models.embedder.Embedder` (``mmcourse.load_model(...)``);
    ``images`` anything its ``embed_images`` accepts. ``activation="softmax"`` (CLIP's view:
    the labels compete, rows sum to 1) or ``"sigmoid"`` (SigLIP's view: each label judged
    on its own, using the model's ``logit_bias``). Predictions: ``probs.argmax(1)``.
    """
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
    classes = class_embeddings(model, labels, templates)  # (L, D)
    images_emb = model.embed_images(images)  # (N, D)
    bias = getattr(model, "logit_bias", None) if activation == "sigmoid" else None
    logits = zero_shot_logits(images_emb, classes, model.logit_scale, bias)  # (N, L)
    return logits.softmax(dim=-1) if activation == "softmax" else logits.sigmoid()


def text_only_label_accuracy(embed_texts, labels: Sequence[str], prompts: Templates,
                             anchors: Templates = None) -> float:
    """How well a text tower alone maps prompts to their label: no image involved.

    Each prompt of each label (``prompts``, as in :func:`class_embeddings`) is matched by cosine to
    one anchor sentence per label (``anchors``, default ``DEFAULT_TEMPLATES``); the result is the
    share of prompts whose nearest anchor is their own label's. ``embed_texts``: any function
    ``list[str] -> (N, D)`` (a model's ``embed_texts``, or a sentence encoder's). A model whose text
    tower is locked cannot classify images through prompts its text tower itself confuses.
    """
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
        raise ValueError(f"labels must be a non-empty list of class names, got {labels!r:.60}")
    anchor_texts = [_prompts_for(str(label), anchors)[0] for label in labels]
    groups = [_prompts_for(str(label), prompts) for label in labels]
    flat = [p for group in groups for p in group]
    truth = torch.tensor([i for i, group in enumerate(groups) for _ in group])  # (P,)
    scores = similarity(_as_2d_tensor(embed_texts(flat), "prompt embeddings"),
                        _as_2d_tensor(embed_texts(anchor_texts), "anchor embeddings"))  # (P, L)
    return top_k_accuracy(scores, truth)
