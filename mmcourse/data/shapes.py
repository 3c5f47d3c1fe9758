"""Procedurally drawn image–caption scenes with named compositional splits.

Each scene is a coloured shape on a lightly tinted background. Six colours times
four shapes give 24 colour–shape combinations; ``HELDOUT_COMBOS`` names six of them
that never appear in the training split, so a model that classifies them correctly
has composed "colour" and "shape" rather than memorised pairs.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from ..validate import integer, positive_int

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 55),
    "blue": (35, 75, 215),
    "yellow": (235, 205, 30),
    "purple": (135, 55, 185),
    "orange": (245, 135, 25),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

# One combination per colour, never drawn in the training split.
HELDOUT_COMBOS: tuple[tuple[str, str], ...] = (
    ("red", "star"),
    ("green", "circle"),
    ("blue", "triangle"),
    ("yellow", "square"),
    ("purple", "circle"),
    ("orange", "triangle"),
)
TRAIN_COMBOS: tuple[tuple[str, str], ...] = tuple(
    (c, s) for c in COLORS for s in SHAPES if (c, s) not in HELDOUT_COMBOS
)
ALL_COMBOS: tuple[tuple[str, str], ...] = tuple((c, s) for c in COLORS for s in SHAPES)
SPLITS = ("train", "heldout", "all")

# Caption templates used for training captions (and, by the notebooks, as prompts).
TEMPLATES: tuple[str, ...] = (
    "a photo of a {color} {shape}.",
    "a {color} {shape}",
    "a drawing of a {color} {shape}.",
    "a picture showing a {color} {shape}.",
    "a simple {color} {shape} on a plain background",
)
# Words that never occur in training captions, not even inside another word ("navy blue", "lemon-yellow" and
# "starburst" would leak a training word): zero-shot prompts with these test paraphrase robustness, and
# tests/test_shapes.py checks the rule against the tokenizer.
COLOR_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet"),
    "green": ("emerald", "jade"),
    "blue": ("azure", "navy"),
    "yellow": ("golden", "lemon"),
    "purple": ("violet", "lilac"),
    "orange": ("tangerine", "amber"),
}
SHAPE_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "circle": ("disc", "round dot"),
    "square": ("box", "four-sided block"),
    "triangle": ("three-sided shape", "pyramid outline"),
    "star": ("pentagram", "five-pointed figure"),
}
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def format_caption(template: str, color: str, shape: str) -> str:
    """Fill a template with a colour and a shape, fixing the article: "an orange star"."""
    return _ARTICLE.sub(r"\1n ", template.format(color=color, shape=shape))


@dataclass
class Scene:
    """One drawn scene. For two-object scenes ``color``/``shape`` describe the first object."""

    image: Image.Image  # RGB, size x size
    caption: str
    color: str
    shape: str
    objects: list[tuple[str, str]] = field(default_factory=list)  # [(color, shape), ...]
    relation: str | None = None  # for two-object scenes: "left of", ...

    @property
    def label(self) -> str:
        """The class name used for zero-shot classification, e.g. ``"red circle"``."""
        return f"{self.color} {self.shape}"


def combos(split: str = "train") -> tuple[tuple[str, str], ...]:
    """Colour–shape combinations of a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return {"train": TRAIN_COMBOS, "heldout": HELDOUT_COMBOS, "all": ALL_COMBOS}[split]


def labels(split: str = "all") -> list[str]:
    """Class names ``"colour shape"`` of a split, in a fixed order."""
    return [f"{c} {s}" for c, s in combos(split)]


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        k, radii = 4, (r * 1.15,)
        angle += math.pi / 4
    elif shape == "triangle":
        k, radii = 3, (r * 1.2,)
        angle -= math.pi / 2
    elif shape == "star":
        k, radii = 10, (r * 1.2, r * 0.5)
        angle -= math.pi / 2
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    pts = []
    for i in range(k):
        rad = radii[i % len(radii)]
        a = angle + 2 * math.pi * i / k
        pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return pts


def _draw_object(draw: ImageDraw.ImageDraw, shape: str, rgb, cx, cy, r, angle) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=rgb)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, angle), fill=rgb)


def _jitter(rgb, rng: np.random.Generator, amount: int = 18) -> tuple[int, int, int]:
    noise = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(min(255, max(0, c + d))) for c, d in zip(rgb, noise))


def draw_scene(objects: list[tuple[str, str]], rng: np.random.Generator, size: int = 64,
               relation: str | None = None) -> Image.Image:
    """Draw one or two (colour, shape) objects; with two, ``relation`` places the first."""
    tint = rng.integers(205, 256, size=3)
    img = Image.new("RGB", (size, size), tuple(int(t) for t in tint))
    draw = ImageDraw.Draw(img)
    if len(objects) == 1:
        r = size * rng.uniform(0.18, 0.34)
        cx, cy = rng.uniform(r * 1.2, size - r * 1.2, size=2)
        placements = [(cx, cy, r)]
    else:
        r = size * rng.uniform(0.12, 0.18)
        a, b = rng.uniform(0.25, 0.75, size=2) * size
        offset = size * 0.25
        first, second = {
            "left of": ((size / 2 - offset, b), (size / 2 + offset, b)),
            "right of": ((size / 2 + offset, b), (size / 2 - offset, b)),
            "above": ((a, size / 2 - offset), (a, size / 2 + offset)),
            "below": ((a, size / 2 + offset), (a, size / 2 - offset)),
        }[relation]
        placements = [(*first, r), (*second, r)]
    for (color, shape), (cx, cy, rad) in zip(objects, placements):
        _draw_object(draw, shape, _jitter(COLORS[color], rng), cx, cy, rad, rng.uniform(-0.35, 0.35))
    return img


def make_scenes(n: int, split: str = "train", seed: int = 0, size: int = 64, objects: int = 1,
                templates: tuple[str, ...] | None = None) -> list[Scene]:
    """Draw ``n`` captioned scenes of a split (``"train"``, ``"heldout"`` or ``"all"``).

    Deterministic: the same arguments give the same images and captions. With
    ``objects=2`` each scene holds two objects and a caption such as
    "a red circle left of a blue square"; the first object is always from the split.
    """
    positive_int(n, "n")
    integer(size, "size", minimum=16, unit="pixels")
    if objects not in (1, 2):
        raise ValueError(f"objects must be 1 or 2, got {objects!r}")
    pool = combos(split)
    templates = tuple(templates) if templates else TEMPLATES
    rng = np.random.default_rng([seed, SPLITS.index(split), objects, size])
    scenes = []
    for _ in range(int(n)):
        color, shape = pool[rng.integers(len(pool))]
        if objects == 1:
            img = draw_scene([(color, shape)], rng, size)
            tmpl = templates[rng.integers(len(templates))]
            scenes.append(Scene(img, format_caption(tmpl, color, shape), color, shape, [(color, shape)]))
        else:
            other = ALL_COMBOS[rng.integers(len(ALL_COMBOS))]
            while other == (color, shape):
                other = ALL_COMBOS[rng.integers(len(ALL_COMBOS))]
            relation = RELATIONS[rng.integers(len(RELATIONS))]
            img = draw_scene([(color, shape), other], rng, size, relation)
            caption = format_caption(f"a {{color}} {{shape}} {relation} a {other[0]} {other[1]}", color, shape)
            scenes.append(Scene(img, caption, color, shape, [(color, shape), other], relation))
    return scenes


def paraphrase_prompts(label: str) -> list[str]:
    """Prompts for a ``"colour shape"`` label that use only words never seen in training."""
    color, shape = label.split(" ", 1)
    return [format_caption("a {color} {shape}", c, s) for c in COLOR_PARAPHRASES[color] for s in SHAPE_PARAPHRASES[shape]]
