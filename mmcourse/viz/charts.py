"""Line and bar charts of measured numbers: loss curves, the two zero-shot read-outs, recall vs latency."""
from __future__ import annotations

from typing import Sequence

__all__ = ["plot_history", "plot_sigmoid_vs_softmax", "plot_recall_latency"]


def plot_history(history, ax=None, label: str | None = None, smooth: int = 1):
    """A :class:`~mmcourse.training.History`'s loss curve (optionally a running mean over ``smooth`` steps)."""
    import matplotlib.pyplot as plt
    import numpy as np

    ax = ax or plt.gca()
    y = np.asarray(history.losses, dtype=float)
    if smooth > 1 and len(y) >= smooth:
        y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
    ax.plot(np.arange(len(y)), y, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    return ax


def plot_sigmoid_vs_softmax(logits, labels: Sequence[str], row: int = 0, ax=None, title: str | None = None):
    """Bar chart of one image's sigmoid and softmax probabilities, side by side per label."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..retrieval.readout import probability_table

    rows = probability_table(logits, labels, row)
    ax = ax or plt.gca()
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["sigmoid"] for r in rows], width=0.4, label="sigmoid (independent)")
    ax.bar(x + 0.2, [r["softmax"] for r in rows], width=0.4, label="softmax (sums to 1)")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("probability")
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def plot_recall_latency(results, ax=None):
    """Recall@10 against ms per query (log scale) of :func:`mmcourse.scale.indexes.compare_indexes` results:
    one line per index, labelled by its search setting."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    for name in dict.fromkeys(r.name for r in results):
        rows = [r for r in results if r.name == name]
        rows.sort(key=lambda r: r.ms_per_query)
        ax.plot([r.ms_per_query for r in rows], [r.recall_at_10 for r in rows], "*" if len(rows) == 1 else "o-",
                ms=10 if len(rows) == 1 else 5, label=f"{name} ({rows[0].bytes_per_vector:.0f} B/vector)")
        for r in rows if len(rows) > 1 else []:
            ax.annotate(r.search_params.split("=")[-1], (r.ms_per_query, r.recall_at_10), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    first = results[0]
    ax.set_xscale("log")
    ax.set_xlabel(f"ms per query (log; {first.threads} FAISS thread(s), {first.batch} query per call)")
    ax.set_ylabel("recall@10 vs exact")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    return ax
