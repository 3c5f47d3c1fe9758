"""Audio in, features out: loading, checking, resampling, padding, chunking, log-mel.

Every audio model in the course sees the same pipeline::

    file / array ──load_audio / check_waveform──▶ mono float32 at the clip's rate
                 ──iter_windows──▶ windows of the model's length (long clips chunked,
                                    each window resampled on its own: bounded memory)
                 ──log_mel──▶ (n_mels, frames) dB spectrogram ──▶ audio tower

:class:`MelConfig` defaults are exactly the parameters of transformers'
``ClapFeatureExtractor`` (48 kHz, 1024-point FFT, hop 480, 64 HTK mel bands from 0 to
14 kHz, power → dB with a 1e-10 floor), so :func:`log_mel` reproduces what a hub CLAP
model is fed; :meth:`MelConfig.from_feature_extractor` reads them from a loaded one.

Bad input, as documented here and tested:

- NaN or infinite samples, a zero-length clip, a boolean array, a file that is not
  audio → ``ValueError`` / :class:`AudioDecodeError` naming the problem;
- arrays mean one thing whatever their size: ``(samples,)`` is one mono clip, and for
  embedding ``(N, samples)`` is N mono clips; a multi-channel clip is mixed down only with an
  explicit ``to_mono(x, channel_axis=0 or 1)`` (a 2-D array where one clip is expected is
  rejected, saying which argument to pass);
- integer PCM is scaled to [-1, 1): signed by ``2^(bits-1)``, unsigned (8-bit WAV) around
  its midpoint, so ``uint8`` 128 is silence;
- a silent clip is valid input: it yields the spectrogram floor (−100 dB) and an
  embedding like any other (use :func:`is_silent` to flag such clips);
- a sampling rate other than the model's is resampled (librosa/soxr); a rate that is not
  a plausible integer number of Hz (≤ 0, a float like 44.1, > 384 kHz) is rejected.
"""
from __future__ import annotations

import functools
import math
import os
import pathlib
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterable, Iterator

import numpy as np

from .errors import MMCourseError
from .validate import is_int

__all__ = [
    "MelConfig", "CLAP_MEL", "AudioDecodeError", "load_audio", "check_waveform", "check_sampling_rate",
    "to_mono", "resample", "pad_or_truncate", "iter_windows", "count_windows", "log_mel", "log_mel_batch", "mel_filters",
    "is_silent", "embed_clips", "DB_FLOOR",
]

MIN_RATE, MAX_RATE = 1_000, 384_000  # plausible sampling rates, Hz
DB_FLOOR = -100.0  # 10·log10(1e-10): the log-mel value of silence
PADDING_MODES = ("repeatpad", "repeat", "pad")


class AudioDecodeError(MMCourseError, ValueError):
    """A file could not be decoded as audio."""


@dataclass(frozen=True)
class MelConfig:
    """Log-mel spectrogram parameters; the defaults are transformers' ``ClapFeatureExtractor``'s."""

    sampling_rate: int = 48_000  # Hz the model expects; other rates are resampled
    n_fft: int = 1024  # FFT window length in samples (21 ms at 48 kHz)
    hop_length: int = 480  # samples between frames: 100 frames per second at 48 kHz
    n_mels: int = 64  # mel bands (the feature extractor's ``feature_size``)
    f_min: float = 0.0  # lowest band edge, Hz
    f_max: float = 14_000.0  # highest band edge, Hz
    mel_scale: str = "htk"  # "htk" filters without area norm, as CLAP's "fusion" mode uses
    norm: str | None = None  # mel filter normalisation (None, or "slaney")
    max_seconds: float = 10.0  # model input length; longer clips are chunked into windows
    padding: str = "repeatpad"  # how short clips fill max_seconds: repeat then zero-pad, as CLAP

    @property
    def max_samples(self) -> int:
        return int(round(self.max_seconds * self.sampling_rate))

    @property
    def frames(self) -> int:
        """Frames in the spectrogram of one ``max_seconds`` window (centred STFT)."""
        return self.max_samples // self.hop_length + 1

    @classmethod
    def from_feature_extractor(cls, fe, **overrides) -> "MelConfig":
        """The config matching a transformers ``ClapFeatureExtractor``.

        Its "fusion" truncation (fused checkpoints) uses HTK filters without norm; "rand_trunc"
        (``laion/clap-htsat-unfused``) uses librosa's default slaney filters with slaney norm.
        """
        slaney = getattr(fe, "truncation", "fusion") != "fusion"
        values = dict(
            mel_scale="slaney" if slaney else "htk", norm="slaney" if slaney else None,
            sampling_rate=int(fe.sampling_rate), n_fft=int(fe.fft_window_size), hop_length=int(fe.hop_length),
            n_mels=int(fe.feature_size), f_min=float(fe.frequency_min), f_max=float(fe.frequency_max),
            max_seconds=float(fe.max_length_s), padding=str(fe.padding),
        )
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


CLAP_MEL = MelConfig()


# --------------------------------------------------------------------------- checks

def check_sampling_rate(sampling_rate, name: str = "sampling_rate") -> int:
    """Return ``sampling_rate`` as an int, or raise naming the expected form."""
    if isinstance(sampling_rate, float) and sampling_rate.is_integer():
        sampling_rate = int(sampling_rate)
    if not is_int(sampling_rate):
        raise ValueError(f"{name} must be an integer number of Hz (e.g. 48000), got {sampling_rate!r}")
    if not MIN_RATE <= int(sampling_rate) <= MAX_RATE:
        raise ValueError(f"{name}={sampling_rate!r} Hz is not a plausible audio rate; expected {MIN_RATE}–{MAX_RATE} Hz")
    return int(sampling_rate)


CHANNEL_AXIS_HINT = ("pass channel_axis=0 for a (channels, samples) array (librosa's layout) or channel_axis=1 "
                     "for (samples, channels) (soundfile's layout)")


def to_mono(waveform: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """Average the channels of one clip into ``(samples,)``.

    A 1-D ``(samples,)`` array is returned as is. A 2-D array needs ``channel_axis``:
    ``0`` for ``(channels, samples)`` (librosa), ``1`` for ``(samples, channels)``
    (soundfile). It is never guessed from the shape: a guess would make ``(5, 16000)`` one
    five-channel clip and ``(9, 16000)`` nine clips.
    """
    x = np.asarray(waveform)
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected a 1-D (samples,) or 2-D multi-channel waveform, got shape {x.shape}")
    if channel_axis is None:
        raise ValueError(f"a 2-D waveform of shape {x.shape} does not say which axis holds the channels: "
                         f"{CHANNEL_AXIS_HINT}")
    if isinstance(channel_axis, bool) or channel_axis not in (0, 1, -1, -2):
        raise ValueError(f"channel_axis must be 0 or 1, got {channel_axis!r}")
    return x.mean(axis=channel_axis)


def _pcm_to_float(x: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1): signed ``/ 2^(bits-1)``; unsigned (8-bit WAV) is offset
    binary, so ``2^(bits-1)`` (128 for uint8) is silence."""
    half = float(2 ** (8 * x.dtype.itemsize - 1))
    if np.issubdtype(x.dtype, np.unsignedinteger):
        return ((x.astype(np.float64) - half) / half).astype(np.float32)
    return (x.astype(np.float64) / half).astype(np.float32)


def check_waveform(waveform, name: str = "waveform", channel_axis: int | None = None) -> np.ndarray:
    """Mono float32 samples of one clip.

    Accepts float samples in [-1, 1] or integer PCM (signed: ``int16`` etc.; unsigned: 8-bit
    WAV's ``uint8``, where 128 is silence), as ``(samples,)``, or 2-D with an explicit
    ``channel_axis`` (see :func:`to_mono`). Rejects booleans, non-numbers, zero-length clips
    and NaN/infinite samples with a ``ValueError`` that says what to pass instead.
    """
    try:
        import torch

        if isinstance(waveform, torch.Tensor):
            waveform = waveform.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    x = np.asarray(waveform)
    if x.dtype == bool:
        raise ValueError(f"{name} has dtype bool; expected float samples in [-1, 1] (float32) or integer PCM "
                         "(e.g. int16)")
    if x.dtype == object or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name} must be an array of numbers (float samples or integer PCM), got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.integer):
        x = _pcm_to_float(x)
    if x.ndim == 2 and channel_axis is None:
        raise ValueError(f"{name} has shape {x.shape}, which is ambiguous for one clip: {CHANNEL_AXIS_HINT}; "
                         "to embed several mono clips, pass a list of 1-D arrays or one (N, samples) array to "
                         "embed_audio")
    x = to_mono(x, channel_axis).astype(np.float32, copy=False)
    if x.size == 0:
        raise ValueError(f"{name} is empty (zero samples); expected at least one sample")
    if not math.isfinite(float(np.sum(x, dtype=np.float64))):  # a NaN/inf anywhere makes the sum non-finite; no temporary array
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{name} has {bad} NaN or infinite sample(s) of {x.size}; "
                         "clean them (e.g. np.nan_to_num) before embedding")
    return x


def is_silent(waveform, threshold_db: float = -60.0) -> bool:
    """True when the clip's RMS level is below ``threshold_db`` dBFS (all zeros counts)."""
    x = check_waveform(waveform)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return rms == 0.0 or 20 * math.log10(rms) < threshold_db


def resample(waveform: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with librosa (soxr, high quality); a no-op when the rates match."""
    orig_sr, target_sr = check_sampling_rate(orig_sr, "orig_sr"), check_sampling_rate(target_sr, "target_sr")
    if orig_sr == target_sr:
        return waveform
    import librosa

    return librosa.resample(np.asarray(waveform, dtype=np.float32), orig_sr=orig_sr, target_sr=target_sr).astype(np.float32)


# --------------------------------------------------------------------------- files

def load_audio(path, sampling_rate: int | None = 48_000, offset: float = 0.0,
               duration: float | None = None) -> tuple[np.ndarray, int]:
    """Load any file librosa reads (WAV, FLAC, OGG, MP3, …) as mono float32 at ``sampling_rate``
    (``None`` keeps the file's rate). Returns ``(samples, rate)``.

    For a long file, read it piece by piece with ``offset``/``duration`` (seconds), or
    pass the path straight to ``embed_audio``, which streams it in windows.
    """
    import librosa

    path = pathlib.Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"no audio file at {str(path)!r}")
    if sampling_rate is not None:
        sampling_rate = check_sampling_rate(sampling_rate)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa's audioread fallback warning: we raise our own error below
            samples, rate = librosa.load(str(path), sr=sampling_rate, mono=True, offset=offset, duration=duration)
    except Exception as err:  # soundfile and audioread both failed: not an audio file we can decode
        raise AudioDecodeError(f"could not decode {path.name!r} as audio ({type(err).__name__}: {err}); "
                               "expected a WAV, FLAC, OGG or MP3 file") from err
    return check_waveform(samples, name=f"audio in {path.name!r}"), int(rate)


def _file_windows(path, target_sr: int, window_seconds: float) -> Iterator[np.ndarray]:
    """Stream a file in windows of ``window_seconds`` (at the file's rate), resampled one by one."""
    import soundfile as sf

    try:
        handle = sf.SoundFile(str(path))
    except Exception:  # not a libsndfile format (e.g. some MP3/M4A): decode with librosa, then window
        samples, rate = load_audio(path, sampling_rate=None)
        yield from iter_windows(samples, rate, target_sr, window_seconds)
        return
    with handle:
        rate = handle.samplerate
        block = int(round(window_seconds * rate))
        produced = False
        while True:
            data = handle.read(block, dtype="float32", always_2d=True)  # (samples, channels)
            if len(data) == 0:
                break
            if produced and len(data) < 0.25 * block:
                break  # a short tail after full windows adds little: drop it (as iter_windows does)
            produced = True
            yield resample(check_waveform(data.mean(axis=1), name=f"audio in {pathlib.Path(path).name!r}"), rate, target_sr)
    if not produced:
        raise ValueError(f"audio in {pathlib.Path(path).name!r} is empty (zero samples)")


# --------------------------------------------------------------------------- windows

def pad_or_truncate(waveform: np.ndarray, length: int, mode: str = "repeatpad") -> np.ndarray:
    """Exactly ``length`` samples: longer clips keep their start; shorter ones are
    ``"repeatpad"``-ed (tiled whole times, then zeros — CLAP's default), ``"repeat"``-ed
    (tiled and cut) or ``"pad"``-ded with zeros."""
    if mode not in PADDING_MODES:
        raise ValueError(f"unknown padding mode {mode!r}; expected one of {PADDING_MODES}")
    x = np.asarray(waveform, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("cannot pad an empty waveform; expected at least one sample")
    if len(x) >= length:
        return x[:length]
    if mode == "repeat":
        return np.tile(x, length // len(x) + 1)[:length]
    if mode == "repeatpad":
        x = np.tile(x, length // len(x))
    return np.pad(x, (0, length - len(x)))


def count_windows(n_samples: int, window: int) -> int:
    """How many windows :func:`iter_windows` yields for a clip of ``n_samples``."""
    full, tail = divmod(n_samples, window)
    if full == 0:
        return 1
    return full + (1 if tail >= 0.25 * window else 0)


def iter_windows(waveform, sampling_rate: int, target_sr: int, window_seconds: float) -> Iterator[np.ndarray]:
    """Yield a clip as consecutive windows of ``window_seconds``, each resampled to ``target_sr``.

    A clip no longer than one window yields itself (resampled). Longer clips yield
    full windows; a tail shorter than a quarter window is dropped (a clip of 10.1 s
    and a 10 s model gives one window, not one plus a 0.1 s scrap). Only one window is
    resampled at a time, so a 10-minute clip never exists at the target rate in full.
    """
    x = check_waveform(waveform)
    sampling_rate = check_sampling_rate(sampling_rate)
    window = max(1, int(round(window_seconds * sampling_rate)))
    for i in range(count_windows(len(x), window)):
        yield resample(x[i * window:(i + 1) * window], sampling_rate, target_sr)


# --------------------------------------------------------------------------- features

@functools.lru_cache(maxsize=16)
def mel_filters(sampling_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float,
                mel_scale: str = "htk", norm: str | None = None) -> np.ndarray:
    """Mel filter bank ``(n_mels, n_fft // 2 + 1)`` from librosa (cached; treat as read-only)."""
    import librosa

    return librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max,
                               htk=(mel_scale == "htk"), norm=norm).astype(np.float32)


def log_mel(waveform, config: MelConfig = CLAP_MEL, pad: bool = True) -> np.ndarray:
    """Log-mel spectrogram ``(n_mels, frames)`` in dB of a clip already at ``config.sampling_rate``.

    With ``pad=True`` the clip is first padded or truncated to ``config.max_seconds``
    (``config.padding``), so every output has ``config.frames`` frames, as a model needs.
    Power spectrum of a centred, reflect-padded Hann STFT → mel filters → 10·log10(max(·, 1e-10)).
    """
    import librosa

    x = check_waveform(waveform)
    if pad:
        x = pad_or_truncate(x, config.max_samples, config.padding)
    spec = np.abs(librosa.stft(x, n_fft=config.n_fft, hop_length=config.hop_length, window="hann",
                               center=True, pad_mode="reflect")) ** 2  # (n_fft//2+1, frames)
    fb = mel_filters(config.sampling_rate, config.n_fft, config.n_mels, config.f_min, config.f_max,
                     config.mel_scale, config.norm)
    mel = fb @ spec  # (n_mels, frames)
    return (10.0 * np.log10(np.maximum(mel, 1e-10))).astype(np.float32)


def log_mel_batch(windows, config: MelConfig = CLAP_MEL) -> "torch.Tensor":
    """:func:`log_mel` of many windows at once with ``torch.stft``: ``(B, n_mels, frames)`` float32.

    Same numbers as :func:`log_mel` (tested), but one batched STFT instead of a Python loop,
    which is what makes feature extraction cheap enough to train on a laptop.
    """
    import torch

    batch = np.stack([pad_or_truncate(check_waveform(w), config.max_samples, config.padding) for w in windows])
    x = torch.from_numpy(batch)  # (B, samples)
    spec = torch.stft(x, n_fft=config.n_fft, hop_length=config.hop_length, window=torch.hann_window(config.n_fft),
                      center=True, pad_mode="reflect", return_complex=True).abs() ** 2  # (B, n_fft//2+1, frames)
    fb = torch.from_numpy(mel_filters(config.sampling_rate, config.n_fft, config.n_mels, config.f_min, config.f_max,
                                      config.mel_scale, config.norm))  # (n_mels, n_fft//2+1)
    mel = fb @ spec  # (B, n_mels, frames)
    return 10.0 * torch.log10(mel.clamp(min=1e-10))


# --------------------------------------------------------------------------- embedding driver

def _clip_windows(clip, sampling_rate, target_sr: int, window_seconds: float) -> Iterator[np.ndarray]:
    if isinstance(clip, (str, os.PathLike)):
        return _file_windows(clip, target_sr, window_seconds)
    rate = getattr(clip, "sampling_rate", None)
    if hasattr(clip, "waveform"):  # mmcourse.data.sounds.Sound (or anything shaped like it)
        return iter_windows(clip.waveform, rate, target_sr, window_seconds)
    if sampling_rate is None:
        raise ValueError("embedding raw arrays needs their rate: pass sampling_rate=... (e.g. 48000); "
                         "files and Sound objects carry their own")
    return iter_windows(clip, sampling_rate, target_sr, window_seconds)


def embed_clips(clips, encode: Callable[[list[np.ndarray]], "torch.Tensor"], *, sampling_rate: int | None,
                target_sr: int, window_seconds: float, batch_size: int = 32, progress: bool = False,
                desc: str = "embedding audio"):
    """Embed clips of any length in bounded memory; returns L2-normalised ``(N, D)`` on CPU.

    ``clips`` is one clip or a list of them. What an array means never depends on its size:
    a 1-D array is one mono clip; a 2-D array ``(N, samples)`` is always N mono clips (so
    ``(5, 16000)`` gives five embeddings, like ``(9, 16000)`` gives nine); a multi-channel
    recording must be mixed down first with :func:`to_mono` and an explicit ``channel_axis``
    (a 2-D item inside a list is rejected, saying so). Files and ``Sound`` objects are
    mixed down on load.

    Each clip (array at ``sampling_rate``, a file path, or a ``Sound``) is cut into windows
    of ``window_seconds`` resampled to ``target_sr``; ``encode(list_of_windows)`` turns at most
    ``batch_size`` windows into embeddings; a clip's embedding is the normalised mean of its
    windows' normalised embeddings. At most ``batch_size`` windows are alive at once.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if type(clips).__module__.startswith("torch") and hasattr(clips, "detach"):  # a tensor: same rules as arrays
        clips = clips.detach().cpu().numpy()
    if isinstance(clips, np.ndarray):
        if clips.ndim == 1:
            clips = [clips]  # one mono clip
        elif clips.ndim == 2:
            clips = list(clips)  # always a batch of N mono clips (N, samples), whatever N is
        else:
            raise ValueError(f"an array of clips must be (samples,) for one mono clip or (N, samples) for N mono "
                             f"clips, got shape {clips.shape}; mix a multi-channel clip down first with "
                             "mmcourse.audio.to_mono(x, channel_axis=...)")
    elif isinstance(clips, (str, os.PathLike)) or hasattr(clips, "waveform"):
        clips = [clips]
    clips = list(clips)
    if not clips:
        raise ValueError("expected at least one clip, got an empty list")
    if sampling_rate is not None:
        sampling_rate = check_sampling_rate(sampling_rate)
    sums: list[torch.Tensor | None] = [None] * len(clips)
    counts = [0] * len(clips)
    pending: list[tuple[int, np.ndarray]] = []

    def flush():
        feats = encode([w for _, w in pending])  # (B, D)
        feats = F.normalize(feats.detach().float().cpu(), dim=-1)
        for (i, _), f in zip(pending, feats):
            sums[i] = f if sums[i] is None else sums[i] + f
            counts[i] += 1
        pending.clear()

    for i, clip in enumerate(tqdm(clips, desc=desc, disable=not progress, leave=False)):
        for window in _clip_windows(clip, sampling_rate, target_sr, window_seconds):
            pending.append((i, window))
            if len(pending) >= batch_size:
                flush()
    if pending:
        flush()
    return F.normalize(torch.stack(sums), dim=-1)  # (N, D)
