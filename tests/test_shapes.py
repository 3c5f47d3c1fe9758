import numpy as np
import pytest
from PIL import Image

from mmcourse.data import shapes


def test_vocabulary_and_splits():
    assert len(shapes.COLORS) >= 6 and len(shapes.SHAPES) >= 4
    held = set(shapes.HELDOUT_COMBOS)
    train = set(shapes.TRAIN_COMBOS)
    assert held and not (held & train)
    assert held | train == set(shapes.ALL_COMBOS)
    # every colour and every shape is still seen in training
    assert {c for c, _ in train} == set(shapes.COLORS)
    assert {s for _, s in train} == set(shapes.SHAPES)


@pytest.mark.parametrize("split", ["train", "heldout", "all"])
def test_make_scenes_records(split):
    scenes = shapes.make_scenes(40, split=split, seed=1, size=48)
    assert len(scenes) == 40
    allowed = set(shapes.combos(split))
    for s in scenes:
        assert isinstance(s.image, Image.Image) and s.image.mode == "RGB" and s.image.size == (48, 48)
        assert (s.color, s.shape) in allowed
        assert s.color in s.caption and s.shape in s.caption
        assert s.label == f"{s.color} {s.shape}"


def test_heldout_never_in_train():
    combos = {(s.color, s.shape) for s in shapes.make_scenes(500, "train", seed=3)}
    assert not combos & set(shapes.HELDOUT_COMBOS)


def test_deterministic_by_seed():
    a = shapes.make_scenes(5, seed=7)
    b = shapes.make_scenes(5, seed=7)
    c = shapes.make_scenes(5, seed=8)
    assert [s.caption for s in a] == [s.caption for s in b]
    assert all(np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, b))
    assert any(not np.array_equal(np.asarray(x.image), np.asarray(y.image)) for x, y in zip(a, c))


def test_colour_is_drawn():
    # the object's pixels carry its colour: the most saturated pixel is near the named RGB
    for s in shapes.make_scenes(30, "all", seed=2):
        arr = np.asarray(s.image).astype(int)
        target = np.array(shapes.COLORS[s.color])
        dist = np.abs(arr - target).sum(-1)
        assert dist.min() < 60, (s.caption, dist.min())


def test_two_object_scenes():
    scenes = shapes.make_scenes(10, objects=2, seed=0)
    for s in scenes:
        assert len(s.objects) == 2 and s.relation in shapes.RELATIONS
        assert s.relation in s.caption


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_n(bad):
    with pytest.raises(ValueError, match="positive integer"):
        shapes.make_scenes(bad)


def test_bad_split_names_valid_ones():
    with pytest.raises(ValueError, match="heldout"):
        shapes.make_scenes(3, split="test")


def test_bad_size_and_objects():
    with pytest.raises(ValueError, match="size"):
        shapes.make_scenes(3, size=4)
    with pytest.raises(ValueError, match="objects"):
        shapes.make_scenes(3, objects=3)


def test_labels_and_paraphrases():
    assert len(shapes.labels("all")) == len(shapes.ALL_COMBOS)
    prompts = shapes.paraphrase_prompts("red circle")
    train_words = set(" ".join(t.format(color=c, shape=s) for t in shapes.TEMPLATES for c, s in shapes.ALL_COMBOS).split())
    assert prompts and all("red" not in p.split() and "circle" not in p.split() for p in prompts)
    assert "crimson" in " ".join(prompts) and "crimson" not in train_words


def test_paraphrases_share_no_word_piece_with_training_captions():
    """'navy blue', 'lemon-yellow' or 'starburst' (star + ##burst) would leak a training word into a paraphrase."""
    from transformers import AutoTokenizer

    from mmcourse.models.hub.minilm import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    captions = [shapes.format_caption(t, c, s) for t in shapes.TEMPLATES for c, s in shapes.ALL_COMBOS]
    train_pieces = {p.lstrip("#") for c in captions for p in tokenizer.tokenize(c)} - {"a", "an", "."}
    for label in shapes.labels("all"):
        for prompt in shapes.paraphrase_prompts(label):
            words = prompt.split()[1:]  # drop the article
            pieces = {p.lstrip("#") for w in words for p in tokenizer.tokenize(w)} - {"-"}
            assert not pieces & train_pieces, (prompt, pieces & train_pieces)
            assert not any(t in w for w in words for t in list(shapes.COLORS) + list(shapes.SHAPES)), prompt


def test_captions_use_the_right_article():
    captions = [s.caption for s in shapes.make_scenes(200, "all", seed=0)]
    assert any("an orange" in c for c in captions)
    assert not any(" a orange" in c or c.startswith("a orange") for c in captions)
    assert shapes.format_caption("a photo of a {color} {shape}", "orange", "star") == "a photo of an orange star"
