"""Hybrid-search weight slider: the ranked results (thumbnails) update as the weight moves."""
from __future__ import annotations

from collections.abc import Mapping

from .base import Playground, escape, new_figure

__all__ = ["HybridSearchPlayground", "hybrid_search_playground"]


class HybridSearchPlayground(Playground):
    """A query picker and a fusion-weight slider over a search callable; top-k thumbnails below.

    ``search(query, weight)`` returns the ranking, best first, as ``(doc_id, score)`` pairs,
    hit objects with ``.id`` and ``.score`` (and optionally ``.scores``, a per-modality dict,
    as ``MultimodalIndex.search`` returns), or bare doc ids; ``thumbnails[doc_id]`` is the
    image shown for a document (text-only documents get a card with their caption).
    """

    title = "Hybrid search: fusion weight"

    def __init__(self, search, queries, thumbnails, *, captions=None, k: int = 5, weight: float = 0.5,
                 relevant=None, weight_label: str = "image weight", static_weights=(0.0, 0.5, 1.0),
                 static: bool | None = None):
        super().__init__(static)
        import ipywidgets as W

        if not callable(search):
            raise TypeError(f"search must be a callable search(query, weight) -> ranking, got {type(search).__name__}")
        self.search = search
        if isinstance(queries, Mapping):
            self.queries = dict(queries)  # shown name -> query object
        else:
            self.queries = {str(q): q for q in queries}
        if not self.queries:
            raise ValueError("queries is empty: give at least one query")
        self.thumbnails = thumbnails
        self.captions = captions
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        self.k = k
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight!r}")
        self.relevant = relevant  # query name -> set of relevant doc ids (optional)
        self.static_weights = tuple(static_weights)
        self.weight_label = weight_label
        self._parts: dict = {}  # doc id -> per-modality scores of the last search, when the hits carry them
        self.controls["query"] = W.Dropdown(options=list(self.queries), description="query",
                                            layout=W.Layout(width="60%"))
        self.controls["weight"] = W.FloatSlider(value=weight, min=0.0, max=1.0, step=0.05, description=weight_label,
                                                continuous_update=False, readout_format=".2f",
                                                style={"description_width": "initial"}, layout=W.Layout(width="520px"))
        self._watch()

    @property
    def query_name(self) -> str:
        return self.controls["query"].value

    @property
    def weight(self) -> float:
        return float(self.controls["weight"].value)

    def results(self, query_name: str | None = None, weight: float | None = None) -> list[tuple[object, float | None]]:
        """The top-k ``(doc_id, score)`` for the current (or given) query and weight; score None if not given."""
        name = self.query_name if query_name is None else query_name
        w = self.weight if weight is None else weight
        ranking = self.search(self.queries[name], w)
        out, self._parts = [], {}
        for item in list(ranking)[: self.k]:
            parts = None
            if hasattr(item, "id") and hasattr(item, "score"):  # a hit object, e.g. MultimodalIndex's SearchHit
                doc, score, parts = item.id, item.score, getattr(item, "scores", None)
            elif isinstance(item, (tuple, list)) and len(item) >= 2:
                doc, score = item[0], item[1]
            else:
                doc, score = item, None
            if hasattr(doc, "item"):  # numpy / torch scalar ids
                doc = doc.item()
            score = None if score is None else float(score)
            if isinstance(parts, Mapping):
                self._parts[doc] = {str(m): float(v) for m, v in parts.items()}
            out.append((doc, score))
        return out

    def ranked_ids(self, query_name: str | None = None, weight: float | None = None) -> list:
        return [doc for doc, _ in self.results(query_name, weight)]

    def _thumb(self, doc):
        """The document's image, or None (a text-only document, or one without a thumbnail)."""
        try:
            return self.thumbnails[doc]
        except (KeyError, IndexError, TypeError):
            return None

    def _caption(self, doc) -> str:
        if self.captions is None:
            return str(doc)
        try:
            return str(self.captions[doc])
        except (KeyError, IndexError, TypeError):
            return str(doc)

    def _is_relevant(self, name, doc) -> bool | None:
        if self.relevant is None:
            return None
        return doc in set(self.relevant.get(name, ()))

    def _draw_row(self, axes, name, weight):
        results = self.results(name, weight)
        for ax in axes:
            ax.axis("off")
        for rank, (ax, (doc, score)) in enumerate(zip(axes, results), start=1):
            thumb = self._thumb(doc)
            if thumb is not None:
                ax.imshow(thumb)
            else:  # a text-only document: show its words on a grey card
                ax.axis("on")
                ax.set_facecolor("#eeeeee")
                ax.text(0.5, 0.5, _wrap(self._caption(doc), 16), ha="center", va="center", fontsize=6,
                        transform=ax.transAxes)
            label = f"#{rank} {self._caption(doc)[:18]}" + ("" if score is None else f"\n{score:.3f}")
            ax.set_title(label, fontsize=7)
            hit = self._is_relevant(name, doc)
            if hit is not None or thumb is None:
                ax.axis("on")
                ax.set_xticks([])
                ax.set_yticks([])
            if hit is not None:
                for spine in ax.spines.values():
                    spine.set_edgecolor("#2ca02c" if hit else "#d62728")
                    spine.set_linewidth(3)
        axes[0].text(-0.15, 0.5, f"{self.weight_label}\n{weight:.2f}", transform=axes[0].transAxes, rotation=90,
                     ha="right", va="center", fontsize=8)

    def figure(self):
        width = 1.45 * self.k + 0.3
        fig = new_figure(width, 2.0)
        axes = fig.subplots(1, self.k, squeeze=False, gridspec_kw=dict(
            left=0.3 / width, right=0.99, bottom=0.03, top=0.78, wspace=0.08))[0]
        self._draw_row(axes, self.query_name, self.weight)
        return fig

    def static_figure(self):
        weights = list(dict.fromkeys(self.static_weights))
        width, height = 1.45 * self.k + 0.3, 1.9 * len(weights) + 0.4
        fig = new_figure(width, height)
        axes = fig.subplots(len(weights), self.k, squeeze=False, gridspec_kw=dict(
            left=0.3 / width, right=0.99, bottom=0.05 / height, top=1 - 0.75 / height, wspace=0.08, hspace=0.45))
        for row, w in zip(axes, weights):
            self._draw_row(row, self.query_name, w)
        fig.suptitle(f"top-{self.k} for {self.query_name!r} at {len(weights)} weights (static view)", fontsize=9)
        return fig

    def summary_html(self) -> str:
        name = self.query_name
        results = self.results()
        items = "".join(
            f"<li>{escape(self._caption(doc))}" + ("" if s is None else f" ({s:.3f})")
            + "".join(f" {escape(m)} {v:.2f}" for m, v in self._parts.get(doc, {}).items())
            + {True: " ✓", False: " ✗", None: ""}[self._is_relevant(name, doc)] + "</li>"
            for doc, s in results)
        hits = ""
        if self.relevant is not None:
            n_hit = sum(bool(self._is_relevant(name, doc)) for doc, _ in results)
            hits = f" {n_hit}/{len(results)} relevant."
        return (f'<div class="mmcourse-summary">query <b>{escape(name)}</b>, weight {self.weight:.2f}.{hits}'
                f'<ol class="mmcourse-ranking">{items}</ol></div>')


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width)[:5])


def hybrid_search_playground(search, queries, thumbnails, **kwargs) -> HybridSearchPlayground:
    """A fusion-weight slider over ``search(query, weight) -> [(doc_id, score), ...]`` with top-k thumbnails.

    ``queries``: a list of query strings or a mapping shown name -> query object;
    ``thumbnails``: a list or mapping doc_id -> image (a missing or None image, e.g. a text-only
    document, is drawn as a grey card with its caption). Keyword arguments: ``captions``
    (doc_id -> text), ``k`` (5), ``weight`` (0.5), ``relevant`` (query name -> set of
    relevant doc ids: hits framed green, misses red), ``weight_label``, ``static_weights``
    ((0, 0.5, 1): the rows of the static figure), ``static``.
    """
    return HybridSearchPlayground(search, queries, thumbnails, **kwargs)
