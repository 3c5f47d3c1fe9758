"""``course/colpali-pages``: a ColPali-shaped multi-vector retriever trained on rendered pages.

The same shape as ColPali, shrunk to train on a CPU in about a minute:

- **pages**: a small vision tower (a strided conv stem, then one transformer layer over
  the 8 x 8 patch grid so a patch can see its neighbours) and a linear 128-d
  projection — ColPali's ``custom_text_proj`` — giving one L2-normalised vector per patch;
- **queries**: the real all-MiniLM-L6-v2, frozen, whose per-token hidden states go
  through a trainable linear 128-d projection: one L2-normalised vector per token;
- **score**: MaxSim (:func:`mmcourse.retrieval.maxsim`), trained with the in-batch
  contrastive loss of CLIP (:func:`mmcourse.losses.clip_loss`) over the MaxSim score
  matrix, through :func:`mmcourse.train`.

Trained on first use (a progress bar, well under two minutes on two cores), then cached
under ``mmcourse.cache_dir()`` and loaded in about a second.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...retrieval.maxsim import maxsim
from ..embedder import Embedder, batched, check_texts, in_thread_scope, to_pil_images

__all__ = ["Config", "PageTower", "CourseColPali", "ColPaliEmbedder", "train", "build", "load_folder", "load",
           "NAME", "VERSION"]

NAME = "course/colpali-pages"
VERSION = "1"  # bump when the architecture, data or training changes


@dataclass
class Config:
    """Architecture and training recipe of ``course/colpali-pages``."""

    image_size: int = 128  # pages are rendered at image_size x image_size pixels
    channels: tuple[int, ...] = (32, 64, 128)  # conv stem widths: a 4x4 patchify conv, then convs halving the side
    heads: int = 4  # attention heads of the transformer layer over patches
    layers: int = 1  # transformer layers over the patch grid
    dim: int = 128  # ColPali's projection size: every page patch and query token becomes a 128-d vector
    text_dim: int = 384  # all-MiniLM-L6-v2 hidden size
    init_logit_scale: float = 10.0  # multiplier of the (token-averaged) MaxSim scores in the loss
    train_pages: int = 512  # rendered training pages
    queries_per_page: int = 2  # training queries written from each page
    steps: int = 150  # AdamW steps
    batch_size: int = 32  # pages (and queries) per in-batch contrastive step
    lr: float = 3e-3  # peak learning rate (cosine schedule with warm-up)
    seed: int = 0  # data and initialisation seed

    def version(self) -> str:
        """Cache key: the default recipe is ``VERSION``; any other recipe gets its own folder."""
        from .checkpoints import config_digest

        return VERSION if self == Config() else f"{VERSION}-{config_digest(self)}"

    @property
    def grid(self) -> int:
        return self.image_size // (4 * 2 ** (len(self.channels) - 1))  # patches per side

    @property
    def n_patches(self) -> int:
        return self.grid ** 2


class PageTower(nn.Module):
    """Image ``(B, 3, S, S)`` → patch vectors ``(B, P, dim)``, L2-normalised."""

    def __init__(self, cfg: Config):
        super().__init__()
        convs, c_in = [nn.Conv2d(3, cfg.channels[0], 4, stride=4), nn.GELU()], cfg.channels[0]  # 4x4 patchify
        for c_out in cfg.channels[1:]:
            convs += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.GELU()]
            c_in = c_out
        self.stem = nn.Sequential(*convs)
        width = cfg.channels[-1]
        self.position = nn.Parameter(torch.zeros(1, cfg.n_patches, width))  # learned position per patch
        layer = nn.TransformerEncoderLayer(width, cfg.heads, dim_feedforward=2 * width, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.proj = nn.Linear(width, cfg.dim)  # ColPali's custom_text_proj: hidden → 128

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)  # (B, C, g, g)
        x = x.flatten(2).transpose(1, 2) + self.position  # (B, P, C)
        x = self.encoder(x)  # (B, P, C)
        return F.normalize(self.proj(x), dim=-1)  # (B, P, dim)


class CourseColPali(nn.Module):
    """Page tower + query projection; ``forward`` follows :func:`mmcourse.train`'s contract.

    ``forward(images, token_states, token_mask)`` returns ``(scores, identity, logit_scale)``:
    ``scores`` is the ``(B, B)`` MaxSim matrix (query i vs page j, averaged over the query's
    tokens) and ``identity`` the ``(B, B)`` identity, so that ``clip_loss(scores, identity,
    logit_scale)`` — which computes ``logit_scale * scores @ identityᵀ`` — is InfoNCE over
    MaxSim scores.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.config = cfg
        self.pages = PageTower(cfg)
        self.query_proj = nn.Linear(cfg.text_dim, cfg.dim)  # MiniLM token state → 128
        self.log_scale = nn.Parameter(torch.tensor(math.log(cfg.init_logit_scale)))

    def embed_query_states(self, states: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.query_proj(states), dim=-1)  # (B, T, dim)

    def forward(self, images, token_states, token_mask):
        pages = self.pages(images)  # (B, P, dim)
        queries = self.embed_query_states(token_states)  # (B, T, dim)
        scores = maxsim(queries, pages, query_mask=token_mask)  # (B, B)
        scores = scores / token_mask.sum(1, keepdim=True)  # token-averaged, in [-1, 1]
        identity = torch.eye(scores.shape[0], device=scores.device)  # (B, B)
        return scores, identity, self.log_scale.exp().clamp(max=100.0)


# ---- pre-processing ---------------------------------------------------------------------
def pages_to_tensor(images, size: int) -> torch.Tensor:
    """PIL pages → ``(B, 3, size, size)`` floats in [-1, 1]."""
    arrays = []
    for img in to_pil_images(images):
        if img.size != (size, size):
            img = img.resize((size, size))
        arrays.append(np.asarray(img, dtype=np.float32))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (B, 3, S, S)
    return x / 127.5 - 1.0


def minilm_token_states(texts: list[str], tokenizer, text_model, device="cpu", batch_size: int = 256):
    """Frozen MiniLM per-token hidden states, padded ``(N, T, 384)``, and the mask ``(N, T)``."""
    states, masks = [], []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=64,
                            return_tensors="pt").to(device)
            states.append(text_model(**enc).last_hidden_state.cpu())  # (b, T_b, 384)
            masks.append(enc["attention_mask"].bool().cpu())  # (b, T_b)
    longest = max(m.shape[1] for m in masks)
    states = torch.cat([F.pad(s, (0, 0, 0, longest - s.shape[1])) for s in states])  # (N, T, 384)
    masks = torch.cat([F.pad(m, (0, longest - m.shape[1])) for m in masks])  # (N, T)
    return states, masks


# ---- the embedder ---------------------------------------------------------------------------
class ColPaliEmbedder(Embedder):
    """Multi-vector embedder: ``embed_pages`` and ``embed_queries`` return lists of ``(T, 128)``.

    ``score(queries, pages)`` is MaxSim; ``processor`` is the MiniLM tokenizer.
    """

    modalities = ("page", "query")

    def __init__(self, name, model: CourseColPali, tokenizer, text_model, device, batch_size: int = 64):
        super().__init__(name, model, tokenizer, device, logit_scale=float(model.log_scale.detach().exp()),
                         batch_size=batch_size)
        self.text_model = text_model  # frozen all-MiniLM-L6-v2 (transformers BertModel)
        self.config = model.config

    @in_thread_scope
    def embed_pages(self, images, batch_size: int | None = None, progress: bool | None = None) -> list[torch.Tensor]:
        """One ``(P, 128)`` L2-normalised tensor per page (P = patches), on the CPU."""
        pils = to_pil_images(images)
        size = self.config.image_size
        flat = batched(pils, lambda b: self.model.pages(pages_to_tensor(b, size).to(self.device)).flatten(0, 1),
                       batch_size or self.batch_size, progress, "embedding pages")  # (N*P, 128)
        return list(flat.view(len(pils), self.config.n_patches, -1).unbind(0))

    @in_thread_scope
    def embed_queries(self, texts, batch_size: int | None = None, progress: bool | None = None) -> list[torch.Tensor]:
        """One ``(T, 128)`` L2-normalised tensor per query (T = its tokens, [CLS] and [SEP] included)."""
        texts = check_texts(texts, "queries")
        out = []
        size = batch_size or self.batch_size
        with torch.no_grad():
            for i in range(0, len(texts), size):
                states, mask = minilm_token_states(texts[i:i + size], self.processor, self.text_model, self.device)
                vecs = self.model.embed_query_states(states.to(self.device)).float().cpu()  # (b, T, 128)
                out += [v[m] for v, m in zip(vecs, mask)]
        return out

    def embed_pages_single(self, images, **kwargs) -> torch.Tensor:
        """Mean-pooled, re-normalised single vectors ``(N, 128)`` (the single-vector baseline)."""
        return F.normalize(torch.stack([p.mean(0) for p in self.embed_pages(images, **kwargs)]), dim=-1)

    def embed_queries_single(self, texts, **kwargs) -> torch.Tensor:
        return F.normalize(torch.stack([q.mean(0) for q in self.embed_queries(texts, **kwargs)]), dim=-1)

    def score(self, queries: list[torch.Tensor], pages: list[torch.Tensor]) -> torch.Tensor:
        """MaxSim scores ``(Nq, Np)``."""
        return maxsim(queries, pages)


# ---- training ----------------------------------------------------------------------------
def train(config: Config | None = None, progress: bool = True, device: str = "cpu"):
    """Render the training pages, cache MiniLM token states, train; returns ``(model, history)``."""
    from ... import training
    from ...data.documents import make_documents
    from ...losses import clip_loss
    from ..hub.minilm import load_minilm

    cfg = config or Config()
    torch.manual_seed(cfg.seed)
    docs = make_documents(cfg.train_pages, "train", seed=cfg.seed, size=cfg.image_size,
                          queries_per_page=cfg.queries_per_page)
    images = pages_to_tensor(docs.images, cfg.image_size)  # (N, 3, S, S)
    tokenizer, text_model = load_minilm(device)
    texts = sorted(set(docs.query_texts))
    states, mask = minilm_token_states(texts, tokenizer, text_model, device)  # (U, T, 384), (U, T)
    index = {t: i for i, t in enumerate(texts)}
    by_page: dict[int, list[int]] = {}
    for q in docs.queries:
        by_page.setdefault(q.target, []).append(index[q.text])
    pages_with_queries = np.array(sorted(by_page))
    rng = np.random.default_rng(cfg.seed)

    def batch(step):
        pick = rng.choice(pages_with_queries, size=cfg.batch_size, replace=False)
        rows = [by_page[int(p)][int(rng.integers(len(by_page[int(p)])))] for p in pick]
        return images[pick], states[rows], mask[rows]

    model = CourseColPali(cfg)
    history = training.train(model, batch, clip_loss, steps=cfg.steps, lr=cfg.lr, warmup=cfg.steps // 10,
                    schedule="cosine", weight_decay=0.01, device=device, seed=cfg.seed, progress=progress,
                    desc=f"training {NAME} (first use only)")
    return model.cpu().eval(), history


def build(folder: pathlib.Path, config: Config | None = None, device: str = "cpu", progress: bool = True) -> None:
    """Train and save ``model.safetensors`` + ``config.json`` (+ the loss history) into ``folder``."""
    from .checkpoints import save_state

    config = config or Config()
    model, history = train(config, progress=progress, device=device)
    save_state(folder, model, dataclasses.asdict(config),
               history={"losses": history.losses, "seconds": history.seconds})


def load_folder(folder: pathlib.Path, device: str | None = None, name: str = NAME) -> ColPaliEmbedder:
    """A saved ``course/colpali-pages`` folder as an Embedder (with the frozen MiniLM query tower)."""
    from ...env import resolve_device
    from ..hub.minilm import load_minilm
    from .checkpoints import load_state

    device = resolve_device(device)
    raw, state = load_state(folder)
    raw["channels"] = tuple(raw["channels"])
    model = CourseColPali(Config(**raw))
    model.load_state_dict(state)
    tokenizer, text_model = load_minilm(device)
    return ColPaliEmbedder(name, model.to(device).eval(), tokenizer, text_model, device)


def load(device: str | None = None, config: Config | None = None, progress: bool = True) -> ColPaliEmbedder:
    """The ``course/colpali-pages`` embedder (trained on first use, then cached).

    ``config`` trains and caches a different recipe (smaller for tests, bigger for exercises).
    """
    from ...env import resolve_device
    from ..hub.minilm import minilm_path
    from .checkpoints import load_course_checkpoint

    device = resolve_device(device)  # a bad device string fails now, not after training
    config = config or Config()
    minilm_path()  # the frozen query tower must be there: its absence is not a broken checkpoint
    return load_course_checkpoint(NAME, config.version(),
                                  build=lambda folder: build(folder, config, device=device, progress=progress),
                                  load=lambda folder: load_folder(folder, device))
