"""One task for every model: held-out zero-shot accuracy and caption R@1 on the scenes.

Any model enters through two functions, ``embed_images(list[PIL]) -> (N, D)`` and
``embed_texts(list[str]) -> (N, D)`` (an :class:`~mmcourse.models.embedder.Embedder`'s
methods, or a library's own calls), so the course CLIP, a tiny open_clip model and a
tiny ``SiglipModel`` are measured by the same code on the same images.

- **zero-shot accuracy**: scenes of the held-out colour–shape combinations (never in
  training) classified among all 24 labels with the prompt ``"a photo of a {label}."``;
  chance is 1/24.
- **R@1 (image → text)**: each scene of a mixed pool ranks the pool's captions; a hit
  is a top caption that names the scene's colour and shape (captions repeat labels with
  different templates, so the label, not the exact string, decides). Chance ≈ 1/24.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["PROMPT", "evaluate_on_scenes", "benchmark_scenes"]

PROMPT = "a photo of a {label}."  # the zero-shot prompt (an "a/an" slip does not matter to these models)


def benchmark_scenes(n_heldout: int = 240, n_pool: int = 240, seed: int = 1):
    """``(heldout_scenes, pool_scenes)``: evaluation data, disjoint from any training seed 0 draw."""
    from .data.shapes import make_scenes

    return make_scenes(n_heldout, "heldout", seed=seed), make_scenes(n_pool, "all", seed=seed + 1)


def evaluate_on_scenes(embed_images: Callable, embed_texts: Callable, heldout: Sequence, pool: Sequence,
                       prompt: str = PROMPT) -> dict[str, float]:
    """``{"zero_shot_acc", "r_at_1", "chance"}`` for one model (see the module docstring)."""
    from .data.shapes import labels as all_labels

    labels = all_labels("all")  # 24 class names
    if not heldout or not pool:
        raise ValueError("evaluate_on_scenes needs non-empty held-out and pool scenes")
    img = F.normalize(torch.as_tensor(embed_images([s.image for s in heldout])).float(), dim=-1)  # (N, D)
    txt = F.normalize(torch.as_tensor(embed_texts([prompt.format(label=lab) for lab in labels])).float(), dim=-1)  # (24, D)
    truth = torch.tensor([labels.index(s.label) for s in heldout])  # (N,)
    acc = (img @ txt.T).argmax(dim=1).eq(truth).float().mean().item()

    pimg = F.normalize(torch.as_tensor(embed_images([s.image for s in pool])).float(), dim=-1)  # (M, D)
    ptxt = F.normalize(torch.as_tensor(embed_texts([s.caption for s in pool])).float(), dim=-1)  # (M, D)
    top = (pimg @ ptxt.T).argmax(dim=1)  # (M,) index of the best caption per image
    r1 = sum(pool[int(j)].label == s.label for s, j in zip(pool, top)) / len(pool)
    return {"zero_shot_acc": acc, "r_at_1": float(r1), "chance": 1 / len(labels)}
