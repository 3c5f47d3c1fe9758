"""Zero-shot prompt editor: pick an image, edit the labels and the prompt templates."""
from __future__ import annotations

import numpy as np

from .base import Playground, as_matrix, escape, new_figure

__all__ = ["ZeroShotPlayground", "zero_shot_playground", "parse_lines", "fill"]


def parse_lines(text: str) -> list[str]:
    """Non-empty stripped lines of ``text``, duplicates dropped (order kept)."""
    return list(dict.fromkeys(line.strip() for line in str(text).splitlines() if line.strip()))


def _check_templates(templates: list[str]) -> None:
    if not templates:
        raise ValueError("give at least one prompt template, e.g. 'a photo of a {}.'")
    for t in templates:
        if _placeholder(t) is None:
            raise ValueError(f"template {t!r} must contain the label placeholder {{}} (or {{label}}) exactly once "
                             f"and no other braces, e.g. 'a photo of a {{}}.'")


def _placeholder(template: str) -> str | None:
    for mark in ("{}", "{label}"):
        rest = template.replace(mark, "")
        if template.count(mark) == 1 and "{" not in rest and "}" not in rest:
            return mark
    return None


def fill(template: str, label: str) -> str:
    """The prompt for ``label``: ``template`` with its ``{}`` / ``{label}`` placeholder replaced."""
    return template.replace(_placeholder(template) or "{}", label)


def _scalar(embedder, name: str, default: float) -> float:
    value = getattr(embedder, name, None)
    if value is None:
        return default
    if hasattr(value, "detach"):
        value = value.detach().double().cpu()
    return float(value)


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)


class ZeroShotPlayground(Playground):
    """Image picker, label and template editors; the class probabilities update as you edit.

    Each label's text embedding is the normalised mean of its prompts' embeddings (CLIP's
    prompt ensembling); probabilities are ``softmax(logit_scale · image · labels)``.
    """

    title = "Zero-shot prompt editor"

    def __init__(self, embedder, images, labels, templates=("a photo of a {}.",), *, captions=None,
                 true_labels=None, image_index: int = 0, activation: str = "softmax", static: bool | None = None):
        super().__init__(static)
        import ipywidgets as W

        for method in ("embed_images", "embed_texts"):
            if not callable(getattr(embedder, method, None)):
                raise TypeError(f"embedder must have an {method}() method (like mmcourse.load_model(...)), "
                                f"got {type(embedder).__name__}")
        self.embedder = embedder
        self.images = list(images)
        if not self.images:
            raise ValueError("images is empty: give at least one image")
        n = len(self.images)
        self.captions = [str(c) for c in captions] if captions is not None else [f"image {i}" for i in range(n)]
        if len(self.captions) != n:
            raise ValueError(f"got {n} images but {len(self.captions)} captions")
        self.true_labels = list(true_labels) if true_labels is not None else None
        if self.true_labels is not None and len(self.true_labels) != n:
            raise ValueError(f"got {n} images but {len(self.true_labels)} true_labels")
        labels, templates = [str(x) for x in labels], [str(x) for x in templates]
        if not labels:
            raise ValueError("labels is empty: give at least one class name")
        _check_templates(templates)
        if not 0 <= image_index < n:
            raise ValueError(f"image_index must be in [0, {n}), got {image_index}")
        self.logit_scale = _scalar(embedder, "logit_scale", 100.0)  # CLIP's trained scale when not given
        self.logit_bias = _scalar(embedder, "logit_bias", 0.0)  # SigLIP's learned bias; 0 for CLIP
        self.image_features = _normalize(as_matrix(embedder.embed_images(self.images), "embed_images(images)"))  # (n, D)
        if self.image_features.shape[0] != n:
            raise ValueError(f"embed_images returned {self.image_features.shape[0]} rows for {n} images")
        self._text_cache: dict[str, np.ndarray] = {}

        self.controls["image"] = W.Dropdown(options=[(f"{i}: {c}", i) for i, c in enumerate(self.captions)],
                                            value=image_index, description="image")
        self.controls["labels"] = W.Textarea(value="\n".join(labels), description="labels",
                                             placeholder="one class name per line", continuous_update=False,
                                             layout=W.Layout(width="48%", height="9em"))
        self.controls["templates"] = W.Textarea(value="\n".join(templates), description="templates",
                                                placeholder="one prompt per line, {} marks the label",
                                                continuous_update=False, layout=W.Layout(width="48%", height="9em"))
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
        self.controls["activation"] = W.ToggleButtons(
            options=[("softmax: labels compete (CLIP)", "softmax"), ("sigmoid: each label alone (SigLIP)", "sigmoid")],
            value=activation, description="probability", style={"button_width": "230px"})
        self._watch()

    def _layout_controls(self):
        import ipywidgets as W

        c = self.controls
        return [c["image"], W.HBox([c["labels"], c["templates"]]), c["activation"]]

    @property
    def labels(self) -> list[str]:
        return parse_lines(self.controls["labels"].value)

    @property
    def templates(self) -> list[str]:
        return parse_lines(self.controls["templates"].value)

    def _embed_prompts(self, prompts: list[str]) -> np.ndarray:
        missing = [p for p in prompts if p not in self._text_cache]
        if missing:
            feats = _normalize(as_matrix(self.embedder.embed_texts(missing), "embed_texts(prompts)"))  # (k, D)
            self._text_cache.update(zip(missing, feats))
        return np.stack([self._text_cache[p] for p in prompts])  # (len(prompts), D)

    def class_embeddings(self, labels=None, templates=None) -> np.ndarray:
        """(C, D): per label, the normalised mean of its normalised prompt embeddings."""
        labels = self.labels if labels is None else labels
        templates = self.templates if templates is None else templates
        if not labels:
            raise ValueError("the label list is empty: write one class name per line")
        _check_templates(templates)
        prompts = [fill(t, label) for label in labels for t in templates]
        feats = self._embed_prompts(prompts).reshape(len(labels), len(templates), -1)  # (C, T, D)
        return _normalize(feats.mean(axis=1))  # (C, D)

    def probabilities(self, image_index: int | None = None, labels=None, templates=None,
                      activation: str | None = None) -> np.ndarray:
        """(C,) probabilities of each label for one image (the selected one by default).

        softmax: ``softmax(scale · cos)``, the labels compete; sigmoid: ``σ(scale · cos + bias)``,
        each label judged on its own (SigLIP), so they need not sum to 1.
        """
        i = self.controls["image"].value if image_index is None else image_index
        activation = self.controls["activation"].value if activation is None else activation
        logits = self.logit_scale * self.class_embeddings(labels, templates) @ self.image_features[i]  # (C,)
        if activation == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * (logits + self.logit_bias)))  # (C,) stable σ
        z = np.exp(logits - logits.max())  # (C,)
        return z / z.sum()

    def _draw(self, ax_img, ax_bar, i, labels, probs):
        ax_img.imshow(self.images[i])
        ax_img.set_title(self.captions[i][:40], fontsize=8)
        ax_img.axis("off")
        order = np.argsort(probs)[::-1][:12]  # most probable first, at most 12 bars
        truth = self.true_labels[i] if self.true_labels is not None else None
        colors = ["#2ca02c" if labels[j] == truth else ("#1f77b4" if k == 0 else "#9ecae1")
                  for k, j in enumerate(order)]
        ax_bar.barh(range(len(order)), probs[order], color=colors)
        ax_bar.set_yticks(range(len(order)), [labels[j][:28] for j in order], fontsize=7)
        ax_bar.invert_yaxis()
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(axis="x", labelsize=7)
        ax_bar.set_xlabel("probability", fontsize=8)

    def figure(self):
        i, labels = self.controls["image"].value, self.labels
        probs = self.probabilities()
        fig = new_figure(7.0, 2.8)
        ax_img, ax_bar = fig.subplots(1, 2, width_ratios=[1, 2], gridspec_kw=dict(
            left=0.03, right=0.97, bottom=0.17, top=0.9, wspace=0.45))
        self._draw(ax_img, ax_bar, i, labels, probs)
        return fig

    def static_figure(self):
        shown = list(range(min(4, len(self.images))))
        labels = self.labels
        height = 2.3 * len(shown) + 0.4
        fig = new_figure(7.0, height)
        axes = fig.subplots(len(shown), 2, squeeze=False, width_ratios=[1, 2], gridspec_kw=dict(
            left=0.03, right=0.97, bottom=0.45 / height, top=1 - 0.6 / height, wspace=0.45, hspace=0.45))
        for (ax_img, ax_bar), i in zip(axes, shown):
            self._draw(ax_img, ax_bar, i, labels, self.probabilities(i))
        fig.suptitle(f"zero-shot probabilities, {len(self.templates)} template(s) per label "
                     f"(static view; editors in JupyterLab)", fontsize=9)
        return fig

    def summary_html(self) -> str:
        labels, probs = self.labels, self.probabilities()
        top = int(np.argmax(probs))
        i = self.controls["image"].value
        verdict = ""
        if self.true_labels is not None:
            ok = labels[top] == self.true_labels[i]
            verdict = " (correct)" if ok else f" (true label: {escape(self.true_labels[i])})"
        act = self.controls["activation"].value
        total = f"sum {probs.sum():.2f}" if act == "sigmoid" else "sums to 1"
        return (f'<div class="mmcourse-summary">prediction: <b>{escape(labels[top])}</b> '
                f"p={probs[top]:.3f}{verdict}; {len(labels)} labels × {len(self.templates)} templates "
                f"= {len(labels) * len(self.templates)} prompts, logit scale {self.logit_scale:.1f}, "
                f"{act} ({total}).</div>")


def zero_shot_playground(embedder, images, labels, templates=("a photo of a {}.",), **kwargs) -> ZeroShotPlayground:
    """Pick an image, edit labels and templates (one per line, ``{}`` marks the label), see the probabilities.

    ``embedder`` is anything with ``embed_images(list_of_images)`` and ``embed_texts(list_of_str)``
    (e.g. ``mmcourse.load_model("course/clip-shapes")``) and, optionally, ``logit_scale``.
    Keyword arguments: ``captions`` (one per image, for the picker), ``true_labels`` (marks the
    right answer green), ``image_index``, ``activation`` ("softmax" or "sigmoid", which uses the
    embedder's ``logit_bias``), ``static``.
    """
    return ZeroShotPlayground(embedder, images, labels, templates, **kwargs)
