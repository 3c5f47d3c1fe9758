import pytest

from mmcourse.data import photos


def test_load_all_photos_offline():
    items = photos.load_photos(max_side=96)
    assert len(items) >= 10
    names = {p.name for p in items}
    assert {"astronaut", "chelsea", "coffee", "rocket"} <= names
    for p in items:
        assert p.image.mode == "RGB" and max(p.image.size) <= 96
        assert p.caption and p.label


def test_unknown_photo_names_the_valid_ones():
    with pytest.raises(ValueError, match="astronaut"):
        photos.load_photos(["mona_lisa"])
