"""Tiny open_clip and SigLIP models: registration, save/load, load_model parity, probabilities, bad input."""
import math

import pytest
import torch

import mmcourse
from mmcourse.data.shapes import make_scenes
from mmcourse.models.experiments import openclip_tiny as oc
from mmcourse.models.experiments import siglip_tiny as st
from mmcourse.retrieval.readout import probability_table, sigmoid_probs, softmax_probs

open_clip = pytest.importorskip("open_clip")

TEXTS = ["a photo of a red circle.", "a blue star", "a simple green square on a plain background"]


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(8, "train", seed=3)


@pytest.fixture(scope="module")
def tiny_clip():
    return oc.create_tiny_openclip(oc.TINY_CLIP, seed=0)


@pytest.fixture(scope="module")
def tiny_siglip():
    return st.create_tiny_siglip(seed=0)


# ----------------------------------------------------------------------------- open_clip

def test_tiny_configs_are_registered_like_open_clip_configs():
    names = oc.register_tiny_configs()
    assert set(names) <= set(open_clip.list_models())
    cfg = open_clip.get_model_config(oc.TINY_SIGLIP)
    assert cfg["init_logit_bias"] == -10.0 and cfg["text_cfg"]["context_length"] == 16
    tokenizer = open_clip.get_tokenizer(oc.TINY_SIGLIP)  # open_clip's offline BPE, not the hub SigLIP one
    assert isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer) and tokenizer.context_length == 16


def test_register_config_rejects_bad_names_and_configs():
    with pytest.raises(ValueError, match="plain name"):
        oc.register_config("hf-hub:org/repo", oc.TinyOpenClipConfig().to_open_clip())
    with pytest.raises(ValueError, match="missing"):
        oc.register_config("mmcourse-broken", {"embed_dim": 8})


def _direct_embeddings(model, preprocess, tokenizer, scenes):
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(s.image) for s in scenes]), normalize=True)  # (N, D)
        txt = model.encode_text(tokenizer(TEXTS), normalize=True)  # (T, D)
    return img, txt


def test_open_clip_save_load_round_trip(tmp_path, tiny_clip, scenes):
    model, preprocess, tokenizer = tiny_clip
    folder = oc.save_openclip(model, tmp_path / "tiny", oc.TINY_CLIP)
    loaded, _, pre2 = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    a = _direct_embeddings(model.eval(), preprocess, tokenizer, scenes)
    b = _direct_embeddings(loaded.eval(), pre2, open_clip.get_tokenizer(f"local-dir:{folder}"), scenes)
    torch.testing.assert_close(a, b)


def test_load_model_wraps_custom_config_like_direct_calls(tmp_path, tiny_clip, scenes):
    model, preprocess, tokenizer = tiny_clip
    img, txt = _direct_embeddings(model.eval(), preprocess, tokenizer, scenes)
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    by_name = mmcourse.load_model(f"open_clip:{oc.TINY_CLIP}", device="cpu", pretrained=str(weights))
    by_folder = mmcourse.load_model(str(oc.save_openclip(model, tmp_path / "dir", oc.TINY_CLIP)), device="cpu")
    for emb in (by_name, by_folder):
        torch.testing.assert_close(emb.embed_images([s.image for s in scenes]), img, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(emb.embed_texts(TEXTS), txt, atol=1e-5, rtol=1e-5)
        assert emb.logit_scale == pytest.approx(model.logit_scale.exp().item())


def test_open_clip_losses_match_course_losses_on_one_batch():
    from open_clip.loss import ClipLoss, SigLipLoss

    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(16, 8, generator=gen), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(16, 8, generator=gen), dim=-1)
    scale, bias = torch.tensor(10.0), torch.tensor(-4.0)
    assert ClipLoss()(a, b, scale).item() == pytest.approx(mmcourse.clip_loss(a, b, scale).item(), rel=1e-6)
    assert SigLipLoss()(a, b, scale, bias).item() == pytest.approx(mmcourse.siglip_loss(a, b, scale, bias).item(), rel=1e-6)


def test_training_steps_run_through_mmcourse_train(scenes):
    for loss in ("clip", "siglip"):
        model, _, _, history = oc.train_tiny_openclip(scenes, loss=loss, steps=3, batch_size=8, progress=False)
        assert len(history.losses) == 3 and all(math.isfinite(x) for x in history.losses)
        assert not model.token_embedding.weight.requires_grad
    assert model.logit_bias.item() == pytest.approx(-math.log(8), abs=0.05)  # started at -log(batch), moved by ~lr/step


def test_warmup_reaches_the_training_loop_of_both_tiny_models(scenes):
    _, _, _, history = oc.train_tiny_openclip(scenes, loss="siglip", steps=3, batch_size=8, lr=3e-3, warmup=2,
                                              progress=False)
    assert history.lrs == pytest.approx([1.5e-3, 3e-3, 3e-3])
    _, _, history = st.train_tiny_siglip(scenes, steps=3, batch_size=8, lr=3e-3, warmup=3, progress=False)
    assert history.lrs == pytest.approx([1e-3, 2e-3, 3e-3])


def test_sigmoid_bias_init_follows_the_batch_size():
    assert oc.sigmoid_bias_init(32768) == pytest.approx(-10.4, abs=0.01)  # the paper's -10 for its batch size
    with pytest.raises(ValueError):
        oc.sigmoid_bias_init(1)


# ----------------------------------------------------------------------------- SigLIP (transformers)

def test_tiny_siglip_processor_pads_to_the_model_length(tiny_siglip):
    model, processor = tiny_siglip
    length = model.config.text_config.max_position_embeddings
    ids = processor(text=TEXTS, padding="max_length", return_tensors="pt")["input_ids"]
    assert ids.shape == (len(TEXTS), length)
    assert processor.tokenizer.convert_ids_to_tokens(ids[0, :3].tolist()) == ["[CLS]", "a", "photo"]
    assert model.logit_scale.exp().item() == pytest.approx(10.0)


def test_padding_changes_siglip_text_embeddings(tiny_siglip):
    model, processor = tiny_siglip
    fixed = st.text_features(model, processor, TEXTS, padding="max_length")
    longest = st.text_features(model, processor, TEXTS, padding=True)
    assert (fixed - longest).abs().max() > 1e-3  # the last position moved, so the features did


def test_load_model_wraps_a_saved_tiny_siglip_like_direct_calls(tmp_path, tiny_siglip, scenes):
    model, processor = tiny_siglip
    folder = st.save_tiny_siglip(model, processor, tmp_path / "siglip")
    emb = mmcourse.load_model(str(folder), device="cpu")
    images = [s.image for s in scenes]
    torch.testing.assert_close(emb.embed_images(images), st.image_features(model, processor, images), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(emb.embed_texts(TEXTS), st.text_features(model, processor, TEXTS), atol=1e-5, rtol=1e-5)
    assert emb.logit_bias == pytest.approx(-10.0)


def test_tiny_siglip_trains_with_a_sigmoid_loss(scenes):
    model, _, history = st.train_tiny_siglip(scenes, steps=3, batch_size=8, progress=False)
    assert len(history.losses) == 3 and all(math.isfinite(x) for x in history.losses)
    assert model.logit_bias.item() == pytest.approx(-math.log(8), abs=0.05)


# ----------------------------------------------------------------------------- bad input

def test_tokenizer_of_another_model_is_a_clear_error(tiny_siglip, tiny_clip):
    siglip, _ = tiny_siglip
    clip_model, _, clip_tokenizer = tiny_clip
    bpe_ids = clip_tokenizer(TEXTS)  # open_clip BPE ids go up to 49407; the SigLIP vocab has 30522
    with pytest.raises(ValueError, match="outside the model's vocabulary of 30522"):
        st.SiglipForTraining(siglip)(torch.zeros(3, 3, 32, 32), bpe_ids)
    long_ids = open_clip.get_tokenizer("ViT-B-32")(TEXTS)  # 77 tokens for a 16-token model
    with pytest.raises(ValueError, match="length 77 .* takes 16 tokens"):
        oc.check_token_ids(clip_model, long_ids)
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        oc.check_token_ids(clip_model, long_ids[0])
    assert oc.check_token_ids(clip_model, bpe_ids) is bpe_ids


# ----------------------------------------------------------------------------- probabilities

def test_sigmoid_probs_equals_sigmoid_and_softmax_rows_sum_to_one():
    logits = torch.randn(5, 7, generator=torch.Generator().manual_seed(1)) * 4 - 2
    assert torch.equal(sigmoid_probs(logits), torch.sigmoid(logits))
    torch.testing.assert_close(softmax_probs(logits).sum(-1), torch.ones(5))
    assert not torch.allclose(sigmoid_probs(logits).sum(-1), torch.ones(5))  # independent per label


def test_probability_table_and_bad_logits():
    rows = probability_table(torch.tensor([[1.0, 3.0, -2.0]]), ["a", "b", "c"])
    assert [r["label"] for r in rows] == ["b", "a", "c"]
    assert sum(r["softmax"] for r in rows) == pytest.approx(1.0)
    assert rows[0]["sigmoid"] == pytest.approx(1 / (1 + math.exp(-3.0)))
    with pytest.raises(ValueError, match="2 labels"):
        probability_table(torch.zeros(1, 3), ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        sigmoid_probs(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="shape"):
        softmax_probs(torch.zeros(2, 2, 2))


# ----------------------------------------------------------------------------- collapse diagnostics

def test_constant_sigmoid_loss_equals_the_sigmoid_loss_of_collapsed_features():
    from mmcourse.collapse import constant_sigmoid_loss

    n, dim = 64, 8
    images = torch.zeros(n, dim)
    images[:, 0] = 1.0  # (N, D) every image on one direction
    texts = torch.zeros(n, dim)
    texts[:, 1] = 1.0  # (N, D) every text on an orthogonal one: every logit is the bias
    for bias in (-math.log(n), -2.0, -10.0):
        p = 1 / (1 + math.exp(-bias))
        collapsed = mmcourse.siglip_loss(images, texts, torch.tensor(10.0), torch.tensor(bias)).item()
        assert constant_sigmoid_loss(n, p) == pytest.approx(collapsed, rel=1e-5)
    assert constant_sigmoid_loss(64) == pytest.approx(5.151, abs=1e-3)  # notebook 03's collapsed loss
    best = constant_sigmoid_loss(n)
    assert all(constant_sigmoid_loss(n, p) > best for p in (0.5 / n, 0.9 / n, 1.1 / n, 2 / n))


def test_constant_sigmoid_loss_rejects_bad_input():
    from mmcourse.collapse import constant_sigmoid_loss

    with pytest.raises(ValueError, match="at least 2"):
        constant_sigmoid_loss(1)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        constant_sigmoid_loss(8, 1.0)


def test_mean_pairwise_cosine_is_one_for_identical_rows_and_near_zero_for_random_ones():
    from mmcourse.collapse import mean_pairwise_cosine

    row = torch.randn(1, 16, generator=torch.Generator().manual_seed(0))
    assert mean_pairwise_cosine(row.repeat(5, 1) * torch.arange(1, 6.0)[:, None]) == pytest.approx(1.0, abs=1e-6)
    assert abs(mean_pairwise_cosine(torch.randn(400, 256, generator=torch.Generator().manual_seed(1)))) < 0.01
    by_hand = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert mean_pairwise_cosine(by_hand) == pytest.approx((0 + 2 * math.sqrt(0.5)) / 3, abs=1e-6)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        mean_pairwise_cosine(torch.zeros(1, 4))
