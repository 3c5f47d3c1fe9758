"""load_model: parity with the libraries (no network), input checking, names, the offline guard."""
import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import mmcourse
from mmcourse.data.shapes import make_scenes
from mmcourse.errors import MMCourseError, WeightsUnavailableError
from mmcourse.models import zoo
from mmcourse.models.embedder import check_texts, features_from_output, to_pil_images
from mmcourse.models.hub.minilm import minilm_path

TEXTS = ["a red circle", "a blue square on a plain background", "x"]
ATOL = 1e-5


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()))


@pytest.fixture(scope="module")
def images():
    return [s.image for s in make_scenes(5, seed=3, size=40)]


def _tiny_tower(vocab_size, **extra):
    return dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=32, **extra)


def _tiny_vision(**extra):
    return dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                image_size=32, patch_size=8, **extra)


def _reference(model, processor, images, texts, text_kwargs):
    """Embeddings computed by calling transformers directly (both output conventions accepted)."""
    with torch.no_grad():
        img = model.get_image_features(pixel_values=processor(images=images, return_tensors="pt")["pixel_values"])
        tok = processor(text=texts, return_tensors="pt", truncation=True, max_length=32, **text_kwargs)
        if text_kwargs.get("padding") == "max_length":  # SigLIP: ids only, as its own tokenizer returns
            tok = {"input_ids": tok["input_ids"]}
        txt = model.get_text_features(**tok)
    return F.normalize(features_from_output(img), dim=-1), F.normalize(features_from_output(txt), dim=-1)


def _save_clip(tmp_path, tokenizer):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=_tiny_tower(tokenizer.vocab_size), vision_config=_tiny_vision(),
                                 projection_dim=16)).eval()
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    return model, processor, {"padding": True}


def _save_siglip(tmp_path, tokenizer):
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    torch.manual_seed(1)
    model = SiglipModel(SiglipConfig(text_config=_tiny_tower(tokenizer.vocab_size), vision_config=_tiny_vision())).eval()
    processor = SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}),
                                tokenizer=tokenizer)
    return model, processor, {"padding": "max_length"}


def _save_dual(tmp_path, tokenizer):
    from transformers import (BertConfig, CLIPImageProcessor, CLIPVisionConfig, VisionTextDualEncoderConfig,
                              VisionTextDualEncoderModel, VisionTextDualEncoderProcessor)

    torch.manual_seed(2)
    config = VisionTextDualEncoderConfig.from_vision_text_configs(
        CLIPVisionConfig(**_tiny_vision()), BertConfig(**_tiny_tower(tokenizer.vocab_size)), projection_dim=16)
    model = VisionTextDualEncoderModel(config).eval()
    processor = VisionTextDualEncoderProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer)
    return model, processor, {"padding": True}


@pytest.mark.parametrize("make", [_save_clip, _save_siglip, _save_dual], ids=["clip", "siglip", "dual-encoder"])
def test_transformers_parity(make, tmp_path, tokenizer, images):
    model, processor, text_kwargs = make(tmp_path, tokenizer)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    embedder = mmcourse.load_model(str(tmp_path), device="cpu")
    assert type(embedder.model) is type(model)
    ref_img, ref_txt = _reference(model, processor, images, TEXTS, text_kwargs)
    got_img, got_txt = embedder.embed_images(images), embedder.embed_texts(TEXTS)
    assert got_img.shape == ref_img.shape and got_txt.shape == ref_txt.shape
    torch.testing.assert_close(got_img, ref_img, atol=ATOL, rtol=0)
    torch.testing.assert_close(got_txt, ref_txt, atol=ATOL, rtol=0)
    torch.testing.assert_close(got_img.norm(dim=-1), torch.ones(len(images)), atol=1e-5, rtol=0)
    assert embedder.logit_scale == pytest.approx(model.logit_scale.exp().item())
    if hasattr(model, "logit_bias"):
        assert embedder.logit_bias == pytest.approx(model.logit_bias.item())
    # batching does not change results
    torch.testing.assert_close(embedder.embed_images(images, batch_size=2), got_img, atol=ATOL, rtol=0)


def test_open_clip_custom_config_parity(tmp_path, images):
    import open_clip

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
    path = tmp_path / "mmcourse-test-tiny.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)  # open_clip's own registry of architecture configs
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("mmcourse-test-tiny")
    tokenizer = open_clip.get_tokenizer("mmcourse-test-tiny")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    model.eval()
    with torch.no_grad():
        ref_img = F.normalize(model.encode_image(torch.stack([preprocess(i) for i in images])), dim=-1)
        ref_txt = F.normalize(model.encode_text(tokenizer(TEXTS)), dim=-1)
    embedder = mmcourse.load_model("open_clip:mmcourse-test-tiny", device="cpu", pretrained=str(tmp_path / "weights.pt"))
    torch.testing.assert_close(embedder.embed_images(images), ref_img, atol=ATOL, rtol=0)
    torch.testing.assert_close(embedder.embed_texts(TEXTS), ref_txt, atol=ATOL, rtol=0)
    assert embedder.logit_scale == pytest.approx(model.logit_scale.exp().item())
    with pytest.raises(ValueError, match="no-such-arch"):
        mmcourse.load_model("open_clip:no-such-arch", device="cpu")


def test_features_from_output_accepts_tensor_and_output_object():
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    x = torch.randn(3, 4)
    assert features_from_output(x) is x
    assert features_from_output(BaseModelOutputWithPooling(pooler_output=x)) is x
    with pytest.raises(TypeError):
        features_from_output("nope")


# ----------------------------------------------------------------------------- inputs
def test_image_conversions_agree():
    img = make_scenes(1, seed=5, size=32)[0].image
    arr = np.array(img)  # (H, W, 3) uint8
    as_float = arr.astype(np.float32) / 255.0
    chw = torch.from_numpy(arr).permute(2, 0, 1)  # (3, H, W) uint8
    forms = [img, arr, as_float, chw, chw.float() / 255.0, chw.unsqueeze(0), arr[None],
             img.convert("RGBA"), img.convert("P").convert("RGB")]
    for form in forms[:-2]:
        out = to_pil_images(form)
        assert len(out) == 1 and out[0].mode == "RGB"
        assert np.array_equal(np.asarray(out[0]), arr), type(form)
    assert to_pil_images(img.convert("L"))[0].mode == "RGB"
    assert to_pil_images(img.convert("RGBA"))[0].mode == "RGB"
    batch = to_pil_images(torch.stack([chw, chw, chw]))
    assert len(batch) == 3


@pytest.mark.parametrize("bad, error, match", [
    ([], ValueError, "empty"),
    ("picture.png", TypeError, "str"),
    ([Image.new("RGB", (8, 8)), 3], TypeError, r"images\[1\].*int"),
    (np.zeros((4, 4, 2), dtype=np.uint8), ValueError, "shape"),
    (np.full((4, 4, 3), 2.0, dtype=np.float32), ValueError, r"\[0, 1\]"),
    (np.zeros((4, 4, 3), dtype=np.int64), TypeError, "int64"),
    (torch.zeros(5, 8, 8), ValueError, "CHW"),
])
def test_bad_images(bad, error, match):
    with pytest.raises(error, match=match):
        to_pil_images(bad)


@pytest.mark.parametrize("bad, error, match", [
    ([], ValueError, "empty"),
    (["ok", None], TypeError, r"texts\[1\].*NoneType"),
    (42, TypeError, "int"),
])
def test_bad_texts(bad, error, match):
    with pytest.raises(error, match=match):
        check_texts(bad)


def test_single_text_becomes_list():
    assert check_texts("a red circle") == ["a red circle"]


# ----------------------------------------------------------------------------- names
def test_unknown_names_list_the_known_ones():
    for name in ("no-such-model", "course/no-such", ""):
        with pytest.raises(ValueError, match="course/clip-shapes"):
            mmcourse.load_model(name, device="cpu")
    with pytest.raises(TypeError, match="int"):
        mmcourse.load_model(3)
    assert "course/clip-shapes" in mmcourse.list_models()
    assert set(zoo.COURSE_MODELS) <= set(mmcourse.list_models())


def test_missing_backend_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(zoo.COURSE_MODELS, "course/not-yet", "mmcourse.models.course_not_written_yet")
    with pytest.raises(MMCourseError, match="course_not_written_yet"):
        mmcourse.load_model("course/not-yet", device="cpu")


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        mmcourse.load_model(str(tmp_path), device="cpu")


def test_uncached_hub_id_fails_fast_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("openai/clip-vit-base-patch32", "open_clip:ViT-B-32/laion2b_s34b_b79k"):
        start = time.perf_counter()
        with pytest.raises(WeightsUnavailableError, match="cache"):
            mmcourse.load_model(name, device="cpu")
        assert time.perf_counter() - start < 10


# ----------------------------------------------------------------------------- devices and marks
def test_autocast_is_exact_on_cpu_and_bf16_where_supported():
    from mmcourse.models.embedder import autocast_for

    a = torch.randn(4, 8)
    with autocast_for("cpu"):
        assert (a @ a.T).dtype == torch.float32  # the CPU stays exact float32 (parity tests run there)
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        with autocast_for("cuda"):
            assert (a.cuda() @ a.cuda().T).dtype == torch.bfloat16


def test_hub_loaders_use_mixed_precision_and_keep_the_name(tmp_path, tokenizer):
    model, processor, _ = _save_clip(tmp_path, tokenizer)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    embedder = mmcourse.load_model(str(tmp_path), device="cpu")
    assert embedder.mixed_precision and embedder.name == str(tmp_path)
    assert not embedder.is_standin and not mmcourse.is_standin(embedder) and not mmcourse.is_standin(model)
    model.config.mmcourse_standin = True
    assert mmcourse.is_standin(model)
    assert "stand-in" not in repr(embedder)


def test_name_given_to_every_transformers_backend(monkeypatch, tmp_path):
    """zoo passes the learner's name to whichever backend the config's model_type picks."""
    seen = {}

    class Backend:
        @staticmethod
        def load(source, device=None, name=None, **kwargs):
            seen.update(source=source, name=name)
            return "embedder"

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clap"}))
    monkeypatch.setattr(zoo, "_import_backend", lambda module, name: Backend)
    assert zoo._load_transformers("laion/clap-htsat-unfused", str(tmp_path), "cpu") == "embedder"
    assert seen == {"source": str(tmp_path), "name": "laion/clap-htsat-unfused"}
