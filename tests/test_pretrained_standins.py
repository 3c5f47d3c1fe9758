"""The pretrained world, offline: every hub model the notebooks use, as a tiny random-weight
stand-in of its own class in a Hugging Face cache under its real hub id, loaded through
``mmcourse.load_model`` with HF_HUB_OFFLINE=1; and ColPali's parity with transformers."""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import mmcourse
from mmcourse.data.shapes import make_scenes
from mmcourse.errors import MMCourseError
from mmcourse.models import zoo
from mmcourse.testing import standins

ATOL = 1e-5


@pytest.fixture(scope="session")
def standin_cache(tmp_path_factory):
    """All stand-ins written once per session; within a test, the process reads only this cache, offline."""
    cache = tmp_path_factory.mktemp("hf-standins")
    standins.write_standins(cache)
    yield cache
    shutil.rmtree(cache, ignore_errors=True)  # ~300 MB (open_clip's full-size ViT-B-32): not kept between sessions


@pytest.fixture
def offline_standins(standin_cache):
    with standins.standin_environment(standin_cache):
        yield standin_cache


@pytest.fixture(scope="module")
def pictures():
    return [s.image for s in make_scenes(2, seed=1, size=48)] + [Image.new("RGB", (300, 120), (250, 250, 250))]


def _check_rows(x: torch.Tensor, n: int) -> None:
    assert x.ndim == 2 and x.shape[0] == n and x.dtype == torch.float32 and x.device.type == "cpu"
    assert torch.isfinite(x).all()
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(n), atol=1e-5, rtol=0)


DOCUMENT_MODELS = ("vidore/colpali-v1.3-hf", "vidore/colqwen2-v1.0-hf")


def test_every_hub_model_has_a_standin():
    assert set(zoo.HUB_MODELS) == set(standins.STANDINS)


@pytest.mark.parametrize("name", [n for n in standins.STANDINS if n not in DOCUMENT_MODELS])
def test_standin_loads_and_embeds(name, offline_standins, pictures):
    model = mmcourse.load_model(name, device="cpu")
    assert model.name == name  # the id the learner asked for, never a cache folder
    assert model.is_standin and mmcourse.is_standin(model)
    texts = ["a red circle", "a blue square on a plain background"]
    if "image" in model.modalities:
        _check_rows(model.embed_images(pictures), len(pictures))
    if "audio" in model.modalities:
        clips = [np.sin(np.linspace(0, 2000, 48000 * 2)).astype(np.float32) * 0.3,
                 np.random.default_rng(0).normal(0, 0.1, 48000 * 12).astype(np.float32)]  # 12 s: two windows
        _check_rows(model.embed_audio(clips, sampling_rate=48000), 2)
        _check_rows(model.embed_audio(clips[:1], sampling_rate=16000), 1)  # resampled to 48 kHz first
    _check_rows(model.embed_texts(texts), 2)


def test_standin_dimensions_match_each_other(offline_standins, pictures):
    """Images and texts of one model share a space (same width), as the notebooks assume."""
    for name in ("openai/clip-vit-base-patch32", "google/siglip-base-patch16-224"):
        model = mmcourse.load_model(name, device="cpu")
        assert model.embed_images(pictures[:1]).shape[1] == model.embed_texts(["x"]).shape[1]
    siglip = mmcourse.load_model("google/siglip-base-patch16-224", device="cpu")
    assert siglip.logit_bias is not None and siglip.text_padding == "max_length"


def test_colpali_standin_pages_and_queries(offline_standins, pictures):
    model = mmcourse.load_model("vidore/colpali-v1.3-hf", device="cpu")
    assert model.name == "vidore/colpali-v1.3-hf" and model.is_standin
    pages = model.embed_pages(pictures)
    queries = model.embed_queries(["total revenue", "what does the chart on page two show?"])
    assert len(pages) == len(pictures) and len(queries) == 2
    rows, cols = model.patch_grid
    assert (rows, cols) == (32, 32) and all(p.shape[0] > rows * cols and p.shape[1] == 128 for p in pages)
    assert model.page_patches(pages[0]).shape == (32, 32, 128)
    for v in pages + queries:
        assert torch.isfinite(v).all()
        torch.testing.assert_close(v.norm(dim=-1), torch.ones(len(v)), atol=1e-5, rtol=0)
    scores = model.score(queries, pages)
    assert scores.shape == (2, len(pictures))
    torch.testing.assert_close(scores, model.processor.score_retrieval(queries, pages), atol=1e-5, rtol=1e-5)
    _check_rows(model.embed_pages_single(pictures), len(pictures))


def test_standins_fail_cleanly_when_missing(offline_standins, tmp_path):
    """A hub id the stand-in cache lacks: the course's error within seconds, offline."""
    with pytest.raises(mmcourse.WeightsUnavailableError, match="not/cached"):
        mmcourse.load_model("not/cached", device="cpu")


def test_colqwen2_standin_pages_of_different_sizes(offline_standins, pictures):
    model = mmcourse.load_model("vidore/colqwen2-v1.0-hf", device="cpu")
    assert model.name == "vidore/colqwen2-v1.0-hf" and model.is_standin and model.patch_grid is None
    pages = model.embed_pages(pictures)  # dynamic resolution: the 300×120 page has more tokens
    assert len({p.shape[0] for p in pages}) == 2 and all(p.shape[1] == 128 for p in pages)
    queries = model.embed_queries(["total revenue"])
    assert model.score(queries, pages).shape == (1, len(pictures))
    with pytest.raises(ValueError, match="patch grid"):
        model.page_patches(pages[0])


# ----------------------------------------------------------------------------- ColPali / ColQwen2 parity
@pytest.fixture(scope="module", params=["colpali", "colqwen2"])
def tiny_colpali(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    {"colpali": standins.write_colpali, "colqwen2": standins.write_colqwen2}[request.param](folder)
    return folder


def _direct(model, batch) -> list[torch.Tensor]:
    """What transformers' documented call gives: ``model(**processor.process_*(...)).embeddings``, padding dropped."""
    with torch.no_grad():
        out = model(**batch).embeddings  # (B, T, 128)
    return [v[m.bool()] for v, m in zip(out, batch["attention_mask"])]


def test_colpali_parity_with_transformers(tiny_colpali, pictures):
    import transformers
    from transformers import AutoConfig

    from mmcourse.models.hub.hf_colpali import MODEL_CLASSES

    model_class, processor_class = (getattr(transformers, c)
                                    for c in MODEL_CLASSES[AutoConfig.from_pretrained(tiny_colpali).model_type])
    model = model_class.from_pretrained(tiny_colpali).eval()
    processor = processor_class.from_pretrained(tiny_colpali)
    embedder = mmcourse.load_model(str(tiny_colpali), device="cpu")
    assert type(embedder.model) is model_class and embedder.embedding_dim == 128
    queries = ["a", "what is the total revenue in the third quarter of the year?", "chart"]  # unequal lengths
    ref_pages = _direct(model, processor.process_images(images=pictures))
    ref_queries = _direct(model, processor.process_queries(text=queries))
    got_pages, got_queries = embedder.embed_pages(pictures), embedder.embed_queries(queries)
    for got, ref in zip(got_pages + got_queries, ref_pages + ref_queries):
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)
    # padding is handled: a query alone (no padding) gives the same vectors as inside a padded batch
    alone = [embedder.embed_queries([q])[0] for q in queries]
    assert len({len(q) for q in alone}) == 3  # three different lengths, so the batch above was padded
    for a, b in zip(alone, got_queries):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    assert all(torch.count_nonzero(q.norm(dim=-1) == 0) == 0 for q in got_queries)  # no zeroed pad rows kept
    torch.testing.assert_close(embedder.embed_pages(pictures, batch_size=1)[2], got_pages[2], atol=ATOL, rtol=0)
    torch.testing.assert_close(embedder.score(got_queries, got_pages),
                               processor.score_retrieval(ref_queries, ref_pages), atol=1e-5, rtol=1e-5)


def test_colpali_engine_ids_point_to_the_transformers_conversion():
    with pytest.raises(MMCourseError, match=r"vidore/colpali-v1\.3-hf"):
        mmcourse.load_model("vidore/colpali-v1.3", device="cpu")
    assert "vidore/colpali-v1.3-hf" in mmcourse.list_models()


def test_colpali_warns_about_cpu_when_large(tiny_colpali, monkeypatch):
    from mmcourse.models.hub import hf_colpali

    monkeypatch.setattr(hf_colpali, "CPU_WARN_PARAMETERS", 1000)  # pretend the tiny model is 3 B
    with pytest.warns(UserWarning, match="slow"):
        hf_colpali.load(str(tiny_colpali), device="cpu")
