"""torchrun, for real: 2 processes on loopback (gloo) match one process on the same global batch."""
import json

import numpy as np
import pytest

from mmcourse.scale.train_ddp import VARIANTS, DDPConfig, launch, load_grad0, main, run_single

CONFIG = DDPConfig(steps=4, local_batch=8, world_size=2, train_size=64, lr=2e-3, seed=0)
DIST = ["clip", "clip-nograd", "clip-local-nograd", "siglip"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    two = launch(CONFIG, folder / "two.json", variants=DIST, timeout=400)
    one = run_single(CONFIG, folder / "one.json", variants=["clip", "siglip"], timeout=400)
    return folder, two, one


def test_two_ranks_match_one_process(runs):
    _, two, one = runs
    assert two["mode"] == "torchrun" and two["backend"] in ("gloo", "nccl")
    for loss in ("clip", "siglip"):
        ddp, ref = two["runs"][loss], one["runs"][loss]
        assert ddp["ranks"] == 2 and ddp["local_batch"] == 8 and ddp["global_batch"] == 16 == ref["local_batch"]
        assert len(ddp["losses"]) == CONFIG.steps
        np.testing.assert_allclose(ddp["losses"], ref["losses"], rtol=0, atol=1e-4, err_msg=loss)


def test_gradients_with_and_without_gather_grad(runs):
    folder, _, _ = runs
    ref = load_grad0(folder / "one.json", "clip")
    exact = load_grad0(folder / "two.json", "clip")
    nograd = load_grad0(folder / "two.json", "clip-nograd")
    local_nograd = load_grad0(folder / "two.json", "clip-local-nograd")
    rel = lambda g: np.linalg.norm(g - ref) / np.linalg.norm(ref)
    assert rel(exact) < 1e-4  # gather with gradient = single-process gradient
    # without gradient through the gather, each rank keeps only its own loss's share: 1/W of
    # the encoders' gradients after DDP averaging (the temperature's is whole)
    assert 0.3 < rel(nograd) < 0.7
    assert rel(local_nograd) > 0.5  # local loss without gather gradients: a different gradient


def test_siglip_ring_matches(runs):
    folder, _, _ = runs
    ref, ring = load_grad0(folder / "one.json", "siglip"), load_grad0(folder / "two.json", "siglip")
    np.testing.assert_allclose(ring, ref, rtol=1e-4, atol=1e-6)


def test_bad_flags(tmp_path):
    with pytest.raises(ValueError, match="SigLIP"):
        DDPConfig(loss="siglip", local_loss=True)
    with pytest.raises(ValueError, match="global batch"):
        DDPConfig(local_batch=64, world_size=2, train_size=100)
    with pytest.raises(ValueError, match="variant"):
        main(["--variants", "clip,nope", "--single-process", "--out", str(tmp_path / "x.json")])
    with pytest.raises(RuntimeError, match="torchrun"):
        main(["--out", str(tmp_path / "x.json"), "--world-size", "2"])
    assert set(DIST) <= set(VARIANTS)
