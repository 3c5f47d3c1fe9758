"""course/clip-shapes: the text tower is really all-MiniLM-L6-v2, training is deterministic, the cache
is rebuilt when corrupt, and the trained checkpoint meets the zero-shot goals."""
import dataclasses
import json
import os

import pytest
import torch

import mmcourse
from mmcourse.data import shapes
from mmcourse.models.course import clip as course_clip

TINY = dict(images_per_combo=3, steps=3, warmup=1, cnn_widths=(8, 8, 16), projection_dim=8)


@pytest.fixture(scope="module")
def model():
    return mmcourse.load_model("course/clip-shapes", device="cpu")


def test_text_tower_is_all_minilm(model):
    """Before the projection, the text features are sentence-transformers' own embeddings."""
    from mmcourse.models.hub.minilm import embed_sentences

    texts = ["a crimson disc", "a photo of a red circle.", "the square is blue"]
    tokens = model.processor.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.model.text_model(**tokens).last_hidden_state
    pooled = course_clip.mean_pool(hidden, tokens["attention_mask"])  # (3, 384)
    torch.testing.assert_close(pooled, embed_sentences(texts), atol=1e-5, rtol=0)
    with torch.no_grad():
        projected = model.model.get_text_features(**tokens)
    torch.testing.assert_close(model.embed_texts(texts), torch.nn.functional.normalize(projected, dim=-1),
                               atol=1e-5, rtol=0)


def test_zero_shot_goals_on_heldout_combinations(model):
    held = shapes.make_scenes(240, "heldout", seed=11)
    labels = shapes.labels("all")
    truth = torch.tensor([labels.index(s.label) for s in held])
    images = [s.image for s in held]
    templates = [t.replace("{color} {shape}", "{}") for t in shapes.TEMPLATES]
    acc = (mmcourse.zero_shot_classify(model, images, labels, templates).argmax(1) == truth).float().mean().item()
    acc_para = (mmcourse.zero_shot_classify(model, images, labels, shapes.paraphrase_prompts).argmax(1) == truth
                ).float().mean().item()
    assert acc >= 10 / len(labels) and acc_para >= 8 / len(labels), (acc, acc_para)  # far above chance
    assert acc >= 0.90, acc
    # Paraphrases that share no word piece with training are far harder (notebook 01 shows why: the frozen
    # text tower itself confuses them); the goal is only that they stay well above chance.
    assert acc_para < acc, (acc, acc_para)


def test_training_never_sees_heldout_or_paraphrase_words():
    words = {w for ps in list(shapes.COLOR_PARAPHRASES.values()) + list(shapes.SHAPE_PARAPHRASES.values())
             for p in ps for w in p.split() if w not in shapes.COLORS and w not in shapes.SHAPES}
    for template in course_clip.TRAIN_TEMPLATES:
        assert not words & set(template.replace(".", "").split()), template
    images, combo_ids, combos = course_clip._training_pool(course_clip.Config(**TINY))
    assert not set(combos) & set(shapes.HELDOUT_COMBOS)
    assert len(images) == len(combo_ids) == 3 * len(shapes.TRAIN_COMBOS)


def test_training_is_deterministic():
    config = course_clip.Config(**TINY)
    a, _, ha = course_clip.train(config, progress=False)
    b, _, hb = course_clip.train(config, progress=False)
    assert ha.losses == hb.losses
    for (name, pa), (_, pb) in zip(a.vision_model.named_parameters(), b.vision_model.named_parameters()):
        assert torch.equal(pa, pb), name


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    config = course_clip.Config(**TINY)
    first = course_clip.load(device="cpu", config=config, progress=False)
    folder = mmcourse.models.course.checkpoints.checkpoint_dir(course_clip.NAME, config.version())
    weights = folder / "model.safetensors"
    assert weights.is_file() and json.loads((folder / "training.json").read_text())["config"]["steps"] == 3
    img = [s.image for s in shapes.make_scenes(2, seed=4)]
    expected = first.embed_images(img)
    # a half-written file (written as a new file: the loaded model still memory-maps the old one)
    damaged = weights.with_name("damaged.part")
    damaged.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    os.replace(damaged, weights)
    assert not mmcourse.models.course.checkpoints.is_complete(folder)
    second = course_clip.load(device="cpu", config=config, progress=False)
    assert mmcourse.models.course.checkpoints.is_complete(folder)
    torch.testing.assert_close(second.embed_images(img), expected)  # same seed, same weights
    # the folder also loads through the generic loader (text_pooling="mean" picks the course class)
    again = mmcourse.load_model(str(folder), device="cpu")
    assert type(again.model) is course_clip.CourseDualEncoder


def test_config_changes_change_the_cache_folder():
    base = course_clip.Config()
    assert base.version() == course_clip.Config().version()
    assert dataclasses.replace(base, steps=base.steps + 1).version() != base.version()
