"""Exercise checkers: both notebook states run, and plausible wrong answers are caught."""
import importlib
import pathlib

import nbformat
import numpy as np
import pytest

from mmcourse.exercises import problem_kinds as core
from mmcourse.exercises.notebook import NOTEBOOK_NAMES, build

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _topics():
    found = []
    for topic in list(NOTEBOOK_NAMES) + ["interview"]:
        try:
            found.append(importlib.import_module(f"mmcourse.exercises.{topic}"))
        except ModuleNotFoundError:
            pass
    return found


TOPICS = _topics()
NOTEBOOK_TOPICS = [m.__name__.rsplit(".", 1)[1] for m in TOPICS if m.__name__.rsplit(".", 1)[1] in NOTEBOOK_NAMES]


def _verdicts(nb):
    verdicts = []
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip().endswith(".check()"):
            text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            assert not errors, f"check cell crashed: {errors[0].get('ename')}: {errors[0].get('evalue')}"
            verdicts.append(text.strip())
    return verdicts


@pytest.mark.parametrize("topic", NOTEBOOK_TOPICS)
def test_exercise_notebook_both_states(topic):
    """The learner notebook, then (in the same kernel, after a reset) the solved one."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    unsolved, solved = build(topic, solved=False), build(topic, solved=True)
    both = build(topic)
    both.cells = unsolved.cells + [new_code_cell("%reset -f")] + solved.cells
    NotebookClient(both, timeout=300, kernel_name="python3").execute()
    unsolved.cells, solved.cells = both.cells[:len(unsolved.cells)], both.cells[len(unsolved.cells) + 1:]
    before, after = _verdicts(unsolved), _verdicts(solved)
    assert before and all(v.startswith(("⏳", "❌")) for v in before), before
    assert any(v.startswith("⏳") for v in before)
    assert after and all(v.startswith("✅") for v in after), after


@pytest.mark.parametrize("topic", NOTEBOOK_TOPICS)
def test_committed_learner_notebook_is_generated(topic):
    committed = nbformat.read(ROOT / "exercises" / NOTEBOOK_NAMES[topic], as_version=4)
    fresh = build(topic)
    assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], \
        "exercises/ is stale: run `python tools/nb.py exercises`"


def test_stub_states_and_hints(capsys):
    from mmcourse.exercises import ex02

    assert ex02.q2.check({}, quiet=True).status == core.NOT_ATTEMPTED
    assert ex02.q4.check({"p_negative_at_init": core.____}, quiet=True).status == core.NOT_ATTEMPTED
    assert ex02.q4.check({"p_negative_at_init": 0.5}, quiet=True).status == core.INCORRECT
    assert "not it" in ex02.q6.check({"answer_batch_size": "a"}, quiet=True).message
    assert "letters" in ex02.q6.check({"answer_batch_size": "z"}, quiet=True).message
    ex02.q2.hint()
    ex02.q2.hint()
    first, second = capsys.readouterr().out.strip().split("\n")
    assert "Hint 1/" in first and "Hint 2/" in second
    ex02.q2.solution()
    assert "cross_entropy" in capsys.readouterr().out
    assert ex02.q2.check({}) is None and "Not attempted" in capsys.readouterr().out  # notebooks print, return nothing


def test_interview_rubric_is_self_assessed_and_sub_questions_pass_on_model_answers():
    from mmcourse.exercises import interview
    from mmcourse.exercises.rubric import SITTING

    assert len(interview.QUESTIONS) - interview.N_SEED_QUESTIONS >= 12
    assert not hasattr(core, "KeyPointsProblem")  # no regex grading of prose anywhere
    SITTING.reset()
    r = interview.q5.rubric(ticked=[1, 3], quiet=True)
    assert "2/4" in r.message and "Self-assessed" in r.message
    with pytest.raises(ValueError):
        interview.q5.rubric(ticked=[9])
    assert SITTING.by_topic()["losses"]["ticked"] == 2
    assert "Model answer" in interview.q5.rubric_markdown()
    assert interview.q1.check(quiet=True).status == core.NOT_ATTEMPTED  # no automatic part: says so
    auto = [q for q in interview.QUESTIONS if q.sub_questions]
    assert sum(isinstance(s, (core.FunctionProblem, core.NumericProblem)) for q in auto for s in q.sub_questions) >= 6
    for q in auto:
        ns = {"torch": __import__("torch"), "F": __import__("torch").nn.functional, "np": np, "math": __import__("math"),
              "dist": __import__("torch.distributed").distributed}
        for sub in q.sub_questions:
            exec(sub.solution_code, ns)
        assert q.check(ns, quiet=True), q.question


def test_mock_interview_is_balanced_and_scores_per_topic():
    from mmcourse.exercises import mock_interview

    mock = mock_interview(minutes=45, seed=1)
    kinds = {q.kind for q in mock.items}
    assert {"written", "coding", "design"} <= kinds
    assert sum(q.minutes for q in mock.items) <= 45
    text = mock.finish(ticked={mock.items[0].qid: [1]}, namespace={}, quiet=True)
    assert "minutes" in text and mock.items[0].topic in text
    assert [q.qid for q in mock_interview(45, seed=1).items] == [q.qid for q in mock.items]
    with pytest.raises(ValueError):
        mock_interview(30, topics=["no such topic"])


def test_rubric_checkboxes_score_the_sitting_and_static_mode_shows_markdown_only():
    from mmcourse.exercises import interview
    from mmcourse.exercises.rubric import SITTING

    SITTING.reset()
    view = interview.q9.reveal(static=False)
    view.boxes[0].value = True
    view.boxes[2].value = True
    assert SITTING.ticks["q9"][0] == [1, 3]
    assert "self-assessed 2/" in view.score.value
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "Model answer" in bundle["text/markdown"]
    static = interview.q9.reveal(static=True)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in static and "Rubric" in static["text/markdown"]
