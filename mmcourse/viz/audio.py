"""Audio plots: waveforms, log-mel spectrograms, and galleries of spectrograms."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_waveform", "plot_spectrogram", "spectrogram_gallery"]


def _ax(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_waveform(waveform, sampling_rate: int, ax=None, title: str | None = None, max_points: int = 20_000):
    """Amplitude against time (seconds); long clips are decimated by min/max envelope for speed."""
    from ..audio import check_sampling_rate, check_waveform

    x = check_waveform(waveform)
    sr = check_sampling_rate(sampling_rate)
    ax = _ax(ax, (8, 2))
    if len(x) > max_points:  # draw the envelope: min and max of each bucket keeps peaks visible
        step = int(np.ceil(len(x) / (max_points // 2)))
        n = len(x) // step * step
        buckets = x[:n].reshape(-1, step)
        t = np.arange(buckets.shape[0]) * step / sr
        ax.fill_between(t, buckets.min(1), buckets.max(1), linewidth=0.5)
    else:
        ax.plot(np.arange(len(x)) / sr, x, linewidth=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    ax.set_xlim(0, len(x) / sr)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_spectrogram(mel: np.ndarray, config=None, ax=None, title: str | None = None, colorbar: bool = True,
                     vmin: float | None = -80.0, vmax: float | None = None):
    """Show a log-mel spectrogram ``(n_mels, frames)`` in dB; with a :class:`~mmcourse.audio.MelConfig`
    the axes read in seconds and in Hz (approximate band centres)."""
    import matplotlib.pyplot as plt

    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise ValueError(f"expected a (n_mels, frames) spectrogram, got shape {mel.shape}")
    ax = _ax(ax, (8, 2.6))
    extent = None
    if config is not None:
        extent = (0, mel.shape[1] * config.hop_length / config.sampling_rate, 0, mel.shape[0])
    vmax = float(mel.max()) if vmax is None else vmax
    image = ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=extent, vmin=vmin, vmax=vmax)
    if config is not None:
        import librosa

        centres = librosa.mel_frequencies(config.n_mels + 2, fmin=config.f_min, fmax=config.f_max,
                                          htk=config.mel_scale == "htk")[1:-1]
        ticks = np.linspace(0, config.n_mels - 1, 5).astype(int)
        ax.set_yticks(ticks + 0.5)
        ax.set_yticklabels([f"{centres[i] / 1000:.1f}k" if centres[i] >= 1000 else f"{centres[i]:.0f}" for i in ticks])
        ax.set_xlabel("time (s)")
        ax.set_ylabel("Hz (mel)")
    else:
        ax.set_xlabel("frame")
        ax.set_ylabel("mel band")
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        plt.colorbar(image, ax=ax, format="%+.0f dB", pad=0.01)
    return ax


def spectrogram_gallery(mels, captions=None, config=None, cols: int = 4, size: tuple[float, float] = (3.0, 1.8),
                        title: str | None = None, highlight=None):
    """A grid of log-mel spectrograms with captions; ``highlight`` (bools) outlines chosen panels
    (e.g. correct retrieval hits in green, misses in red). Returns the figure."""
    import math

    import matplotlib.pyplot as plt

    mels = list(mels)
    if not mels:
        raise ValueError("spectrogram_gallery needs at least one spectrogram")
    if captions is not None and len(captions) != len(mels):
        raise ValueError(f"got {len(mels)} spectrograms but {len(captions)} captions")
    if highlight is not None and len(highlight) != len(mels):
        raise ValueError(f"got {len(mels)} spectrograms but {len(highlight)} highlight flags")
    cols = min(cols, len(mels))
    rows = math.ceil(len(mels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size[0], rows * (size[1] + 0.5)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, mel in enumerate(mels):
        ax = axes.flat[i]
        ax.axis("on")
        plot_spectrogram(mel, config, ax=ax, colorbar=False)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=6)
        if captions is not None:
            import textwrap

            ax.set_title("\n".join(textwrap.wrap(str(captions[i]), 34)[:3]), fontsize=7)
        if highlight is not None:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:green" if highlight[i] else "tab:red")
                spine.set_linewidth(2.5)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
