"""Exercises for notebook 03: OpenCLIP and SigLIP in practice."""
import math

import torch

from ._cases import pick_dtype, randn, sizes
from .problem_kinds import ChoiceProblem, FunctionProblem, NumericProblem

TITLE = "03 · OpenCLIP and SigLIP: probabilities, padding, preprocessing"
SETUP = "import torch"

def _logit_cases(rng):
    """A small case, random sizes in both dtypes, one label, one image, and logits of ±1e3 (rows far apart)."""
    cases = [{"logits": randn(rng, 2, 3) * 3}]
    for n, l in zip(sizes(rng, 2, 6, 2), sizes(rng, 2, 9, 2)):
        cases.append({"logits": randn(rng, n, l, dtype=pick_dtype(rng)) * float(rng.uniform(1, 10))})
    cases.append({"logits": randn(rng, 1, 4)})
    cases.append({"logits": randn(rng, 3, 1, dtype=torch.float32)})
    for dtype in (torch.float32, torch.float64):  # large logits: one row near +1000, one near -1000
        offsets = torch.tensor([[1000.0], [-1000.0], [0.0]], dtype=dtype)  # (3, 1)
        cases.append({"logits": randn(rng, 3, 4, dtype=dtype) * 5 + offsets})
    return cases


q1 = FunctionProblem(
    var="sigmoid_probs",
    prompt="SigLIP scores every image–label pair on its own. Write `sigmoid_probs(logits)` returning, for an `(N, L)` "
           "logit matrix, the probability that each label applies to each image, independently of the other labels.",
    hints=["One probability per entry: no normalisation across the row.", "`torch.sigmoid`."],
    stub="def sigmoid_probs(logits):\n    raise NotImplementedError",
    solution_code="def sigmoid_probs(logits):\n    return torch.sigmoid(logits)  # (N, L), each in (0, 1), rows need not sum to 1",
    reference=lambda logits: torch.sigmoid(logits),
    cases=_logit_cases,
    mistakes=[(lambda logits: logits.softmax(-1), "that is the softmax: it makes the labels compete and each row sum "
                                                  "to 1. SigLIP's probabilities are independent per label.")],
)

def _naive_softmax(logits):
    e = logits.exp()
    return e / e.sum(dim=-1, keepdim=True)


def _global_shift_softmax(logits):
    e = (logits - logits.max()).exp()
    return e / e.sum(dim=-1, keepdim=True)


q2 = FunctionProblem(
    var="softmax_probs",
    prompt="CLIP's zero-shot probabilities make the labels compete. Write `softmax_probs(logits)` for an `(N, L)` "
           "logit matrix, one distribution over labels per image, computed stably (subtract each row's max first).",
    hints=["exp(z - max) / sum(exp(z - max)) over each row.", "`dim=-1` is the label axis."],
    stub="def softmax_probs(logits):\n    raise NotImplementedError",
    solution_code="def softmax_probs(logits):\n"
                  "    z = logits - logits.max(dim=-1, keepdim=True).values  # (N, L), stable\n"
                  "    e = z.exp()\n"
                  "    return e / e.sum(dim=-1, keepdim=True)",
    reference=lambda logits: logits.softmax(dim=-1),
    cases=_logit_cases,
    mistakes=[(lambda logits: logits.softmax(dim=0), "the softmax runs over images: each image's *row* must sum to 1."),
              (_naive_softmax, "not stable: with logits near ±1000, exp overflows to inf (or underflows to 0) and the "
                               "ratio becomes NaN. Shift each row before exponentiating."),
              (_global_shift_softmax, "one shift for the whole matrix is not enough: a row far below the global max "
                                      "underflows to all zeros (0/0). Shift each row by its own max."),
              (lambda logits: torch.sigmoid(logits), "that is the sigmoid: CLIP's probabilities sum to 1 over the labels.")],
)

q3 = NumericProblem(
    var="sigmoid_sum",
    prompt="An image has SigLIP logits `[2, 0, -2]` for three labels. What is the sum of its three sigmoid "
           "probabilities? (A softmax would always give 1.) Set `sigmoid_sum`.",
    hints=["σ(0) = 0.5.", "σ(z) + σ(-z) = 1."],
    solution_text="σ(2) + σ(0) + σ(-2) = 1 + 0.5 = 1.5: sigmoid probabilities are independent, so they can sum past 1 "
                  "(several labels may apply) or stay far below it (none applies).",
    stub="sigmoid_sum = ____",
    solution_code="sigmoid_sum = sum(1 / (1 + math.exp(-z)) for z in (2, 0, -2))",
    answer=1.5, rel_tol=1e-3,
)

q4 = ChoiceProblem(
    var="answer_padding",
    prompt="A SigLIP checkpoint was trained on text padded to a fixed 64 tokens (`padding=\"max_length\"`). You embed "
           "queries with `padding=True` (pad to the longest in the batch). What happens?",
    options={"a": "Nothing: attention masks make padding irrelevant.",
             "b": "Embeddings shift: SigLIP's text tower pools the state at the *last* position, which in training "
                  "was always a pad token of a 64-token sequence; scores drop.",
             "c": "The tokenizer raises an error.",
             "d": "Only the speed changes."},
    correct="b",
    explanations={"a": "the attention mask does not make padding irrelevant here: ask which position the pooled "
                       "text embedding is read from, and what sat there during training.",
                  "b": "the model sees inputs unlike its training ones; use the processor with padding='max_length', as "
                       "the model card says. Notebook 03 trains one way and evaluates both ways.",
                  "c": "both settings are valid tokenizer calls; nothing warns you.",
                  "d": "the embeddings themselves change, not just the speed."},
    hints=["What did the model see during training, and does the pooled output look at pad tokens?"],
    stub="answer_padding = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_padding = 'b'",
)

q5 = ChoiceProblem(
    var="answer_preprocess",
    prompt="You load an open_clip checkpoint but preprocess images with ImageNet's mean/std instead of the transform "
           "`create_model_and_transforms` returned. What should you expect?",
    options={"a": "Identical results: normalisation constants are interchangeable.",
             "b": "A crash: the shapes no longer match.",
             "c": "Silently worse embeddings and accuracy: the model sees inputs from a shifted distribution.",
             "d": "Better accuracy, since ImageNet statistics are more general."},
    correct="c",
    explanations={"a": "the constants are part of what the first layer was trained on; they are not interchangeable.",
                  "b": "the mean/std change values, not shapes: nothing here can raise.",
                  "c": "always use the checkpoint's own preprocessing (resize, crop, mean/std); notebook 03 measures the drop.",
                  "d": "the model never saw ImageNet-normalised inputs; no generality is gained."},
    hints=["Would anything raise an error?"],
    stub="answer_preprocess = ____  # 'a', 'b', 'c' or 'd'",
    solution_code="answer_preprocess = 'c'",
)

q6 = NumericProblem(
    var="probability_equal_logits",
    prompt="A zero-shot classifier has 8 labels and an image whose 8 logits are all equal. What softmax probability "
           "does each label get? Set `probability_equal_logits`.",
    hints=["Equal logits give a uniform distribution."],
    solution_text="1/8 = 0.125. (The sigmoid of each would be σ(z), which depends on z itself, not on the other labels.)",
    stub="probability_equal_logits = ____",
    solution_code="probability_equal_logits = 1 / 8",
    answer=0.125, rel_tol=1e-3,
)

PROBLEMS = [q1, q2, q3, q4, q5, q6]
