"""Hub access: what counts as cached (weights, not a config alone) and the reachability probe
(proxies and HF_ENDPOINT honoured), tested with local folders and loopback sockets only."""
import json
import socket
import time

import pytest

import mmcourse
from mmcourse.errors import WeightsUnavailableError
from mmcourse.models.hub import access as hub
from mmcourse.testing.standins import snapshot_dir

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
              "all_proxy", "HF_ENDPOINT")


@pytest.fixture
def clean_env(monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.fixture
def listener():
    """A loopback TCP port that accepts connections (the stand-in for a proxy or a mirror)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def _closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, offline, for this test only."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    return cache


# ----------------------------------------------------------------------------- the probe
def test_probe_goes_to_the_hub_by_default(clean_env):
    assert hub.probe_address() == ("huggingface.co", 443)
    start = time.perf_counter()
    assert not hub.hub_reachable(timeout=2)  # the test suite blocks the network
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("var", ["HTTPS_PROXY", "https_proxy"])
def test_probe_goes_through_an_https_proxy(clean_env, listener, var):
    clean_env.setenv(var, f"http://127.0.0.1:{listener}")
    assert hub.probe_address() == ("127.0.0.1", listener)
    assert hub.hub_reachable(timeout=2)  # the proxy answers: not offline


def test_all_proxy_is_the_fallback(clean_env, listener):
    clean_env.setenv("ALL_PROXY", f"http://127.0.0.1:{listener}")
    assert hub.probe_address() == ("127.0.0.1", listener)
    clean_env.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    assert hub.probe_address() == ("127.0.0.1", 1)  # the scheme's own proxy wins


def test_a_dead_proxy_means_unreachable(clean_env):
    port = _closed_port()
    clean_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    assert hub.probe_address() == ("127.0.0.1", port)
    assert not hub.hub_reachable(timeout=2)


def test_no_proxy_exempts_the_hub(clean_env, listener):
    clean_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener}")
    clean_env.setenv("NO_PROXY", "localhost,huggingface.co")
    assert hub.probe_address() == ("huggingface.co", 443)  # direct, so blocked here
    assert not hub.hub_reachable(timeout=2)


def test_probe_honours_hf_endpoint(clean_env, listener):
    clean_env.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener}/")
    assert hub.hub_endpoint() == f"http://127.0.0.1:{listener}"
    assert hub.probe_address() == ("127.0.0.1", listener)
    assert hub.hub_reachable(timeout=2)
    clean_env.setenv("HF_ENDPOINT", "https://mirror.example")
    assert hub.probe_address() == ("mirror.example", 443)  # https default port


def test_an_http_mirror_uses_the_http_proxy(clean_env, listener):
    clean_env.setenv("HF_ENDPOINT", "http://mirror.example")
    clean_env.setenv("HTTPS_PROXY", "http://127.0.0.1:1")  # not for http:// endpoints
    clean_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener}")
    assert hub.probe_address() == ("127.0.0.1", listener)


def test_a_malformed_proxy_is_unreachable_not_a_crash(clean_env):
    clean_env.setenv("HTTPS_PROXY", "http://127.0.0.1:notaport")
    with pytest.raises(ValueError, match="HTTPS_PROXY"):
        hub.probe_address()
    assert not hub.hub_reachable(timeout=1)


def test_reachable_hub_without_cache_returns_the_id(clean_env, listener, hf_cache):
    clean_env.delenv("HF_HUB_OFFLINE")
    clean_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{listener}")
    assert hub.resolve_hub_weights("org/model") == "org/model"  # transformers will download through the proxy


# ----------------------------------------------------------------------------- what counts as cached
def test_weights_files_and_shards(tmp_path):
    assert not hub.has_weights(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    assert not hub.has_weights(tmp_path)  # a config alone is not a checkpoint
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"x")
    assert not hub.has_weights(tmp_path)  # one shard missing
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"x")
    assert hub.has_weights(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "open_clip_pytorch_model.bin").write_bytes(b"x")
    assert hub.has_weights(other)
    assert not hub.has_weights(tmp_path / "missing")


def test_config_only_snapshot_is_not_cached(hf_cache):
    """What load_model's own config fetch leaves behind must give the course's error, not transformers'."""
    folder = snapshot_dir(hf_cache, "openai/clip-vit-base-patch32")
    (folder / "config.json").write_text(json.dumps({"model_type": "clip"}))
    assert hub.cached_snapshot("openai/clip-vit-base-patch32") is None
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="openai/clip-vit-base-patch32"):
        mmcourse.load_model("openai/clip-vit-base-patch32", device="cpu")
    assert time.perf_counter() - start < 10
    (folder / "model.safetensors").write_bytes(b"x")
    assert hub.cached_snapshot("openai/clip-vit-base-patch32") == str(folder)


def test_open_clip_tag_with_config_only_is_not_cached(hf_cache):
    folder = snapshot_dir(hf_cache, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    (folder / "open_clip_config.json").write_text("{}")
    with pytest.raises(WeightsUnavailableError, match="laion"):
        mmcourse.load_model("open_clip:ViT-B-32/laion2b_s34b_b79k", device="cpu")


def test_the_error_says_why_offline(clean_env, hf_cache):
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE"):
        hub.resolve_hub_weights("org/model")
    clean_env.delenv("HF_HUB_OFFLINE")
    port = _closed_port()
    clean_env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    with pytest.raises(WeightsUnavailableError, match=rf"127\.0\.0\.1:{port} \(the proxy\)"):
        hub.resolve_hub_weights("org/model")
