"""``course/clap-sounds``: a small spectrogram audio tower aligned to frozen all-MiniLM-L6-v2.

CLAP pairs an audio encoder (HTSAT, a spectrogram transformer) with a text encoder
and trains both with CLIP's InfoNCE loss. The course version keeps the recipe and
shrinks it so it trains on a laptop CPU in well under a minute:

- text tower: the real, pretrained all-MiniLM-L6-v2, **frozen** (LiT-style); the
  caption features are computed once before training;
- audio tower: a four-block CNN over a 16 kHz log-mel spectrogram (2 s windows),
  pooled over time and projected into MiniLM's 384-d sentence space;
- data: :mod:`mmcourse.data.sounds` clips of the training split (held-out attribute
  combinations never seen), loss :func:`mmcourse.losses.clip_loss`, loop :func:`mmcourse.train`.

The checkpoint is built on first use and cached by
:func:`mmcourse.models.course.checkpoints.load_course_checkpoint`.
"""
from __future__ import annotations

import pathlib
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import audio as A
from ...data import sounds as S
from ..embedder import Embedder, in_thread_scope
from ..hub import minilm

NAME = "course/clap-sounds"
VERSION = "v2"  # bump when the architecture, data or training changes
COURSE_MEL = A.MelConfig(
    sampling_rate=16_000,  # the course tower listens at 16 kHz (clips are resampled)
    n_fft=512,  # 32 ms windows
    hop_length=320,  # 50 frames per second: 8 Hz pulses stay visible
    n_mels=64,  # same band count as CLAP
    f_min=0.0,
    f_max=8_000.0,  # Nyquist at 16 kHz
    max_seconds=2.0,  # one window = 2 s; longer clips are averaged over windows
)


@dataclass
class TowerConfig:
    """The audio tower's shape."""

    channels: tuple[int, ...] = (8, 16, 32, 64)  # conv widths, one block each
    embed_dim: int = minilm.MINILM_DIM  # output size = MiniLM's sentence size
    mel: dict = field(default_factory=lambda: COURSE_MEL.to_dict())  # feature parameters
    db_offset: float = 40.0  # input scaling: (dB + offset) / scale ≈ zero-mean, unit range
    db_scale: float = 40.0


@dataclass
class TrainConfig:
    """How the checkpoint is trained (defaults: ≈ 30 s on 2 CPU cores)."""

    clips_per_label: int = 10  # training clips per label (48 tone combos + 3 textures)
    batch_size: int = 48  # distinct labels per batch (no false negatives in InfoNCE)
    steps: int = 200  # AdamW steps
    lr: float = 3e-3  # peak learning rate (cosine schedule, warmup)
    warmup: int = 20  # warmup steps
    weight_decay: float = 1e-4
    init_logit_scale: float = 20.0  # learnable multiplier of the cosine similarities
    ensemble_targets: bool = False  # text target: a random template's caption (False) or the mean over templates
    seed: int = 0


@dataclass
class Config:
    """Everything that determines the checkpoint: the tower's shape and its training."""

    tower: TowerConfig = field(default_factory=TowerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def version(self) -> str:
        """Cache key: the default recipe is ``VERSION``; any other recipe gets its own folder."""
        from .checkpoints import config_digest

        return VERSION if self == Config() else f"{VERSION}-{config_digest(self)}"


class AudioTower(nn.Module):
    """log-mel ``(B, n_mels, frames)`` → unit-norm embedding ``(B, embed_dim)``."""

    def __init__(self, config: TowerConfig):
        super().__init__()
        self.config = config
        blocks, c_in = [], 1
        for i, c_out in enumerate(config.channels):
            pool = (2, 2) if i < len(config.channels) - 1 else (1, 1)  # halve freq and time, not after the last
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.GELU()]
            if pool != (1, 1):
                blocks.append(nn.MaxPool2d(pool))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        n_freq = config.mel["n_mels"] // 2 ** (len(config.channels) - 1)
        self.proj = nn.Linear(2 * c_in * n_freq, config.embed_dim)  # mean- and max-pooled over time

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = (mel.unsqueeze(1) + self.config.db_offset) / self.config.db_scale  # (B, 1, M, T)
        x = self.blocks(x)  # (B, C, M', T')
        pooled = torch.cat([x.mean(-1), x.amax(-1)], dim=1).flatten(1)  # (B, 2·C·M')
        return F.normalize(self.proj(pooled), dim=-1)  # (B, D)


class ClapSoundsModel(nn.Module):
    """Training wrapper with the course's ``model(*batch)`` contract:
    ``(mel, text_features) → (audio_features, text_features, logit_scale)``."""

    def __init__(self, tower: AudioTower, init_logit_scale: float = 20.0):
        super().__init__()
        self.tower = tower
        self.log_logit_scale = nn.Parameter(torch.tensor(float(np.log(init_logit_scale))))

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=100.0)

    def forward(self, mel: torch.Tensor, text_features: torch.Tensor):
        return self.tower(mel), F.normalize(text_features, dim=-1), self.logit_scale


# --------------------------------------------------------------------------- features and data

def mel_config(tower: AudioTower) -> A.MelConfig:
    return A.MelConfig(**tower.config.mel)


def window_features(windows: list[np.ndarray], config: A.MelConfig) -> torch.Tensor:
    """Log-mel of each window (already at ``config.sampling_rate``), ``(B, n_mels, frames)``."""
    return A.log_mel_batch(windows, config)


def _training_set(cfg: TrainConfig, mel: A.MelConfig, progress: bool):
    """Log-mels of random windows of training clips, their label ids, and frozen caption features."""
    from tqdm.auto import tqdm

    label_names = S.labels("train")
    sounds = S.make_sounds(cfg.clips_per_label * len(label_names), "train", seed=cfg.seed,
                           sampling_rate=mel.sampling_rate)
    rng = np.random.default_rng(cfg.seed)
    window = mel.max_samples
    crops, ids = [], []
    for sound in sounds:
        x = sound.waveform
        for _ in range(1 if len(x) <= window else 2):  # two random crops of clips longer than a window
            start = int(rng.integers(0, max(1, len(x) - window + 1)))
            crops.append(x[start:start + window])
            ids.append(label_names.index(sound.label))
    feats = torch.cat([window_features(crops[i:i + 256], mel)
                       for i in tqdm(range(0, len(crops), 256), desc=f"{NAME}: spectrograms", disable=not progress,
                                     leave=False)])  # (N, M, T)
    prompts = [S.prompts(name) for name in label_names]  # (L, templates) strings
    n_t = max(len(p) for p in prompts)
    prompts = [p + p[: n_t - len(p)] for p in prompts]
    flat = [t for p in prompts for t in p]
    text = minilm.embed_sentences(flat).reshape(len(label_names), n_t, -1)  # (L, T, 384), frozen
    return feats, torch.tensor(ids), text


def train(config: Config | None = None, progress: bool = True, device: str = "cpu") -> tuple[ClapSoundsModel, "object"]:
    """Train a fresh model; returns ``(model, History)``."""
    from ... import training
    from ...losses import clip_loss

    config = config or Config()
    cfg, tower_cfg = config.train, config.tower
    torch.manual_seed(cfg.seed)
    mel = A.MelConfig(**tower_cfg.mel)
    feats, ids, text = _training_set(cfg, mel, progress)  # (N, M, T), (N,), (L, T, 384)
    by_label = [torch.nonzero(ids == k).flatten() for k in range(text.shape[0])]
    gen = torch.Generator().manual_seed(cfg.seed)
    batch = min(cfg.batch_size, text.shape[0])

    def batches(step: int):
        labels = torch.randperm(text.shape[0], generator=gen)[:batch]  # distinct labels: no false negatives
        rows = torch.stack([by_label[k][torch.randint(len(by_label[k]), (1,), generator=gen)] for k in labels]).flatten()
        mels = feats[rows]  # (B, M, T)
        gain = torch.empty(batch, 1, 1).uniform_(-12, 6, generator=gen)  # loudness augmentation, in dB
        shift = int(torch.randint(mels.shape[-1], (1,), generator=gen))
        mels = torch.roll(mels + gain, shifts=shift, dims=-1).clamp(min=A.DB_FLOOR)  # time shift of repeat-padded windows
        if cfg.ensemble_targets:
            return mels, text[labels].mean(1)  # (B, M, T), (B, 384): prompt-ensembled caption features
        templates = torch.randint(text.shape[1], (batch,), generator=gen)
        return mels, text[labels, templates]  # (B, M, T), (B, 384)

    model = ClapSoundsModel(AudioTower(tower_cfg), cfg.init_logit_scale)
    history = training.train(model, batches, clip_loss, steps=cfg.steps, lr=cfg.lr, warmup=cfg.warmup,
                             schedule="cosine", weight_decay=cfg.weight_decay, device=device, seed=cfg.seed,
                             progress=progress, desc=f"training {NAME}")
    return model.cpu(), history


# --------------------------------------------------------------------------- the embedder

class CourseClapEmbedder(Embedder):
    """Embeds audio (arrays, files, :class:`~mmcourse.data.sounds.Sound`) and texts into one space.

    ``processor`` is the audio front end: the :class:`~mmcourse.audio.MelConfig` of the tower.
    """

    modalities = ("audio", "text")

    def __init__(self, model: ClapSoundsModel, device: str = "cpu", name: str = NAME):
        model = model.to(str(device)).eval()
        super().__init__(name, model, mel_config(model.tower), device, float(model.logit_scale.detach()))

    @torch.no_grad()
    def _encode_windows(self, windows: list[np.ndarray]) -> torch.Tensor:
        mels = window_features(windows, self.processor).to(self.device)  # (B, M, T)
        return self.model.tower(mels)  # (B, D)

    @in_thread_scope
    def embed_audio(self, clips, sampling_rate: int | None = None, batch_size: int | None = None,
                    progress: bool | None = None) -> torch.Tensor:
        """L2-normalised ``(N, 384)`` embeddings of ``clips``: arrays at ``sampling_rate`` (any rate,
        resampled to 16 kHz), WAV/FLAC/OGG/MP3 paths, or ``Sound`` objects. Clips longer than 2 s are
        embedded window by window and averaged (bounded memory); see :mod:`mmcourse.audio` for bad input."""
        n = len(clips) if isinstance(clips, (list, tuple)) else 1
        return A.embed_clips(clips, self._encode_windows, sampling_rate=sampling_rate,
                             target_sr=self.processor.sampling_rate, window_seconds=self.processor.max_seconds,
                             batch_size=batch_size or self.batch_size,
                             progress=(n >= 512) if progress is None else progress, desc=f"{self.name}: audio")

    def _encode_texts(self, texts: list[str]) -> torch.Tensor:
        return minilm.embed_sentences(texts, device=self.device)  # frozen all-MiniLM-L6-v2, (B, 384)


# --------------------------------------------------------------------------- checkpoint

def build(folder: pathlib.Path, config: Config | None = None, progress: bool = True) -> None:
    """Train and save ``model.safetensors`` + ``config.json`` into ``folder``."""
    from .checkpoints import save_state

    config = config or Config()
    model, history = train(config, progress=progress)
    save_state(folder, model, {"name": NAME, "version": config.version(), "tower": asdict(config.tower),
                               "train": asdict(config.train), "final_loss": history.final_loss,
                               "train_seconds": history.seconds})


def load_folder(folder: pathlib.Path, device: str | None = None, name: str = NAME) -> CourseClapEmbedder:
    """A saved ``course/clap-sounds`` folder as an Embedder."""
    from ...env import resolve_device
    from .checkpoints import load_state

    cfg, state = load_state(folder)
    tower_cfg = TowerConfig(**{**cfg["tower"], "channels": tuple(cfg["tower"]["channels"])})
    model = ClapSoundsModel(AudioTower(tower_cfg))
    model.load_state_dict(state)
    return CourseClapEmbedder(model.eval(), resolve_device(device), name=name)


def load(device: str | None = None, config: Config | None = None, progress: bool = True) -> CourseClapEmbedder:
    """The ``course/clap-sounds`` embedder, training and caching it on first use (≈ 30 s)."""
    from ...env import resolve_device
    from .checkpoints import load_course_checkpoint

    device = resolve_device(device)  # a bad device string fails now, not after training
    config = config or Config()
    return load_course_checkpoint(NAME, config.version(), lambda folder: build(folder, config, progress),
                                  lambda folder: load_folder(folder, device))
