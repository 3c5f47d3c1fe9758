"""course/colpali-pages: shapes, normalisation, gradients through MaxSim, save/load, the zoo route."""
import pytest
import torch

import mmcourse
from mmcourse.data.documents import make_documents
from mmcourse.models.course import colpali as cc
from mmcourse.retrieval import maxsim

TINY = cc.Config(train_pages=16, queries_per_page=1, steps=2, batch_size=8)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMCOURSE_CACHE", str(cache))
        first = mmcourse.load_model("course/colpali-pages", device="cpu", config=TINY)  # trains (tiny recipe)
        again = mmcourse.load_model("course/colpali-pages", device="cpu", config=TINY)  # loads the cache
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    return again


def test_pages_and_queries_are_lists_of_normalised_128d_vectors(embedder):
    docs = make_documents(3, "heldout", seed=1)
    pages = embedder.embed_pages(docs.images)
    queries = embedder.embed_queries(docs.query_texts + ["a much longer query about the rainfall bar chart where green wins"])
    assert isinstance(pages, list) and len(pages) == 3
    assert all(p.shape == (TINY.n_patches, 128) for p in pages)
    assert len(queries) == 4 and queries[3].shape[0] > queries[0].shape[0]  # one vector per token, no padding
    for v in pages + queries:
        assert v.dtype == torch.float32 and torch.allclose(v.norm(dim=-1), torch.ones(len(v)), atol=1e-5)
    scores = embedder.score(queries, pages)
    assert scores.shape == (4, 3) and torch.allclose(scores, maxsim(queries, pages))


def test_forward_follows_train_contract_and_gradients_reach_both_towers():
    model = cc.CourseColPali(TINY)
    images = torch.rand(4, 3, 128, 128) * 2 - 1
    states = torch.randn(4, 7, 384)
    mask = torch.ones(4, 7, dtype=torch.bool)
    mask[1, 5:] = False
    scores, identity, scale = model(images, states, mask)
    assert scores.shape == (4, 4) and torch.equal(identity, torch.eye(4))
    # token-averaged MaxSim of unit vectors lies in [-1, 1]
    assert scores.abs().max() <= 1 + 1e-5
    mmcourse.clip_loss(scores, identity, scale).backward()
    assert model.pages.proj.weight.grad.abs().sum() > 0 and model.query_proj.weight.grad.abs().sum() > 0
    assert model.pages.stem[0].weight.grad.abs().sum() > 0


def test_masked_query_tokens_do_not_change_scores():
    model = cc.CourseColPali(TINY).eval()
    images = torch.rand(2, 3, 128, 128)
    states = torch.randn(2, 6, 384)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    noisy = states.clone()
    noisy[0, 3:] = 100.0  # garbage in the padding
    with torch.no_grad():
        assert torch.allclose(model(images, states, mask)[0], model(images, noisy, mask)[0])


def test_bad_inputs(embedder):
    with pytest.raises(ValueError, match="empty"):
        embedder.embed_queries([])
    with pytest.raises(TypeError):
        embedder.embed_pages("page.png")


def test_hub_colpali_without_colpali_engine_says_what_to_do():
    pytest.importorskip("transformers")
    try:
        import colpali_engine  # noqa: F401
    except ImportError:
        with pytest.raises(mmcourse.MMCourseError, match="colpali-engine"):
            mmcourse.load_model("vidore/colpali-v1.3", device="cpu")
    else:  # installed: offline and uncached, it must fail fast with the weights error instead
        with pytest.raises(mmcourse.WeightsUnavailableError):
            mmcourse.load_model("vidore/colpali-v1.3", device="cpu")
