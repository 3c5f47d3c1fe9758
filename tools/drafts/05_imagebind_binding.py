# %% [markdown]
# # 05 · ImageBind-style binding: align new modalities to images, get text for free
#
# **Learning objectives**
#
# - state ImageBind's central claim and why images make a good *binding* modality;
# - bind two new modalities (sound and an IMU-like sensor) to the frozen image space of `course/clip-shapes`,
#   using only (image, sound) and (image, sensor) pairs;
# - measure the alignment that *emerges*: sound → text zero-shot classification, text → sound retrieval and
#   sound ↔ sensor retrieval, pairs never trained together;
# - compare with a text-supervised audio model of the same size and budget, and run two ablations.
#
# ImageBind (Girdhar et al., "ImageBind: One Embedding Space To Bind Them All", CVPR 2023, arXiv:2305.05665) puts
# six modalities in one space: images, text, audio, depth, thermal and IMU. Only images are paired with everything;
# text, audio, depth, thermal and IMU are each trained against images, and the image and text towers are a frozen
# OpenCLIP model. (The lesson's timeline files ImageBind under 2022; the paper appeared in May 2023.) Its weights are
# licensed CC-BY-NC, so this course reproduces the idea at small scale instead of loading them.

# %%
import mmcourse
import numpy as np
import torch

mmcourse.set_seed(0)
device = mmcourse.get_device()

# %% [markdown]
# ## 1 · The six modalities, and the one that binds them
#
# Each line below is a kind of data that co-occurs with images in the wild; the thick lines are the only pairs
# ImageBind trains on. Everything else (dashed) is what it measures *without* training.

# %%
import matplotlib.pyplot as plt

angles = np.linspace(0, 2 * np.pi, 6, endpoint=False)[1:]
others = ["text", "audio", "depth", "thermal", "IMU"]
fig, ax = plt.subplots(figsize=(4.2, 4.2))
ax.add_patch(plt.Circle((0, 0), 0.22, color="tab:orange"))
ax.text(0, 0, "images", ha="center", va="center", weight="bold")
for a, name in zip(angles, others):
    x, y = np.cos(a), np.sin(a)
    ax.plot([0.22 * x, 0.78 * x], [0.22 * y, 0.78 * y], color="tab:orange", lw=3)
    ax.add_patch(plt.Circle((x, y), 0.2, color="tab:blue", alpha=0.8))
    ax.text(x, y, name, ha="center", va="center", color="white", weight="bold", fontsize=9)
for i in range(5):
    for j in range(i + 1, 5):
        ax.plot(np.cos(angles[[i, j]]), np.sin(angles[[i, j]]), "k--", lw=0.6, alpha=0.3)
ax.set_xlim(-1.3, 1.3), ax.set_ylim(-1.3, 1.3), ax.axis("off")
ax.set_title("trained: image ↔ X (solid)   emergent: X ↔ Y (dashed)", fontsize=9)
plt.show()

# %% [markdown]
# ## 2 · Scenes that make sounds and move sensors
#
# `mmcourse.data.paired` gives every drawn scene two co-occurring signals, the way a video's frames come with a
# soundtrack: a **sound** (colour sets pitch and timbre, shape sets contour and rhythm) and a 2-second **sensor
# trace** (colour sets the oscillation frequency, shape the waveform). The captions exist only to evaluate.

# %%
from mmcourse.data import paired, shapes
from mmcourse.models import binding, course_clap

print("colour -> (pitch, timbre):", paired.COLOR_TO_SOUND)
print("shape  -> (contour, rhythm):", paired.SHAPE_TO_SOUND)
examples = paired.one_per_label("train", seed=0)[:4]
fig, axes = plt.subplots(3, 4, figsize=(10, 5.5))
for col, ex in enumerate(examples):
    axes[0, col].imshow(ex.scene.image), axes[0, col].set_title(ex.label, fontsize=9), axes[0, col].axis("off")
    mel = course_clap.window_features([ex.sound], course_clap.COURSE_MEL)[0].numpy()  # (mels, frames)
    mmcourse.viz.plot_spectrogram(mel, course_clap.COURSE_MEL, ax=axes[1, col], colorbar=False)
    axes[2, col].plot(np.arange(len(ex.sensor)) / paired.SENSOR_RATE, ex.sensor, lw=0.8)
    axes[2, col].set_xlabel("s")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3 · The anchor: frozen image embeddings
#
# `course/clip-shapes` (notebook 01) already aligns images with text. Its image tower is the anchor: we embed the
# training scenes once and never update it. Training pairs come from the **training** colour–shape combinations
# only; six combinations stay held out, as in notebook 01.

# %%
clip = mmcourse.load_model("course/clip-shapes")
train_pairs = paired.make_paired(432, split="train", seed=0)
anchors = clip.embed_images([p.scene.image for p in train_pairs])  # (N, D) frozen image embeddings
groups = np.array([shapes.ALL_COMBOS.index((p.scene.color, p.scene.shape)) for p in train_pairs])
mels = course_clap.window_features([p.sound for p in train_pairs], course_clap.COURSE_MEL)  # (N, mels, frames)
traces = torch.from_numpy(np.stack([p.sensor for p in train_pairs]))  # (N, T)
dim = anchors.shape[1]
print(f"{len(train_pairs)} training scenes, image space D={dim}, log-mels {tuple(mels.shape[1:])}, traces {tuple(traces.shape[1:])}")

# %% [markdown]
# ## 4 · Binding: InfoNCE against the images, nothing else
#
# `binding.bind` trains a tower so that each input lands next to the image it co-occurred with, with the same
# symmetric InfoNCE loss as CLIP (`mmcourse.losses.clip_loss`) through the course's training loop. The audio tower is
# the same architecture as `course/clap-sounds`'.

# %%
config = binding.BindConfig()
audio_tower, audio_hist = binding.bind(course_clap.AudioTower(course_clap.TowerConfig(embed_dim=dim)), mels, anchors,
                                       config, groups=groups, desc="binding audio to images")
sensor_tower, sensor_hist = binding.bind(binding.SensorTower(embed_dim=dim), traces, anchors, config,
                                         groups=groups, desc="binding the sensor to images")
fig, ax = plt.subplots(figsize=(5, 3))
audio_hist.plot(ax, "audio ↔ image", smooth=5), sensor_hist.plot(ax, "sensor ↔ image", smooth=5)
ax.legend(), ax.set_title("binding losses")
plt.show()
print(f"audio: {audio_hist.seconds:.1f} s, sensor: {sensor_hist.seconds:.1f} s")

# %% [markdown]
# ## 5 · The baseline: the same audio tower, supervised with text
#
# A CLAP-style model of the same size and budget: the same tower, trained on the same sounds, but against the
# captions' text embeddings (the frozen text tower of `course/clip-shapes`) instead of the images. The only
# difference between the two is the supervision.

# %%
captions = clip.embed_texts([p.scene.caption for p in train_pairs])  # (N, D) frozen text embeddings
text_tower, text_hist = binding.bind(course_clap.AudioTower(course_clap.TowerConfig(embed_dim=dim)), mels, captions,
                                     config, groups=groups, desc="text-supervised audio")

# %% [markdown]
# ## 6 · What emerged: sound → text, never trained
#
# New clips of **every** colour–shape label (five each), classified against the text prompts of all 24 labels with
# `mmcourse.retrieval.class_embeddings`. The bound audio tower has never seen a caption.

# %%
from mmcourse.retrieval import class_embeddings, recall_at_k

labels = shapes.labels("all")
test_pairs = paired.one_per_label("all", seed=1, per_label=5)
truth = np.array([labels.index(p.label) for p in test_pairs])
heldout = np.array([(p.scene.color, p.scene.shape) in shapes.HELDOUT_COMBOS for p in test_pairs])
label_emb = class_embeddings(clip, labels, ["a {}", "a photo of a {}."])  # (24, D)
test_mels = course_clap.window_features([p.sound for p in test_pairs], course_clap.COURSE_MEL)


def audio_accuracy(tower):
    pred = (binding.embed(tower, test_mels) @ label_emb.T).argmax(1).numpy()
    return (pred == truth).mean(), (pred == truth)[heldout].mean()


bound_acc, bound_held = audio_accuracy(audio_tower)
text_acc, text_held = audio_accuracy(text_tower)
print(f"chance                        {1 / len(labels):.3f}")
print(f"text-supervised audio → text  {text_acc:.3f}   (held-out combos {text_held:.3f})")
print(f"bound audio → text (emergent) {bound_acc:.3f}   (held-out combos {bound_held:.3f})")
print(f"emergent / supervised         {bound_acc / text_acc:.2f}")
assert bound_acc >= 0.8 * text_acc, (bound_acc, text_acc)
assert bound_acc > 5 / len(labels), bound_acc

# %% [markdown]
# Text → audio retrieval works the same way: embed a prompt, rank the clips.

# %%
audio_emb = binding.embed(audio_tower, test_mels)  # (120, D)
relevant = [list(np.flatnonzero(truth == i)) for i in range(len(labels))]
r5 = recall_at_k(label_emb @ audio_emb.T, relevant, k=5, hit=True)
r5_chance = 1 - np.prod([(115 - m) / (120 - m) for m in range(5)])  # 5 of 120 clips match each prompt
print(f"text → audio R@5 (hit), emergent: {r5:.3f}   chance {r5_chance:.3f}")
assert r5 > 2 * r5_chance, r5

# %% [markdown]
# ## 7 · Sound ↔ sensor: a pair never trained together
#
# One sound per label as queries, one sensor trace per label as the gallery: does each sound retrieve the trace of
# the same scene label? Chance is 1/24.

# %%
one = paired.one_per_label("all", seed=2, per_label=1)
q = binding.embed(audio_tower, course_clap.window_features([p.sound for p in one], course_clap.COURSE_MEL))
g = binding.embed(sensor_tower, torch.from_numpy(np.stack([p.sensor for p in one])))
r1 = recall_at_k(q @ g.T, list(range(len(one))), k=1)
r1_back = recall_at_k(g @ q.T, list(range(len(one))), k=1)
print(f"sound → sensor R@1 {r1:.3f}   sensor → sound R@1 {r1_back:.3f}   chance {1 / len(one):.3f}   "
      f"ratio {r1 * len(one):.1f}× / {r1_back * len(one):.1f}×")
assert r1 >= 5 / len(one) and r1_back >= 5 / len(one), (r1, r1_back)
plt.figure(figsize=(5, 4.5)), plt.imshow((q @ g.T).numpy(), cmap="viridis")
plt.yticks(range(len(one)), [p.label for p in one], fontsize=6), plt.xticks([])
plt.ylabel("sound of …"), plt.xlabel("sensor trace of the same 24 labels"), plt.colorbar(), plt.show()

# %% [markdown]
# ## 8 · Embedding arithmetic: image + sound
#
# ImageBind's most striking demo adds embeddings from two modalities (a photo of birds + the sound of waves) and
# retrieves images that hold both. Our version: a gallery of scenes with **two** objects (every pair of six labels,
# each pair drawn twice) plus each object alone. The query is the embedding of a *red circle* image plus the embedding
# of the sound a *blue star* makes, renormalised. A hit is a top-ranked scene that holds both objects.
#
# The image tower was trained on one object per picture, so this is a hard test of how additive its space is; we
# compare against the same arithmetic with a second *image* instead of the sound (the ceiling the image tower allows)
# and against chance.

# %%
import itertools

six = [("red", "circle"), ("blue", "star"), ("green", "square"), ("yellow", "triangle"), ("purple", "circle"),
       ("orange", "star")]
rng = np.random.default_rng(5)
scene_images, contents = [], []
for a, b in itertools.combinations(six, 2):
    for relation in ("left of", "above"):
        scene_images.append(shapes.draw_scene([a, b], rng, 64, relation))
        contents.append({a, b})
for a in six:
    scene_images.append(shapes.draw_scene([a], rng, 64))
    contents.append({a})
scene_emb = clip.embed_images(scene_images)  # (36, D)
alone_image = clip.embed_images([shapes.draw_scene([a], rng, 64) for a in six])  # (6, D)
alone_sound = binding.embed(audio_tower, course_clap.window_features(
    [paired.scene_sound(c, s, rng) for c, s in six], course_clap.COURSE_MEL))  # (6, D)


def both_rate(second, k):
    """Share of ordered pairs (a, b) whose top-k scenes include one holding both a and b."""
    hits = []
    for i, j in itertools.permutations(range(len(six)), 2):
        query = torch.nn.functional.normalize(alone_image[i] + second[j], dim=-1)  # (D,)
        top = torch.topk(scene_emb @ query, k).indices.tolist()
        hits.append(any(contents[t] == {six[i], six[j]} for t in top))
    return float(np.mean(hits))


chance = {k: 1 - np.prod([(34 - m) / (36 - m) for m in range(k)]) for k in (1, 5)}  # 2 of 36 scenes match
print(f"{'':22s} {'top-1':>6s} {'top-5':>6s}")
print(f"{'image + sound':22s} {both_rate(alone_sound, 1):6.2f} {both_rate(alone_sound, 5):6.2f}")
print(f"{'image + image':22s} {both_rate(alone_image, 1):6.2f} {both_rate(alone_image, 5):6.2f}")
print(f"{'chance':22s} {chance[1]:6.2f} {chance[5]:6.2f}")
arith_sound = both_rate(alone_sound, 5)
assert arith_sound > chance[5], arith_sound

query = torch.nn.functional.normalize(alone_image[0] + alone_sound[1], dim=-1)  # red-circle image + blue-star sound
top = torch.topk(scene_emb @ query, 6).indices.tolist()
fig = mmcourse.viz.image_grid([scene_images[t] for t in top],
                              [" + ".join(f"{c} {s}" for c, s in sorted(contents[t])) for t in top], cols=6,
                              title="red-circle image + blue-star sound →")
plt.show()

# %% [markdown]
# ## 9 · Ablations
#
# **How much paired data?** Bind with fewer scenes per label.

# %%
amounts, accs = [2, 6], []
for per in amounts:
    keep = np.concatenate([np.flatnonzero(groups == g)[:per] for g in np.unique(groups)])
    tower, _ = binding.bind(course_clap.AudioTower(course_clap.TowerConfig(embed_dim=dim)), mels[keep], anchors[keep],
                            config, groups=groups[keep], progress=False)
    accs.append(audio_accuracy(tower)[0])
    print(f"{per:3d} scenes per training label: emergent accuracy {accs[-1]:.3f}")
amounts.append(len(train_pairs) // len(np.unique(groups))), accs.append(bound_acc)  # the full run of section 4
print(f"{amounts[-1]:3d} scenes per training label: emergent accuracy {accs[-1]:.3f} (section 4)")
plt.figure(figsize=(4, 2.6)), plt.plot(amounts, accs, "o-"), plt.xscale("log")
plt.xlabel("paired scenes per label"), plt.ylabel("emergent audio→text acc"), plt.show()

# %% [markdown]
# **Frozen or fine-tuned image tower?** Bind audio again, but this time the image side learns too: a trainable copy of
# `course/clip-shapes`' whole image tower (`binding.ImageTower`: the ViT and its projection) computes the anchors from
# pixels at every step, with the same optimiser and learning rate as the audio tower. The loss only asks images and
# sounds to agree; nothing in it keeps the images where the text lives. We then measure the copy's image → text
# zero-shot accuracy (against the unchanged text tower) and the emergent audio → text accuracy.

# %%
pixels = clip.processor(images=[p.scene.image for p in train_pairs], return_tensors="pt")["pixel_values"]  # (N, 3, 64, 64)
image_side = binding.ImageTower(clip.model)
tuned_tower, tuned_hist = binding.bind(course_clap.AudioTower(course_clap.TowerConfig(embed_dim=dim)), mels, pixels,
                                       config, groups=groups, anchor_head=image_side,
                                       desc="binding, image tower unfrozen")
test_pixels = clip.processor(images=[p.scene.image for p in test_pairs], return_tensors="pt")["pixel_values"]
image_emb = clip.embed_images([p.scene.image for p in test_pairs])  # (120, D), the same scenes as the audio test
with torch.no_grad():
    tuned_image_emb = torch.nn.functional.normalize(image_side.eval()(test_pixels), dim=-1)  # (120, D)
frozen_img_acc = ((image_emb @ label_emb.T).argmax(1).numpy() == truth).mean()
tuned_img_acc = ((tuned_image_emb @ label_emb.T).argmax(1).numpy() == truth).mean()
tuned_audio_acc = audio_accuracy(tuned_tower)[0]
print(f"                         frozen image tower   unfrozen image tower")
print(f"image → text zero-shot   {frozen_img_acc:18.3f}   {tuned_img_acc:20.3f}")
print(f"audio → text (emergent)  {bound_acc:18.3f}   {tuned_audio_acc:20.3f}")
print(f"final binding loss       {audio_hist.final_loss:18.3f}   {tuned_hist.final_loss:20.3f}")
drift = frozen_img_acc - tuned_img_acc
print(f"\nUnfreezing changed image → text by {-drift:+.3f} and emergent audio → text by {tuned_audio_acc - bound_acc:+.3f}.")

# %% [markdown]
# How to read this table. With the image tower free, the binding loss has two ways down: move the sounds towards the
# images, and move the images towards the sounds. It takes both, so its final value can end lower than with the frozen
# anchor, yet nothing in the loss mentions text: every step that moves the images is a step away from where
# `course/clip-shapes` put them to agree with the text tower. The image → text column measures that drift on the copy,
# and the audio → text column shows that the bound modality inherits only the text alignment the image space still
# has. ImageBind keeps its image and text towers frozen (they come from OpenCLIP) for exactly this reason; a small
# learning rate or a text-side loss term would be the ways to fine-tune without drifting.

# %% [markdown]
# ## Summary
#
# - Binding trains each new modality against frozen image embeddings only, with CLIP's loss; alignment with text and
#   between the new modalities is inherited through the image space.
# - Measured above: emergent sound → text zero-shot accuracy close to that of a text-supervised tower of the same size
#   and budget (the notebook asserts at least 0.8× of it), text → sound R@5 far above chance, and sound ↔ sensor R@1
#   well over 5× chance though sounds and sensor traces never met in training.
# - Embedding arithmetic works across modalities: an image plus a sound finds the scene that holds both about as
#   often as an image plus an image does, because the sound was bound into the image space.
# - More paired data helps, and freezing the anchor matters: let the image tower move and its text alignment drifts.
#
# **Exercises:** `exercises/05_binding_exercises.ipynb`.
