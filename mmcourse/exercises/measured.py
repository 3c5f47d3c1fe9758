"""Exercises checked by measuring the course model: a template contest, a paraphrase attack, a composition probe.

The model (``course/clip-shapes``) and the scenes load once per session, on the first check
that needs them; an unanswered exercise never loads anything.
"""
from __future__ import annotations

import functools
import re

import torch

HELDOUT_SEED = 1  # the held-out scenes of notebook 01
N_HELDOUT = 240


@functools.lru_cache(maxsize=1)
def course_model():
    import mmcourse
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a checker's output is its verdict, not a loading bar
    try:
        return mmcourse.load_model("course/clip-shapes", device="cpu")
    finally:
        if shown:
            hf_logging.enable_progress_bar()


@functools.lru_cache(maxsize=1)
def heldout():
    """Notebook 01's held-out scenes: images, true label indices, the 24 labels."""
    from ..data import shapes

    labels = shapes.labels("all")
    scenes = shapes.make_scenes(N_HELDOUT, "heldout", seed=HELDOUT_SEED)
    y = torch.tensor([labels.index(s.label) for s in scenes])  # (N,)
    return [s.image for s in scenes], y, labels


@functools.lru_cache(maxsize=1)
def _heldout_embeddings():
    images, _, _ = heldout()
    return course_model().embed_images(images)  # (N, D)


def course_ensemble() -> list[str]:
    from ..data import shapes

    return [t.replace("{color} {shape}", "{}") for t in shapes.TEMPLATES]


def vocabulary() -> set[str]:
    """Every colour and shape word of the labels (and their paraphrase lists' words are allowed)."""
    from ..data import shapes

    return set(shapes.COLORS) | set(shapes.SHAPES)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def zero_shot_accuracy(class_embeddings: torch.Tensor) -> torch.Tensor:
    """Per-image correctness ``(N,)`` of held-out zero-shot classification with these ``(L, D)`` class embeddings."""
    from ..retrieval import top_k_accuracy, zero_shot_logits

    _, y, _ = heldout()
    logits = zero_shot_logits(_heldout_embeddings(), class_embeddings, course_model().logit_scale)  # (N, L)
    return torch.from_numpy(top_k_accuracy(logits, y, per_query=True)).float()


def paraphrase_names(label: str) -> list[str]:
    """The label in words never seen in training: "red circle" → "crimson disc", "scarlet round dot", …"""
    from ..data import shapes

    color, shape = label.split(" ", 1)
    return [f"{c} {s}" for c in shapes.COLOR_PARAPHRASES[color] for s in shapes.SHAPE_PARAPHRASES[shape]]


def template_accuracy(templates) -> float:
    """Held-out accuracy when every label is named by its paraphrases, each put into every template."""
    from ..data import shapes
    from ..retrieval import class_embeddings

    templates = list(templates)
    _, _, labels = heldout()
    prompts = lambda label: [shapes.format_caption(t.replace("{}", "{color} {shape}"), *name.split(" ", 1))  # noqa: E731
                             for t in templates for name in paraphrase_names(label)]
    return float(zero_shot_accuracy(class_embeddings(course_model(), labels, prompts)).mean())


@functools.lru_cache(maxsize=1)
def _ensemble_classes():
    from ..retrieval import class_embeddings

    _, _, labels = heldout()
    return class_embeddings(course_model(), labels, course_ensemble())  # (L, D)


def attack_accuracy(label: str, phrase: str) -> tuple[float, float]:
    """Accuracy on the held-out images of ``label`` with the course ensemble, then with ``phrase`` naming it."""
    import torch.nn.functional as F

    _, y, labels = heldout()
    classes = _ensemble_classes()  # (L, D)
    mine = y == labels.index(label)
    before = float(zero_shot_accuracy(classes)[mine].mean())
    attacked = classes.clone()
    attacked[labels.index(label)] = F.normalize(course_model().embed_texts([phrase])[0], dim=-1)
    after = float(zero_shot_accuracy(attacked)[mine].mean())
    return before, after


def swap_test(n: int = 200, seed: int = 3) -> dict[str, float]:
    """Two-object scenes: how often the true caption beats (a) the attribute-swapped and (b) the order-swapped one.

    "a red circle left of a blue square" vs "a blue circle left of a red square" (same words) and vs
    "a blue square left of a red circle". Only scenes whose two objects differ in colour *and* shape count, so
    every swapped caption is false. A bag-of-words model scores 0.5 (chance).
    """
    from ..data import shapes

    scenes = [s for s in shapes.make_scenes(n, "all", seed=seed, objects=2)
              if s.objects[0][0] != s.objects[1][0] and s.objects[0][1] != s.objects[1][1]]
    model = course_model()

    def caption(a, relation, b):
        return f"a {a[0]} {a[1]} {relation} a {b[0]} {b[1]}"

    img = model.embed_images([s.image for s in scenes])  # (S, D)
    true = model.embed_texts([s.caption for s in scenes])  # (S, D)
    attr = model.embed_texts([caption((b[0], a[1]), s.relation, (a[0], b[1])) for s in scenes
                              for a, b in [s.objects]])  # (S, D)
    order = model.embed_texts([caption(s.objects[1], s.relation, s.objects[0]) for s in scenes])  # (S, D)
    score = lambda t: (img * t).sum(dim=1)  # noqa: E731  (S,) cosine per scene
    return {"scenes": len(scenes),
            "true beats attribute swap": float((score(true) > score(attr)).float().mean()),
            "true beats order swap": float((score(true) > score(order)).float().mean()),
            "text cosine, true vs attribute swap": float((true * attr).sum(dim=1).mean())}


# ----------------------------------------------------------------------------- problems checked by measuring
from dataclasses import dataclass  # noqa: E402
from typing import Any, Callable  # noqa: E402

from .problem_kinds import CORRECT, INCORRECT, Problem, Result  # noqa: E402


@dataclass
class MeasuredProblem(Problem):
    """An open-ended answer, checked by measuring what it does: ``validate`` the form, then ``measure`` it."""

    validate: Callable[[Any], str | None] | None = None  # None, or what is wrong with the answer's form
    measure: Callable[[Any], Result] | None = None

    def _check(self, value, **_) -> Result:
        problem = self.validate(value) if self.validate else None
        if problem:
            return Result(INCORRECT, problem)
        return self.measure(value)


def validate_templates(value) -> str | None:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        return f"expected a non-empty list of template strings such as ['a photo of a {{}}.'], got {type(value).__name__}"
    for t in value:
        if not isinstance(t, str) or t.count("{}") != 1:
            return f"every template must be a string with exactly one '{{}}' where the label goes; got {t!r}"
        bad = _words(t.replace("{}", " ")) & vocabulary()
        if bad:
            return (f"{t!r} names a colour or shape ({', '.join(sorted(bad))}): a template must work for every label, "
                    "so it cannot mention one")
    if len(value) > 20:
        return f"at most 20 templates, got {len(value)}"
    return None


def measure_templates(value) -> Result:
    theirs, baseline = template_accuracy(value), template_accuracy(course_ensemble())
    text = (f"held-out accuracy with paraphrased label names: yours {theirs:.3f}, the course's "
            f"{len(course_ensemble())}-template ensemble {baseline:.3f} (chance {1 / 24:.3f}).")
    if theirs >= baseline:
        return Result(CORRECT, text + " You match or beat the ensemble.")
    return Result(INCORRECT, text + " Not yet: which of your templates helps, and which adds noise? Try them one at a time.")


def validate_attack(value) -> str | None:
    from ..data import shapes

    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        return f"expected a pair (label, phrase) of two strings, e.g. ('red star', 'a ...'); got {value!r}"
    label, phrase = value
    if label not in shapes.labels("heldout"):
        return f"label must be one of the held-out labels {shapes.labels('heldout')}; got {label!r}"
    words = _words(phrase)
    if not words:
        return "the phrase is empty"
    own = set(label.split())
    others = (vocabulary() - own) & words
    if others:
        return (f"the phrase names another colour or shape ({', '.join(sorted(others))}): then it describes a different "
                "label, which is not a paraphrase")
    if words <= own | {"a", "an", "the"}:
        return "that is the label itself: find other words that mean the same"
    return None


def measure_attack(value) -> Result:
    label, phrase = value
    before, after = attack_accuracy(label, phrase)
    text = (f"accuracy on the held-out '{label}' images: {before:.2f} with the course's ensemble, {after:.2f} when the "
            f"label is named '{phrase}'.")
    note = (" The checker only verified that the phrase names no other colour or shape; whether it still means "
            f"'{label}' is yours to judge.")
    if after <= 0.5:
        return Result(CORRECT, text + " The model is fooled on most images." + note)
    return Result(INCORRECT, text + " Not fooled yet (the goal is 0.5 or below): try words the text encoder maps "
                                    "further from the training vocabulary." + note)
