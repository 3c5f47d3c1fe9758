"""Synthesised sounds: splits, captions, determinism, attributes audible in the signal, WAV round trip."""
import numpy as np
import pytest

from mmcourse.data import sounds as S


def test_splits_partition_the_combinations():
    assert len(S.ALL_COMBOS) == 2 * 3 * 3 * 3
    assert set(S.TRAIN_COMBOS) | set(S.HELDOUT_COMBOS) == set(S.ALL_COMBOS)
    assert not set(S.TRAIN_COMBOS) & set(S.HELDOUT_COMBOS)
    # every attribute value still appears in training: only the pairings are new
    for i, values in enumerate((S.PITCHES, S.CONTOURS, S.TIMBRES, S.RHYTHMS)):
        assert {c[i] for c in S.TRAIN_COMBOS} == set(values)
    assert len(S.labels("all")) == 54 + 3 and len(S.labels("heldout")) == 9
    assert not set(S.labels("heldout")) & set(S.labels("train"))


def test_make_sounds_is_deterministic_and_balanced():
    a = S.make_sounds(20, "heldout", seed=3, sampling_rate=16000)
    b = S.make_sounds(20, "heldout", seed=3, sampling_rate=16000)
    c = S.make_sounds(20, "heldout", seed=4, sampling_rate=16000)
    assert [s.caption for s in a] == [s.caption for s in b]
    assert all(np.array_equal(x.waveform, y.waveform) for x, y in zip(a, b))
    assert any(len(x.waveform) != len(y.waveform) or not np.array_equal(x.waveform, y.waveform) for x, y in zip(a, c))
    counts = {lab: sum(s.label == lab for s in a) for lab in S.labels("heldout")}
    assert set(counts.values()) <= {2, 3}  # 20 clips over 9 labels
    for s in a:
        assert s.waveform.dtype == np.float32 and np.isfinite(s.waveform).all()
        assert S.MIN_SECONDS - 1e-3 <= s.seconds <= S.MAX_SECONDS + 1e-3
        assert 0.25 < np.abs(s.waveform).max() <= 0.9 + 1e-6
        assert all(w in s.caption for w in (s.pitch, s.contour, s.timbre, S.RHYTHM_PHRASES[s.rhythm]))


def test_captions_name_every_attribute_and_labels_round_trip():
    for label in S.labels("all"):
        assert S.parse_label(label) in S.ALL_COMBOS or label in S.TEXTURES
        for prompt in S.prompts(label):
            parsed = S.parse_label(label)
            words = [S.TEXTURE_PHRASES[parsed]] if isinstance(parsed, str) else list(parsed[:3]) + [S.RHYTHM_PHRASES[parsed[3]]]
            assert all(w in prompt for w in words), (label, prompt)
        for prompt in S.paraphrase_prompts(label):  # paraphrases avoid the training words
            parsed = S.parse_label(label)
            if not isinstance(parsed, str):
                assert not any(f" {w} " in f" {prompt} " for w in parsed[:3]), prompt


def _dominant_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()]


@pytest.mark.parametrize("pitch", S.PITCHES)
def test_pitch_and_contour_are_in_the_signal(pitch):
    sr = 16000
    lo, hi = S.PITCH_RANGES[pitch]
    x = S.synthesize_tone(pitch, "steady", "pure", "continuous", seconds=1.0, sampling_rate=sr, rng=0)
    assert lo * 0.95 <= _dominant_hz(x, sr) <= hi * 1.05
    up = S.synthesize_tone(pitch, "rising", "pure", "continuous", seconds=2.0, sampling_rate=sr, rng=0)
    down = S.synthesize_tone(pitch, "falling", "pure", "continuous", seconds=2.0, sampling_rate=sr, rng=0)
    half = sr // 2
    assert _dominant_hz(up[-half:], sr) > 1.5 * _dominant_hz(up[:half], sr)
    assert _dominant_hz(down[:half], sr) > 1.5 * _dominant_hz(down[-half:], sr)


def test_timbre_and_rhythm_are_in_the_signal():
    sr = 16000

    def harmonic_share(x):  # energy outside the fundamental's neighbourhood
        spec = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / sr)
        f0 = f[spec.argmax()]
        return spec[np.abs(f - f0) > 0.3 * f0].sum() / spec.sum()

    kw = dict(seconds=1.0, sampling_rate=sr, rng=1, f0=300.0)
    pure = S.synthesize_tone("low", "steady", "pure", "continuous", **kw)
    buzzy = S.synthesize_tone("low", "steady", "buzzy", "continuous", **kw)
    assert harmonic_share(pure) < 0.01 < 0.2 < harmonic_share(buzzy)

    def onsets(x):  # rising edges of the 10 ms RMS envelope
        frames = np.sqrt(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
        on = frames > 0.5 * frames.max()
        return int(np.sum(on[1:] & ~on[:-1]))

    kw = dict(seconds=2.0, sampling_rate=sr, rng=2)
    assert onsets(S.synthesize_tone("low", "steady", "pure", "continuous", **kw)) <= 1
    assert 3 <= onsets(S.synthesize_tone("low", "steady", "pure", "slow pulses", **kw)) <= 5
    assert 14 <= onsets(S.synthesize_tone("low", "steady", "pure", "fast pulses", **kw)) <= 17


@pytest.mark.parametrize("texture", S.TEXTURES)
def test_textures(texture):
    x = S.synthesize_texture(texture, seconds=1.5, sampling_rate=16000, rng=0)
    assert x.shape == (24000,) and x.dtype == np.float32 and np.isfinite(x).all()


def test_resample_on_demand():
    (s,) = S.make_sounds(1, "train", seed=0, seconds=1.0)
    assert s.sampling_rate == 48000
    y = s.audio(16000)
    assert abs(len(y) - len(s.waveform) / 3) <= 1 and y.dtype == np.float32
    assert s.audio() is s.waveform


def test_wav_round_trip(tmp_path):
    (s,) = S.make_sounds(1, "heldout", seed=0, seconds=1.0)
    path = S.write_wav(tmp_path / "clip.wav", s)
    y, sr = S.read_wav(path)
    assert sr == 48000 and y.shape == s.waveform.shape
    assert np.abs(y - s.waveform).max() < 2 / 2**15  # 16-bit PCM quantisation
    stereo = np.stack([s.waveform, -s.waveform], axis=1)
    y2, _ = S.read_wav(S.write_wav(tmp_path / "st.wav", stereo, 48000))
    assert y2.shape == stereo.shape


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "positive integer"),
    (dict(n=3, split="test"), "expected one of"),
    (dict(n=3, sampling_rate=44.1), "integer number of Hz"),
    (dict(n=3, seconds=(3.0, 1.0)), "seconds"),
])
def test_make_sounds_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        S.make_sounds(**kwargs)


def test_synthesis_rejects_unknown_attributes_naming_valid_values():
    with pytest.raises(ValueError, match=r"unknown timbre 'flute'.*'pure', 'buzzy', 'noisy'"):
        S.synthesize_tone("low", "steady", "flute", "continuous")
    with pytest.raises(ValueError, match="unknown label"):
        S.parse_label("a trumpet")
    with pytest.raises(ValueError, match="seconds must be a positive"):
        S.synthesize_texture("rain", seconds=0)
    with pytest.raises(ValueError, match="NaN"):
        S.write_wav("/dev/null", np.array([0.0, np.nan], dtype=np.float32))
