"""Exercises for notebook 01: CLIP zero-shot classification and retrieval."""
import torch
import torch.nn.functional as F

from ._cases import pick_dtype, randn, sizes
from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem
from .measured import MeasuredProblem, measure_attack, measure_templates, validate_attack, validate_templates

TITLE = "01 · CLIP zero-shot: the shared space, prompts and retrieval"
SETUP = "import torch\nimport torch.nn.functional as F"

q1 = FunctionProblem(
    var="l2_normalize",
    prompt="Write `l2_normalize(x)` that scales every row of an `(N, D)` tensor to unit length, so that a dot "
           "product between rows is a cosine similarity.",
    hints=["The length of a row is `x.norm(dim=-1, keepdim=True)`.", "Divide by it (or use `F.normalize(x, dim=-1)`)."],
    stub="def l2_normalize(x):\n    raise NotImplementedError",
    solution_code="def l2_normalize(x):\n    return x / x.norm(dim=-1, keepdim=True)  # (N, D), rows of length 1",
    reference=lambda x: F.normalize(x, dim=-1),
    cases=lambda rng: ([{"x": randn(rng, 2, 3)}, {"x": randn(rng, 1, 4)}, {"x": randn(rng, 3, 5, dtype=torch.float32) * 1e3},
                        {"x": randn(rng, 4, 2) * 1e-3}]
                       + [{"x": randn(rng, n, d, dtype=pick_dtype(rng)) * float(rng.uniform(0.1, 10))}
                          for n, d in zip(sizes(rng, 2, 9, 2), sizes(rng, 2, 12, 2))]),
    mistakes=[(lambda x: F.normalize(x, dim=0), "you normalised the columns: each *row* (one embedding) must have length 1."),
              (lambda x: x / x.sum(dim=-1, keepdim=True), "dividing by the sum is not L2 normalisation: divide by the norm.")],
)


def _probs_ref(image_features, text_features, logit_scale):
    logits = logit_scale * F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).T  # (N, L)
    return logits.softmax(dim=-1)


def _prob_cases(rng):
    return [{"image_features": randn(rng, n, d) * 3, "text_features": randn(rng, l, d) * 2, "logit_scale": 100.0 / s}
            for n, l, d, s in [(2, 3, 4, 10), (4, 6, 8, 1), (3, 2, 5, 4), (1, 3, 4, 1), (3, 1, 4, 2)]] + [
        {"image_features": randn(rng, n, 6, dtype=torch.float32) * 3, "text_features": randn(rng, l, 6, dtype=torch.float32),
         "logit_scale": float(rng.uniform(1, 100))} for n, l in zip(sizes(rng, 1, 8, 2), sizes(rng, 2, 8, 2))]


q2 = FunctionProblem(
    var="zero_shot_probs",
    prompt="Write `zero_shot_probs(image_features, text_features, logit_scale)`: given raw (unnormalised) image "
           "features `(N, D)` and one text feature per label `(L, D)`, return the `(N, L)` probabilities CLIP assigns "
           "to each label: normalise both, scale the cosine similarities, softmax over the labels.",
    hints=["Normalise first; otherwise longer vectors win regardless of direction.",
           "`logits = logit_scale * img @ txt.T` has one row per image.",
           "The softmax runs over the labels of one image: `dim=-1`."],
    stub="def zero_shot_probs(image_features, text_features, logit_scale):\n    raise NotImplementedError",
    solution_code="def zero_shot_probs(image_features, text_features, logit_scale):\n"
                  "    img = F.normalize(image_features, dim=-1)  # (N, D)\n"
                  "    txt = F.normalize(text_features, dim=-1)  # (L, D)\n"
                  "    return (logit_scale * img @ txt.T).softmax(dim=-1)  # (N, L)",
    reference=_probs_ref,
    cases=_prob_cases,
    mistakes=[(lambda image_features, text_features, logit_scale: (logit_scale * image_features @ text_features.T).softmax(-1),
               "the features are not normalised: a long vector wins whatever its direction. Normalise both sides first."),
              (lambda image_features, text_features, logit_scale: (logit_scale * F.normalize(image_features, dim=-1)
                                                                   @ F.normalize(text_features, dim=-1).T).softmax(0),
               "the softmax runs over images instead of labels: use `dim=-1` so each image's row sums to 1."),
              (lambda image_features, text_features, logit_scale: _probs_ref(image_features, text_features, 1.0),
               "the temperature is missing: without `logit_scale` cosine similarities in [-1, 1] give nearly uniform probabilities.")],
)


def _ensemble_ref(template_embeddings):
    return F.normalize(F.normalize(template_embeddings, dim=-1).mean(dim=0), dim=-1)  # (L, D)


q3 = FunctionProblem(
    var="ensemble_prompts",
    prompt="Prompt ensembling. `template_embeddings` has shape `(T, L, D)`: the text embedding of each of `T` "
           "templates (\"a photo of a {}\", \"a drawing of a {}\", …) for each of `L` labels. Return the `(L, D)` "
           "ensembled label embeddings: normalise each template embedding, average over templates, normalise again.",
    hints=["Average over the template axis, `dim=0`.", "Normalise before averaging (so no template dominates) and after "
           "(so the mean is a unit vector again)."],
    stub="def ensemble_prompts(template_embeddings):\n    raise NotImplementedError",
    solution_code="def ensemble_prompts(template_embeddings):\n"
                  "    mean = F.normalize(template_embeddings, dim=-1).mean(dim=0)  # (L, D)\n"
                  "    return F.normalize(mean, dim=-1)",
    reference=_ensemble_ref,
    cases=lambda rng: [{"template_embeddings": randn(rng, t, l, d, dtype=dt) * randn(rng, t, l, 1, dtype=dt).abs() * 3}
                       for t, l, d, dt in [(2, 2, 3, torch.float64), (5, 4, 8, torch.float64), (1, 3, 4, torch.float64),
                                           (3, 1, 5, torch.float32), (4, 4, 4, torch.float32)]
                       + [(t, l, 6, pick_dtype(rng)) for t, l in zip(sizes(rng, 2, 7, 2), sizes(rng, 2, 6, 2))]],
    mistakes=[(lambda template_embeddings: F.normalize(template_embeddings.mean(0), dim=-1),
               "you averaged before normalising: templates with longer embeddings dominate the mean."),
              (lambda template_embeddings: F.normalize(template_embeddings, dim=-1).mean(0),
               "the average of unit vectors is shorter than 1: normalise the mean again.")],
)


def _topk_cases(rng):
    return [{"query": randn(rng, d, normalize=True), "gallery": randn(rng, n, d, normalize=True), "k": k}
            for d, n, k in [(3, 5, 2), (8, 20, 5), (4, 6, 1), (4, 6, 6), (3, 1, 1)]
            + [(8, n, int(rng.integers(1, n + 1))) for n in sizes(rng, 2, 40, 2)]]


q4 = FunctionProblem(
    var="top_k",
    prompt="Retrieval. Write `top_k(query, gallery, k)` returning the indices (a `torch.long` tensor of length `k`) "
           "of the `k` gallery rows most similar to the normalised `query` vector `(D,)`, most similar first. "
           "`gallery` is `(N, D)`, normalised.",
    hints=["Similarities: `gallery @ query`, shape `(N,)`.", "`torch.topk` returns values and indices, largest first."],
    stub="def top_k(query, gallery, k):\n    raise NotImplementedError",
    solution_code="def top_k(query, gallery, k):\n    return torch.topk(gallery @ query, k).indices  # (k,)",
    reference=lambda query, gallery, k: torch.topk(gallery @ query, k).indices,
    cases=_topk_cases,
    atol=0, rtol=0,
    mistakes=[(lambda query, gallery, k: torch.topk(gallery @ query, k, largest=False).indices,
               "these are the *least* similar items: retrieval wants the largest similarities."),
              (lambda query, gallery, k: torch.argsort(gallery @ query)[:k],
               "`argsort` sorts ascending: you returned the least similar items first.")],
)

q5 = ChoiceProblem(
    var="answer_normalise",
    prompt="Your CLIP retrieval ranks images by the raw dot product of *unnormalised* embeddings. What goes wrong?",
    options={"a": "Nothing: the dot product and the cosine similarity always rank the same.",
             "b": "Images whose embeddings happen to be long score high for every query, whatever they show.",
             "c": "The scores become negative and the ranking reverses.",
             "d": "It only matters for text-to-text retrieval."},
    correct="b",
    explanations={"a": "they rank the same only when every gallery vector has the same length, which CLIP's raw outputs don't.",
                  "b": "the dot product is |a||b|cos θ: with unnormalised gallery vectors the norm |b| leaks into the ranking. "
                       "CLIP's loss is trained on cosine similarities, so normalise both sides.",
                  "c": "signs don't flip from skipping normalisation; lengths are positive.",
                  "d": "it matters for any comparison of CLIP embeddings, image–text included."},
    hints=["Write the dot product as |a| |b| cos θ."],
    stub="answer_normalise = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_normalise = 'b'",
)

q6 = NumericProblem(
    var="clip_imagenet_zero_shot",
    prompt="What ImageNet zero-shot top-1 accuracy (in %) did the CLIP paper (Radford et al. 2021) report for its best "
           "model, matching the original supervised ResNet-50? Set `clip_imagenet_zero_shot`.",
    hints=["It is a figure from the CLIP paper (Radford et al. 2021), quoted in the seed lesson and in notebook 01.",
           "It matched the original ResNet-50 trained on ImageNet's 1.28 M labelled images: mid-seventies."],
    solution_text="76.2 % (ViT-L/14 at 336 px), the paper's number; the course does not re-measure it.",
    stub="clip_imagenet_zero_shot = ____",
    solution_code="clip_imagenet_zero_shot = 76.2",
    answer=76.2, rel_tol=0.0, abs_tol=0.15, recalled=True,
)

q7 = MeasuredProblem(
    var="my_templates",
    prompt="**The template contest** (notebook 01 promised it). Write your own list of prompt templates (each a string "
           "with one `{}` for the label, no colour or shape word in it) and beat the course's ensemble. The contest "
           "is run the hard way: every label is named by its paraphrases (\"crimson disc\", \"scarlet round dot\", "
           "…: words the model never saw in training), each put into each of your templates, and the model classifies "
           "notebook 01's 240 held-out scenes over all 24 labels. You pass when your accuracy matches or beats the "
           "course's templates under the same rules. (The check loads `course/clip-shapes`: a few seconds once cached.)",
    hints=["Notebook 01 measured what templates buy; here the label words are unfamiliar, so the template's other words "
           "matter more.", "Measure one template at a time; then combine the ones that help.",
           "Short templates leave the label words most of the text embedding."],
    stub="my_templates = ____  # a list of strings, each with one {}",
    solution_code="my_templates = ['a {}']",
    solution_text="['a {}'] scores 0.875 against the ensemble's 0.850 (measured on the course model): with unfamiliar "
                  "label words, extra template words pull every class embedding towards the same place. Other sets "
                  "can do better; measure yours.",
    validate=validate_templates, measure=measure_templates, topic="CLIP",
)

q8 = MeasuredProblem(
    var="attack",
    prompt="**The paraphrase attack** (notebook 01 promised it). Pick one held-out label (`red star`, `green circle`, "
           "`blue triangle`, `yellow square`, `purple circle`, `orange triangle`) and a phrase that means the same "
           "thing but fools the model: the checker replaces that label's class embedding with your phrase's and "
           "measures the accuracy on that label's held-out images (1.0 with the course's ensemble). You pass when it "
           "drops to 0.5 or below. The phrase may not name another colour or shape; whether it still means the label "
           "is for you to judge. Set `attack = (label, phrase)`.",
    hints=["Notebook 01's paraphrase lists (`shapes.COLOR_PARAPHRASES`, `shapes.SHAPE_PARAPHRASES`) are a start.",
           "Its confusion matrix shows which held-out labels are fragile under paraphrase.",
           "Longer shape paraphrases move the embedding further than colour synonyms."],
    stub="attack = ____  # (label, phrase)",
    solution_code="attack = ('red star', 'a scarlet five-pointed star')",
    solution_text="('red star', 'a scarlet five-pointed star') drops the accuracy on red stars from 1.00 to 0.00: the "
                  "model, which never saw 'scarlet' or 'five-pointed' in training, sends those images elsewhere.",
    validate=validate_attack, measure=measure_attack, topic="CLIP",
)

PROBLEMS = [q1, q2, q3, q4, q5, q6, q7, q8]
