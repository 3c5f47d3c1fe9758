import json

import pytest

from mmcourse.models.course import checkpoints


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))


def _builder(calls):
    def build(folder):
        calls.append(folder)
        (folder / "weights.bin").write_bytes(b"w" * 100)
        (folder / "config.json").write_text(json.dumps({"n": len(calls)}))
    return build


def test_builds_once_then_reuses():
    calls = []
    first = checkpoints.ensure_checkpoint("course/x", "v1", _builder(calls))
    second = checkpoints.ensure_checkpoint("course/x", "v1", _builder(calls))
    assert first == second and len(calls) == 1 and checkpoints.is_complete(first)
    assert first.name == "course--x-v1"


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_manifest", "delete_file"])
def test_corrupt_or_half_written_cache_is_rebuilt(damage):
    calls = []
    folder = checkpoints.ensure_checkpoint("course/x", "v1", _builder(calls))
    weights = folder / "weights.bin"
    if damage == "truncate":
        weights.write_bytes(b"w" * 10)
    elif damage == "flip":
        weights.write_bytes(b"x" * 100)  # same size, different bytes
    elif damage == "delete_manifest":
        (folder / checkpoints.MANIFEST).unlink()
    else:
        weights.unlink()
    assert not checkpoints.is_complete(folder)
    checkpoints.ensure_checkpoint("course/x", "v1", _builder(calls))
    assert len(calls) == 2 and checkpoints.is_complete(folder)


def test_failed_build_leaves_nothing_behind():
    def broken(folder):
        (folder / "partial.bin").write_bytes(b"1")
        raise RuntimeError("training crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        checkpoints.ensure_checkpoint("course/y", "v1", broken)
    folder = checkpoints.checkpoint_dir("course/y", "v1")
    assert not folder.exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".course--y-v1.tmp")]


def test_load_failure_triggers_one_rebuild():
    calls, loads = [], []

    def load(folder):
        loads.append(folder)
        if len(loads) == 1:
            raise OSError("unreadable")
        return json.loads((folder / "config.json").read_text())

    with pytest.warns(UserWarning, match="retraining"):
        out = checkpoints.load_course_checkpoint("course/z", "v1", _builder(calls), load)
    assert out == {"n": 2} and len(calls) == 2
