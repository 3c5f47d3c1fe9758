"""CLAP loaders: a tiny random transformers ClapModel through hf_clap.load (no network),
and the course checkpoint's tower, training contract and save/load round trip."""
import json
import time

import numpy as np
import pytest
import torch

from mmcourse.data import sounds as S
from mmcourse.models.course import clap as C

# ----------------------------------------------------------------------------- hub path, offline


def _byte_level_vocab() -> dict:
    """A RoBERTa byte-level vocabulary with no merges: every byte is a token."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            codes.append(256 + extra)
            extra += 1
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in codes:
        vocab.setdefault(chr(c), len(vocab))
    vocab["<mask>"] = len(vocab)
    return vocab


@pytest.fixture(scope="module")
def tiny_clap_dir(tmp_path_factory):
    """A random-weight ClapModel + ClapProcessor saved with save_pretrained, as a hub repo would be."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    folder = tmp_path_factory.mktemp("tiny-clap")
    vocab = _byte_level_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = RobertaTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    # like laion/clap-htsat-unfused: "rand_trunc" features (1 channel), no fusion; 1 s windows keep it tiny
    fe = ClapFeatureExtractor(feature_size=16, max_length_s=1, fft_window_size=256, truncation="rand_trunc")
    config = ClapConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=64),
        audio_config=dict(num_mel_bins=16, spec_size=64, window_size=4, patch_size=4, patch_stride=4, hidden_size=32,
                          depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=16, enable_fusion=False),
        projection_dim=8,
    )
    torch.manual_seed(0)
    ClapModel(config).eval().save_pretrained(folder / "model")
    ClapProcessor(feature_extractor=fe, tokenizer=tokenizer).save_pretrained(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def tiny_hub(tiny_clap_dir):
    from mmcourse.models.hub import hf_clap

    return hf_clap.load(str(tiny_clap_dir), device="cpu")


def test_hf_loader_matches_direct_transformers_calls(tiny_clap_dir, tiny_hub):
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(tiny_clap_dir).eval()
    processor = ClapProcessor.from_pretrained(tiny_clap_dir)
    clips = [S.synthesize_tone("low", "rising", "buzzy", "fast pulses", seconds=0.8, rng=i) for i in range(3)]
    inputs = processor(audio=clips, sampling_rate=48000, return_tensors="pt")  # transformers 5.x: audio=, not audios=
    with torch.no_grad():
        direct = model.get_audio_features(**inputs).pooler_output  # already L2-normalised
    ours = tiny_hub.embed_audio(clips, sampling_rate=48000)
    torch.testing.assert_close(ours, direct, atol=1e-5, rtol=1e-4)
    texts = ["a low rising buzzy tone", "rain"]
    with torch.no_grad():
        direct_t = model.get_text_features(**processor(text=texts, padding=True, return_tensors="pt")).pooler_output
    torch.testing.assert_close(tiny_hub.embed_texts(texts), direct_t, atol=1e-5, rtol=1e-4)
    assert tiny_hub.logit_scale == pytest.approx(float(model.logit_scale_a.detach().exp()))


def test_hf_loader_resamples_and_chunks(tiny_hub):
    x48 = S.synthesize_tone("high", "steady", "pure", "continuous", seconds=0.9, rng=0)
    import librosa

    x16 = librosa.resample(x48, orig_sr=48000, target_sr=16000)
    up = librosa.resample(x16, orig_sr=16000, target_sr=48000)  # what embed_audio must do with a 16 kHz clip
    got = tiny_hub.embed_audio([x16], sampling_rate=16000)
    torch.testing.assert_close(got, tiny_hub.embed_audio([up], sampling_rate=48000), atol=1e-5, rtol=1e-4)
    wrong = tiny_hub.embed_audio([x16], sampling_rate=48000)  # mislabelled rate: a different (wrong) embedding
    assert float(got @ wrong.T) < 0.999
    long = np.concatenate([x48, x48[::-1].copy(), x48])[: int(2.7 * 48000)]  # 2.7 s → 1 s windows: 1, 1, 0.7
    windows = tiny_hub.embed_audio([long[:48000], long[48000:96000], long[96000:]], sampling_rate=48000)
    expected = torch.nn.functional.normalize(windows.mean(0), dim=0)
    torch.testing.assert_close(tiny_hub.embed_audio(long, sampling_rate=48000)[0], expected, atol=1e-5, rtol=1e-4)


def test_processor_rejects_the_old_audios_argument(tiny_hub):
    x = np.zeros(4800, np.float32)
    try:
        out = tiny_hub.processor(audios=[x], sampling_rate=48000, return_tensors="pt")
    except (TypeError, ValueError):
        return  # rejected outright
    assert "input_features" not in out  # or silently ignored: no audio features come back


def test_hub_id_offline_fails_fast(monkeypatch):
    from mmcourse.errors import WeightsUnavailableError
    from mmcourse.models.hub import hf_clap

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-mmcourse-hf-home")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="laion/clap-htsat-unfused"):
        hf_clap.load("laion/clap-htsat-unfused", device="cpu")
    assert time.perf_counter() - start < 10


# ----------------------------------------------------------------------------- course checkpoint

def test_tower_shapes_and_gradients():
    tower = C.AudioTower(C.TowerConfig())
    mel = torch.randn(3, 64, C.COURSE_MEL.frames, requires_grad=True) * 20 - 40  # (B, M, T) dB
    out = tower(mel)
    assert out.shape == (3, 384)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))
    out[:, 0].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in tower.parameters() if p.requires_grad)


def test_training_contract_and_checkpoint_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    cfg = C.Config(train=C.TrainConfig(clips_per_label=1, steps=4, batch_size=8, warmup=1))
    model, history = C.train(cfg, progress=False)
    assert len(history.losses) == 4 and all(np.isfinite(history.losses))
    assert history.losses[0] == pytest.approx(np.log(8), rel=0.5)  # InfoNCE of an untrained model ≈ log(B)
    # save as the cache does, load back: identical embeddings
    monkeypatch.setattr(C, "train", lambda *a, **k: (model, history))
    embedder = C.load(device="cpu")
    folder = next((tmp_path / "checkpoints").iterdir())
    assert (folder / "MANIFEST.json").is_file() and (folder / "model.safetensors").is_file()
    clips = S.make_sounds(3, "heldout", seed=0)
    direct = C.CourseClapEmbedder(model, "cpu").embed_audio(clips)
    torch.testing.assert_close(embedder.embed_audio(clips), direct)
    monkeypatch.setattr(C, "train", lambda *a, **k: pytest.fail("cached checkpoint was retrained"))
    torch.testing.assert_close(C.load(device="cpu").embed_audio(clips), direct)


def test_course_embedder_inputs(tmp_path):
    model = C.ClapSoundsModel(C.AudioTower(C.TowerConfig()))
    emb = C.CourseClapEmbedder(model, "cpu")
    (s,) = S.make_sounds(1, "train", seed=0, seconds=3.0)
    a = emb.embed_audio([s])  # a Sound carries its rate
    b = emb.embed_audio([s.waveform], sampling_rate=48000)
    c = emb.embed_audio([S.write_wav(tmp_path / "x.wav", s, subtype="FLOAT")])
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c, atol=1e-4, rtol=0)
    t = emb.embed_texts(["a low steady pure tone, held continuously", "rain"])
    assert t.shape == (2, 384) and a.shape == (1, 384)
    silent = emb.embed_audio(np.zeros(48000, np.float32), sampling_rate=48000)  # documented: embedded, no error
    assert torch.isfinite(silent).all()
    with pytest.raises(ValueError, match="NaN"):
        emb.embed_audio(np.full(100, np.nan, np.float32), sampling_rate=48000)
    with pytest.raises(ValueError, match="pass sampling_rate"):
        emb.embed_audio([s.waveform])


def test_load_model_routes_clap_folders_and_names(tiny_clap_dir, tiny_hub):
    import mmcourse
    from mmcourse.models.hub import hf_clap
    from mmcourse.models import zoo

    via_zoo = mmcourse.load_model(str(tiny_clap_dir), device="cpu")
    assert isinstance(via_zoo, hf_clap.HubClapEmbedder) and via_zoo.modalities == ("audio", "text")
    clip = S.synthesize_texture("siren", seconds=0.7, rng=0)
    torch.testing.assert_close(via_zoo.embed_audio(clip, sampling_rate=48000), tiny_hub.embed_audio(clip, sampling_rate=48000))
    assert zoo.COURSE_MODELS["course/clap-sounds"] == C.__name__ and "laion/clap-htsat-unfused" in mmcourse.list_models()
