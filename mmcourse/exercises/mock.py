"""A mock interview: a balanced, timed draw of written, coding and design questions, scored per topic."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .rubric import SITTING


@dataclass
class MockInterview:
    items: list
    minutes: float
    started: float = field(default_factory=time.monotonic)

    def plan(self) -> str:
        lines = [f"Mock interview: {len(self.items)} questions, {sum(q.minutes for q in self.items):.0f} of "
                 f"{self.minutes:.0f} minutes planned. Answer each aloud or in writing, then reveal() and tick."]
        for q in self.items:
            lines.append(f"- interview.{q.qid} ({q.kind}, {q.topic}, {q.minutes:.0f} min): {q.question}")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.plan()

    def __repr__(self) -> str:
        return self.plan()

    def finish(self, ticked: dict | None = None, namespace: dict | None = None, quiet: bool = False):
        """Record rubric ticks (``{"q5": [1, 3], ...}``; live checkboxes count too), run every automatic part
        (looked up in ``namespace``, default: the notebook's), and report the time and the per-topic score."""
        ids = {q.qid for q in self.items}
        for qid, points in (ticked or {}).items():
            if qid not in ids:
                raise ValueError(f"{qid!r} is not in this mock interview; its questions are {sorted(ids)}")
        for q in self.items:
            if ticked and q.qid in ticked:
                q.rubric(ticked=ticked[q.qid], quiet=True)
            if q.sub_questions:
                q.check(namespace, quiet=True)
        elapsed = (time.monotonic() - self.started) / 60
        text = (f"time: {elapsed:.0f} of {self.minutes:.0f} minutes\n" + SITTING.report(quiet=True))
        if quiet:
            return text
        print(text)
        return None


def mock_interview(minutes: float = 45, topics=None, seed: int | None = None, reset: bool = True) -> MockInterview:
    """Draw a balanced set (written, coding and design in turn) that fits ``minutes``; ``topics`` restricts the draw."""
    from . import interview

    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    pool = [q for q in interview.QUESTIONS if topics is None or q.topic in set(topics)]
    if not pool:
        known = sorted({q.topic for q in interview.QUESTIONS})
        raise ValueError(f"no question has a topic in {topics!r}; topics: {', '.join(known)}")
    rng = np.random.default_rng(seed)
    by_kind = {k: [pool[i] for i in rng.permutation(len(pool)) if pool[i].kind == k] for k in ("coding", "design", "written")}
    chosen, budget = [], float(minutes)
    while any(by_kind.values()):
        progressed = False
        for kind in ("written", "coding", "design"):
            queue = by_kind[kind]
            while queue and queue[0].minutes > budget:
                queue.pop(0)
            if queue:
                q = queue.pop(0)
                chosen.append(q)
                budget -= q.minutes
                progressed = True
        if not progressed:
            break
    if reset:
        SITTING.reset()
    return MockInterview(items=chosen, minutes=float(minutes))
