"""Image plots: grids, similarity heatmaps with thumbnails, retrieval galleries, confusion matrices."""
from __future__ import annotations

__all__ = ["image_grid", "similarity_heatmap", "retrieval_gallery", "confusion_matrix_plot"]


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


def _thumb(img, size: int = 64):
    """A small RGB numpy thumbnail of a PIL image / array (for plots)."""
    import numpy as np
    from PIL import Image

    if not isinstance(img, Image.Image):
        from ..models.embedder import to_pil_images

        img = to_pil_images(img)[0]
    img = img.convert("RGB")
    img.thumbnail((size, size))
    return np.asarray(img)


def _as_numpy(matrix, what: str):
    import numpy as np

    if hasattr(matrix, "detach"):
        matrix = matrix.detach().cpu().float().numpy()
    arr = np.asarray(matrix, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix, got shape {arr.shape}")
    return arr


def similarity_heatmap(sim, images, texts, title: str | None = None, annotate: bool = True,
                       cmap: str = "viridis", size: float = 0.9):
    """Cosine similarities of images (columns, shown as thumbnails on top) and texts (rows).

    ``sim`` is ``(N_images, N_texts)``, as ``image_embeds @ text_embeds.T`` gives it; the
    best text of each image is outlined. Returns the figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    s = _as_numpy(sim, "sim")
    images, texts = list(images), [str(t) for t in texts]
    if s.shape != (len(images), len(texts)):
        raise ValueError(f"sim has shape {s.shape} but there are {len(images)} images and {len(texts)} texts "
                         "(expected (N_images, N_texts))")
    grid = s.T  # (texts, images)
    n_img, n_txt = len(images), len(texts)
    fig = plt.figure(figsize=(2.2 + size * n_img, 1.2 + size * (n_txt + 1.1)))
    ax = fig.add_axes([0.3, 0.05, 0.65, 0.95 * n_txt / (n_txt + 1.3)])
    ax.imshow(grid, cmap=cmap, aspect="auto")
    ax.set_yticks(range(n_txt), [_wrap(t, 32) for t in texts], fontsize=8)
    ax.set_xticks([])
    for j in range(n_img):
        best = int(np.argmax(grid[:, j]))
        ax.add_patch(Rectangle((j - 0.5, best - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        if annotate:
            for i in range(n_txt):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < grid.mean() else "black")
        # thumbnail above column j
        ax.imshow(_thumb(images[j]), extent=(j - 0.45, j + 0.45, -0.6, -1.5), clip_on=False)
    ax.set_xlim(-0.5, n_img - 0.5)
    ax.set_ylim(n_txt - 0.5, -1.55)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or "cosine similarity (red box: best text for each image)", fontsize=10, pad=4)
    return fig


def retrieval_gallery(queries, images, scores, k: int = 5, relevant=None, captions=None,
                      title: str | None = None, size: float = 1.5):
    """One row per query: the query (text, or an image thumbnail) then its top-``k`` images with scores.

    ``scores`` is ``(Q, N)`` (higher is better) over the ``N`` ``images``; ``relevant`` optionally
    gives, per query, the set of relevant image indices (hits framed green, misses red).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    s = _as_numpy(scores, "scores")
    queries, images = list(queries), list(images)
    if s.shape != (len(queries), len(images)):
        raise ValueError(f"scores has shape {s.shape}, expected (len(queries), len(images)) = "
                         f"{(len(queries), len(images))}")
    if relevant is not None and len(relevant) != len(queries):
        raise ValueError(f"relevant has {len(relevant)} entries for {len(queries)} queries")
    k = min(int(k), len(images))
    fig, axes = plt.subplots(len(queries), k + 1, figsize=((k + 1.4) * size, len(queries) * (size + 0.3)),
                             squeeze=False, gridspec_kw={"width_ratios": [1.4] + [1] * k})
    for q, query in enumerate(queries):
        ax = axes[q, 0]
        ax.axis("off")
        if isinstance(query, str):
            ax.text(0.5, 0.5, _wrap(query, 18), ha="center", va="center", fontsize=9, wrap=True)
        else:
            ax.imshow(_thumb(query, 96))
            ax.set_title("query", fontsize=8)
        order = np.argsort(-s[q], kind="stable")[:k]
        rel = None if relevant is None else {int(r) for r in np.atleast_1d(relevant[q])}
        for r, idx in enumerate(order):
            ax = axes[q, r + 1]
            ax.imshow(_thumb(images[idx], 96))
            ax.set_xticks([])
            ax.set_yticks([])
            label = f"#{r + 1}  {s[q, idx]:.3f}"
            if captions is not None:
                label += "\n" + _wrap(captions[idx], 18)
            ax.set_title(label, fontsize=7)
            color = "0.7" if rel is None else ("green" if int(idx) in rel else "red")
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.5 if rel is not None else 1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(y_true, y_pred, labels, normalize: bool = True, title: str | None = None,
                          cmap: str = "Blues", ax=None):
    """Confusion matrix (rows: true label, columns: predicted); ``y_*`` are label indices or names.

    With ``normalize`` each row sums to 1 (per-class recall on the diagonal). Returns the figure.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [str(x) for x in labels]
    index = {name: i for i, name in enumerate(labels)}

    def to_idx(ys, what):
        ys = ys.tolist() if hasattr(ys, "tolist") else list(ys)
        out = []
        for y in ys:
            if isinstance(y, str):
                if y not in index:
                    raise ValueError(f"{what}: unknown label {y!r}")
                out.append(index[y])
            else:
                if not 0 <= int(y) < len(labels):
                    raise ValueError(f"{what}: index {y!r} outside [0, {len(labels)})")
                out.append(int(y))
        return np.asarray(out, dtype=int)

    t, p = to_idx(y_true, "y_true"), to_idx(y_pred, "y_pred")
    if len(t) != len(p) or len(t) == 0:
        raise ValueError(f"y_true and y_pred must be non-empty and equally long, got {len(t)} and {len(p)}")
    counts = np.zeros((len(labels), len(labels)))
    np.add.at(counts, (t, p), 1)
    shown = counts / np.maximum(counts.sum(1, keepdims=True), 1) if normalize else counts
    if ax is None:
        side = 2 + 0.32 * len(labels)
        fig, ax = plt.subplots(figsize=(side + 1, side))
    else:
        fig = ax.figure
    im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in zip(*np.nonzero(counts)):
        ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else int(counts[i, j]), ha="center", va="center",
                fontsize=6, color="white" if shown[i, j] > 0.5 * shown.max() else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title or f"confusion matrix (accuracy {np.trace(counts) / counts.sum():.3f})", fontsize=10)
    return fig
