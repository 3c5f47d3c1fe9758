"""Scenes that make sounds and move sensors: co-occurring modalities for ImageBind-style binding.

Each drawn scene (:mod:`mmcourse.data.shapes`) *causes* two other signals, the way a
video's frames co-occur with its soundtrack and a phone's camera with its IMU:

- a **sound**: the colour sets the pitch and timbre, the shape sets the contour and the
  rhythm (table :data:`COLOR_TO_SOUND` / :data:`SHAPE_TO_SOUND`), synthesised by
  :func:`mmcourse.data.sounds.synthesize_tone`;
- a **sensor trace**: a 1-D, IMU-like motion signal (2 s at 100 Hz) whose oscillation
  frequency is set by the colour and whose waveform by the shape (sine, square,
  triangle, spikes), with random phase, amplitude, drift and noise.

Only (image, sound) and (image, sensor) pairs are meant for training; never
(sound, text), (sensor, text) or (sound, sensor).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import shapes
from .sounds import synthesize_tone

SOUND_RATE = 16_000  # Hz: what the course's audio tower listens at
SOUND_SECONDS = 2.0
SENSOR_RATE = 100  # Hz, a typical IMU rate
SENSOR_SECONDS = 2.0

# colour -> (pitch, timbre); shape -> (contour, rhythm): every scene label has its own sound
COLOR_TO_SOUND: dict[str, tuple[str, str]] = {
    "red": ("low", "buzzy"), "green": ("low", "pure"), "blue": ("high", "pure"),
    "yellow": ("high", "buzzy"), "purple": ("low", "noisy"), "orange": ("high", "noisy"),
}
SHAPE_TO_SOUND: dict[str, tuple[str, str]] = {
    "circle": ("steady", "continuous"), "square": ("steady", "fast pulses"),
    "triangle": ("rising", "slow pulses"), "star": ("falling", "fast pulses"),
}
# colour -> oscillation frequency (Hz); shape -> waveform of the motion
COLOR_TO_FREQUENCY: dict[str, float] = {"red": 1.0, "green": 1.6, "blue": 2.4, "yellow": 3.4, "purple": 4.6, "orange": 6.0}
SHAPE_TO_WAVE: dict[str, str] = {"circle": "sine", "square": "square", "triangle": "triangle", "star": "spikes"}


@dataclass
class PairedScene:
    """One scene and the signals it causes."""

    scene: shapes.Scene  # image + caption (the caption is for evaluation only)
    sound: np.ndarray  # (SOUND_RATE * SOUND_SECONDS,) float32 at SOUND_RATE
    sensor: np.ndarray  # (SENSOR_RATE * SENSOR_SECONDS,) float32

    @property
    def label(self) -> str:
        return self.scene.label


def sensor_trace(color: str, shape: str, rng: np.random.Generator) -> np.ndarray:
    """IMU-like trace of a scene: colour → frequency, shape → waveform, plus phase, drift and noise."""
    t = np.arange(int(SENSOR_RATE * SENSOR_SECONDS)) / SENSOR_RATE  # (T,) seconds
    freq = COLOR_TO_FREQUENCY[color] * rng.uniform(0.93, 1.07)
    phase = 2 * np.pi * (freq * t + rng.uniform())  # (T,)
    kind = SHAPE_TO_WAVE[shape]
    if kind == "sine":
        wave = np.sin(phase)
    elif kind == "square":
        wave = np.sign(np.sin(phase))
    elif kind == "triangle":
        wave = 2 / np.pi * np.arcsin(np.sin(phase))
    else:  # short spikes once per period
        wave = np.exp(-((np.mod(phase, 2 * np.pi) - np.pi) ** 2) / 0.05) * 2 - 0.3
    drift = rng.uniform(-0.3, 0.3) * t / SENSOR_SECONDS
    trace = rng.uniform(0.6, 1.4) * wave + drift + 0.15 * rng.standard_normal(len(t))
    return trace.astype(np.float32)


def scene_sound(color: str, shape: str, rng: np.random.Generator) -> np.ndarray:
    """The sound a scene makes (2 s at 16 kHz)."""
    pitch, timbre = COLOR_TO_SOUND[color]
    contour, rhythm = SHAPE_TO_SOUND[shape]
    return synthesize_tone(pitch, contour, timbre, rhythm, seconds=SOUND_SECONDS, sampling_rate=SOUND_RATE, rng=rng)


def make_paired(n: int, split: str = "train", seed: int = 0, size: int = 64) -> list[PairedScene]:
    """``n`` scenes of a split, each with the sound and the sensor trace it causes (deterministic by seed)."""
    scenes = shapes.make_scenes(n, split=split, seed=seed, size=size)  # validates n and split
    rng = np.random.default_rng([seed, 7, shapes.SPLITS.index(split)])
    return [PairedScene(s, scene_sound(s.color, s.shape, rng), sensor_trace(s.color, s.shape, rng)) for s in scenes]


def one_per_label(split: str = "all", seed: int = 0, per_label: int = 1, size: int = 64) -> list[PairedScene]:
    """``per_label`` paired scenes for every colour–shape label of a split, in label order."""
    rng = np.random.default_rng([seed, 11, shapes.SPLITS.index(split)])
    out = []
    for color, shape in shapes.combos(split):
        for _ in range(per_label):
            image = shapes.draw_scene([(color, shape)], rng, size)
            scene = shapes.Scene(image, shapes.format_caption("a {color} {shape}", color, shape), color, shape,
                                 [(color, shape)])
            out.append(PairedScene(scene, scene_sound(color, shape, rng), sensor_trace(color, shape, rng)))
    return out
