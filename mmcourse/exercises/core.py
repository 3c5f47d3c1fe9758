"""Problem kinds and their checkers.

- :class:`FunctionProblem`: the learner implements a function; it is run on hidden,
  randomised cases and compared with the reference. Known wrong implementations
  (a loss without the transpose term, MaxSim that ignores the mask, …) are
  recognised and named. A failure shows the small case it failed on and the
  learner's output, never the reference output.
- :class:`NumericProblem`: a number, checked with a tolerance.
- :class:`ChoiceProblem`: multiple choice with an explanation for every option.

An untouched stub (it raises ``NotImplementedError``, returns ``None``, or the
answer variable still holds ``____``) is reported as *not attempted*.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

____ = object()  # the blank learners replace: `answer = ____`
CORRECT, INCORRECT, NOT_ATTEMPTED = "correct", "incorrect", "not attempted"
_ICONS = {CORRECT: "✅ Correct", INCORRECT: "❌ Incorrect", NOT_ATTEMPTED: "⏳ Not attempted"}


@dataclass
class Result:
    status: str  # CORRECT, INCORRECT or NOT_ATTEMPTED
    message: str

    def __bool__(self) -> bool:
        return self.status == CORRECT

    def __str__(self) -> str:
        return f"{_ICONS[self.status]}: {self.message}" if self.message else _ICONS[self.status]


class _NotAttempted(Exception):
    pass


def _report(result: Result, quiet: bool) -> Result | None:
    """Notebook cells print the verdict and return nothing (no duplicate repr); tests ask for the Result."""
    if quiet:
        return result
    print(result)
    return None


def _learner_namespace() -> dict:
    import __main__

    return vars(__main__)


@dataclass
class Problem:
    """What every problem has: a name the learner sees, a prompt, hints and a solution."""

    var: str  # the name the learner defines in the notebook
    prompt: str  # markdown shown in the notebook
    hints: list[str] = field(default_factory=list)  # from gentle to explicit
    solution_text: str = ""  # shown by solution()
    stub: str = ""  # the code cell a learner starts from
    solution_code: str = ""  # the same cell, solved (the solved notebook uses it)
    _hints_shown: int = field(default=0, repr=False)

    def _lookup(self, namespace: dict | None):
        ns = _learner_namespace() if namespace is None else namespace
        if self.var not in ns:
            raise _NotAttempted(f"define `{self.var}` in a cell above, run it, then check again")
        value = ns[self.var]
        if value is ____:
            raise _NotAttempted(f"replace the blank `____` in `{self.var} = ____` with your answer")
        return value

    def check(self, namespace: dict | None = None, quiet: bool = False) -> Result | None:
        """Check the learner's work and print the verdict (``quiet=True``: return the :class:`Result` instead)."""
        try:
            result = self._check(self._lookup(namespace))
        except _NotAttempted as why:
            result = Result(NOT_ATTEMPTED, str(why))
        return _report(result, quiet)

    def _check(self, value) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError

    def hint(self, level: int | None = None) -> None:
        """Show the next hint (or hint ``level``, counting from 1)."""
        if not self.hints:
            text = "No hint for this one: re-read the prompt, then try solution()."
        else:
            if level is None:
                self._hints_shown = min(self._hints_shown + 1, len(self.hints))
                level = self._hints_shown
            level = max(1, min(level, len(self.hints)))
            more = " (call hint() again for more)" if level < len(self.hints) else ""
            text = f"💡 Hint {level}/{len(self.hints)}: {self.hints[level - 1]}{more}"
        print(text)

    def solution(self) -> None:
        """Show the model solution."""
        print("💬 Solution:\n" + (self.solution_text or self.solution_code))


def _to_numpy(x) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x, dtype=float)


def _fmt(x, decimals: int = 3) -> str:
    arr = _to_numpy(x)
    return np.array2string(np.round(arr, decimals), separator=", ", max_line_width=90)


@dataclass
class FunctionProblem(Problem):
    """The learner implements ``var``; it must match ``reference`` on every hidden case."""

    reference: Callable[..., Any] | None = None
    cases: Callable[[np.random.Generator], list[dict]] | None = None  # first case should be small: it is shown
    mistakes: list[tuple[Callable[..., Any], str]] = field(default_factory=list)  # (wrong impl, what is wrong)
    atol: float = 1e-5
    rtol: float = 1e-4
    seed: int = 1234
    describe_case: Callable[[dict], str] | None = None

    def _check(self, fn) -> Result:
        if not callable(fn):
            return Result(INCORRECT, f"`{self.var}` should be a function, but it is a {type(fn).__name__}")
        for i, case in enumerate(self.cases(np.random.default_rng(self.seed))):
            try:
                got = fn(**case)
            except NotImplementedError:
                raise _NotAttempted(f"`{self.var}` still raises NotImplementedError: write its body") from None
            except Exception as err:  # the learner's bug: say where, keep going
                return Result(INCORRECT, f"calling `{self.var}` raised {type(err).__name__}: {err}\n"
                                         f"on this case:\n{self._show(case)}")
            if got is None:
                if i == 0:
                    raise _NotAttempted(f"`{self.var}` returns None: did you forget `return`?")
                return Result(INCORRECT, f"`{self.var}` returned None on a case")
            want = self.reference(**case)
            verdict = self._compare(got, want, case)
            if verdict is not None:
                return verdict
        return Result(CORRECT, "matches the reference on every hidden case.")

    def _show(self, case: dict) -> str:
        if self.describe_case:
            return self.describe_case(case)
        return "\n".join(f"  {k} = {_fmt(v) if _is_array(v) else repr(v)}" for k, v in case.items())

    def _compare(self, got, want, case) -> Result | None:
        g, w = _to_numpy(got), _to_numpy(want)
        if g.shape != w.shape:
            return Result(INCORRECT, f"wrong shape: got {tuple(g.shape)}, expected {tuple(w.shape)}, on this case:\n"
                                     f"{self._show(case)}")
        if not np.all(np.isfinite(g)):
            return Result(INCORRECT, f"your output contains NaN or inf on this case:\n{self._show(case)}")
        if np.allclose(g, w, atol=self.atol, rtol=self.rtol):
            return None
        for wrong, message in self.mistakes:
            try:
                if np.allclose(g, _to_numpy(wrong(**case)), atol=self.atol, rtol=self.rtol):
                    return Result(INCORRECT, f"{message}\nIt failed on this case:\n{self._show(case)}\n"
                                             f"your output: {_fmt(g)}")
            except Exception:
                continue
        return Result(INCORRECT, f"wrong value on this case:\n{self._show(case)}\nyour output: {_fmt(g)}\n"
                                 "(compare with what you expect by hand; hint() helps)")


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype")


@dataclass
class NumericProblem(Problem):
    """A number, correct within ``rel_tol`` (or ``abs_tol``)."""

    answer: float = 0.0
    rel_tol: float = 1e-2
    abs_tol: float = 0.0
    too_low: str = "too low"
    too_high: str = "too high"

    def _check(self, value) -> Result:
        try:
            value = float(value)
        except (TypeError, ValueError):
            return Result(INCORRECT, f"`{self.var}` should be a number, got {type(value).__name__}")
        if math.isclose(value, self.answer, rel_tol=self.rel_tol, abs_tol=self.abs_tol):
            return Result(CORRECT, "")
        return Result(INCORRECT, f"{value:g} is {self.too_low if value < self.answer else self.too_high}.")


@dataclass
class ChoiceProblem(Problem):
    """Multiple choice; every option carries the explanation shown when it is chosen."""

    options: dict[str, str] = field(default_factory=dict)  # letter -> option text
    correct: str = ""
    explanations: dict[str, str] = field(default_factory=dict)  # letter -> why right or wrong

    def _check(self, value) -> Result:
        letter = str(value).strip().lower()[:1] if value is not None else ""
        if letter not in self.options:
            return Result(INCORRECT, f"answer with one of the letters {', '.join(sorted(self.options))}; got {value!r}")
        if letter == self.correct:
            return Result(CORRECT, self.explanations[letter])
        return Result(INCORRECT, f"({letter}) is not it: {self.explanations[letter]}")

    def options_markdown(self) -> str:
        return "\n".join(f"- **({k})** {v}" for k, v in self.options.items())


@dataclass
class KeyPointsProblem(Problem):
    """A written answer, self-checked for the key points a good answer covers.

    ``check(text)`` looks for each key point (a regular expression, case-insensitive)
    and names the ones missing, by label, without quoting the model answer.
    """

    question: str = ""
    model_answer: str = ""
    key_points: list[tuple[str, str]] = field(default_factory=list)  # (label, regex)

    def check(self, answer: str | None = None, namespace: dict | None = None, quiet: bool = False) -> Result | None:
        import re

        if answer is None:
            return super().check(namespace, quiet)
        text = str(answer).strip()
        if not text or text == "...":
            result = Result(NOT_ATTEMPTED, "write your answer as a string: check(\"your answer\")")
        else:
            missing = [label for label, pattern in self.key_points if not re.search(pattern, text, re.IGNORECASE | re.DOTALL)]
            result = (Result(CORRECT, f"covers all {len(self.key_points)} key points.") if not missing else
                      Result(INCORRECT, "a good answer also covers: " + "; ".join(missing) + "."))
        return _report(result, quiet)

    def _check(self, value) -> Result:
        return self.check(value, quiet=True)

    def solution(self) -> None:
        print("💬 Model answer:\n" + self.model_answer)
