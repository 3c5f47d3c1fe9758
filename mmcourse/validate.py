"""Argument checks shared by the whole library: one wording for each kind of bad value.

Every check raises ``ValueError`` naming the argument, the form it must take, and the value it
got (``repr``), and returns the value in its canonical form (a Python ``int``), so a caller
writes ``k = positive_int(k, "k")`` and never repeats the check. ``bool`` is never an integer
here (``True`` is not a batch size); numpy integers are.
"""
from __future__ import annotations

import numbers

__all__ = ["is_int", "integer", "positive_int"]

_GLOSS = {0: "a non-negative integer", 1: "a positive integer"}


def is_int(value) -> bool:
    """True for Python and numpy integers, False for ``bool`` (and everything else)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def integer(value, name: str, *, minimum: int | None = None, maximum: int | None = None, unit: str = "",
            optional: bool = False) -> int | None:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound may be open); ``None`` passes when
    ``optional``. ``unit`` ("pixels", "Hz") is named in the message."""
    if value is None and optional:
        return None
    within = is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if within:
        return int(value)
    number = f"an integer number of {unit}" if unit else "an integer"
    unit = f" {unit}" if unit else ""
    or_none = " or None" if optional else ""
    if minimum is not None and maximum is not None:
        expected = f"{number} in [{minimum}, {maximum}]{or_none}"
    elif minimum in _GLOSS:
        expected = f"an integer >= {minimum}{unit}{or_none} ({_GLOSS[minimum]})"
    elif minimum is not None:
        expected = f"an integer of at least {minimum}{unit}{or_none}"
    elif maximum is not None:
        expected = f"an integer <= {maximum}{unit}{or_none}"
    else:
        expected = f"an integer{unit}{or_none}"
    raise ValueError(f"{name} must be {expected}, got {value!r}")


def positive_int(value, name: str, *, optional: bool = False) -> int | None:
    """``value`` as an ``int >= 1`` (``None`` passes when ``optional``)."""
    return integer(value, name, minimum=1, optional=optional)
