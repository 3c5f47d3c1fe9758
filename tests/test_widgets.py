"""Playgrounds driven programmatically: set a control, check the output followed.

The real-browser check (JupyterLab + headless Chromium) is tests/browser/test_lab.py.
"""
import base64
import pathlib
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmcourse.widgets as W
from mmcourse.losses import siglip_loss

sys.path.insert(0, str(pathlib.Path(__file__).parent / "browser"))
import playground_fakes as fakes  # noqa: E402

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(autouse=True)
def _no_static_env(monkeypatch):
    monkeypatch.delenv(W.STATIC_ENV, raising=False)


# -- temperature and bias ------------------------------------------------------------

def test_softmax_and_sigmoid_match_torch_even_at_extreme_temperatures():
    sims = fakes.similarities(5)
    for t, b in [(1.0, 0.0), (0.07, 0.0), (0.1, -10.0), (0.001, 3.0)]:
        softmax, sigmoid = W.softmax_and_sigmoid(sims, t, b)
        logits = torch.tensor(sims / t + b)
        np.testing.assert_allclose(softmax, torch.softmax(logits, dim=1).numpy(), atol=1e-12)
        np.testing.assert_allclose(sigmoid, torch.sigmoid(logits).numpy(), atol=1e-12)
        assert np.isfinite(softmax).all() and np.isfinite(sigmoid).all()


def test_losses_match_cross_entropy_and_the_course_siglip_loss():
    rng = np.random.default_rng(1)
    a = F.normalize(torch.tensor(rng.normal(size=(6, 8))), dim=-1)  # (6, 8)
    b = F.normalize(torch.tensor(rng.normal(size=(6, 8))), dim=-1)  # (6, 8)
    p = W.temperature_playground((a @ b.T).numpy(), temperature=0.1, bias=-5.0, static=False)
    infonce, sig = p.losses()
    logits = a @ b.T / 0.1 - 5.0
    assert infonce == pytest.approx(F.cross_entropy(logits, torch.arange(6)).item(), rel=1e-9)
    assert sig == pytest.approx(siglip_loss(a, b, torch.tensor(10.0), torch.tensor(-5.0)).item(), rel=1e-9)


def test_temperature_slider_sharpens_softmax_and_redraws():
    p = W.temperature_playground(fakes.similarities(4), temperature=1.0, static=False)
    soft_before, _ = p.probabilities()
    png_before, summary_before, renders = p.image.value, p.summary.value, p.renders
    p.controls["temperature"].value = 0.05
    soft_after, _ = p.probabilities()
    diag = np.arange(4)
    assert soft_after[diag, diag].mean() > soft_before[diag, diag].mean() + 0.2
    assert p.renders == renders + 1
    assert p.image.value != png_before and p.image.value[:4] == b"\x89PNG"
    assert p.summary.value != summary_before and "0.050" in p.summary.value


def test_bias_slider_moves_sigmoid_but_not_softmax():
    p = W.temperature_playground(fakes.similarities(4), temperature=0.1, static=False)
    soft0, sig0 = p.probabilities()
    png0 = p.image.value
    p.controls["bias"].value = -10.0
    soft1, sig1 = p.probabilities()
    np.testing.assert_allclose(soft1, soft0, atol=1e-12)  # softmax is shift-invariant per row
    assert (sig1 < sig0).all()
    assert p.image.value != png0


def test_temperature_bad_input_is_named():
    with pytest.raises(ValueError, match="2-D"):
        W.temperature_playground(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        W.temperature_playground(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        W.temperature_playground(np.eye(2), temperature=0.0)
    with pytest.raises(ValueError, match="targets"):
        W.temperature_playground(np.eye(3), targets=[0, 1, 5])
    with pytest.raises(ValueError, match="row_labels"):
        W.temperature_playground(np.eye(3), row_labels=["a"])


def test_temperature_accepts_torch_and_rectangular_batches():
    p = W.temperature_playground(torch.tensor(fakes.similarities(4))[:, :3], static=False)
    assert p.losses() is None  # no targets for a non-square batch unless given
    assert p.probabilities()[0].shape == (4, 3)
    p2 = W.temperature_playground(fakes.similarities(4)[:, :3], targets=[0, 1, 2, 0], static=False)
    assert p2.losses() is not None


# -- zero-shot prompt editor ---------------------------------------------------------

def make_zero_shot(**kwargs):
    images, names = fakes.color_images()
    emb = fakes.FakeEmbedder()
    p = W.zero_shot_playground(emb, images, ["red", "green", "blue"], ["a photo of a {}."], captions=names,
                               true_labels=names, static=False, **kwargs)
    return p, emb


def test_zero_shot_picks_the_right_colour_for_each_image():
    p, _ = make_zero_shot()
    for i, name in enumerate(["red", "green", "blue"]):
        p.controls["image"].value = i
        probs = p.probabilities()
        assert p.labels[int(np.argmax(probs))] == name
        assert f"<b>{name}</b>" in p.summary.value and "correct" in p.summary.value


def test_zero_shot_editing_labels_and_templates_updates_probabilities():
    p, emb = make_zero_shot()
    png0, p0 = p.image.value, p.probabilities()
    p.controls["labels"].value = "red\ngreen\nblue\npurple"
    assert p.labels == ["red", "green", "blue", "purple"]
    assert p.probabilities().shape == (4,) and "4 labels" in p.summary.value
    assert p.image.value != png0
    # only the new label's prompt was embedded: the others came from the cache
    assert emb.text_calls[-1] == ["a photo of a purple."]
    p.controls["labels"].value = "red\ngreen\nblue"
    assert emb.text_calls[-1] == ["a photo of a purple."]  # nothing new to embed
    np.testing.assert_allclose(p.probabilities(), p0)
    png1 = p.image.value
    p.controls["templates"].value = "a photo of a {}.\na blurry photo of a {}."
    p1 = p.probabilities()
    assert p1.max() < p0.max() - 0.03  # blurry prompts pull every label off the colour axes
    assert "2 templates" in p.summary.value and p.image.value != png1


def test_zero_shot_bad_template_shows_error_and_keeps_last_figure():
    p, _ = make_zero_shot()
    png, renders = p.image.value, p.renders
    p.controls["templates"].value = "a photo without placeholder"
    assert p.error and "placeholder" in p.error
    assert "Input error" in p.summary.value
    assert p.image.value == png and p.renders == renders
    p.controls["templates"].value = "a {} thing"
    assert p.error is None and p.renders == renders + 1


def test_zero_shot_matches_a_direct_prompt_ensemble():
    p, emb = make_zero_shot()
    images, _ = fakes.color_images()
    templates = ["a photo of a {}.", "a blurry photo of a {}."]
    img = emb.embed_images(images[2:3])[0]
    classes = []
    for label in ["red", "green", "blue"]:
        t = emb.embed_texts([tpl.format(label) for tpl in templates]).mean(axis=0)
        classes.append(t / np.linalg.norm(t))
    expected = torch.softmax(torch.tensor(emb.logit_scale * np.stack(classes) @ img), dim=0).numpy()
    np.testing.assert_allclose(p.probabilities(2, templates=templates), expected, atol=1e-12)


def test_zero_shot_rejects_bad_arguments():
    images, _ = fakes.color_images()
    with pytest.raises(TypeError, match="embed_images"):
        W.zero_shot_playground(object(), images, ["red"])
    with pytest.raises(ValueError, match="placeholder"):
        W.zero_shot_playground(fakes.FakeEmbedder(), images, ["red"], ["no label here"])
    with pytest.raises(ValueError, match="captions"):
        W.zero_shot_playground(fakes.FakeEmbedder(), images, ["red"], captions=["a"])


# -- MaxSim explorer -----------------------------------------------------------------

def test_maxsim_token_picker_moves_the_map_to_the_planted_patch():
    page, patches, queries, tokens, planted = fakes.fake_page()
    p = W.maxsim_playground(page, patches, queries, tokens, grid=(6, 8), static=False)
    seen = set()
    for i, where in enumerate(planted):
        png = p.image.value
        p.controls["token"].value = i
        assert p.best_patch() == where
        assert p.similarity_map().shape == (6, 8)
        assert f"(row {where[0]}, col {where[1]})" in p.summary.value
        if i:
            assert p.image.value != png
        seen.add(p.image.value)
    assert len(seen) == 3


def test_maxsim_score_matches_a_naive_loop():
    page, patches, queries, tokens, _ = fakes.fake_page()
    p = W.maxsim_playground(page, torch.tensor(patches), torch.tensor(queries), tokens, grid=(6, 8), static=False)
    naive = sum(max(float(q @ d) for d in patches) for q in queries)
    assert p.score() == pytest.approx(naive, rel=1e-12)


def test_maxsim_grid_errors_say_what_to_do():
    page, patches, queries, tokens, _ = fakes.fake_page()
    with pytest.raises(ValueError, match="not a square grid"):
        W.maxsim_playground(page, patches, queries, tokens)
    with pytest.raises(ValueError, match="special/prefix tokens"):
        W.maxsim_playground(page, patches, queries, tokens, grid=(5, 8))
    with pytest.raises(ValueError, match="dimension"):
        W.maxsim_playground(page, patches, queries[:, :4], tokens, grid=(6, 8))
    with pytest.raises(ValueError, match="query_tokens"):
        W.maxsim_playground(page, patches, queries, tokens[:2], grid=(6, 8))


# -- hybrid search -------------------------------------------------------------------

def make_hybrid(**kwargs):
    search = fakes.FakeHybridSearch()
    relevant = {"sunset": {0, 1, 2}, "cat": {3, 4, 5}}
    p = W.hybrid_search_playground(search, ["sunset", "cat"], search.thumbnails, captions=search.captions,
                                   k=3, relevant=relevant, static=False, **kwargs)
    return p, search


def test_hybrid_weight_slider_reranks_the_thumbnails():
    p, search = make_hybrid(weight=0.0)
    assert p.ranked_ids() == [0, 1, 2]
    assert "3/3 relevant" in p.summary.value
    png = p.image.value
    p.controls["weight"].value = 1.0
    assert search.calls[-1] == ("sunset", 1.0)
    assert p.ranked_ids() == [5, 4, 3]
    assert "0/3 relevant" in p.summary.value and "<li>doc 5" in p.summary.value
    assert p.image.value != png
    p.controls["query"].value = "cat"
    assert p.ranked_ids() == [2, 1, 0] and "query <b>cat</b>" in p.summary.value


def test_hybrid_accepts_bare_ids_and_text_only_documents():
    p = W.hybrid_search_playground(lambda q, w: [2, 0, 1], ["q"], fakes.FakeHybridSearch().thumbnails, k=2,
                                   static=False)
    assert p.results() == [(2, None), (0, None)]
    images = {"a": fakes.color_images()[0][0], "note": None}  # a text-only document has no image
    mixed = W.hybrid_search_playground(lambda q, w: ["a"] if w < 0.9 else ["note", "a"], ["q"], images,
                                       captions={"a": "red square", "note": "a note about red squares"},
                                       static=False)
    png = mixed.image.value
    mixed.controls["weight"].value = 1.0
    assert mixed.error is None and mixed.ranked_ids() == ["note", "a"]
    assert mixed.image.value != png and "<li>a note about red squares" in mixed.summary.value
    fig = mixed.figure()
    assert any("a note about" in t.get_text() for ax in fig.axes for t in ax.texts)  # drawn as a caption card
    with pytest.raises(TypeError, match="callable"):
        W.hybrid_search_playground("not a function", ["q"], [])
    with pytest.raises(ValueError, match="weight"):
        W.hybrid_search_playground(lambda q, w: [], ["q"], [], weight=2.0)


# -- display: widget and static twin -------------------------------------------------

def all_playgrounds(static):
    images, names = fakes.color_images()
    page, patches, queries, tokens, _ = fakes.fake_page()
    search = fakes.FakeHybridSearch()
    return [
        W.temperature_playground(fakes.similarities(4), static=static),
        W.zero_shot_playground(fakes.FakeEmbedder(), images, names, static=static),
        W.maxsim_playground(page, patches, queries, tokens, grid=(6, 8), static=static),
        W.hybrid_search_playground(search, ["sunset", "cat"], search.thumbnails, static=static),
    ]


def test_default_bundle_carries_widget_and_static_png():
    for p in all_playgrounds(static=None):
        bundle = p._repr_mimebundle_()
        assert bundle[WIDGET_MIME]["model_id"] == p.widget.model_id
        assert base64.b64decode(bundle["image/png"])[:4] == b"\x89PNG"
        assert "JupyterLab" in bundle["text/plain"]


def test_static_switches(monkeypatch):
    p = W.temperature_playground(fakes.similarities(3), static=True)
    assert p.renders == 0  # static only: the live figure is never drawn
    bundle = p._repr_mimebundle_()
    assert WIDGET_MIME not in bundle and "image/png" in bundle
    bundle = W.temperature_playground(fakes.similarities(3), static=False)._repr_mimebundle_()
    assert "image/png" not in bundle and WIDGET_MIME in bundle
    monkeypatch.setenv(W.STATIC_ENV, "1")
    p = W.temperature_playground(fakes.similarities(3))
    assert p.static is True and p.renders == 0
    monkeypatch.setenv(W.STATIC_ENV, "0")
    assert W.static_requested() is None
    monkeypatch.setenv(W.STATIC_ENV, "maybe")
    with pytest.raises(ValueError, match="MMCOURSE_STATIC_WIDGETS"):
        W.static_requested()
    with pytest.raises(TypeError):
        W.static_requested("yes")


def test_static_figure_sweeps_settings():
    p = W.temperature_playground(fakes.similarities(2), temperature=0.07, static=True)
    assert p.static_settings() == [(1.0, 0.0), (0.07, 0.0), (0.1, -10.0)]
    hy, _ = make_hybrid()
    fig = hy.static_figure()
    assert len([ax for ax in fig.axes if ax.images]) == 3 * 3  # 3 weights x top-3


@pytest.mark.slow
def test_a_kernel_without_widget_front_end_shows_every_static_figure(tmp_path):
    """What nbval and nbconvert see: every playground's output carries a PNG next to the widget."""
    import nbformat
    from nbclient import NotebookClient

    src = pathlib.Path(__file__).parent / "browser" / "playground_fakes.py"
    (tmp_path / "playground_fakes.py").write_text(src.read_text())
    code = ("import mmcourse.widgets as W, playground_fakes as fakes\n"
            "images, names = fakes.color_images(); search = fakes.FakeHybridSearch()\n"
            "page, patches, queries, tokens, _ = fakes.fake_page()")
    calls = ["W.temperature_playground(fakes.similarities(4))",
             "W.zero_shot_playground(fakes.FakeEmbedder(), images, names)",
             "W.maxsim_playground(page, patches, queries, tokens, grid=(6, 8))",
             "W.hybrid_search_playground(search, ['sunset', 'cat'], search.thumbnails)"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in [code, *calls]])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells[1:]:
        (out,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert base64.b64decode(out.data["image/png"])[:4] == b"\x89PNG", cell.source
        assert WIDGET_MIME in out.data, cell.source


# -- what the real course objects need -------------------------------------------------

def test_zero_shot_sigmoid_uses_the_embedders_bias_and_label_placeholder():
    images, names = fakes.color_images()
    emb = fakes.FakeEmbedder()
    emb.logit_bias = -2.0
    p = W.zero_shot_playground(emb, images, names, ["a {label} square"], captions=names, static=False)
    soft = p.probabilities()
    assert soft.sum() == pytest.approx(1.0)
    png = p.image.value
    p.controls["activation"].value = "sigmoid"
    sig = p.probabilities()
    logits = 3.0 * p.class_embeddings() @ p.image_features[0]
    np.testing.assert_allclose(sig, torch.sigmoid(torch.tensor(logits - 2.0)).numpy(), atol=1e-12)
    assert "sigmoid" in p.summary.value and p.image.value != png
    assert emb.text_calls[0][0] == "a red square"


def test_hybrid_reads_hit_objects_with_per_modality_scores():
    from collections import namedtuple

    Hit = namedtuple("Hit", "id score scores")  # the shape of MultimodalIndex.search's SearchHit
    search = fakes.FakeHybridSearch()

    def index_search(query, weight):
        return [Hit(f"d{i}", s, {"text": 0.1 * i, "image": 0.2}) for i, s in search(query, weight)]

    thumbs = {f"d{i}": t for i, t in enumerate(search.thumbnails)}
    p = W.hybrid_search_playground(index_search, ["sunset"], thumbs, k=2, weight=0.0, static=False)
    assert p.results() == [("d0", pytest.approx(0.9)), ("d1", pytest.approx(0.8))]
    assert "text 0.10 image 0.20" in p.summary.value


def test_maxsim_from_model_takes_grid_and_tokens_from_the_model():
    model = fakes.FakeMultiVectorModel()
    p = W.maxsim_playground_from_model(model, model.page, "invoice total date", static=False)
    assert p.grid == (6, 6)
    assert p.tokens == ["[CLS]", "invoice", "total", "date", "[SEP]"]
    p.controls["token"].value = 2
    assert p.best_patch() == model.planted[1]
