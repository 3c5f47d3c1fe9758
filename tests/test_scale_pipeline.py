"""Embedding pipeline: same numbers as a plain loop, and resume after a kill -9 gives the same file."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from mmcourse.scale.pipeline import (PipelineConfig, SceneImages, embed_dataset, embed_plain_loop,
                                     load_embeddings, read_progress, resolve_precision)


def tiny_encoder(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),  # (B, 8, 15, 15)
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 16),  # (B, 16)
    )


@pytest.fixture(scope="module")
def scenes():
    return SceneImages(96, seed=3, size=32)


def test_pipeline_matches_plain_loop(tmp_path, scenes):
    model = tiny_encoder()
    reference = embed_plain_loop(scenes, model, batch_size=16, device="cpu")  # (96, 16)
    result = embed_dataset(scenes, model, tmp_path / "e.npy",
                           PipelineConfig(batch_size=16, num_workers=0, progress=False), device="cpu")
    assert result.complete and result.rows == 96 and result.dim == 16 and result.resumed_from == 0
    out = load_embeddings(result.path)
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_workers_give_the_same_embeddings(tmp_path, scenes):
    model = tiny_encoder()
    cfg = dict(batch_size=32, progress=False)
    a = embed_dataset(scenes, model, tmp_path / "a.npy", PipelineConfig(num_workers=0, **cfg), device="cpu")
    b = embed_dataset(scenes, model, tmp_path / "b.npy", PipelineConfig(num_workers=2, **cfg), device="cpu")
    assert np.array_equal(load_embeddings(a.path), load_embeddings(b.path))


def test_interrupted_job_resumes_to_the_same_file(tmp_path, scenes):
    model = tiny_encoder()
    cfg = PipelineConfig(batch_size=16, num_workers=0, progress=False)
    full = embed_dataset(scenes, model, tmp_path / "full.npy", cfg, device="cpu")
    part = embed_dataset(scenes, model, tmp_path / "part.npy", cfg, device="cpu", max_batches=2)
    assert not part.complete and read_progress(part.path)["done"] == 32
    with pytest.raises(ValueError, match="incomplete"):
        load_embeddings(part.path)
    rest = embed_dataset(scenes, model, tmp_path / "part.npy", cfg, device="cpu")
    assert rest.resumed_from == 32 and rest.embedded == 64 and rest.complete
    assert np.array_equal(load_embeddings(rest.path), load_embeddings(full.path))
    again = embed_dataset(scenes, model, tmp_path / "part.npy", cfg, device="cpu")
    assert again.embedded == 0 and again.complete  # nothing left to do


def test_changed_job_starts_over(tmp_path, scenes):
    model = tiny_encoder()
    embed_dataset(scenes, model, tmp_path / "x.npy", PipelineConfig(batch_size=16, num_workers=0, progress=False),
                  device="cpu", max_batches=1)
    other = embed_dataset(scenes, model, tmp_path / "x.npy",
                          PipelineConfig(batch_size=32, num_workers=0, progress=False), device="cpu")
    assert other.resumed_from == 0 and other.complete


KILLABLE = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    from test_scale_pipeline import tiny_encoder
    from mmcourse.scale.pipeline import PipelineConfig, SceneImages, embed_dataset

    model = tiny_encoder()
    def slow(batch):
        time.sleep(float(sys.argv[2]))  # a slow model, so the test can kill us half-way
        return model(batch)
    embed_dataset(SceneImages(96, seed=3, size=32), slow, sys.argv[1],
                  PipelineConfig(batch_size=8, num_workers=0, progress=False), device="cpu")
""")


def test_kill_half_way_then_resume_gives_the_uninterrupted_result(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(KILLABLE.format(tests=os.path.dirname(__file__)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = lambda out, delay: subprocess.Popen([sys.executable, str(script), str(out), str(delay)], env=env,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reference = run(tmp_path / "ref.npy", 0)
    victim = run(tmp_path / "job.npy", 0.25)
    deadline = time.time() + 120
    while time.time() < deadline:
        state = read_progress(tmp_path / "job.npy")
        if state and state["done"] >= 48:
            break
        assert victim.poll() is None, victim.communicate()[1].decode()[-2000:]
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)  # no cleanup, no flush: a crash
    victim.wait(30)
    done = read_progress(tmp_path / "job.npy")["done"]
    assert 48 <= done < 96, done
    assert reference.wait(120) == 0, reference.communicate()[1].decode()[-2000:]
    resumed = run(tmp_path / "job.npy", 0)
    assert resumed.wait(120) == 0, resumed.communicate()[1].decode()[-2000:]
    assert np.array_equal(load_embeddings(tmp_path / "job.npy"), load_embeddings(tmp_path / "ref.npy"))


def test_precision_choice():
    assert resolve_precision("auto", "cpu") is None
    assert resolve_precision("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="fp16"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision"):
        PipelineConfig(precision="int8")


def test_bad_inputs(tmp_path, scenes):
    with pytest.raises(ValueError, match=".npy"):
        embed_dataset(scenes, tiny_encoder(), tmp_path / "e.parquet")
    with pytest.raises(ValueError, match="batch_size"):
        PipelineConfig(batch_size=0)
    with pytest.raises(ValueError, match="shape"):
        embed_dataset(scenes, lambda b: b.sum(dim=(1, 2, 3)), tmp_path / "e.npy",
                      PipelineConfig(num_workers=0, progress=False), device="cpu")
    with pytest.raises(FileNotFoundError):
        load_embeddings(tmp_path / "never.npy")
