import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import mmcourse
from mmcourse import env
from mmcourse.models.hub import access as hub
from mmcourse.errors import WeightsUnavailableError


def test_get_device_default_is_available():
    device = mmcourse.get_device()
    assert device in {"cpu", "cuda", "mps"}
    torch.zeros(1, device=device)  # usable


def test_get_device_env_override(monkeypatch):
    monkeypatch.setenv("MMCOURSE_DEVICE", "cpu")
    assert mmcourse.get_device() == "cpu"
    monkeypatch.setenv("MMCOURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="tpu"):
        mmcourse.get_device()


def test_set_seed_reproduces_all_generators():
    import random

    mmcourse.set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    mmcourse.set_seed(123)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    with pytest.raises(TypeError, match="str"):
        mmcourse.set_seed("1")


def test_cache_dir_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path / "c"))
    assert mmcourse.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("MMCOURSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert mmcourse.cache_dir() == tmp_path / "xdg" / "mmcourse"


def test_pretrained_flag(monkeypatch):
    monkeypatch.delenv("MMCOURSE_PRETRAINED", raising=False)
    assert not mmcourse.pretrained_enabled()
    monkeypatch.setenv("MMCOURSE_PRETRAINED", "1")
    assert mmcourse.pretrained_enabled()


def test_network_is_blocked_in_tests():
    from netguard import NetworkBlockedError  # the guard's own error, not any OSError (tests/test_netguard.py)

    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("example.org", 80), timeout=2)


def test_hub_guard_fails_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="openai/clip-vit-base-patch32") as info:
        hub.resolve_hub_weights("openai/clip-vit-base-patch32")
    assert time.perf_counter() - start < 10
    assert "course" in str(info.value)  # says what to do instead
    assert hub.is_offline() and mmcourse.is_offline()


def test_hub_guard_accepts_local_folder(tmp_path):
    assert hub.resolve_hub_weights(str(tmp_path)) == str(tmp_path)


def test_import_is_light():
    code = ("import sys, mmcourse; heavy = [m for m in ('transformers', 'open_clip', 'faiss', 'librosa', 'torch') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_public_api_is_listed():
    import mmcourse.training  # noqa: F401  importing the module must not shadow the function

    for name in ("get_device", "set_seed", "cache_dir", "train", "clip_loss"):
        assert name in mmcourse.__all__
        assert callable(getattr(mmcourse, name))
    with pytest.raises(AttributeError, match="nope"):
        mmcourse.nope
