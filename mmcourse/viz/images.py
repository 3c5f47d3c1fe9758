"""Image plots: grids of images with captions (more arrive with the CLIP notebook)."""
from __future__ import annotations

__all__ = ["image_grid"]


def image_grid(images, captions=None, cols: int = 8, size: float = 1.6, title: str | None = None):
    """Show PIL images in a grid with optional captions; returns the figure."""
    import math

    import matplotlib.pyplot as plt

    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"got {len(images)} images but {len(captions)} captions")
    cols = min(cols, len(images))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * (size + 0.55)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(img)
        if captions is not None:
            ax.set_title(_wrap(captions[i], 22), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)[:3])
