"""Written answers, graded honestly: a self-assessment rubric plus auto-checked sub-questions.

Prose is not machine-graded here. The learner answers (aloud or in writing), then
``q.reveal()`` shows the model answer and the points a complete answer covers, and
the learner ticks the points they covered:

- in a live notebook, with checkboxes (ipywidgets) that update the score at once;
- anywhere else (nbval, a script, a saved notebook), with ``q.rubric(ticked=[1, 3])``.

Either way the ticks are recorded in :data:`SITTING`, which reports a score per
question and per topic (``SITTING.report()``). The parts of a question that *can* be
checked (a number, a choice, a short computation) are sub-questions, checked like
the exercises: ``q.check()`` runs them.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from .problem_kinds import INCORRECT, NOT_ATTEMPTED, Problem, Result, _report

KINDS = ("written", "coding", "design")


@dataclass
class Sitting:
    """What one sitting has scored: rubric ticks and auto-checked results, by question."""

    ticks: dict = field(default_factory=dict)  # question id -> (ticked point numbers, n points, topic)
    checks: dict = field(default_factory=dict)  # problem id -> (passed, topic)

    def tick(self, qid: str, ticked: list[int], n_points: int, topic: str) -> None:
        self.ticks[qid] = (sorted(set(ticked)), n_points, topic)

    def record_check(self, pid: str, passed: bool, topic: str) -> None:
        self.checks[pid] = (bool(passed), topic)

    def reset(self) -> None:
        self.ticks.clear()
        self.checks.clear()

    def by_topic(self) -> dict[str, dict[str, float]]:
        """topic -> points ticked / points possible, checks passed / checks run."""
        out: dict[str, dict[str, float]] = {}
        for ticked, total, topic in self.ticks.values():
            row = out.setdefault(topic, {"ticked": 0, "points": 0, "passed": 0, "checked": 0})
            row["ticked"] += len(ticked)
            row["points"] += total
        for passed, topic in self.checks.values():
            row = out.setdefault(topic, {"ticked": 0, "points": 0, "passed": 0, "checked": 0})
            row["passed"] += int(passed)
            row["checked"] += 1
        return out

    def report(self, quiet: bool = False) -> str | None:
        """A per-topic table: rubric points ticked (self-assessed) and sub-questions passed (auto-checked)."""
        rows = self.by_topic()
        if not rows:
            text = "Nothing scored yet in this sitting: tick rubric points (reveal() / rubric(ticked=[...])) or run checks."
        else:
            lines = ["| topic | rubric points ticked (self-assessed) | checks passed (automatic) |", "|---|---|---|"]
            totals = [0, 0, 0, 0]
            for topic in sorted(rows):
                r = rows[topic]
                lines.append(f"| {topic} | {_ratio(r['ticked'], r['points'])} | {_ratio(r['passed'], r['checked'])} |")
                for j, key in enumerate(("ticked", "points", "passed", "checked")):
                    totals[j] += r[key]
            lines.append(f"| **all** | {_ratio(totals[0], totals[1])} | {_ratio(totals[2], totals[3])} |")
            text = "\n".join(lines)
        if quiet:
            return text
        print(text)
        return None


def _ratio(a: int, b: int) -> str:
    return "–" if b == 0 else f"{a}/{b} ({100 * a / b:.0f} %)"


SITTING = Sitting()


@dataclass
class RubricProblem(Problem):
    """A question answered in words; self-assessed against the model answer's ``points``.

    ``sub_questions`` are the parts a machine can check (numbers, choices, code); their
    variables are looked up like any exercise's, and ``check()`` runs them all.
    """

    question: str = ""
    model_answer: str = ""
    points: list[str] = field(default_factory=list)  # what a complete answer covers (shown with the model answer)
    sub_questions: list[Problem] = field(default_factory=list)
    kind: str = "written"  # "written", "coding" (sub-questions are code) or "design" (numeric sub-answers)
    qid: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.points:
            raise ValueError(f"{self.qid or self.question!r}: a rubric needs at least one point")

    # --- the self-assessment -------------------------------------------------------------
    def rubric(self, ticked: list[int] | tuple[int, ...] = (), quiet: bool = False) -> Result | None:
        """Record which rubric points (numbered from 1) your answer covered; prints the score for this question."""
        if isinstance(ticked, int):
            ticked = [ticked]
        bad = [t for t in ticked if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= len(self.points)]
        if bad:
            raise ValueError(f"ticked must hold point numbers 1..{len(self.points)}, got {bad!r}")
        SITTING.tick(self.qid, list(ticked), len(self.points), self.topic)
        n = len(set(ticked))
        missed = [i for i in range(1, len(self.points) + 1) if i not in set(ticked)]
        text = (f"self-assessed {n}/{len(self.points)} rubric points"
                + (f"; re-read point{'s' if len(missed) > 1 else ''} {', '.join(map(str, missed))} of the model answer"
                   if missed else "; every point covered")
                + ". (Self-assessed: nothing machine-graded your prose.)")
        result = Result("correct" if not missed else INCORRECT, text)
        if quiet:
            return result
        print(("📝 " if missed else "📝 ✓ ") + text)
        return None

    def reveal(self, static: bool | None = None):
        """The model answer and its rubric points; in a live notebook, with checkboxes that score this sitting."""
        return RubricView(self, static)

    def rubric_markdown(self) -> str:
        points = "\n".join(f"{i}. {p}" for i, p in enumerate(self.points, start=1))
        return (f"<details><summary><b>Model answer</b> (open after answering)</summary>\n\n{self.model_answer}\n\n"
                f"**Rubric: a complete answer covers**\n\n{points}\n\n</details>\n\n"
                f"Tick what you covered: the checkboxes (live notebook) or "
                f"`{self._handle()}.rubric(ticked=[...])`.")

    def _handle(self) -> str:
        return f"interview.{self.qid}" if self.qid else "q"

    # --- the auto-checked parts ------------------------------------------------------------
    def check(self, namespace: dict | None = None, quiet: bool = False, **kwargs) -> Result | None:
        """Check the sub-questions (the parts a machine can check); the prose is for the rubric."""
        if not self.sub_questions:
            result = Result(NOT_ATTEMPTED, "this question has no automatic part: answer it, then reveal() the model "
                                           "answer and tick the points you covered.")
            return _report(result, quiet)
        results = []
        for sub in self.sub_questions:
            r = sub.check(namespace, quiet=True, **kwargs)
            SITTING.record_check(f"{self.qid}:{sub.var}", bool(r), self.topic)
            results.append((sub, r))
        lines = [f"`{sub.var}`: {r}" for sub, r in results]
        statuses = {r.status for _, r in results}
        status = ("correct" if statuses == {"correct"} else NOT_ATTEMPTED if statuses == {NOT_ATTEMPTED} else INCORRECT)
        passed = sum(bool(r) for _, r in results)
        result = Result(status, f"{passed}/{len(results)} automatic parts right\n" + "\n".join(lines))
        return _report(result, quiet)

    def _check(self, value, **_) -> Result:  # pragma: no cover - check() is overridden
        raise NotImplementedError

    def solution(self) -> None:
        print("💬 Model answer:\n" + self.model_answer + "\n\nRubric:\n"
              + "\n".join(f"  {i}. {p}" for i, p in enumerate(self.points, start=1)))
        for sub in self.sub_questions:
            sub.solution()


class RubricView:
    """Displays a rubric: checkboxes in a live front end, a static markdown twin everywhere else.

    Like the course's playgrounds, one MIME bundle carries both (the front end picks);
    ``static=True`` (or ``MMCOURSE_STATIC_WIDGETS=1``) gives the markdown alone.
    """

    def __init__(self, problem: RubricProblem, static: bool | None = None):
        from ..widgets.base import static_requested

        self.problem = problem
        self.static = static_requested(static)
        self.widget = None
        if self.static is not True:
            self.widget = self._build_widget()

    def _build_widget(self):
        try:
            import ipywidgets as W
        except ImportError:  # pragma: no cover - ipywidgets is a dependency
            return None
        p = self.problem
        answer = W.HTML(f"<b>Model answer</b><p>{html.escape(p.model_answer)}</p><b>Tick the points you covered</b>")
        self.boxes = [W.Checkbox(value=False, description=f"{i}. {point}", indent=False,
                                 layout=W.Layout(width="100%"))
                      for i, point in enumerate(p.points, start=1)]
        self.score = W.HTML(f"self-assessed 0/{len(p.points)}")
        for box in self.boxes:
            box.observe(self._update, names="value")
        return W.VBox([answer, *self.boxes, self.score])

    def ticked(self) -> list[int]:
        return [i for i, box in enumerate(getattr(self, "boxes", []), start=1) if box.value]

    def _update(self, _change=None) -> None:
        ticked = self.ticked()
        SITTING.tick(self.problem.qid, ticked, len(self.problem.points), self.problem.topic)
        self.score.value = f"self-assessed {len(ticked)}/{len(self.problem.points)}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/markdown": self.problem.rubric_markdown(),
                  "text/plain": f"Model answer and rubric for: {self.problem.question}"}
        if self.widget is not None:
            widget_bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
            if isinstance(widget_bundle, tuple):
                widget_bundle = widget_bundle[0]
            view = (widget_bundle or {}).get("application/vnd.jupyter.widget-view+json")
            if view is not None:
                bundle["application/vnd.jupyter.widget-view+json"] = view
        return bundle
