"""Temperature and bias over a batch of similarities: softmax (InfoNCE) vs sigmoid (SigLIP)."""
from __future__ import annotations

import numpy as np

from .base import Playground, as_matrix, escape, new_figure

__all__ = ["TemperaturePlayground", "temperature_playground", "softmax_and_sigmoid"]

CLIP_TEMPERATURE = 0.07  # CLIP's initial temperature (logit scale 1/0.07 ≈ 14.3)
SIGLIP_SETTING = (0.1, -10.0)  # SigLIP's initial temperature (scale 10) and bias


def softmax_and_sigmoid(similarities: np.ndarray, temperature: float, bias: float):
    """Row softmax and elementwise sigmoid of ``similarities / temperature + bias``. Both (N, M)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    logits = similarities / temperature + bias  # (N, M)
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, M) stable softmax; bias cancels here
    softmax = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)  # (N, M) rows sum to 1
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * logits))  # (N, M) stable σ(z)
    return softmax, sigmoid


def _losses(similarities, targets, temperature, bias):
    """InfoNCE (rows, cross-entropy to ``targets``) and SigLIP's pairwise sigmoid loss (÷ N)."""
    logits = similarities / temperature + bias  # (N, M)
    n = logits.shape[0]
    log_softmax = logits - logits.max(axis=1, keepdims=True)
    log_softmax = log_softmax - np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))  # (N, M)
    infonce = -log_softmax[np.arange(n), targets].mean()
    signs = -np.ones_like(logits)  # (N, M): -1 for negatives
    signs[np.arange(n), targets] = 1.0  # +1 for each row's positive
    sigmoid_loss = np.logaddexp(0.0, -signs * logits).sum() / n  # -log σ(s·z) = log(1 + e^{-s·z})
    return float(infonce), float(sigmoid_loss)


_STYLE = {"description_width": "90px"}  # both sliders start at the same x
_WIDE = {"width": "520px"}


class TemperaturePlayground(Playground):
    """Sliders for temperature and bias; softmax and sigmoid probability matrices side by side."""

    title = "Temperature and bias: softmax (InfoNCE) vs sigmoid (SigLIP)"

    def __init__(self, similarities, *, temperature: float = CLIP_TEMPERATURE, bias: float = 0.0,
                 row_labels=None, col_labels=None, targets=None, static: bool | None = None):
        super().__init__(static)
        import ipywidgets as W

        self.similarities = as_matrix(similarities, "similarities")  # (N, M)
        n, m = self.similarities.shape
        self.row_labels = _labels(row_labels, n, "row_labels", "img")
        self.col_labels = _labels(col_labels, m, "col_labels", "txt")
        if targets is None:
            targets = np.arange(n) if n == m else None
        if targets is not None:
            targets = np.asarray(targets, dtype=int)
            if targets.shape != (n,) or targets.min() < 0 or targets.max() >= m:
                raise ValueError(f"targets must hold one column index in [0, {m}) per row ({n} rows), got {targets!r}")
        self.targets = targets
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.controls["temperature"] = W.FloatLogSlider(
            value=temperature, base=10, min=-3, max=0.5, step=0.05, description="temperature",
            continuous_update=False, readout_format=".3f", style=_STYLE, layout=_WIDE)
        self.controls["bias"] = W.FloatSlider(
            value=bias, min=-20.0, max=10.0, step=0.5, description="bias",
            continuous_update=False, readout_format=".1f", style=_STYLE, layout=_WIDE)
        self._watch()

    @property
    def temperature(self) -> float:
        return float(self.controls["temperature"].value)

    @property
    def bias(self) -> float:
        return float(self.controls["bias"].value)

    def probabilities(self, temperature: float | None = None, bias: float | None = None):
        """(softmax, sigmoid), both (N, M), at the current (or the given) temperature and bias."""
        t = self.temperature if temperature is None else temperature
        b = self.bias if bias is None else bias
        return softmax_and_sigmoid(self.similarities, t, b)

    def losses(self, temperature: float | None = None, bias: float | None = None):
        """(InfoNCE, sigmoid loss) at the current settings, or None when there are no targets."""
        if self.targets is None:
            return None
        t = self.temperature if temperature is None else temperature
        b = self.bias if bias is None else bias
        return _losses(self.similarities, self.targets, t, b)

    def _draw_row(self, axes, temperature, bias, with_labels=True):
        softmax, sigmoid = self.probabilities(temperature, bias)
        for ax, probs, name in ((axes[0], softmax, "softmax per row"), (axes[1], sigmoid, "sigmoid per pair")):
            im = ax.imshow(probs, vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_title(f"{name}\nT={temperature:.3g}, b={bias:.3g}", fontsize=9)
            n, m = probs.shape
            if with_labels and n <= 12 and m <= 12:
                ax.set_xticks(range(m), self.col_labels, rotation=60, ha="right", fontsize=7)
                ax.set_yticks(range(n), self.row_labels, fontsize=7)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
            if n * m <= 64:  # small enough to print every probability
                for i in range(n):
                    for j in range(m):
                        ax.text(j, i, f"{probs[i, j]:.2f}", ha="center", va="center", fontsize=6,
                                color="white" if probs[i, j] < 0.6 else "black")
        return im

    def figure(self):
        fig = new_figure(7.5, 3.9)
        axes = fig.subplots(1, 2, gridspec_kw=dict(left=0.1, right=0.86, bottom=0.2, top=0.86, wspace=0.35))
        im = self._draw_row(axes, self.temperature, self.bias)
        fig.colorbar(im, cax=fig.add_axes((0.89, 0.2, 0.015, 0.66)), label="probability")
        return fig

    def static_settings(self):
        """The settings the static figure sweeps: T=1, the given setting, and SigLIP's initialisation."""
        settings = [(1.0, 0.0), (self.temperature, self.bias), SIGLIP_SETTING]
        return list(dict.fromkeys((round(t, 6), round(b, 6)) for t, b in settings))

    def static_figure(self):
        settings = self.static_settings()
        height = 3.2 * len(settings) + 0.4
        fig = new_figure(7.0, height)
        axes = fig.subplots(len(settings), 2, squeeze=False, gridspec_kw=dict(
            left=0.1, right=0.86, bottom=0.7 / height, top=1 - 0.9 / height, wspace=0.35, hspace=0.75))
        for row, (t, b) in zip(axes, settings):
            im = self._draw_row(row, t, b)
        fig.colorbar(im, cax=fig.add_axes((0.89, 0.3, 0.015, 0.4)), label="probability")
        fig.suptitle("softmax vs sigmoid at three settings (static view; sliders in JupyterLab)", fontsize=10)
        return fig

    def summary_html(self) -> str:
        softmax, sigmoid = self.probabilities()
        parts = [f"temperature {self.temperature:.3f} (logit scale {1 / self.temperature:.1f}), bias {self.bias:.1f}."]
        if self.targets is not None:
            n = softmax.shape[0]
            pos = np.zeros_like(sigmoid, dtype=bool)
            pos[np.arange(n), self.targets] = True
            infonce, sig_loss = self.losses()
            parts.append(
                f"Softmax: mean p(positive) <b>{softmax[pos].mean():.3f}</b>; each row sums to 1, "
                f"so the bias changes nothing. Sigmoid: mean p(positive) <b>{sigmoid[pos].mean():.3f}</b>, "
                f"mean p(negative) <b>{sigmoid[~pos].mean():.3f}</b>; each pair is judged alone. "
                f"InfoNCE {infonce:.3f}, sigmoid loss {sig_loss:.3f}.")
        else:
            parts.append(f"Softmax max per row (mean) {softmax.max(axis=1).mean():.3f}; "
                         f"sigmoid mean {sigmoid.mean():.3f}.")
        return f'<div class="mmcourse-summary">{escape(" ".join(parts[:1]))} {parts[1]}</div>'


def _labels(labels, n, name, prefix):
    if labels is None:
        return [f"{prefix} {i}" for i in range(n)]
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but the matrix has {n}")
    return labels


def temperature_playground(similarities, **kwargs) -> TemperaturePlayground:
    """Temperature and bias sliders over a (N, M) similarity matrix (cosines; row i's positive is column i).

    ``logits = similarities / temperature + bias``; the left panel is the row softmax that
    InfoNCE trains, the right the per-pair sigmoid that SigLIP trains. Keyword arguments:
    ``temperature`` (0.07), ``bias`` (0.0), ``row_labels``, ``col_labels``, ``targets``
    (positive column per row; the diagonal when square), ``static`` (see ``mmcourse.widgets``).
    """
    return TemperaturePlayground(similarities, **kwargs)
