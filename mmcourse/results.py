"""Measured results: the only numbers the course's prose and README may state.

A notebook cell that measures something records it::

    from mmcourse.results import record, claim
    record("nb01.paraphrase_single", acc, "{:.2f}")             # shows and stores 'nb01.paraphrase_single = 0.42'
    claim("nb07.hybrid_beats_text", hybrid > text,
          f"hybrid search beats text-only ({hybrid:.3f} vs {text:.3f})")   # asserts, then records the sentence

A figure about a model says which (``model=clip``): for a random-weight stand-in of a hub model
(``mmcourse.is_standin``), ``claim`` and ``record`` print "not checked: <name> is a random-weight
stand-in" and neither assert nor store, so a stand-in can run every code path without making a
notebook lie or fail on a number; for a course or a real hub checkpoint they assert and record.

Each call shows a display output carrying a ``RESULT_MIME`` bundle, so the record is stored in
the notebook next to the cell that computed it. Prose quotes a result through a marker that
renders as plain text (HTML comments are invisible in Jupyter and on GitHub)::

    held-out accuracy rose to <!--r:nb01.paraphrase_single-->0.42<!--/r-->

``python tools/nb.py sync`` rewrites every marker's text from the stored records (notebooks and
README), and ``tests/test_teaching_truth.py`` fails when a marker disagrees with its record, names
an unknown key, or when prose states a number that is neither recorded, printed by the notebook,
a setting in its code, nor a citation. Benchmarks record with :func:`record_bench`, which keeps
their figures in ``results/benchmarks.json`` for the README.
"""
from __future__ import annotations

import json
import os
import pathlib
import re

RESULT_MIME = "application/vnd.mmcourse.result+json"
KEY_PATTERN = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
MARKER = re.compile(r"<!--r:(?P<key>[a-z0-9_.]+)-->(?P<text>.*?)<!--/r-->", re.DOTALL)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValueError(
            f"result key {key!r} is not of the form 'where.what' (lower-case words joined by dots, "
            "e.g. 'nb01.paraphrase_single')"
        )


def _to_json_value(value):
    """A plain JSON value: Python numbers, bools and strings; tensors and numpy scalars via .item()."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    raise TypeError(f"a recorded value must be a number, bool or string, got {type(value).__name__}")


def _show(key: str, value, text: str, plain: str) -> None:
    bundle = {RESULT_MIME: {"key": key, "value": value, "text": text}, "text/plain": plain}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python: print only
        print(plain)
        return
    if get_ipython() is None:
        print(plain)
    else:
        display(bundle, raw=True)


def _standin_note(model) -> str | None:
    """"not checked: <name> is a random-weight stand-in" when ``model`` is one, else None."""
    if model is None:
        return None
    from .models.embedder import is_standin

    if not is_standin(model):
        return None
    name = getattr(model, "name", None) or getattr(getattr(model, "config", None), "_name_or_path", None) \
        or type(model).__name__
    return f"not checked: {name} is a random-weight stand-in"


def record(key: str, value, fmt: str = "{:.2f}", model=None) -> None:
    """Record a measured value under ``key`` and show it as ``key = fmt.format(value)``.

    ``model``: the model the figure is about; for a random-weight stand-in the value is printed
    with a "not checked" note and not stored. Returns nothing, so a cell that ends with a
    ``record`` call shows the record once (a returned value would also be echoed as the cell's
    result wherever a trailing ``;`` is not honoured).
    """
    _check_key(key)
    value = _to_json_value(value)
    text = fmt.format(value)
    note = _standin_note(model)
    if note:
        print(f"{key} = {text} ({note})")
        return
    _show(key, value, text, f"{key} = {text}")


def claim(key: str, holds, sentence: str, model=None) -> None:
    """Assert a conclusion and record its sentence; a conclusion the measurement does not support fails here.

    ``model``: the model the conclusion is about; for a random-weight stand-in nothing is asserted
    or stored, and the cell prints "not checked: <name> is a random-weight stand-in".
    """
    _check_key(key)
    if hasattr(holds, "item"):
        holds = holds.item()
    if not isinstance(holds, bool):
        raise TypeError(f"claim {key!r}: 'holds' must be a bool (the comparison), got {type(holds).__name__}")
    note = _standin_note(model)
    if note:
        print(f"{note} ({key})")  # the sentence is not shown: it may be false here
        return
    if not holds:
        raise AssertionError(f"claim {key!r} does not hold: {sentence}")
    _show(key, True, sentence, f"✔ {sentence}")


# ---------------------------------------------------------------------------- reading records


def records_in_notebook(nb) -> dict[str, str]:
    """{key: text} of every result stored in a notebook's outputs (an nbformat node or its dict)."""
    found: dict[str, str] = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            payload = out.get("data", {}).get(RESULT_MIME)
            if payload:
                found[payload["key"]] = payload["text"]
    return found


def repo_root() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parent.parent


def bench_results_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MMCOURSE_BENCH_RESULTS", repo_root() / "results" / "benchmarks.json"))


def load_bench_results() -> dict[str, str]:
    path = bench_results_path()
    if not path.exists():
        return {}
    return {key: entry["text"] for key, entry in json.loads(path.read_text()).items()}


def record_bench(key: str, value, fmt: str = "{:.2f}") -> str:
    """Record a benchmark figure in ``results/benchmarks.json`` (with the load average), print it, return its text."""
    _check_key(key)
    value = _to_json_value(value)
    text = fmt.format(value)
    path = bench_results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    data[key] = {"value": value, "text": text, "load_average": None if load is None else round(load, 2)}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    print(f"{key} = {text}")
    return text


def render_markers(text: str, results: dict[str, str]) -> str:
    """``text`` with every marker's content replaced by its recorded text; unknown keys raise KeyError."""

    def fill(match: re.Match) -> str:
        key = match["key"]
        if key not in results:
            raise KeyError(f"marker names {key!r}, which no notebook or benchmark records")
        return f"<!--r:{key}-->{results[key]}<!--/r-->"

    return MARKER.sub(fill, text)
