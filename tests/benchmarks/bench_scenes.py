"""Scene generation speed: goal ≥ 2,000 images/s at 64 px on one core.

Printed against a same-process floor: the bare PIL cost of one blank image and one
filled ellipse, which no scene generator can beat.
"""

import numpy as np
from PIL import Image, ImageDraw

from mmcourse.data.shapes import make_scenes
from mmcourse.results import record_bench
from mmcourse.timing import best_of

N = 4000


def _pil_floor():
    rng = np.random.default_rng(0)
    for _ in range(N):
        img = Image.new("RGB", (64, 64), (230, 230, 230))
        x, y = rng.uniform(10, 54, size=2)
        ImageDraw.Draw(img).ellipse((x - 8, y - 8, x + 8, y + 8), fill=(200, 30, 30))


def bench_scenes_per_second():
    scenes_s = best_of(lambda: make_scenes(N, "train", seed=0, size=64))
    floor_s = best_of(_pil_floor)
    rate = N / scenes_s
    print(f"\nscenes: {rate:,.0f} images/s at 64 px (one process, one thread); "
          f"bare-PIL floor {N / floor_s:,.0f}/s; cost ratio scenes/floor = {scenes_s / floor_s:.2f}")
    record_bench("bench.scenes_per_second", rate, "{:,.0f}")
    assert rate >= 2000, rate
