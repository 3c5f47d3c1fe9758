"""Procedurally synthesised audio–caption clips with named compositional splits.

A *tone* clip is a function of four attributes:

- pitch: ``low`` (≈150–300 Hz) or ``high`` (≈1.2–2.4 kHz);
- contour: ``steady``, ``rising`` (upward chirps, 1.5 octaves each second) or ``falling``;
- timbre: ``pure`` (a sine), ``buzzy`` (a band-limited sawtooth: many harmonics)
  or ``noisy`` (narrow-band noise that follows the pitch);
- rhythm: ``continuous``, ``slow pulses`` (2 per second) or ``fast pulses`` (8 per second).

That gives 2 × 3 × 3 × 3 = 54 combinations; ``HELDOUT_COMBOS`` names nine of them
(one per contour–timbre pair) that never appear in the training split. Three
*textures* — rain-like noise, a siren, a two-tone doorbell — add sounds that are not
made of those attributes. Everything is deterministic by seed, 1–5 s long and
synthesised at 48 kHz (the rate CLAP expects); :meth:`Sound.audio` resamples on demand.

The synthesiser is a plain function of the attributes (:func:`synthesize_tone`,
:func:`synthesize_texture`), so other datasets (scenes that make sounds) reuse it.
"""
from __future__ import annotations

import itertools
import math
import pathlib
from dataclasses import dataclass

import numpy as np

from ..validate import integer, positive_int


SAMPLING_RATE = 48_000  # Hz, CLAP's rate
MIN_SECONDS, MAX_SECONDS = 1.0, 5.0  # clip durations are drawn uniformly in this range

PITCHES: tuple[str, ...] = ("low", "high")
CONTOURS: tuple[str, ...] = ("steady", "rising", "falling")
TIMBRES: tuple[str, ...] = ("pure", "buzzy", "noisy")
RHYTHMS: tuple[str, ...] = ("continuous", "slow pulses", "fast pulses")
TEXTURES: tuple[str, ...] = ("rain", "siren", "doorbell")

# base frequency ranges (Hz) of each pitch; one value is drawn per clip
PITCH_RANGES: dict[str, tuple[float, float]] = {"low": (150.0, 300.0), "high": (1200.0, 2400.0)}
SWEEP_SECONDS, SWEEP_OCTAVES = 1.0, 1.5  # a chirp sweeps 1.5 octaves each second, then starts again
PULSE_RATES: dict[str, float] = {"continuous": 0.0, "slow pulses": 2.0, "fast pulses": 8.0}  # pulses per second

Combo = tuple[str, str, str, str]  # (pitch, contour, timbre, rhythm)

ALL_COMBOS: tuple[Combo, ...] = tuple(itertools.product(PITCHES, CONTOURS, TIMBRES, RHYTHMS))
# One held-out combination per (contour, timbre) pair, pitch and rhythm varied, so every
# attribute value still appears many times in training — only these pairings are new.
HELDOUT_COMBOS: tuple[Combo, ...] = (
    ("low", "steady", "pure", "fast pulses"),
    ("high", "steady", "buzzy", "continuous"),
    ("low", "steady", "noisy", "slow pulses"),
    ("high", "rising", "pure", "slow pulses"),
    ("low", "rising", "buzzy", "fast pulses"),
    ("high", "rising", "noisy", "continuous"),
    ("low", "falling", "pure", "continuous"),
    ("high", "falling", "buzzy", "slow pulses"),
    ("low", "falling", "noisy", "fast pulses"),
)
TRAIN_COMBOS: tuple[Combo, ...] = tuple(c for c in ALL_COMBOS if c not in HELDOUT_COMBOS)
SPLITS = ("train", "heldout", "all")

# Words used in training captions. Rhythm reads as a phrase after the tone.
RHYTHM_PHRASES: dict[str, str] = {
    "continuous": "held continuously",
    "slow pulses": "in slow pulses",
    "fast pulses": "in fast pulses",
}
TEXTURE_PHRASES: dict[str, str] = {
    "rain": "rain-like noise",
    "siren": "a siren",
    "doorbell": "a two-tone doorbell",
}
# Caption templates for tones (training captions and zero-shot prompts).
TEMPLATES: tuple[str, ...] = (
    "a {pitch} {contour} {timbre} tone, {rhythm}",
    "the sound of a {pitch} {timbre} tone with a {contour} pitch, {rhythm}",
    "a {timbre} tone, {pitch} and {contour}, {rhythm}",
    "a recording of a {contour} {pitch} {timbre} tone {rhythm}",
    "{pitch} pitch, {contour}, {timbre}, {rhythm}",
)
TEXTURE_TEMPLATES: tuple[str, ...] = (
    "the sound of {texture}",
    "a recording of {texture}",
    "{texture}",
    "a clip of {texture}",
    "we hear {texture}",
)
# Words never used in training captions: prompts made of these test paraphrase robustness.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "low": ("deep", "bass"),
    "high": ("shrill", "high-pitched"),
    "steady": ("flat", "constant"),
    "rising": ("upward-sweeping", "climbing"),
    "falling": ("downward-sweeping", "descending"),
    "pure": ("sine-wave", "clean"),
    "buzzy": ("raspy", "harsh buzzing"),
    "noisy": ("hissing", "breathy"),
    "continuous": ("without pauses", "sustained"),
    "slow pulses": ("beeping slowly", "in slow beeps"),
    "fast pulses": ("beeping rapidly", "in quick beeps"),
    "rain": ("rainfall", "a downpour"),
    "siren": ("an ambulance siren", "a wailing alarm"),
    "doorbell": ("a ding-dong chime", "a door chime"),
}


@dataclass
class Sound:
    """One synthesised clip. Tone clips set the four attributes; texture clips set ``texture``."""

    waveform: np.ndarray  # float32, mono, in [-1, 1]
    sampling_rate: int  # Hz
    caption: str
    pitch: str | None = None
    contour: str | None = None
    timbre: str | None = None
    rhythm: str | None = None
    texture: str | None = None

    @property
    def label(self) -> str:
        """Class name used for zero-shot classification, e.g. ``"high rising buzzy, fast pulses"``."""
        if self.texture is not None:
            return texture_label(self.texture)
        return combo_label((self.pitch, self.contour, self.timbre, self.rhythm))

    @property
    def seconds(self) -> float:
        return len(self.waveform) / self.sampling_rate

    def audio(self, sampling_rate: int | None = None) -> np.ndarray:
        """The waveform, resampled to ``sampling_rate`` (with librosa) when it differs."""
        if sampling_rate is None or sampling_rate == self.sampling_rate:
            return self.waveform
        import librosa

        _check_rate(sampling_rate)
        return librosa.resample(self.waveform, orig_sr=self.sampling_rate, target_sr=sampling_rate).astype(np.float32)


# --------------------------------------------------------------------------- labels

def _check(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; expected one of {valid}")


def _check_rate(sampling_rate) -> None:
    integer(sampling_rate, "sampling_rate", minimum=1000, maximum=384_000, unit="Hz")


def combo_label(combo: Combo) -> str:
    """``("high", "rising", "buzzy", "fast pulses")`` → ``"high rising buzzy, fast pulses"``."""
    pitch, contour, timbre, rhythm = combo
    return f"{pitch} {contour} {timbre}, {rhythm}"


def texture_label(texture: str) -> str:
    _check("texture", texture, TEXTURES)
    return texture


def combos(split: str = "train") -> tuple[Combo, ...]:
    """Attribute combinations of a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return {"train": TRAIN_COMBOS, "heldout": HELDOUT_COMBOS, "all": ALL_COMBOS}[split]


def labels(split: str = "all", textures: bool | None = None) -> list[str]:
    """Class names of a split in a fixed order: tone combos, then (by default, except for
    ``"heldout"``, which has no textures) the three textures."""
    textures = split != "heldout" if textures is None else textures
    out = [combo_label(c) for c in combos(split)]
    return out + ([texture_label(t) for t in TEXTURES] if textures else [])


def parse_label(label: str) -> Combo | str:
    """Inverse of :func:`combo_label` / :func:`texture_label`: a combo tuple or a texture name."""
    if label in TEXTURES:
        return label
    for combo in ALL_COMBOS:
        if combo_label(combo) == label:
            return combo
    raise ValueError(f"unknown label {label!r}; expected one of labels('all'), e.g. {labels('all')[0]!r}")


def caption(label: str, template: str | None = None, words: dict[str, str] | None = None) -> str:
    """Caption of a label using ``template`` (the first template by default).

    ``words`` replaces attribute words, e.g. ``{"low": "deep"}`` (used for paraphrases).
    """
    parsed = parse_label(label)
    words = words or {}
    if isinstance(parsed, str):
        phrase = words.get(parsed, TEXTURE_PHRASES[parsed])
        return (template or TEXTURE_TEMPLATES[0]).format(texture=phrase)
    pitch, contour, timbre, rhythm = parsed
    return (template or TEMPLATES[0]).format(
        pitch=words.get(pitch, pitch), contour=words.get(contour, contour),
        timbre=words.get(timbre, timbre), rhythm=words.get(rhythm, RHYTHM_PHRASES[rhythm]),
    )


def prompts(label: str) -> list[str]:
    """Every training template applied to ``label`` (for prompt ensembling)."""
    templates = TEXTURE_TEMPLATES if label in TEXTURES else TEMPLATES
    return [caption(label, t) for t in templates]


def paraphrase_prompts(label: str) -> list[str]:
    """Prompts for ``label`` whose attribute words were never used in training captions."""
    parsed = parse_label(label)
    keys = [parsed] if isinstance(parsed, str) else list(parsed)
    out = []
    for i in range(2):
        words = {k: PARAPHRASES[k][i] for k in keys}
        templates = TEXTURE_TEMPLATES if isinstance(parsed, str) else TEMPLATES
        out.append(caption(label, templates[i], words))
    return out


# --------------------------------------------------------------------------- synthesis

def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _n_samples(seconds: float, sampling_rate: int) -> int:
    if not (isinstance(seconds, (int, float, np.floating)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive finite number, got {seconds!r}")
    _check_rate(sampling_rate)
    return max(1, int(round(seconds * sampling_rate)))


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """White noise low-passed by a moving average of ``width`` samples, unit RMS."""
    noise = rng.standard_normal(n + width)
    c = np.cumsum(noise)
    out = (c[width:] - c[:-width])[:n]
    return out / (out.std() + 1e-12)


def pulse_envelope(n: int, sampling_rate: int, rate: float, duty: float = 0.5, ramp_s: float = 0.01,
                   phase: float = 0.0) -> np.ndarray:
    """On/off envelope with ``rate`` pulses per second (0 = always on) and raised-cosine edges."""
    env = np.ones(n, dtype=np.float64)
    if rate > 0:
        t = np.arange(n) / sampling_rate
        cycle = (t * rate + phase) % 1.0  # position inside each pulse period
        on = duty
        ramp = min(ramp_s * rate, on / 2)  # ramp length as a fraction of the period
        env = np.clip(np.minimum(cycle / ramp, (on - cycle) / ramp), 0.0, 1.0)
        env = 0.5 - 0.5 * np.cos(np.pi * env)
    fade = min(n // 2, int(0.01 * sampling_rate))  # 10 ms fade in/out: no clicks at the edges
    if fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
        env[:fade] *= ramp
        env[-fade:] *= ramp[::-1]
    return env


def _polyblep_saw(phase: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Band-limited sawtooth: the naive ramp minus a polynomial correction at each jump."""
    t = (phase / (2 * np.pi)) % 1.0  # position in the cycle, [0, 1)
    saw = 2.0 * t - 1.0
    dt = np.clip(step, 1e-6, 0.5)  # cycles per sample
    head, tail = t < dt, t > 1.0 - dt
    x = t[head] / dt[head]
    saw[head] -= x + x - x * x - 1.0
    x = (t[tail] - 1.0) / dt[tail]
    saw[tail] -= x * x + x + x + 1.0
    return saw


def _frequency_track(contour: str, f0: float, n: int, sampling_rate: int) -> np.ndarray:
    """Instantaneous frequency (Hz) per sample: steady at ``f0``, or repeated sweeps of
    ``SWEEP_OCTAVES`` centred on ``f0``, one every ``SWEEP_SECONDS`` (so any 1 s of the clip shows the slope)."""
    if contour == "steady":
        return np.full(n, f0)
    x = (np.arange(n) / (sampling_rate * SWEEP_SECONDS)) % 1.0  # position inside the current sweep
    if contour == "falling":
        x = 1.0 - x
    return f0 * 2.0 ** (SWEEP_OCTAVES * (x - 0.5))


def _oscillator(timbre: str, freq: np.ndarray, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(freq) / sampling_rate + rng.uniform(0, 2 * np.pi)
    if timbre == "pure":
        return np.sin(phase)
    if timbre == "buzzy":
        # a sawtooth (every harmonic k at amplitude 1/k), PolyBLEP-smoothed so it does not alias
        return _polyblep_saw(phase, freq / sampling_rate)
    # noisy: a carrier following the pitch, amplitude-modulated by smooth noise → a narrow noise band
    width = max(2, int(sampling_rate / (0.25 * float(freq.mean()))))  # bandwidth ≈ a quarter of f0
    return np.sin(phase) * _smooth_noise(rng, len(freq), width) * 0.7


def _normalise(wave: np.ndarray, peak: float) -> np.ndarray:
    top = float(np.abs(wave).max())
    return (wave * (peak / top) if top > 0 else wave).astype(np.float32)


def synthesize_tone(pitch: str, contour: str, timbre: str, rhythm: str, seconds: float = 2.0,
                    sampling_rate: int = SAMPLING_RATE, rng=None, f0: float | None = None) -> np.ndarray:
    """Synthesise a tone clip from its four attributes; returns float32 samples in [-1, 1].

    ``rng`` (a seed or a ``numpy.random.Generator``) draws the base frequency inside the
    pitch's range (unless ``f0`` is given), the phases, the noise and the loudness.
    """
    _check("pitch", pitch, PITCHES)
    _check("contour", contour, CONTOURS)
    _check("timbre", timbre, TIMBRES)
    _check("rhythm", rhythm, RHYTHMS)
    rng = _rng(rng)
    n = _n_samples(seconds, sampling_rate)
    lo, hi = PITCH_RANGES[pitch]
    f0 = float(f0) if f0 is not None else float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    freq = _frequency_track(contour, f0, n, sampling_rate)  # (n,) Hz
    wave = _oscillator(timbre, freq, sampling_rate, rng)
    wave = wave * pulse_envelope(n, sampling_rate, PULSE_RATES[rhythm], phase=rng.uniform(0, 0.3))
    wave = wave + 0.003 * rng.standard_normal(n)  # a faint noise floor, like any real recording
    return _normalise(wave, rng.uniform(0.3, 0.9))


def synthesize_texture(texture: str, seconds: float = 2.0, sampling_rate: int = SAMPLING_RATE,
                       rng=None) -> np.ndarray:
    """Synthesise a texture clip: ``"rain"``, ``"siren"`` or ``"doorbell"``."""
    _check("texture", texture, TEXTURES)
    rng = _rng(rng)
    n = _n_samples(seconds, sampling_rate)
    t = np.arange(n) / sampling_rate
    if texture == "rain":
        hiss = rng.standard_normal(n)
        hiss = hiss - np.convolve(hiss, np.ones(8) / 8, mode="same")  # high-passed: a soft broadband hiss
        drops = np.zeros(n)
        count = int(rng.uniform(25, 60) * n / sampling_rate)  # droplets per clip
        for start in rng.integers(0, n, size=count):
            length = int(sampling_rate * rng.uniform(0.002, 0.01))
            burst = rng.standard_normal(length) * np.exp(-np.linspace(0, 6, length))
            drops[start:start + length] += burst[: n - start] * rng.uniform(0.5, 2.0)
        wave = 0.35 * hiss + drops
    elif texture == "siren":
        rate = rng.uniform(0.6, 1.2)  # wails per second
        centre, depth = rng.uniform(700, 1000), rng.uniform(250, 400)
        freq = centre + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        phase = 2 * np.pi * np.cumsum(freq) / sampling_rate
        wave = np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)
    else:  # doorbell: "ding" then "dong" (a major third down), each a decaying bell partial set
        wave = np.zeros(n)
        period = rng.uniform(1.0, 1.6)  # seconds per ding-dong
        high = rng.uniform(600, 800)
        for start_s in np.arange(0.0, n / sampling_rate, period):
            for offset, f in ((0.0, high), (period / 2, high * 0.8)):
                start = int((start_s + offset) * sampling_rate)
                if start >= n:
                    continue
                tt = t[: n - start]
                env = np.exp(-tt * 4.0)
                note = (np.sin(2 * np.pi * f * tt) + 0.4 * np.sin(2 * np.pi * 2.76 * f * tt)
                        + 0.2 * np.sin(2 * np.pi * 5.4 * f * tt))
                wave[start:] += env * note
    wave = wave * pulse_envelope(n, sampling_rate, 0.0)
    return _normalise(wave, rng.uniform(0.3, 0.9))


def synthesize(label: str, seconds: float = 2.0, sampling_rate: int = SAMPLING_RATE, rng=None) -> np.ndarray:
    """Synthesise a clip of any label (tone combo or texture)."""
    parsed = parse_label(label)
    if isinstance(parsed, str):
        return synthesize_texture(parsed, seconds, sampling_rate, rng)
    return synthesize_tone(*parsed, seconds=seconds, sampling_rate=sampling_rate, rng=rng)


# --------------------------------------------------------------------------- datasets

def make_sounds(n: int, split: str = "train", seed: int = 0, sampling_rate: int = SAMPLING_RATE,
                seconds: tuple[float, float] | float = (MIN_SECONDS, MAX_SECONDS),
                textures: bool | None = None, templates: tuple[str, ...] | None = None) -> list[Sound]:
    """Synthesise ``n`` captioned clips of a split (``"train"``, ``"heldout"`` or ``"all"``).

    Clips cycle through the split's labels in a seeded random order (so every label
    appears ⌊n / labels⌋ or ⌈n / labels⌉ times); durations are drawn in ``seconds``.
    Textures are included except in the ``"heldout"`` split (override with ``textures``).
    Deterministic: the same arguments give the same waveforms and captions.
    """
    positive_int(n, "n")
    _check_rate(sampling_rate)
    lo, hi = (seconds, seconds) if isinstance(seconds, (int, float)) else tuple(seconds)
    if not (0 < lo <= hi <= 600):
        raise ValueError(f"seconds must be a duration or a (min, max) range inside (0, 600], got {seconds!r}")
    pool = labels(split, textures)
    templates = tuple(templates) if templates else None
    rng = np.random.default_rng([seed, SPLITS.index(split), sampling_rate, 7])
    order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-int(n) // len(pool)))])[: int(n)]
    sounds = []
    for idx in order:
        label = pool[idx]
        parsed = parse_label(label)
        duration = float(rng.uniform(lo, hi))
        wave = synthesize(label, duration, sampling_rate, rng)
        if isinstance(parsed, str):
            tmpl = (templates or TEXTURE_TEMPLATES)[rng.integers(len(templates or TEXTURE_TEMPLATES))]
            sounds.append(Sound(wave, sampling_rate, caption(label, tmpl), texture=parsed))
        else:
            tmpl = (templates or TEMPLATES)[rng.integers(len(templates or TEMPLATES))]
            sounds.append(Sound(wave, sampling_rate, caption(label, tmpl), *parsed))
    return sounds


# --------------------------------------------------------------------------- files

def write_wav(path, waveform, sampling_rate: int = SAMPLING_RATE, subtype: str = "PCM_16") -> pathlib.Path:
    """Write a mono (or ``(samples, channels)``) clip, or a :class:`Sound`, as a WAV file."""
    import soundfile as sf

    if isinstance(waveform, Sound):
        waveform, sampling_rate = waveform.waveform, waveform.sampling_rate
    _check_rate(sampling_rate)
    data = np.asarray(waveform, dtype=np.float32)
    if data.ndim not in (1, 2) or data.shape[0] == 0:
        raise ValueError(f"waveform must be a non-empty 1-D (samples,) or 2-D (samples, channels) array, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("waveform contains NaN or infinite samples; clean it before writing")
    path = pathlib.Path(path)
    sf.write(str(path), data, int(sampling_rate), subtype=subtype, format="WAV")
    return path


def read_wav(path) -> tuple[np.ndarray, int]:
    """Read a WAV file as ``(float32 samples, sampling_rate)``; multi-channel stays ``(samples, channels)``."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    return data, int(rate)
