"""course/clip-shapes speed: embedding ≥ 500 images/s at batch 64, cached load ≤ 5 s.

Printed against same-process references: the image processor alone (the pre-processing floor
of any transformers image model) and one bare ConvNeXt forward pass of the same size.
"""

import torch

import mmcourse
from mmcourse.data.shapes import make_scenes
from mmcourse.results import record_bench
from mmcourse.timing import best_of

BATCH = 64
N = 512


def bench_course_clip_images_per_second():
    model = mmcourse.load_model("course/clip-shapes", device="cpu")  # trains once if the cache is empty
    images = [s.image for s in make_scenes(N, "all", seed=0)]
    model.embed_images(images[:BATCH])  # warm-up
    embed_s = best_of(lambda: model.embed_images(images, batch_size=BATCH, progress=False))
    process_s = best_of(lambda: [model.processor(images=images[i:i + BATCH], return_tensors="pt")
                                  for i in range(0, N, BATCH)])
    pixels = model.processor(images=images[:BATCH], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        forward_s = best_of(lambda: [model.model.vision_model(pixel_values=pixels) for _ in range(N // BATCH)])
    rate = N / embed_s
    print(f"\ncourse/clip-shapes: {rate:,.0f} images/s at batch {BATCH} ({torch.get_num_threads()} threads); "
          f"processor alone {N / process_s:,.0f}/s, bare vision forward {N / forward_s:,.0f}/s; "
          f"embed cost / (processor + forward) = {embed_s / (process_s + forward_s):.2f}")
    record_bench("bench.clip_images_per_second", rate, "{:,.0f}")
    assert rate >= 500, rate


def bench_course_clip_cached_load_seconds():
    mmcourse.load_model("course/clip-shapes", device="cpu")  # make sure the cache is built
    from transformers import AutoConfig

    from mmcourse.models.hub.minilm import minilm_path

    load_s = best_of(lambda: mmcourse.load_model("course/clip-shapes", device="cpu"), repeats=2)
    minilm_s = best_of(lambda: AutoConfig.from_pretrained(str(minilm_path())) and
                        __import__("transformers").AutoModel.from_pretrained(str(minilm_path())), repeats=2)
    print(f"\ncourse/clip-shapes cached load: {load_s:.2f} s; loading bare all-MiniLM-L6-v2: {minilm_s:.2f} s; "
          f"ratio {load_s / minilm_s:.2f}")
    record_bench("bench.clip_cached_load_s", load_s, "{:.1f}")
    assert load_s <= 5.0, load_s
