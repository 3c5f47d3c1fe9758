"""Exercises for notebook 05: ImageBind-style binding."""
import torch
import torch.nn.functional as F

from ._cases import pick_dtype, randn, sizes
from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem

TITLE = "05 · Binding: new modalities aligned through images"
SETUP = "import torch\nimport torch.nn.functional as F"


def _emergent_cases(rng):
    return [{"audio_features": randn(rng, n, d, normalize=True), "label_text_features": randn(rng, l, d, normalize=True)}
            for n, l, d in [(3, 2, 4), (6, 5, 8), (2, 4, 3), (1, 3, 4), (4, 1, 3), (5, 5, 6)]
            + list(zip(sizes(rng, 2, 12, 2), sizes(rng, 2, 9, 2), sizes(rng, 3, 10, 2)))]


q1 = FunctionProblem(
    var="emergent_predict",
    prompt="After binding, an audio embedding lives in the image space, and so do the text embeddings of the image "
           "model. Write `emergent_predict(audio_features, label_text_features)` returning, for `(N, D)` normalised audio "
           "embeddings and `(L, D)` normalised label embeddings, the index of the best label for each clip (`(N,)` long).",
    hints=["Cosine similarities `(N, L)`, then the arg-max over labels."],
    stub="def emergent_predict(audio_features, label_text_features):\n    raise NotImplementedError",
    solution_code="def emergent_predict(audio_features, label_text_features):\n"
                  "    return (audio_features @ label_text_features.T).argmax(dim=-1)  # (N,)",
    reference=lambda audio_features, label_text_features: (audio_features @ label_text_features.T).argmax(-1),
    cases=_emergent_cases,
    atol=0, rtol=0,
    mistakes=[(lambda audio_features, label_text_features: (audio_features @ label_text_features.T).argmin(-1),
               "that picks the *least* similar label."),
              (lambda audio_features, label_text_features: (audio_features @ label_text_features.T).argmax(0),
               "the arg-max runs over clips: take it over the labels of each clip (`dim=-1`).")],
)


def _binding_ref(new_features, image_features, logit_scale):
    from ..losses import clip_loss

    return clip_loss(F.normalize(new_features, dim=-1), image_features, logit_scale)


def _binding_cases(rng):
    return [{"new_features": randn(rng, n, d), "image_features": randn(rng, n, d, normalize=True), "logit_scale": s}
            for n, d, s in [(3, 4, 10.0), (6, 8, 20.0), (4, 3, 14.3), (1, 4, 10.0)]
            + [(n, 8, float(rng.uniform(1, 100))) for n in sizes(rng, 2, 12, 2)]] + [
        {"new_features": randn(rng, 5, 6, dtype=torch.float32) * 10, "image_features": randn(rng, 5, 6, normalize=True,
         dtype=torch.float32), "logit_scale": 50.0}]


q2 = FunctionProblem(
    var="binding_loss",
    prompt="The binding step. `new_features` `(N, D)` are raw outputs of the new modality's encoder (say, audio), "
           "`image_features` `(N, D)` are the frozen image embeddings of the paired images (already normalised). "
           "Return the symmetric InfoNCE loss between them (normalise the new features first).",
    hints=["It is exactly CLIP's loss, with images playing the role of text.",
           "Normalise `new_features`, then `clip_loss(new, image_features, logit_scale)`."],
    stub="def binding_loss(new_features, image_features, logit_scale):\n    raise NotImplementedError",
    solution_code="def binding_loss(new_features, image_features, logit_scale):\n"
                  "    new = F.normalize(new_features, dim=-1)  # (N, D)\n"
                  "    logits = logit_scale * new @ image_features.T  # (N, N)\n"
                  "    labels = torch.arange(logits.shape[0])\n"
                  "    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2",
    reference=_binding_ref,
    cases=_binding_cases,
    mistakes=[(lambda new_features, image_features, logit_scale: F.cross_entropy(
                   logit_scale * F.normalize(new_features, dim=-1) @ image_features.T, torch.arange(len(new_features))),
               "only one direction: binding uses the symmetric loss (new→image and image→new)."),
              (lambda new_features, image_features, logit_scale: _clip_unnormalised(new_features, image_features, logit_scale),
               "the new modality's features are not normalised: the image side is, so the scale of the logits is off.")],
)


def _clip_unnormalised(new_features, image_features, logit_scale):
    from ..losses import clip_loss

    return clip_loss(new_features, image_features, logit_scale)


def _arith_ref(image_embedding, sound_embedding):
    return F.normalize(F.normalize(image_embedding, dim=-1) + F.normalize(sound_embedding, dim=-1), dim=-1)


q3 = FunctionProblem(
    var="combine",
    prompt="Embedding arithmetic: write `combine(image_embedding, sound_embedding)` for two `(D,)` vectors: normalise "
           "each, add them, normalise the sum. The result retrieves items close to both.",
    hints=["Normalise before adding so neither vector dominates, and after so the sum is a unit vector again."],
    stub="def combine(image_embedding, sound_embedding):\n    raise NotImplementedError",
    solution_code="def combine(image_embedding, sound_embedding):\n"
                  "    total = F.normalize(image_embedding, dim=-1) + F.normalize(sound_embedding, dim=-1)  # (D,)\n"
                  "    return F.normalize(total, dim=-1)",
    reference=_arith_ref,
    cases=lambda rng: [{"image_embedding": randn(rng, d, dtype=dt) * s, "sound_embedding": randn(rng, d, dtype=dt)}
                       for d, s, dt in [(3, 5.0, torch.float64), (8, 0.3, torch.float64), (2, 1e3, torch.float32),
                                        (int(rng.integers(2, 20)), float(rng.uniform(0.1, 10)), pick_dtype(rng))]],
    mistakes=[(lambda image_embedding, sound_embedding: F.normalize(image_embedding + sound_embedding, dim=-1),
               "the inputs are not normalised before the sum: the longer vector dominates."),
              (lambda image_embedding, sound_embedding: F.normalize(image_embedding, dim=-1) + F.normalize(sound_embedding, dim=-1),
               "the sum is not normalised: it is no longer a unit vector.")],
)

q4 = NumericProblem(
    var="chance_r1",
    prompt="Sound→sensor retrieval over a gallery of 50 sensor traces, one of which is the match. What R@1 does random "
           "guessing achieve? Set `chance_r1`.",
    hints=["One right answer among the candidates."],
    solution_text="1/50 = 0.02. Notebook 05 asks for at least 5× that from a pair never trained together.",
    stub="chance_r1 = ____",
    solution_code="chance_r1 = 1 / 50",
    answer=0.02, rel_tol=1e-3,
)

q5 = ChoiceProblem(
    var="answer_why_images",
    prompt="Why does ImageBind bind every modality to *images* rather than to text?",
    options={"a": "Images co-occur naturally with most other modalities (video gives image+audio, RGB-D cameras give "
                  "image+depth, …), and an image–text model already links images to language.",
             "b": "Images have more pixels than text has tokens.",
             "c": "Text encoders cannot be frozen.",
             "d": "Contrastive losses only work with images."},
    correct="a",
    explanations={"a": "naturally paired data exists for (image, X) at scale; text alignment then comes for free through "
                       "the frozen image–text space (the emergent zero-shot behaviour notebook 05 measures).",
                  "b": "the size of the input is irrelevant to which modality binds the others.",
                  "c": "text encoders freeze as easily as any other: the course's own checkpoints keep the MiniLM text tower "
                       "frozen (the mirror image of LiT, which locks the image tower).",
                  "d": "CLAP trains audio against text with the same loss."},
    hints=["Where would you find millions of (audio, X) pairs without labelling anything?"],
    stub="answer_why_images = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_why_images = 'a'",
)

PROBLEMS = [q1, q2, q3, q4, q5]
