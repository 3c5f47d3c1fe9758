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
