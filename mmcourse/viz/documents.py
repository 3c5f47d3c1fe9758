"""Plots for document retrieval: page galleries and MaxSim similarity maps over a page."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["show_pages", "maxsim_map", "plot_maxsim_map"]


def show_pages(images, titles=None, cols: int = 4, size: float = 2.6):
    """A grid of page images with optional titles; returns the figure (the course's one image grid)."""
    from .images import image_grid

    return image_grid(images, titles, cols=cols, size=size)


def maxsim_map(query: torch.Tensor, page: torch.Tensor, token: int, grid: int | None = None) -> np.ndarray:
    """Similarity of query token ``token`` to every patch, as a ``(grid, grid)`` array.

    ``query`` is ``(Tq, D)``, ``page`` is ``(P, D)`` with ``P = grid * grid`` patches in
    row-major order (as the page tower emits them).
    """
    if query.dim() != 2 or page.dim() != 2 or query.shape[1] != page.shape[1]:
        raise ValueError(f"expected query (Tq, D) and page (P, D) with the same D, got "
                         f"{tuple(query.shape)} and {tuple(page.shape)}")
    if not -query.shape[0] <= token < query.shape[0]:
        raise ValueError(f"token {token} out of range for a query of {query.shape[0]} tokens")
    grid = grid or int(round(page.shape[0] ** 0.5))
    if grid * grid != page.shape[0]:
        raise ValueError(f"{page.shape[0]} patches do not form a {grid} x {grid} grid")
    sims = page.float() @ query[token].float()  # (P,)
    return sims.reshape(grid, grid).cpu().numpy()


def plot_maxsim_map(image, query: torch.Tensor, page: torch.Tensor, token: int, token_text: str = "",
                    ax=None, alpha: float = 0.55):
    """The page with query token ``token``'s patch similarities overlaid; the best patch is boxed."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    sims = maxsim_map(query, page, token)
    ax = ax or plt.gca()
    w, h = image.size
    ax.imshow(image)
    ax.imshow(sims, cmap="magma", alpha=alpha, extent=(0, w, h, 0), interpolation="nearest")
    g = sims.shape[0]
    r, c = np.unravel_index(int(np.argmax(sims)), sims.shape)
    ax.add_patch(Rectangle((c * w / g, r * h / g), w / g, h / g, fill=False, edgecolor="cyan", linewidth=2))
    ax.set_title(f"{token_text!r}: max {sims.max():.2f}" if token_text else f"token {token}: max {sims.max():.2f}",
                 fontsize=9)
    ax.axis("off")
    return ax
