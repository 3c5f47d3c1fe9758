"""Exercises for notebook 04: CLAP and audio features."""
import numpy as np

from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem

TITLE = "04 · CLAP: sound as features, an audio–text space"
SETUP = "import numpy as np"


def _wave_cases(rng):
    """Longer than `length`, shorter, equal, length 1, and a one-sample clip; float32 and float64."""
    pairs = [(5, 8), (10, 4), (6, 6), (7, 1), (1, 5)]
    pairs += [(int(n), int(m)) for n, m in zip(rng.integers(1, 40, 3), rng.integers(1, 40, 3))]
    dtypes = (np.float32, np.float64)
    return [{"wave": rng.standard_normal(n).astype(dtypes[i % 2]), "length": m} for i, (n, m) in enumerate(pairs)]


def _pad_ref(wave, length):
    out = np.zeros(length, dtype=wave.dtype)
    out[:min(length, len(wave))] = wave[:length]
    return out


q1 = FunctionProblem(
    var="pad_or_truncate",
    prompt="Models take clips of one fixed length. Write `pad_or_truncate(wave, length)`: keep the first `length` "
           "samples of a 1-D numpy waveform, or append zeros (silence) at the end until it has `length` samples.",
    hints=["Cut with `wave[:length]`.", "`np.pad(x, (0, length - len(x)))` appends zeros at the end."],
    stub="def pad_or_truncate(wave, length):\n    raise NotImplementedError",
    solution_code="def pad_or_truncate(wave, length):\n"
                  "    wave = wave[:length]\n"
                  "    return np.pad(wave, (0, length - len(wave)))  # (length,)",
    reference=_pad_ref,
    cases=_wave_cases,
    mistakes=[(lambda wave, length: np.pad(wave[:length], (length - len(wave[:length]), 0)),
               "the silence went at the start: it belongs after the sound (the clip starts at sample 0)."),
              (lambda wave, length: np.resize(wave, length),
               "`np.resize` repeats the clip to fill the length: pad with zeros (silence) instead.")],
)

q2 = FunctionProblem(
    var="to_mono",
    prompt="Write `to_mono(wave)` that mixes a `(channels, samples)` numpy array down to one channel `(samples,)` "
           "by averaging the channels, as librosa does.",
    hints=["Average over the channel axis, `axis=0`."],
    stub="def to_mono(wave):\n    raise NotImplementedError",
    solution_code="def to_mono(wave):\n    return wave.mean(axis=0)  # (samples,)",
    reference=lambda wave: wave.mean(axis=0),
    cases=lambda rng: [{"wave": rng.standard_normal((c, n))} for c, n in
                       [(2, 5), (1, 4), (3, 2)] + [(int(c), int(n)) for c, n in zip(rng.integers(1, 6, 3), rng.integers(1, 30, 3))]],
    mistakes=[(lambda wave: wave[0], "you kept only the first channel: average all channels."),
              (lambda wave: wave.sum(axis=0), "summing the channels makes the mix louder (it can clip): average them.")],
)

q3 = NumericProblem(
    var="n_samples",
    prompt="How many samples does a 3-second clip hold at CLAP's 48 kHz sampling rate? Set `n_samples`.",
    hints=["samples = seconds × samples per second."],
    solution_text="3 × 48,000 = 144,000 samples.",
    stub="n_samples = ____",
    solution_code="n_samples = 3 * 48_000",
    answer=144_000, rel_tol=0.0, abs_tol=0.5,
)


def _frames_ref(n_samples, hop_length):
    return np.array(1 + n_samples // hop_length)


def _frames_cases(rng):
    """Exact multiples, remainders above and below half a hop, a clip shorter than one hop, one sample, random."""
    pairs = [(10, 4), (48_000, 480), (1000, 300), (3, 512), (1, 1), (1, 7)]
    hop = int(rng.integers(50, 600))
    pairs += [(hop * int(rng.integers(2, 50)) + hop - 1, hop),  # remainder just under a hop: rounding goes up
              (hop * int(rng.integers(2, 50)) + 1, hop)]  # remainder of one sample
    pairs += [(int(n), int(h)) for n, h in zip(rng.integers(1, 100_000, 4), rng.integers(1, 2_000, 4))]
    return [{"n_samples": n, "hop_length": h} for n, h in pairs]


q4 = FunctionProblem(
    var="n_frames",
    prompt="A centred STFT (librosa's default, `center=True`) pads the signal so that frame `t` is centred on sample "
           "`t × hop_length`. Write `n_frames(n_samples, hop_length)` returning how many spectrogram frames it makes.",
    hints=["Frames start at sample 0 and step by `hop_length` until the end of the signal.",
           "Count 0, hop, 2·hop, … up to n_samples: that is `1 + n_samples // hop_length`."],
    stub="def n_frames(n_samples, hop_length):\n    raise NotImplementedError",
    solution_code="def n_frames(n_samples, hop_length):\n    return 1 + n_samples // hop_length",
    reference=_frames_ref,
    cases=_frames_cases,
    atol=0, rtol=0,
    mistakes=[(lambda n_samples, hop_length: n_samples // hop_length, "one frame short: the frame at sample 0 counts too."),
              (lambda n_samples, hop_length: -(-n_samples // hop_length), "rounding up is not it: count the frame centres "
                                                                           "0, hop, 2·hop, … that fall inside the signal."),
              (lambda n_samples, hop_length: round(n_samples / hop_length) + 1,
               "rounding the number of hops to the nearest integer counts a frame centre past the end of the signal "
               "whenever the remainder is more than half a hop: count only the centres that fall inside it.")],
)

q5 = ChoiceProblem(
    var="answer_log_mel",
    prompt="Why do audio encoders like CLAP's take *log-mel* spectrograms rather than raw waveforms or linear spectrograms?",
    options={"a": "Log-mel features are smaller and closer to how we hear: mel spacing follows pitch perception and the log "
                  "follows loudness perception, so the model spends capacity where people hear differences.",
             "b": "Waveforms cannot be stored as tensors.",
             "c": "The log makes every clip the same length.",
             "d": "Mel filters remove all noise."},
    correct="a",
    explanations={"a": "compact, perceptually spaced, with a compressed dynamic range that makes quiet and loud sounds comparable.",
                  "b": "waveforms are just 1-D float tensors; some models (e.g. wav2vec) do take them.",
                  "c": "length is set by the number of frames, i.e. the clip duration and the hop; the log changes values only.",
                  "d": "mel filters pool frequencies; noise passes through them like any other sound."},
    hints=["Think about what the mel scale and the logarithm each model about human hearing."],
    stub="answer_log_mel = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_log_mel = 'a'",
)

PROBLEMS = [q1, q2, q3, q4, q5]
