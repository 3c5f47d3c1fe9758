"""One task for every model: held-out zero-shot accuracy and caption R@1 on the scenes.

Any model enters through two functions, ``embed_images(list[PIL]) -> (N, D)`` and
``embed_texts(list[str]) -> (N, D)`` (an :class:`~mmcourse.models.embedder.Embedder`'s
methods, or a library's own calls), so the course CLIP, a tiny open_clip model and a
tiny ``SiglipModel`` are measured by the same code on the same images.

- **zero-shot accuracy**: scenes of the held-out colour–shape combinations (never in
  training) classified among all 24 labels with the prompt ``"a photo of a {label}."``;
  chance is 1/24.
- **R@1**, in either direction: image → text (each scene of a mixed pool ranks the
  pool's captions) or text → image (each caption ranks the pool's images); a hit is a top
  result that shows or names the same colour and shape (captions repeat labels with
  different templates, so the label, not the exact string, decides). Chance ≈ 1/24.

:func:`scene_metrics` is the one computation, on features; :func:`evaluate_on_scenes`
feeds it any model's embeddings of scenes, and the in-notebook experiment models
(:func:`mmcourse.models.experiments.tiny_dual.evaluate`) feed it their own features.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .retrieval.metrics import top_k_accuracy

__all__ = ["PROMPT", "DIRECTIONS", "scene_metrics", "evaluate_on_scenes", "benchmark_scenes"]

PROMPT = "a photo of a {label}."  # the zero-shot prompt (an "a/an" slip does not matter to these models)
DIRECTIONS = ("image_to_text", "text_to_image")


def benchmark_scenes(n_heldout: int = 240, n_pool: int = 240, seed: int = 1):
    """``(heldout_scenes, pool_scenes)``: evaluation data, disjoint from any training seed 0 draw."""
    from .data.shapes import make_scenes

    return make_scenes(n_heldout, "heldout", seed=seed), make_scenes(n_pool, "all", seed=seed + 1)


def scene_metrics(image_features: torch.Tensor, class_features: torch.Tensor, label_ids: torch.Tensor,
                  pool_images: torch.Tensor, pool_texts: torch.Tensor, pool_label_ids: torch.Tensor,
                  direction: str = "image_to_text") -> dict[str, float]:
    """``{"zero_shot_acc", "r_at_1"}`` from features (normalise them first; cosine = dot product).

    ``image_features`` ``(N, D)`` with ``label_ids`` ``(N,)`` are classified among
    ``class_features`` ``(L, D)``; ``pool_images`` and ``pool_texts`` ``(M, D)`` are paired
    (row ``i`` of each is scene ``i``, label ``pool_label_ids[i]``) and searched in ``direction``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if len(image_features) == 0 or len(pool_images) == 0:
        raise ValueError("scene_metrics needs at least one image to classify and one pool scene")
    queries, candidates = (pool_images, pool_texts) if direction == "image_to_text" else (pool_texts, pool_images)
    top = (queries @ candidates.T).argmax(dim=1)  # (M,) best candidate per query
    return {
        "zero_shot_acc": top_k_accuracy(image_features @ class_features.T, label_ids),  # (N, L) scores
        "r_at_1": float(pool_label_ids[top].eq(pool_label_ids).float().mean()),
    }


def evaluate_on_scenes(embed_images: Callable, embed_texts: Callable, heldout: Sequence, pool: Sequence,
                       prompt: str = PROMPT, direction: str = "image_to_text") -> dict[str, float]:
    """``{"zero_shot_acc", "r_at_1", "chance"}`` for one model (see the module docstring)."""
    from .data.shapes import labels as all_labels

    labels = all_labels("all")  # 24 class names
    if not heldout or not pool:
        raise ValueError("evaluate_on_scenes needs non-empty held-out and pool scenes")

    def unit(x) -> torch.Tensor:
        return F.normalize(torch.as_tensor(x).float(), dim=-1)

    img = unit(embed_images([s.image for s in heldout]))  # (N, D)
    txt = unit(embed_texts([prompt.format(label=lab) for lab in labels]))  # (24, D)
    pimg = unit(embed_images([s.image for s in pool]))  # (M, D)
    ptxt = unit(embed_texts([s.caption for s in pool]))  # (M, D)
    metrics = scene_metrics(img, txt, torch.tensor([labels.index(s.label) for s in heldout]), pimg, ptxt,
                            torch.tensor([labels.index(s.label) for s in pool]), direction)
    return {**metrics, "chance": 1 / len(labels)}
