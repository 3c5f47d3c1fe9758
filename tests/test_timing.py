"""mmcourse.timing.best_of: the fastest run, each run timed on its own, bad repeat counts refused."""
import pytest

from mmcourse import timing


def test_best_of_returns_the_fastest_run(monkeypatch):
    clock = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])  # runs of 3 s, 1 s and 2 s
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    assert timing.best_of(lambda: calls.append(1), repeats=3) == 1.0
    assert len(calls) == 3


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "3"])
def test_best_of_refuses_a_bad_repeat_count(bad):
    with pytest.raises(ValueError, match="repeats must be an integer >= 1"):
        timing.best_of(lambda: None, repeats=bad)
