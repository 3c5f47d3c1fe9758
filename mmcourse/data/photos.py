"""The real photographs that scikit-image ships, each with a caption we wrote.

They need no download, so the pretrained path (CLIP, SigLIP, open_clip on real
photos) and the demos work on a plane as soon as the hub weights are cached.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# name in skimage.data -> (caption, short label)
PHOTO_CAPTIONS: dict[str, tuple[str, str]] = {
    "astronaut": ("a portrait of an astronaut in a white spacesuit in front of a flag", "astronaut"),
    "chelsea": ("a close-up photo of a ginger tabby cat", "cat"),
    "coffee": ("a cup of coffee on a saucer seen from above", "coffee"),
    "rocket": ("a rocket standing on its launch pad", "rocket"),
    "camera": ("a black and white photo of a man with a camera on a tripod", "cameraman"),
    "coins": ("a grayscale photo of many old coins on a table", "coins"),
    "horse": ("a black silhouette of a horse on a white background", "horse"),
    "moon": ("a grayscale close-up of the cratered surface of the moon", "moon"),
    "page": ("a scanned page of printed text", "page of text"),
    "clock": ("a photo of a wall clock", "clock"),
    "hubble_deep_field": ("a deep-space telescope image full of distant galaxies", "galaxies"),
    "immunohistochemistry": ("a microscope image of stained tissue cells", "microscope slide"),
    "retina": ("a medical photo of the back of a human eye", "retina"),
    "brick": ("a grayscale texture of a brick wall", "brick wall"),
    "grass": ("a grayscale texture of grass", "grass"),
    "gravel": ("a grayscale texture of gravel", "gravel"),
    "colorwheel": ("a colour wheel showing every hue", "colour wheel"),
    "logo": ("the scikit-image logo: a snake made of image tiles", "logo"),
}


@dataclass
class Photo:
    name: str  # the skimage.data function that returns it
    image: Image.Image  # RGB
    caption: str
    label: str


def _to_rgb(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        lo, hi = float(array.min()), float(array.max())
        array = ((array - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    return Image.fromarray(array).convert("RGB")


def photo_names() -> list[str]:
    """Names of the captioned photos, in a fixed order."""
    return list(PHOTO_CAPTIONS)


def load_photos(names: list[str] | None = None, max_side: int | None = None) -> list[Photo]:
    """Load captioned scikit-image photos (all by default), optionally shrunk to ``max_side``."""
    from skimage import data as skdata

    names = photo_names() if names is None else list(names)
    unknown = [n for n in names if n not in PHOTO_CAPTIONS]
    if unknown:
        raise ValueError(f"unknown photo name(s) {unknown}; expected some of {photo_names()}")
    photos = []
    for name in names:
        image = _to_rgb(getattr(skdata, name)())
        if max_side:
            image.thumbnail((max_side, max_side))
        caption, label = PHOTO_CAPTIONS[name]
        photos.append(Photo(name, image, caption, label))
    return photos
