"""viz.charts: the plots that moved out of training, the read-out and the index benchmark."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmcourse import viz  # noqa: E402
from mmcourse.scale.indexes import IndexResult  # noqa: E402
from mmcourse.training import History  # noqa: E402


def test_plot_history_draws_the_running_mean():
    history = History(losses=[4.0, 2.0, 0.0, 2.0, 4.0])
    fig, ax = plt.subplots()
    viz.plot_history(history, ax, "run", smooth=2)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [3.0, 1.0, 1.0, 3.0])
    assert line.get_label() == "run" and ax.get_xlabel() == "step"
    plt.close(fig)


def test_plot_sigmoid_vs_softmax_bars_match_the_readouts():
    logits = torch.tensor([[2.0, 0.0, -2.0]])
    fig, ax = plt.subplots()
    viz.plot_sigmoid_vs_softmax(logits, ["a", "b", "c"], ax=ax)
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights[:3], torch.sigmoid(logits[0]).numpy(), rtol=1e-6)
    np.testing.assert_allclose(heights[3:], torch.softmax(logits[0], -1).numpy(), rtol=1e-6)
    plt.close(fig)


def _row(name, params, recall, ms, bytes_per_vector):
    return IndexResult(name=name, factory=name, search_params=params, build_s=0.0, bytes_per_vector=bytes_per_vector,
                       recall_at_10=recall, ms_per_query=ms, threads=1, batch=1)


def test_plot_recall_latency_one_line_per_index():
    rows = [_row("Flat", "", 1.0, 2.0, 256.0), _row("HNSW", "efSearch=64", 0.95, 0.3, 512.0),
            _row("HNSW", "efSearch=16", 0.8, 0.1, 512.0)]
    fig, ax = plt.subplots()
    viz.plot_recall_latency(rows, ax=ax)
    lines = ax.get_lines()
    assert [line.get_label().split()[0] for line in lines] == ["Flat", "HNSW"]
    np.testing.assert_allclose(lines[1].get_ydata(), [0.8, 0.95])  # sorted by latency
    plt.close(fig)
