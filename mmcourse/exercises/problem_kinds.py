"""Problem kinds and their checkers.

- :class:`FunctionProblem`: the learner implements a function; it runs on cases drawn
  fresh on every check (seeded; a failure names the seed, ``check(seed=...)`` replays
  it), always together with the edge cases where plausible wrong answers diverge.
  Every call gets its own copy of the inputs; an exception, a wrong type or a wrong
  shape is a ❌ that says what was expected, never a crash of the checker. A
  ``probe`` adds a structural check the value alone cannot make (e.g. "never builds
  an (N, N) block"). Known wrong implementations are recognised and named. A failure
  shows the case and the learner's output, never the reference output.
- :class:`NumericProblem`: a number. Computed answers say which way they are off;
  recalled facts (``recalled=True``) do not, so they cannot be found by bisection.
- :class:`ChoiceProblem`: multiple choice with an explanation for every option.
- :class:`RubricProblem` (in :mod:`.rubric`): a written answer, self-assessed against
  a model answer's points; prose is never machine-graded.

An untouched stub (it raises ``NotImplementedError``, returns ``None``, or the
answer variable still holds ``____``) is reported as *not attempted*.
"""
from __future__ import annotations

import copy
import math
import secrets
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
    case_text: str = ""  # the learner-visible inputs of the failing case (tests strip it before searching)
    case: dict | None = None  # the failing case itself (for tests; never printed whole)

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
    topic: str = ""  # for the mock interview's per-topic score
    minutes: float = 5.0  # what it takes in an interview (the mock interview's budget)
    _hints_shown: int = field(default=0, repr=False)

    def _lookup(self, namespace: dict | None):
        ns = _learner_namespace() if namespace is None else namespace
        if self.var not in ns:
            raise _NotAttempted(f"define `{self.var}` in a cell above, run it, then check again")
        value = ns[self.var]
        if value is ____:
            raise _NotAttempted(f"replace the blank `____` in `{self.var} = ____` with your answer")
        return value

    def check(self, namespace: dict | None = None, quiet: bool = False, **kwargs) -> Result | None:
        """Check the learner's work and print the verdict (``quiet=True``: return the :class:`Result` instead)."""
        try:
            result = self._check(self._lookup(namespace), **kwargs)
        except _NotAttempted as why:
            result = Result(NOT_ATTEMPTED, str(why))
        return _report(result, quiet)

    def _check(self, value, **kwargs) -> Result:  # pragma: no cover - abstract
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


# ----------------------------------------------------------------------------- values

class _NotNumeric(Exception):
    pass


def _is_tensor(x) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, torch.Tensor)


def _to_numpy(x) -> np.ndarray:
    """A float64 array from a tensor, an array, a number or a (nested) list of numbers; else :class:`_NotNumeric`."""
    if _is_tensor(x):
        if x.is_complex():
            raise _NotNumeric("a complex tensor")
        return x.detach().cpu().double().numpy()
    if isinstance(x, (str, bytes, dict, set)) or x is None or callable(x):
        raise _NotNumeric(f"a {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise _NotNumeric(f"a {type(x).__name__} that is not a number or an array of numbers") from None
    return arr


def _kind(x) -> str:
    if _is_tensor(x):
        return "a tensor"
    if isinstance(x, np.ndarray):
        return "a numpy array"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)}"
    if isinstance(x, (int, float, np.number)):
        return "a number"
    return f"a {type(x).__name__}"


def _expected(want) -> str:
    """What the output should look like: kind and shape, never values."""
    arr = _to_numpy(want)
    if arr.ndim == 0:
        return "a single number" if not _is_tensor(want) else "a 0-d tensor (a single number)"
    return f"{_kind(want)} of shape {tuple(arr.shape)}"


def _fmt(x, decimals: int = 5) -> str:
    arr = _to_numpy(x)
    if arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) and np.abs(arr).max() < 1e15:
        arr = arr.astype(np.int64)  # whole numbers print as integers
        if arr.size > 64:
            return f"<array of shape {tuple(arr.shape)}; first values {arr.ravel()[:6].tolist()} …>"
        return np.array2string(arr, separator=", ", max_line_width=90)
    if arr.size > 64:
        return f"<array of shape {tuple(arr.shape)}; first values {np.round(arr.ravel()[:6], decimals).tolist()} …>"
    return np.array2string(np.round(arr, decimals), separator=", ", max_line_width=90)


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype")


def _describe_value(v) -> str:
    if _is_array(v):
        dtype = str(v.dtype).replace("torch.", "")
        if np.prod(v.shape) > 48:
            arr = _to_numpy(v)
            return (f"{'tensor' if _is_tensor(v) else 'array'} of shape {tuple(v.shape)}, {dtype}, values in "
                    f"[{arr.min():.3g}, {arr.max():.3g}]")
        return f"{_fmt(v, 3)}  ({dtype}, shape {tuple(v.shape)})"
    if isinstance(v, (list, tuple)) and any(_is_array(x) for x in v):
        return "[" + ", ".join(_describe_value(x) for x in v) + "]"
    return repr(v)


def _has_float32(case: dict) -> bool:
    def f32(v):
        if _is_array(v):
            return str(v.dtype).endswith("float32") or str(v.dtype).endswith("float16")
        if isinstance(v, (list, tuple)):
            return any(f32(x) for x in v)
        return False

    return any(f32(v) for v in case.values())


def fresh_seed() -> int:
    """A new seed for one check (printed with any failure so the cases can be replayed)."""
    return secrets.randbelow(10**6)


# ----------------------------------------------------------------------------- function problems

@dataclass
class FunctionProblem(Problem):
    """The learner implements ``var``; it must match ``reference`` on every case.

    ``cases(rng)`` returns a list of keyword dicts: the random cases and the edge cases
    (the first one should be small: it is the one most failures show). ``probe(fn,
    case)`` returns ``None`` or a message for a structural failure; it runs on
    ``probe_cases(rng)`` (default: every case). ``mistakes`` are the named wrong
    implementations: a learner output that matches one on the failing case gets its
    message. Tests hold more wrong implementations than are named here.
    """

    reference: Callable[..., Any] | None = None
    cases: Callable[[np.random.Generator], list[dict]] | None = None
    mistakes: list[tuple[Callable[..., Any], str]] = field(default_factory=list)  # (wrong impl, what is wrong)
    atol: float = 1e-6
    rtol: float = 1e-5
    atol32: float = 1e-4  # used when a case holds float32 inputs
    rtol32: float = 1e-3
    seed: int | None = None  # None: fresh cases on every check
    describe_case: Callable[[dict], str] | None = None
    probe: Callable[[Callable, dict], str | None] | None = None
    probe_cases: Callable[[np.random.Generator], list[dict]] | None = None
    compare: Callable[[Any, Any, dict], str | None] | None = None  # custom comparison: None or what is wrong
    batch_runner: Callable[[Callable, list], list] | None = None  # runs the learner's fn on all cases at once
    # (e.g. in two processes); returns one output or Exception per case. Reference and mistakes run as fn(**case).

    def _check(self, fn, seed: int | None = None) -> Result:
        if not callable(fn):
            return Result(INCORRECT, f"`{self.var}` should be a function, but it is {_kind(fn)}")
        seed = seed if seed is not None else (self.seed if self.seed is not None else fresh_seed())
        replay = f"(cases drawn with seed {seed}; `check(seed={seed})` replays them)"
        cases = self.cases(np.random.default_rng(seed))
        outputs = self.batch_runner(fn, copy.deepcopy(cases)) if self.batch_runner else [None] * len(cases)
        for i, case in enumerate(cases):
            verdict = self._check_case(fn, case, first=(i == 0), replay=replay, precomputed=outputs[i])
            if verdict is not None:
                return verdict
        if self.probe is not None:
            probes = self.probe_cases(np.random.default_rng(seed)) if self.probe_cases else cases
            for case in probes:
                try:
                    problem = self.probe(fn, copy.deepcopy(case))
                except Exception as err:  # the learner's code raised inside the probe
                    problem = f"calling `{self.var}` raised {type(err).__name__}: {err}"
                if problem:
                    shown = self._show(case)
                    return Result(INCORRECT, f"{problem}\non this case {replay}:\n{shown}", case_text=shown, case=case)
        return Result(CORRECT, f"matches the reference on all {len(cases)} cases (random ones and the edge cases)"
                               + (", and passes the structural check." if self.probe else "."))

    def _call(self, fn, case):
        return fn(**case)

    def _check_case(self, fn, case: dict, first: bool, replay: str, precomputed=None) -> Result | None:
        shown = self._show(case)

        def fail(text):
            return Result(INCORRECT, f"{text}\non this case {replay}:\n{shown}", case_text=shown, case=case)

        want = self._call(self.reference, copy.deepcopy(case))
        try:
            if isinstance(precomputed, BaseException):
                raise precomputed
            got = precomputed if self.batch_runner else self._call(fn, copy.deepcopy(case))
        except NotImplementedError:
            raise _NotAttempted(f"`{self.var}` still raises NotImplementedError: write its body") from None
        except Exception as err:  # the learner's bug: say which case, keep the checker alive
            return fail(f"calling `{self.var}` raised {type(err).__name__}: {err}")
        if got is None:
            if first:
                raise _NotAttempted(f"`{self.var}` returns None: did you forget `return`?")
            return fail(f"`{self.var}` returned None")
        try:
            problem = self.compare(got, want, case) if self.compare else self._compare(got, want, case)
        except Exception as err:  # never crash on odd learner output
            problem = f"could not compare your output ({_kind(got)}): {type(err).__name__}: {err}"
        if problem is None:
            return None
        named = self._named_mistake(got, case)
        return fail(named + f"\nyour output: {self._show_output(got)}" if named else problem)

    def _tolerances(self, case) -> tuple[float, float]:
        if self.atol == 0 and self.rtol == 0:
            return 0.0, 0.0
        if _has_float32(case):
            return max(self.atol, self.atol32), max(self.rtol, self.rtol32)
        return self.atol, self.rtol

    def _show_output(self, got) -> str:
        try:
            if isinstance(got, tuple):
                return "(" + ", ".join(_fmt(g) for g in got) + ")"
            return _fmt(got)
        except Exception:
            return repr(got)[:200]

    def _show(self, case: dict) -> str:
        if self.describe_case:
            return self.describe_case(case)
        return "\n".join(f"  {k} = {_describe_value(v)}" for k, v in case.items())

    def _compare(self, got, want, case) -> str | None:
        """None when ``got`` matches ``want``; otherwise what is wrong (never the expected values)."""
        if isinstance(want, tuple):
            if not isinstance(got, (tuple, list)) or len(got) != len(want):
                return f"expected a tuple of {len(want)} outputs, got {_kind(got)}"
            for j, (g, w) in enumerate(zip(got, want)):
                problem = self._compare_one(g, w, case, f"output {j} of the tuple: ")
                if problem:
                    return problem
            return None
        return self._compare_one(got, want, case, "")

    def _compare_one(self, got, want, case, where: str) -> str | None:
        try:
            g = _to_numpy(got)
        except _NotNumeric as what:
            return f"{where}`{self.var}` returned {what}; expected {_expected(want)}"
        w = _to_numpy(want)
        if g.shape != w.shape:
            return f"{where}wrong shape: got {tuple(g.shape)}, expected {_expected(want)}"
        if not np.all(np.isfinite(g)):
            return (f"{where}your output contains NaN or inf{' (look at the inputs: large values?)' if np.isfinite(w).all() else ''}"
                    f"\nyour output: {_fmt(g)}")
        atol, rtol = self._tolerances(case)
        if np.allclose(g, w, atol=atol, rtol=rtol):
            return None
        return (f"{where}wrong value\nyour output: {_fmt(g)}\n"
                "(work this case out by hand or with a trusted one-liner; hint() helps)")

    def _named_mistake(self, got, case) -> str | None:
        for wrong, message in self.mistakes:
            try:
                theirs = self._call(wrong, copy.deepcopy(case))
                if isinstance(theirs, tuple):
                    same = isinstance(got, (tuple, list)) and len(got) == len(theirs) and all(
                        _close(g, t, *self._tolerances(case)) for g, t in zip(got, theirs))
                else:
                    same = _close(got, theirs, *self._tolerances(case))
            except Exception:
                continue
            if same:
                return message
        return None


def _close(a, b, atol, rtol) -> bool:
    try:
        x, y = _to_numpy(a), _to_numpy(b)
    except _NotNumeric:
        return False
    return x.shape == y.shape and np.allclose(x, y, atol=atol, rtol=rtol, equal_nan=True)


# ----------------------------------------------------------------------------- structural probes

def largest_allocation(fn: Callable, *args, **kwargs) -> tuple[Any, int, tuple]:
    """Run ``fn`` and return ``(output, bytes, shape)`` of the largest tensor storage any torch op allocated.

    A :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every op's outputs;
    views share their base's storage, so only real allocations count.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class _Largest(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.bytes, self.shape = 0, ()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    try:
                        size = t.untyped_storage().nbytes()
                    except Exception:  # pragma: no cover - tensors without storage
                        continue
                    if size > self.bytes:
                        self.bytes, self.shape = size, tuple(t.shape)
            return out

    mode = _Largest()
    with mode:
        out = fn(*args, **kwargs)
    return out, mode.bytes, mode.shape


# ----------------------------------------------------------------------------- numbers and choices

@dataclass
class NumericProblem(Problem):
    """A number, correct within ``rel_tol`` (or ``abs_tol``).

    ``recalled=True`` marks a fact from a paper: a wrong value is told only that it is
    wrong (a direction would let the fact be found by bisection). A computed answer is
    told which way it is off. ``mistakes`` name known wrong values (a unit slip, a
    factor of 2) with targeted feedback that does not state the answer.
    """

    answer: float = 0.0
    rel_tol: float = 1e-2
    abs_tol: float = 0.0
    recalled: bool = False
    mistakes: list[tuple[float, str]] = field(default_factory=list)  # (wrong value, what went wrong)

    def _check(self, value, **_) -> Result:
        if isinstance(value, bool):
            return Result(INCORRECT, f"`{self.var}` should be a number, got a bool")
        try:
            value = float(value)
        except (TypeError, ValueError):
            return Result(INCORRECT, f"`{self.var}` should be a number, got {_kind(value)}")
        if not math.isfinite(value):
            return Result(INCORRECT, f"`{self.var}` should be a finite number, got {value}")
        if math.isclose(value, self.answer, rel_tol=self.rel_tol, abs_tol=self.abs_tol):
            return Result(CORRECT, "")
        for wrong, message in self.mistakes:
            if math.isclose(value, wrong, rel_tol=max(self.rel_tol, 1e-9), abs_tol=self.abs_tol):
                return Result(INCORRECT, f"{value:g}: {message}")
        if self.recalled:
            return Result(INCORRECT, f"{value:g} is not the reported figure (a recalled fact: look it up where "
                                     "hint() points rather than guessing).")
        return Result(INCORRECT, f"{value:g} is {'too low' if value < self.answer else 'too high'}: redo the arithmetic.")


@dataclass
class ChoiceProblem(Problem):
    """Multiple choice; every option carries the explanation shown when it is chosen.

    A wrong option's explanation says why *that* option fails; it never names the right one.
    """

    options: dict[str, str] = field(default_factory=dict)  # letter -> option text
    correct: str = ""
    explanations: dict[str, str] = field(default_factory=dict)  # letter -> why right or wrong

    def _check(self, value, **_) -> Result:
        letter = value.strip().lower() if isinstance(value, str) else ""
        letter = letter.strip("()") if len(letter) <= 3 else letter
        if letter not in self.options:
            return Result(INCORRECT, f"answer with one of the letters {', '.join(sorted(self.options))}; got {value!r}")
        if letter == self.correct:
            return Result(CORRECT, self.explanations[letter])
        return Result(INCORRECT, f"({letter}) is not it: {self.explanations[letter]}")

    def options_markdown(self) -> str:
        return "\n".join(f"- **({k})** {v}" for k, v in self.options.items())
