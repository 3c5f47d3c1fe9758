"""Exercise notebooks, generated from the topic modules: one source for the learner and solved versions."""
from __future__ import annotations

from importlib import import_module

from .core import ChoiceProblem

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
             v4.new_code_cell(f"import math\n\nfrom mmcourse.exercises import {topic}\nfrom mmcourse.exercises.core import ____\n"
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
}


INTERVIEW_INTRO = """# 09 · Interview preparation

**Learning objectives**

- explain the ideas of the course out loud, the way an interviewer asks for them: CLIP, the losses, SigLIP, CLAP,
  binding, ColPali, hybrid search and scale;
- check your own answers: each question has a model answer (folded; click to open) and a self-check that names
  the key points your answer still misses;
- solve five whiteboard coding tasks, checked like the exercises.

How to use it: read a question, answer it aloud or in writing, then run
`interview.qN.check("your answer")`. The cells below run the check on the model answers, so you can see what a
complete answer covers."""


def build_interview():
    """Notebook 09, generated from :mod:`mmcourse.exercises.interview` (questions) and the topic checkers (coding)."""
    import nbformat.v4 as v4

    from . import interview

    cells = [v4.new_markdown_cell(INTERVIEW_INTRO),
             v4.new_code_cell("import mmcourse\nfrom mmcourse.exercises import interview\n\n"
                              "mmcourse.set_seed(0)\ndevice = mmcourse.get_device()")]
    topic = None
    for i, q in enumerate(interview.QUESTIONS, start=1):
        if q.topic != topic:
            topic = q.topic
            cells.append(v4.new_markdown_cell(f"## {topic}"))
        cells.append(v4.new_markdown_cell(f"**Q{i}. {q.question}**\n\n<details><summary>Model answer</summary>\n\n"
                                          f"{q.model_answer}\n\n</details>"))
        cells.append(v4.new_code_cell(f"# NBVAL_CHECK_OUTPUT\ninterview.q{i}.check(interview.q{i}.model_answer)"))
    cells.append(v4.new_markdown_cell("## Whiteboard coding\n\nFive tasks interviewers ask for on a whiteboard. Each cell "
                                      "holds a model solution; replace it with your own and re-run the check."))
    for i, task in enumerate(interview.coding_tasks(), start=1):
        cells.append(v4.new_markdown_cell(f"### Task {i}\n\n{task.prompt}"))
        cells.append(v4.new_code_cell("import torch\nimport torch.nn.functional as F\nimport numpy as np\n\n"
                                      + task.solution_code))
        cells.append(v4.new_code_cell(f"# NBVAL_CHECK_OUTPUT\ninterview.coding_tasks()[{i - 1}].check()"))
    cells.append(v4.new_markdown_cell(
        "## Summary\n\n- 33 questions span every notebook; the first four are the seed lesson's own.\n"
        "- A self-check names missing key points, not the words to use: an answer in your own words passes.\n"
        "- The coding tasks are the core of the course in a few lines each: losses, zero-shot probabilities, "
        "MaxSim with masks, id-aligned fusion.\n\n**Exercises:** the `exercises/` folder has one notebook per topic."))
    nb = v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    return nb
