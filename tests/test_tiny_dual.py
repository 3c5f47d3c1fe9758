"""The tiny dual encoder of notebook 02: contract with mmcourse.train, data, evaluation."""
import math

import pytest
import torch

import mmcourse
from mmcourse.losses import clip_loss, siglip_loss
from mmcourse.models.experiments.tiny_dual import (TinyDualConfig, TinyDualEncoder, caption_embeddings, evaluate,
                                       make_scene_data, run_trial, scene_batches)


@pytest.fixture(scope="module")
def data():
    return make_scene_data(64, "train", seed=0)


def test_forward_follows_the_train_contract(data):
    clip_model = TinyDualEncoder(TinyDualConfig.for_loss("clip"))
    img, txt, scale = clip_model(data.images[:5], data.text_embeddings[:5])
    assert img.shape == txt.shape == (5, 64)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(5))
    assert math.isclose(scale.item(), 1 / 0.07, rel_tol=1e-5)
    out = TinyDualEncoder(TinyDualConfig.for_loss("siglip"))(data.images[:5], data.text_embeddings[:5])
    assert len(out) == 4 and math.isclose(out[2].item(), 10.0, rel_tol=1e-5) and out[3].item() == -10.0
    with pytest.raises(ValueError, match="clip.*siglip"):
        TinyDualConfig.for_loss("triplet")


def test_data_is_deterministic_and_consistent(data):
    assert data.images.shape == (64, 3, 24, 24) and data.text_embeddings.shape == (64, 384)
    assert 0.0 <= float(data.images.min()) and float(data.images.max()) <= 1.0
    torch.testing.assert_close(caption_embeddings(data.captions[:3]), data.text_embeddings[:3])
    again = scene_batches(data, 16, seed=3)
    first = scene_batches(data, 16, seed=3)
    assert torch.equal(again(0)[0], first(0)[0]) and torch.equal(again(5)[1], first(5)[1])
    with pytest.raises(ValueError, match="batch_size"):
        scene_batches(data, 0)
    with pytest.raises(ValueError, match="batch_size"):
        scene_batches(data, 65)


def test_each_caption_names_its_label(data):
    for caption, label_id in zip(data.captions, data.label_ids):
        color, shape = data.labels[label_id].split(" ")
        assert color in caption and shape in caption


@pytest.mark.parametrize("loss_name,loss_fn", [("clip", clip_loss), ("siglip", siglip_loss)])
def test_trains_with_mmcourse_train_and_evaluates(data, loss_name, loss_fn):
    model = TinyDualEncoder(TinyDualConfig.for_loss(loss_name))
    history = mmcourse.train(model, scene_batches(data, 16), loss_fn, steps=40, lr=5e-3, device="cpu", progress=False)
    assert all(math.isfinite(v) for v in history.losses)
    assert sum(history.losses[-5:]) < sum(history.losses[:5])
    metrics = evaluate(model, data)
    assert set(metrics) == {"zero_shot_acc", "r_at_1"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


def test_run_trial_reports_settings(data):
    result = run_trial("siglip", 16, seed=0, train_data=data, eval_data=data, examples=64)
    assert result["steps"] == 4 and result["batch_size"] == 16 and math.isfinite(result["final_loss"])
    warmed = run_trial("clip", 8, seed=0, train_data=data, eval_data=data, examples=160, lr=1e-3, warmup=0.25)
    assert warmed["steps"] == 20 and warmed["warmup_steps"] == 5 and warmed["lr"] == 1e-3
    with pytest.raises(ValueError, match="warmup"):
        run_trial("clip", 16, 0, data, data, examples=64, warmup=1.5)
    with pytest.raises(ValueError, match="loss"):
        run_trial("triplet", 16, 0, data, data, examples=64)
