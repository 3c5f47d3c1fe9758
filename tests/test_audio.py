"""Audio features: parity with transformers' ClapFeatureExtractor, windows, bad input, bounded memory."""
import tracemalloc

import numpy as np
import pytest
import torch

from mmcourse import audio as A
from mmcourse.data import sounds as S


@pytest.fixture(scope="module")
def clip():
    return S.synthesize_tone("high", "rising", "buzzy", "fast pulses", seconds=2.5, rng=0)  # 48 kHz


@pytest.mark.parametrize("truncation", ["fusion", "rand_trunc"])
def test_log_mel_matches_clap_feature_extractor(clip, truncation):
    from transformers import ClapFeatureExtractor

    fe = ClapFeatureExtractor(truncation=truncation)
    config = A.MelConfig.from_feature_extractor(fe)
    assert config.mel_scale == ("htk" if truncation == "fusion" else "slaney")
    ref = fe(clip, sampling_rate=48000, return_tensors="np")["input_features"][0, 0]  # (frames, mels)
    ours = A.log_mel(clip, config).T
    assert ours.shape == ref.shape == (1001, 64)
    np.testing.assert_allclose(ours, ref, atol=1e-3)  # dB
    assert A.CLAP_MEL == A.MelConfig.from_feature_extractor(ClapFeatureExtractor())  # defaults = HF defaults


@pytest.mark.parametrize("mode", A.PADDING_MODES)
def test_pad_or_truncate_matches_reference_loop(mode):
    x = np.arange(1, 8, dtype=np.float32)  # 7 samples
    out = A.pad_or_truncate(x, 20, mode)
    ref = []
    if mode == "pad":
        ref = list(x) + [0] * 13
    elif mode == "repeat":
        while len(ref) < 20:
            ref += list(x)
        ref = ref[:20]
    else:  # repeatpad: whole repeats, then zeros
        ref = list(x) * 2 + [0] * 6
    np.testing.assert_array_equal(out, np.array(ref, dtype=np.float32))
    np.testing.assert_array_equal(A.pad_or_truncate(x, 4, mode), x[:4])


def test_windows_cover_long_clips_and_drop_short_tails():
    sr = 16000
    assert [len(w) for w in A.iter_windows(np.ones(sr), sr, sr, 2.0)] == [sr]  # shorter than a window: itself
    x = np.ones(int(5.1 * sr), dtype=np.float32)
    assert [len(w) for w in A.iter_windows(x, sr, sr, 2.0)] == [2 * sr, 2 * sr, int(1.1 * sr)]
    assert len(list(A.iter_windows(np.ones(int(4.3 * sr)), sr, sr, 2.0))) == 2  # 0.3 s tail < a quarter window
    resampled = list(A.iter_windows(np.ones(3 * 48000), 48000, 16000, 2.0))
    assert [len(w) for w in resampled] == [32000, 16000]


def test_to_mono_takes_the_layout_it_is_told():
    left, right = np.ones(100), -np.ones(100) * 0.5
    np.testing.assert_allclose(A.to_mono(np.stack([left, right]), channel_axis=0), 0.25)  # (channels, samples)
    np.testing.assert_allclose(A.to_mono(np.stack([left, right], axis=1), channel_axis=1), 0.25)  # (samples, channels)
    for shape in ((2, 100), (20, 30), (100, 2)):  # never guessed from the shape
        with pytest.raises(ValueError, match="channel_axis=0 .* channel_axis=1"):
            A.to_mono(np.ones(shape))


def test_integer_pcm_is_scaled():
    x = A.check_waveform(np.array([0, 16384, -32767], dtype=np.int16))
    np.testing.assert_allclose(x, [0, 0.5, -1.0], atol=1e-4)


@pytest.mark.parametrize("bad, match", [
    (np.array([], dtype=np.float32), "empty"),
    (np.array([0.1, np.nan, 0.2], dtype=np.float32), "1 NaN or infinite"),
    (np.array([0.1, np.inf], dtype=np.float32), "NaN or infinite"),
    (np.array(["a", "b"]), "array of numbers"),
])
def test_bad_waveforms_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        A.check_waveform(bad)


@pytest.mark.parametrize("rate", [0, -16000, 44.1, 10**7, "48k", True])
def test_implausible_sampling_rates_are_rejected(rate):
    with pytest.raises(ValueError, match="sampling_rate"):
        A.check_sampling_rate(rate)
    assert A.check_sampling_rate(44100.0) == 44100


def test_silence_is_documented_behaviour():
    silent = np.zeros(16000, dtype=np.float32)
    assert A.is_silent(silent) and not A.is_silent(np.sin(np.arange(16000) / 5))
    mel = A.log_mel(silent, A.MelConfig(sampling_rate=16000, n_fft=512, hop_length=320, f_max=8000, max_seconds=1.0))
    assert np.all(mel == A.DB_FLOOR)


def test_load_audio_files(tmp_path):
    x = S.synthesize_tone("low", "steady", "pure", "continuous", seconds=1.0, sampling_rate=44100, rng=0)
    stereo = np.stack([x, x], axis=1)
    path = S.write_wav(tmp_path / "s.wav", stereo, 44100)
    y, sr = A.load_audio(path, sampling_rate=48000)
    assert sr == 48000 and y.ndim == 1 and abs(len(y) - 48000) <= 1
    y, sr = A.load_audio(path, sampling_rate=None)
    assert sr == 44100 and np.abs(y - x).max() < 1e-3
    (tmp_path / "notes.wav").write_text("this is not audio, just text with a .wav name")
    with pytest.raises(A.AudioDecodeError, match="could not decode 'notes.wav' as audio"):
        A.load_audio(tmp_path / "notes.wav")
    with pytest.raises(FileNotFoundError, match="no audio file"):
        A.load_audio(tmp_path / "missing.wav")
    S.write_wav(tmp_path / "empty.wav", np.zeros((1,), np.float32), 16000)
    import soundfile as sf

    sf.write(str(tmp_path / "empty.wav"), np.zeros((0,), np.float32), 16000)
    with pytest.raises(ValueError, match="empty"):
        A.load_audio(tmp_path / "empty.wav")


def _mean_encoder(windows):  # a stand-in tower: (B, 2) from each window's mean and length
    return torch.tensor([[float(np.mean(w)), 1.0 + len(w) / 1e6] for w in windows])


def test_embed_clips_matches_per_window_loop_and_accepts_files(tmp_path):
    sr = 16000
    clips = [np.full(int(s * sr), v, np.float32) for s, v in ((1.0, 0.5), (5.0, -0.2), (2.0, 0.1))]
    got = A.embed_clips(clips, _mean_encoder, sampling_rate=sr, target_sr=sr, window_seconds=2.0, batch_size=2)
    for clip, row in zip(clips, got):  # reference: the normalised mean of normalised window embeddings
        per = torch.nn.functional.normalize(_mean_encoder(list(A.iter_windows(clip, sr, sr, 2.0))), dim=-1)
        torch.testing.assert_close(row, torch.nn.functional.normalize(per.mean(0), dim=0))
    path = S.write_wav(tmp_path / "c.wav", clips[1], sr, subtype="FLOAT")
    from_file = A.embed_clips([path], _mean_encoder, sampling_rate=None, target_sr=sr, window_seconds=2.0)
    torch.testing.assert_close(from_file[0], got[1])
    with pytest.raises(ValueError, match="pass sampling_rate"):
        A.embed_clips(clips, _mean_encoder, sampling_rate=None, target_sr=sr, window_seconds=2.0)
    with pytest.raises(ValueError, match="empty list"):
        A.embed_clips([], _mean_encoder, sampling_rate=sr, target_sr=sr, window_seconds=2.0)


def test_ten_minute_clip_embeds_in_bounded_memory(tmp_path):
    sr = 48000
    long_clip = np.tile(S.synthesize_tone("low", "steady", "buzzy", "slow pulses", seconds=2.0, rng=0), 300)  # 600 s
    assert len(long_clip) == 600 * sr
    seen = []

    def encoder(windows):
        seen.append(len(windows))
        return _mean_encoder(windows)

    tracemalloc.start()
    out = A.embed_clips(long_clip, encoder, sampling_rate=sr, target_sr=16000, window_seconds=2.0, batch_size=16)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert out.shape == (1, 2) and sum(seen) == 300 and max(seen) <= 16
    # the clip is 115 MB; resampling it whole would allocate ~38 MB more — we stay far below
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB"
    # the same bound holds streaming from a file
    path = S.write_wav(tmp_path / "long.wav", long_clip, sr)
    del long_clip
    tracemalloc.start()
    out_file = A.embed_clips(path, encoder, sampling_rate=None, target_sr=16000, window_seconds=2.0, batch_size=16)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB"
    torch.testing.assert_close(out_file, out, atol=1e-3, rtol=0)


def test_audio_plots():
    import matplotlib

    matplotlib.use("Agg")
    from mmcourse import viz

    cfg = A.MelConfig(sampling_rate=16000, n_fft=512, hop_length=320, f_max=8000, max_seconds=1.0)
    x = S.synthesize_tone("high", "rising", "pure", "fast pulses", seconds=1.0, sampling_rate=16000, rng=0)
    ax = viz.plot_waveform(np.tile(x, 40), 16000)  # long: drawn as an envelope
    assert ax.get_xlim()[1] == pytest.approx(40.0)
    mels = [A.log_mel(x, cfg)] * 3
    fig = viz.spectrogram_gallery(mels, ["a", "b", "c"], cfg, cols=2, highlight=[True, False, True])
    visible = [a for a in fig.axes if a.axison]
    assert len(visible) == 3 and visible[1].spines["top"].get_edgecolor()[:3] == matplotlib.colors.to_rgb("tab:red")
    with pytest.raises(ValueError, match="captions"):
        viz.spectrogram_gallery(mels, ["a"], cfg)
    with pytest.raises(ValueError, match=r"\(n_mels, frames\)"):
        viz.plot_spectrogram(np.zeros(5))
