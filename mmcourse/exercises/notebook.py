"""Exercise notebooks, generated from the topic modules: one source for the learner and solved versions."""
from __future__ import annotations

from importlib import import_module

from .problem_kinds import ChoiceProblem

HOW_TO = (
    "Each question has a code cell to complete and a check cell. Run the check: ✅ means done, ❌ tells you what "
    "is wrong (never the answer), ⏳ means not attempted yet. Stuck? `hint()` gives increasingly concrete hints, "
    "`solution()` shows a model solution."
)


def build(topic: str, solved: bool = False):
    """The notebook for ``topic`` (e.g. ``"ex02"``): with stubs, or with the model solutions filled in."""
    import nbformat.v4 as v4

    module = import_module(f"mmcourse.exercises.{topic}")
    cells = [v4.new_markdown_cell(f"# Exercises · {module.TITLE}\n\n{HOW_TO}"),
             v4.new_code_cell(f"import math\n\nfrom mmcourse.exercises import {topic}\nfrom mmcourse.exercises.problem_kinds import ____\n"
                              + getattr(module, "SETUP", ""))]
    for i, problem in enumerate(module.PROBLEMS, start=1):
        name = f"q{i}"
        if getattr(module, name, None) is not problem:
            raise RuntimeError(f"{topic}.PROBLEMS[{i - 1}] must be {topic}.{name}")
        text = f"## Question {i}\n\n{problem.prompt}"
        if isinstance(problem, ChoiceProblem):
            text += "\n\n" + problem.options_markdown()
        cells.append(v4.new_markdown_cell(text))
        cells.append(v4.new_code_cell(problem.solution_code if solved else problem.stub))
        cells.append(v4.new_code_cell(f"{topic}.{name}.check()"))
        cells.append(v4.new_code_cell(f"# {topic}.{name}.hint()\n# {topic}.{name}.solution()"))
    nb = v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb


NOTEBOOK_NAMES = {
    "ex01": "01_clip_zero_shot_exercises.ipynb",
    "ex02": "02_contrastive_losses_exercises.ipynb",
    "ex03": "03_openclip_siglip_exercises.ipynb",
    "ex04": "04_clap_exercises.ipynb",
    "ex05": "05_binding_exercises.ipynb",
    "ex06": "06_colpali_maxsim_exercises.ipynb",
    "ex07": "07_hybrid_search_exercises.ipynb",
    "ex08": "08_production_and_scale_exercises.ipynb",
}


INTERVIEW_INTRO = """# 09 · Interview preparation

**Learning objectives**

- explain the ideas of the course out loud, the way an interviewer asks for them: CLIP, the losses, SigLIP, CLAP,
  binding, ColPali, hybrid search and scale, and the deeper questions a strong interviewer adds (gradients by hand,
  distributed losses, sharded search, index memory, a 1-billion-image design, curation, the modality gap);
- grade yourself honestly: each question has a model answer and a rubric. Answer first, then open the model answer
  and tick the points you covered (checkboxes in JupyterLab; `interview.qN.rubric(ticked=[...])` anywhere).
  Nothing here machine-grades prose;
- check the parts a machine can check: numbers, choices and code, with the exercises' checkers.

Below, each automatic part is filled in with the model answer so the notebook runs top to bottom; replace it with
yours and re-run. `mock_interview(minutes=45, seed=...)` at the end draws a timed, balanced set."""


COMPOSITION_MD = """Measured on the course's own model: `course/clip-shapes` on two-object scenes ("a red circle left of a
blue square"). For each scene whose objects differ in colour and shape, does the true caption score higher than the
caption with the colours swapped (the same words) or with the objects swapped (the same words, other order)? A
bag-of-words model sits at chance, 0.5."""

COMPOSITION_CODE = """from mmcourse.exercises.measured import swap_test

swap = swap_test(n=200, seed=3)
for name, value in swap.items():
    print(f"{name:38s} {value:.2f}" if isinstance(value, float) else f"{name:38s} {value}")
# bag-of-words behaviour: the swapped caption's text embedding is nearly the true one's, and the image cannot tell
assert swap["text cosine, true vs attribute swap"] > 0.9
assert swap["true beats attribute swap"] < 0.75, swap"""


def _sub_cell(sub, solved: bool = True) -> str:
    return sub.solution_code if solved else sub.stub


def build_interview():
    """Notebook 09, generated from :mod:`mmcourse.exercises.interview`."""
    import nbformat.v4 as v4

    from . import interview

    cells = [v4.new_markdown_cell(INTERVIEW_INTRO),
             v4.new_code_cell("import math\n\nimport numpy as np\nimport torch\nimport torch.distributed as dist\n"
                              "import torch.nn.functional as F\n\nimport mmcourse\n"
                              "from mmcourse.exercises import interview, mock_interview\n\n"
                              "mmcourse.set_seed(0)\ndevice = mmcourse.get_device()")]
    topic = None
    for i, q in enumerate(interview.QUESTIONS, start=1):
        if i == interview.N_SEED_QUESTIONS + 1:
            cells.append(v4.new_markdown_cell("# Deeper questions\n\nWhat a strong interviewer asks next: derivations, "
                                              "distributed training, sharded search, memory estimates and system design."))
            topic = None
        if q.topic != topic:
            topic = q.topic
            cells.append(v4.new_markdown_cell(f"## {topic}"))
        cells.append(v4.new_markdown_cell(f"**Q{i}** ({q.kind}). {q.question}"))
        cells.append(v4.new_code_cell(f"interview.q{i}.reveal()"))
        for sub in q.sub_questions:
            text = sub.prompt + ("\n\n" + sub.options_markdown() if hasattr(sub, "options_markdown") else "")
            cells.append(v4.new_markdown_cell(f"*Q{i}, automatic part:* {text}"))
            cells.append(v4.new_code_cell(_sub_cell(sub)))
        if q.sub_questions:
            cells.append(v4.new_code_cell(f"# NBVAL_CHECK_OUTPUT\ninterview.q{i}.check()"))
        if q.question.startswith("Do CLIP-style models understand composition"):
            cells.append(v4.new_markdown_cell(COMPOSITION_MD))
            cells.append(v4.new_code_cell(COMPOSITION_CODE))
        if i == 1:
            cells.append(v4.new_markdown_cell("Without widgets, tick by number: say your answer covered points 1, 2 and 4."))
            cells.append(v4.new_code_cell("interview.q1.rubric(ticked=[1, 2, 4])"))
    cells.append(v4.new_markdown_cell("## Your score for this sitting\n\nRubric points are self-assessed; automatic "
                                      "parts are checked."))
    cells.append(v4.new_code_cell("interview.SITTING.report()"))
    cells.append(v4.new_markdown_cell("## Mock interview\n\n`mock_interview(minutes=45, topics=None, seed=None)` draws a "
                                      "balanced, timed set (written, coding, design in turn). Answer each, reveal and tick "
                                      "(or pass `ticked=` to `finish`), then `finish()` gives the time and a per-topic score."))
    cells.append(v4.new_code_cell("mock = mock_interview(minutes=45, seed=0)\nmock"))
    cells.append(v4.new_code_cell("mock.finish(ticked={mock.items[0].qid: [1, 2]})"))
    cells.append(v4.new_markdown_cell(
        f"## Summary\n\n- {len(interview.QUESTIONS)} questions: the seed lesson's four, the course's own, and "
        f"{len(interview.QUESTIONS) - interview.N_SEED_QUESTIONS} deeper ones.\n"
        "- Prose is self-assessed against a rubric; numbers, choices and code are checked automatically.\n"
        "- The coding parts are the core of the course in a few lines each: losses and their gradients by hand, "
        "the distributed loss on two real processes, sharded top-k, index memory.\n\n"
        "**Exercises:** the `exercises/` folder has one notebook per topic."))
    nb = v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb
