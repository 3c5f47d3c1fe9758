"""Audio feature extraction and embedding throughput, in clips/s.

Reference, same process, same clips: transformers' ``ClapFeatureExtractor`` (numpy STFT),
which computes the same CLAP log-mel features as ``mmcourse.audio``.

Goals, as same-process ratios (robust to a busy machine): our batched CLAP log-mel is
≥ 1.5× the reference's speed, and the whole ``course/clap-sounds`` audio path (48 kHz clip →
resample to 16 kHz → log-mel → CNN → normalised embedding) is ≥ 3× faster than the
reference's CLAP feature extraction alone. Absolute clips/s are printed.
"""

import numpy as np

from mmcourse import audio as A
from mmcourse.data import sounds as S
from mmcourse.results import record_bench
from mmcourse.timing import best_of

N = 48  # clips of 3 s at 48 kHz


def bench_audio_clips_per_second():
    from transformers import ClapFeatureExtractor

    from mmcourse.models.course import clap as C

    clips = [s.waveform for s in S.make_sounds(N, "all", seed=0, seconds=3.0)]
    fe = ClapFeatureExtractor()  # fusion mode, HTK filters: the defaults of A.CLAP_MEL
    ref_s = best_of(lambda: fe(clips, sampling_rate=48000, return_tensors="np"), repeats=2)
    loop_s = best_of(lambda: [A.log_mel(x, A.CLAP_MEL) for x in clips], repeats=2)
    batch_s = best_of(lambda: A.log_mel_batch(clips, A.CLAP_MEL), repeats=2)
    embedder = C.CourseClapEmbedder(C.ClapSoundsModel(C.AudioTower(C.TowerConfig())), "cpu")  # untrained: same cost
    embed_s = best_of(lambda: embedder.embed_audio(clips, sampling_rate=48000, batch_size=48))
    print(f"\nCLAP log-mel of {N} × 3 s clips (padded to 10 s, 64 × 1001):"
          f"\n  transformers ClapFeatureExtractor {N / ref_s:7.1f} clips/s (reference)"
          f"\n  mmcourse.audio.log_mel (loop)     {N / loop_s:7.1f} clips/s  ×{ref_s / loop_s:.2f}"
          f"\n  mmcourse.audio.log_mel_batch      {N / batch_s:7.1f} clips/s  ×{ref_s / batch_s:.2f}"
          f"\ncourse/clap-sounds embed_audio (resample + features + tower) {N / embed_s:.1f} clips/s "
          f"(×{ref_s / embed_s:.2f} the reference's feature extraction alone)")
    record_bench("bench.logmel_batch_speedup", ref_s / batch_s, "{:.1f}")
    assert ref_s / batch_s >= 1.5, (batch_s, ref_s)
    assert ref_s / embed_s >= 3.0, (embed_s, ref_s)
