"""Production and scale: distributed contrastive training, embedding pipelines, index choice.

- :mod:`mmcourse.scale.pipeline` — DataLoader → model → memmap, resumable after a crash;
- :mod:`mmcourse.scale.indexes` — FAISS flat / IVF / HNSW / IVF-PQ compared at 100k+ vectors;
- :mod:`mmcourse.scale.train_ddp` — ``torchrun --nproc_per_node=2 -m mmcourse.scale.train_ddp``.

The heavy parts (faiss, torch.distributed) are imported only when used.
"""
from .pipeline import *  # noqa: F401,F403
from .indexes import *  # noqa: F401,F403
