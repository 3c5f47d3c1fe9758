"""MaxSim explorer: pick a query token, see its similarity to every patch of the page."""
from __future__ import annotations

import numpy as np

from .base import Playground, as_matrix, escape, new_figure

__all__ = ["MaxSimPlayground", "maxsim_playground", "maxsim_playground_from_model"]


class MaxSimPlayground(Playground):
    """A query-token picker over a page; the heat map is that token's similarity to each patch.

    The late-interaction (ColBERT / ColPali) score is ``Σ_tokens max_patches q·p``: the bar
    chart shows each token's max, i.e. its contribution to the score.
    """

    title = "MaxSim explorer"

    def __init__(self, page, patch_embeddings, query_embeddings, query_tokens=None, *, grid=None,
                 token_index: int = 0, opacity: float = 0.55, static: bool | None = None):
        super().__init__(static)
        import ipywidgets as W

        self.page = page
        self.patches = as_matrix(patch_embeddings, "patch_embeddings")  # (P, D)
        self.queries = as_matrix(query_embeddings, "query_embeddings")  # (T, D)
        p, d = self.patches.shape
        t, dq = self.queries.shape
        if d != dq:
            raise ValueError(f"patch_embeddings have dimension {d} but query_embeddings {dq}")
        if grid is None:
            side = int(round(p ** 0.5))
            if side * side != p:
                raise ValueError(f"{p} patches are not a square grid: pass grid=(rows, cols) with rows*cols == {p}")
            grid = (side, side)
        rows, cols = (int(g) for g in grid)
        if rows * cols != p:
            raise ValueError(f"grid={tuple(grid)} has {rows * cols} cells but there are {p} patch embeddings; "
                             f"drop special/prefix tokens so that only the page's patches remain")
        self.grid = (rows, cols)
        self.tokens = [str(x) for x in query_tokens] if query_tokens is not None else [f"token {i}" for i in range(t)]
        if len(self.tokens) != t:
            raise ValueError(f"got {t} query embeddings but {len(self.tokens)} query_tokens")
        if not 0 <= token_index < t:
            raise ValueError(f"token_index must be in [0, {t}), got {token_index}")
        self.similarities = self.queries @ self.patches.T  # (T, P)
        self.opacity = float(opacity)
        self.controls["token"] = W.Dropdown(options=[(f"{i}: {tok}", i) for i, tok in enumerate(self.tokens)],
                                            value=token_index, description="query token")
        self._watch()

    @property
    def token_index(self) -> int:
        return int(self.controls["token"].value)

    def similarity_map(self, token_index: int | None = None) -> np.ndarray:
        """(rows, cols): the chosen token's similarity to each patch."""
        i = self.token_index if token_index is None else token_index
        return self.similarities[i].reshape(self.grid)

    def best_patch(self, token_index: int | None = None) -> tuple[int, int]:
        """(row, col) of the patch this token matches best: the one MaxSim keeps."""
        m = self.similarity_map(token_index)
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape))

    def token_maxima(self) -> np.ndarray:
        """(T,): each token's best patch similarity; their sum is the MaxSim score."""
        return self.similarities.max(axis=1)

    def score(self) -> float:
        """The late-interaction score Σ_t max_p q_t·p of this query and page."""
        return float(self.token_maxima().sum())

    def _draw_map(self, ax, i, vmin, vmax):
        import matplotlib.patches as mpatches

        width, height = _size(self.page)
        ax.imshow(self.page, extent=(0, width, height, 0))
        im = ax.imshow(self.similarity_map(i), extent=(0, width, height, 0), cmap="magma", vmin=vmin, vmax=vmax,
                       alpha=self.opacity, interpolation="nearest")
        r, c = self.best_patch(i)
        ph, pw = height / self.grid[0], width / self.grid[1]
        ax.add_patch(mpatches.Rectangle((c * pw, r * ph), pw, ph, fill=False, edgecolor="#00e5ff", linewidth=2))
        ax.set_title(f"{self.tokens[i][:24]!r}: max {self.similarities[i].max():.2f}", fontsize=8)
        ax.axis("off")
        return im

    def _draw_bars(self, ax, selected):
        maxima = self.token_maxima()
        colors = ["#d62728" if i == selected else "#9ecae1" for i in range(len(maxima))]
        ax.barh(range(len(maxima)), maxima, color=colors)
        ax.set_yticks(range(len(maxima)), [t[:18] for t in self.tokens], fontsize=7)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(f"each token's max (sum = MaxSim {self.score():.2f})", fontsize=8)

    def figure(self):
        vmin, vmax = float(self.similarities.min()), float(self.similarities.max())
        fig = new_figure(7.0, 3.6)
        ax_map, ax_bar = fig.subplots(1, 2, width_ratios=[3, 2], gridspec_kw=dict(
            left=0.02, right=0.97, bottom=0.12, top=0.9, wspace=0.55))
        im = self._draw_map(ax_map, self.token_index, vmin, vmax)
        fig.colorbar(im, ax=ax_map, shrink=0.8, label="similarity")
        self._draw_bars(ax_bar, self.token_index)
        return fig

    def static_figure(self):
        vmin, vmax = float(self.similarities.min()), float(self.similarities.max())
        shown = list(range(min(8, len(self.tokens))))
        cols = min(4, len(shown))
        rows = -(-len(shown) // cols)
        width, height = 1.9 * cols + 0.9, 2.2 * rows + 0.5
        fig = new_figure(width, height)
        axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw=dict(
            left=0.02, right=1 - 1.2 / width, bottom=0.1 / height, top=1 - 0.55 / height, wspace=0.1, hspace=0.3))
        for ax in axes.flat:
            ax.axis("off")
        for ax, i in zip(axes.flat, shown):
            im = self._draw_map(ax, i, vmin, vmax)
        fig.colorbar(im, cax=fig.add_axes((1 - 1.05 / width, 0.2, 0.12 / width, 0.6)), label="similarity")
        fig.suptitle(f"each query token's similarity map (MaxSim {self.score():.2f}; static view)", fontsize=9)
        return fig

    def summary_html(self) -> str:
        i = self.token_index
        r, c = self.best_patch()
        return (f'<div class="mmcourse-summary">token <b>{escape(self.tokens[i])}</b>: best patch '
                f"(row {r}, col {c}) of {self.grid[0]}×{self.grid[1]}, similarity "
                f"<b>{self.similarities[i].max():.3f}</b>; MaxSim score over {len(self.tokens)} tokens "
                f"<b>{self.score():.3f}</b>.</div>")


def _size(page):
    if hasattr(page, "size") and isinstance(page.size, tuple):  # PIL image: (width, height)
        return page.size
    arr = np.asarray(page)
    if arr.ndim not in (2, 3):
        raise ValueError(f"page must be a PIL image or an (H, W[, C]) array, got shape {arr.shape}")
    return arr.shape[1], arr.shape[0]


def maxsim_playground(page, patch_embeddings, query_embeddings, query_tokens=None, **kwargs) -> MaxSimPlayground:
    """Pick a query token and see its similarity map over the page (ColPali-style late interaction).

    ``patch_embeddings`` (P, D) are the page's patch vectors in row-major grid order,
    ``query_embeddings`` (T, D) the query's token vectors, ``query_tokens`` their strings.
    Keyword arguments: ``grid=(rows, cols)`` (square by default), ``token_index``, ``opacity``, ``static``.
    """
    return MaxSimPlayground(page, patch_embeddings, query_embeddings, query_tokens, **kwargs)


def maxsim_playground_from_model(model, page, query: str, **kwargs) -> MaxSimPlayground:
    """Embed one page and one query with a multi-vector model, then :func:`maxsim_playground`.

    ``model`` has ``embed_pages([image]) -> [(P, D)]`` and ``embed_queries([text]) -> [(T, D)]``
    (``mmcourse.load_model("course/colpali-pages")``). The grid comes from ``model.config.grid``
    when the model has one; otherwise the first ``side**2`` vectors are taken as the patch grid
    (ColPali puts its 1024 = 32×32 image patches before the prompt tokens). Token strings come
    from ``model.processor`` when it is a tokenizer; otherwise tokens are numbered.
    """
    patches = model.embed_pages([page])[0]  # (P, D)
    queries = model.embed_queries([query])[0]  # (T, D)
    grid = kwargs.pop("grid", None)
    side = getattr(getattr(model, "config", None), "grid", None)
    if grid is None and isinstance(side, int):
        grid = (side, side)
    if grid is None:
        side = int(len(patches) ** 0.5)
        grid = (side, side)
    patches = patches[: grid[0] * grid[1]]
    tokens = kwargs.pop("query_tokens", None)
    processor = getattr(model, "processor", None)
    if tokens is None and hasattr(processor, "convert_ids_to_tokens"):
        try:
            ids = processor(query)["input_ids"]
            tokens = processor.convert_ids_to_tokens(ids)
        except Exception:  # a processor that is not a plain tokenizer: number the tokens instead
            tokens = None
        if tokens is not None and len(tokens) != len(queries):
            tokens = None
    return MaxSimPlayground(page, patches, queries, tokens, grid=grid, **kwargs)
