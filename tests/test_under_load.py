"""Under load: small training loops use one thread, nbval waits for a slow kernel's output,
and tools/under_load.sh holds a core busy around a command and then lets it go."""
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import nbformat
import numpy as np
import pytest
import torch

import mmcourse
from mmcourse.env import torch_threads
from mmcourse.env import ONE_THREAD_TRAINING_PARAMS

REPO = pathlib.Path(__file__).resolve().parents[1]


class _Probe(torch.nn.Module):
    """A two-tower toy that records how many torch threads each step ran with."""

    def __init__(self, width):
        super().__init__()
        self.a, self.b = torch.nn.Linear(width, 4), torch.nn.Linear(width, 4)
        self.seen = []

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        return self.a(x), self.b(x), torch.tensor(10.0)


def _batches(width):
    return lambda step: (torch.randn(8, width),)


@pytest.fixture
def two_threads():
    with torch_threads(2):
        yield


def test_small_models_train_on_one_thread_and_the_setting_is_restored(two_threads):
    model = _Probe(8)
    mmcourse.train(model, _batches(8), mmcourse.clip_loss, steps=3, device="cpu", progress=False)
    assert model.seen == [1, 1, 1] and torch.get_num_threads() == 2


def test_an_explicit_thread_count_wins(two_threads):
    model = _Probe(8)
    mmcourse.train(model, _batches(8), mmcourse.clip_loss, steps=2, device="cpu", progress=False, threads=2)
    assert model.seen == [2, 2]


def test_large_models_keep_torch_threads(two_threads):
    width = ONE_THREAD_TRAINING_PARAMS // 8 + 1  # two Linear(width, 4): just over the limit
    model = _Probe(width)
    mmcourse.train(model, _batches(width), mmcourse.clip_loss, steps=1, device="cpu", progress=False)
    assert model.seen == [2]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_rejected(bad):
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        with torch_threads(bad):
            pass


def test_the_course_sweep_trains_on_one_thread(two_threads, monkeypatch):
    from mmcourse.models.experiments import tiny_dual

    seen = []
    real = tiny_dual.TinyDualEncoder.forward

    def forward(self, *args):
        seen.append(torch.get_num_threads())
        return real(self, *args)

    monkeypatch.setattr(tiny_dual.TinyDualEncoder, "forward", forward)
    train = tiny_dual.make_scene_data(64, "train", seed=0)
    tiny_dual.run_trial("clip", 16, 0, train, tiny_dual.make_scene_data(32, "all", seed=1), examples=64)
    assert seen and set(seen) == {1}


PROBE_PLUGIN = textwrap.dedent("""
    import json, os

    def pytest_runtest_call(item):
        with open(os.environ["PROBE_OUT"], "a") as f:
            f.write(json.dumps({"name": item.name, "output_timeout": getattr(item, "output_timeout", None)}) + "\\n")
""")


@pytest.mark.slow
def test_nbval_waits_longer_than_five_seconds_for_cell_output(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    (tmp_path / "probe_plugin.py").write_text(PROBE_PLUGIN)
    env = {**os.environ, "PROBE_OUT": str(tmp_path / "seen.jsonl"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "probe_plugin", "--nbval-lax",
                          "--nbval-current-env", "-q", "-p", "no:cacheprovider", str(tmp_path / "probe.ipynb")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    seen = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    assert seen and all(s["output_timeout"] == 120 for s in seen), seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_under_load_holds_a_core_then_releases_it(tmp_path):
    script = REPO / "tools" / "under_load.sh"
    probe = "import time; t = time.process_time(); time.sleep(0.5); print('ok')"
    run = subprocess.run([str(script), "-t", "30", sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    pids = [int(p) for p in re.search(r"pids ([\d ]+)\)", run.stderr).group(1).split()]
    assert len(pids) == 1
    assert all(not pathlib.Path(f"/proc/{pid}").exists() or
               pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z" for pid in pids)
    assert "load average before" in run.stderr and "exited 0 after" in run.stderr
    failed = subprocess.run([str(script), "-t", "30", "false"], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1  # the command's own status


def test_small_embedding_loops_run_on_one_thread(two_threads, tmp_path):
    from mmcourse.scale.pipeline import PipelineConfig, SceneImages, embed_dataset, embed_plain_loop

    seen = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 8))  # (B, 8)
    model.register_forward_pre_hook(lambda m, x: seen.append(torch.get_num_threads()))
    scenes = SceneImages(16, seed=0, size=16)
    embed_dataset(scenes, model, tmp_path / "e.npy", PipelineConfig(batch_size=8, num_workers=0, progress=False),
                  device="cpu")
    embed_plain_loop(scenes, model, batch_size=8, device="cpu")
    assert seen == [1] * 4 and torch.get_num_threads() == 2


def _thread_recorder(module, seen):
    for sub in module.modules():  # every layer, whichever entry point the embedder calls
        sub.register_forward_pre_hook(lambda m, x: seen.append(torch.get_num_threads()))


def test_course_embedders_run_on_one_thread_and_restore_the_setting(two_threads):
    seen = []
    clip = mmcourse.load_model("course/clip-shapes", device="cpu")
    _thread_recorder(clip.model, seen)
    clip.embed_texts(["a red circle", "a blue square"])
    clip.embed_images([np.zeros((32, 32, 3), dtype=np.uint8)])
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2


def test_minilm_sentences_run_on_one_thread(two_threads, monkeypatch):
    from mmcourse.models.hub import minilm

    seen = []
    _thread_recorder(minilm.load_sentence_transformer("cpu"), seen)
    minilm.embed_sentences(["a red circle"])
    assert seen and set(seen) == {1} and torch.get_num_threads() == 2


def test_large_models_embed_with_torch_threads(two_threads):
    from mmcourse.env import ONE_THREAD_INFERENCE_PARAMS
    from mmcourse.models.embedder import Embedder

    class Wide(Embedder):
        def _encode_texts(self, texts):
            self.seen.append(torch.get_num_threads())
            return torch.ones(len(texts), 4)  # (B, 4)

    big = torch.nn.Linear(ONE_THREAD_INFERENCE_PARAMS // 8 + 1, 8, device="meta")  # just over the limit, no memory
    small = torch.nn.Linear(4, 4)
    for module, expected in ((big, 2), (small, 1)):
        emb = Wide("probe", module, None, "cpu", 1.0)
        emb.seen = []
        emb.embed_texts(["x"])
        assert emb.seen == [expected], (module, emb.seen)


def _make_prints_omp_wait_policy(env):
    run = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "show-omp: ; @echo $$OMP_WAIT_POLICY",
                          "show-omp"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_make_runs_everything_with_sleeping_openmp_threads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _make_prints_omp_wait_policy(env) == "PASSIVE"  # what `make lab` / `make test` kernels inherit
    assert _make_prints_omp_wait_policy({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"  # the learner's own wins
