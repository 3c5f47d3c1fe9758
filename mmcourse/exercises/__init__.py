"""Automatically checked exercises, in the style of Kaggle Learn.

In an exercise notebook::

    from mmcourse.exercises import ex02
    ex02.q1.check()      # checks the learner's code or answer
    ex02.q1.hint()       # next hint (call again for more)
    ex02.q1.solution()   # the model solution

Each topic module (``ex01`` … ``ex08``, ``interview``) lists its problems; the learner
and solved notebooks under ``exercises/`` are generated from those modules
(``python tools/nb.py exercises``), so there is one source for both. Interview
questions are self-assessed against a rubric (``interview.q5.reveal()``, then tick),
with their checkable parts auto-checked; ``mock_interview(minutes=45, seed=0)`` draws
a timed, balanced set and ends with a per-topic score.
"""
from importlib import import_module

TOPICS = ("ex01", "ex02", "ex03", "ex04", "ex05", "ex06", "ex07", "ex08", "interview")


def mock_interview(minutes: float = 45, topics=None, seed: int | None = None, reset: bool = True):
    """A timed, balanced mock interview (written + coding + design) ending with the rubric and a per-topic score."""
    from .mock import mock_interview as _mock

    return _mock(minutes=minutes, topics=topics, seed=seed, reset=reset)


def __getattr__(name):
    if name in TOPICS:
        module = import_module(f"mmcourse.exercises.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'mmcourse.exercises' has no attribute {name!r}; topics: {', '.join(TOPICS)}")
