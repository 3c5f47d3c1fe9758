# %% [markdown]
# ## Tiled InfoNCE: the whole batch, without the batch × batch matrix
#
# The chunked sigmoid loss above was easy to tile because every pair contributes its own
# term, `softplus(±z_ij)`: add the terms of one block of texts, move on, and nothing a
# block computed depends on another block. InfoNCE is different. Row `i`'s loss is
# `logsumexp_j z_ij - z_ii`: its normaliser needs **every** column before it is known,
# and the column loss needs every row. Naively that means holding the full `N × N`
# logit matrix (and autograd keeps several of them for the backward pass).
#
# The way out is the trick FlashAttention (Dao et al., 2022) uses for its softmax: an
# **online log-sum-exp**. Walk over the tiles of a row keeping two numbers, the largest
# logit seen so far `m` and the sum `l = Σ exp(z - m)`. When a tile brings a larger
# maximum `m'`, rescale the old sum by `exp(m - m')` and add the tile's terms. At the
# end `logsumexp = m + log l`, exactly — and no exponent is ever positive, so nothing
# overflows. Inf-CL (arXiv 2410.17243) builds contrastive training on this.
#
# Here it is from scratch, one row in tiles, checked against `torch.logsumexp`:

# %%
import torch

row = torch.randn(1000) * 30  # one row of float32 logits, large enough to overflow exp()
running_max, running_sum = torch.tensor(float("-inf")), torch.tensor(0.0)
for tile in row.split(128):  # tiles that do not divide the row: the last one is shorter
    new_max = torch.maximum(running_max, tile.max())
    running_sum = running_sum * torch.exp(running_max - new_max) + torch.exp(tile - new_max).sum()
    running_max = new_max
online = running_max + running_sum.log()
print(f"online {online.item():.5f}   torch.logsumexp {torch.logsumexp(row, 0).item():.5f}   "
      f"exp overflows: {bool(torch.isinf(row.exp()).any())}")

# %% [markdown]
# `mmcourse.clip_loss(..., chunk_size=c)` does this over `c × c` tiles of the logit matrix
# in both directions at once (rows online across a row of tiles, columns across the row
# blocks), and has a **hand-written backward**: from the saved features and the `2N`
# log-sum-exps it recomputes each tile, turns it into the two softmaxes, and accumulates
# the feature gradients `G y` and `Gᵀ x` tile by tile. Peak memory: a few tiles and the
# `(N, D)` gradients; compute: one extra matrix multiply (the recomputation).
#
# First, that it is the same loss: value and every gradient against the dense loss and
# open_clip's, with a tile size that does not divide the batch.

# %%
import math

import torch.nn.functional as F
from open_clip.loss import ClipLoss as OpenClipLoss

import mmcourse
from mmcourse.results import claim, record

g = torch.Generator().manual_seed(0)
n, dim, chunk = 1000, 64, 96  # 96 does not divide 1000
x = F.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64), dim=-1).requires_grad_()
y = F.normalize(torch.randn(n, dim, generator=g, dtype=torch.float64), dim=-1).requires_grad_()
log_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)


def loss_and_grads(loss_fn):
    loss = loss_fn(x, y, log_scale.exp())
    return [loss.detach(), *torch.autograd.grad(loss, (x, y, log_scale))]


tiled = loss_and_grads(lambda a, b, s: mmcourse.clip_loss(a, b, s, chunk_size=chunk))
dense = loss_and_grads(mmcourse.clip_loss)
reference = loss_and_grads(OpenClipLoss())
gap_dense = max((t - d).abs().max().item() for t, d in zip(tiled, dense))
gap_open_clip = max((t - r).abs().max().item() for t, r in zip(tiled, reference))
record("nb02.tiled_gap_dense", gap_dense, "{:.0e}")
record("nb02.tiled_gap_open_clip", gap_open_clip, "{:.0e}")
claim("nb02.tiled_equals_dense", gap_dense < 1e-10 and gap_open_clip < 1e-10,
      f"tiled InfoNCE = dense = open_clip (loss and gradients, float64): largest gap {max(gap_dense, gap_open_clip):.0e}")

# %% [markdown]
# The largest difference from the dense loss is <!--r:nb02.tiled_gap_dense-->4e-16<!--/r-->
# and from open_clip <!--r:nb02.tiled_gap_open_clip-->2e-15<!--/r-->: float64 rounding, the
# same loss. Now its memory. `mmcourse.memory.peak_memory` measures what the process
# really held at its worst during a forward and backward pass, for growing batches:

# %%
import matplotlib.pyplot as plt

from mmcourse.memory import peak_memory

sizes, curve_dim, curve_chunk = [512, 1024, 2048, 4096], 64, 256
peaks = {"dense": [], "tiled": []}
for size in sizes:
    a = F.normalize(torch.randn(size, curve_dim, generator=g), dim=-1).requires_grad_()
    b = F.normalize(torch.randn(size, curve_dim, generator=g), dim=-1).requires_grad_()
    for name, kwargs in (("dense", {}), ("tiled", {"chunk_size": curve_chunk})):
        run = lambda: mmcourse.clip_loss(a, b, 1 / 0.07, **kwargs).backward()  # noqa: E731
        peaks[name].append(peak_memory(run).mib)
for name, values in peaks.items():
    print(f"{name:5s} " + "  ".join(f"N={s}: {v:6.1f} MiB" for s, v in zip(sizes, values)))
fig, ax = plt.subplots(figsize=(5, 3))
for name, values in peaks.items():
    ax.plot(sizes, values, marker="o", label=name if name == "dense" else f"tiled ({curve_chunk}×{curve_chunk})")
ax.set(xscale="log", yscale="log", xlabel="batch N", ylabel="peak extra memory (MiB)",
       title="InfoNCE forward + backward")
ax.legend()
plt.show()
ratio = peaks["tiled"][-1] / peaks["dense"][-1]
record("nb02.tiled_memory_ratio_4096", ratio, "{:.3f}")
dense_growth = peaks["dense"][-1] / peaks["dense"][0]
tiled_growth = peaks["tiled"][-1] / max(peaks["tiled"][0], 0.1)
record("nb02.dense_memory_growth", dense_growth, "{:.0f}")
claim("nb02.tiled_memory_small", ratio < 1 / 8,
      f"at N = {sizes[-1]} the tiled loss needs {ratio:.3f} of the dense loss's memory")
claim("nb02.dense_grows_faster", dense_growth > 2 * (sizes[-1] // sizes[0]),
      f"dense memory grows {dense_growth:.0f}x for {sizes[-1] // sizes[0]}x the batch (quadratic)")

# %% [markdown]
# Dense memory grows <!--r:nb02.dense_memory_growth-->33<!--/r-->× for an eight-fold batch:
# quadratic, the `N × N` logits and their gradients. The tiled loss holds a few tiles and
# the `(N, D)` gradients, linear in `N`: at the largest batch it needs
# <!--r:nb02.tiled_memory_ratio_4096-->0.023<!--/r--> of the dense loss's memory. That is
# what lets one machine (or each rank, with `distributed_clip_loss(..., chunk_size=)`)
# train with a batch whose logit matrix would not fit; the price is one more matrix
# multiply per step (`make bench` measures both at a larger batch).
