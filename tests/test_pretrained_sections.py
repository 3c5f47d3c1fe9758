"""The pretrained sections: what the `make test` stage extracts and runs, and how their claims
treat a random-weight stand-in (printed "not checked", never asserted or stored)."""
import importlib.util
import pathlib
import re
import types

import nbformat
import pytest

from mmcourse import results
from mmcourse.models.embedder import STANDIN_MARK

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("pretrained_standins", ROOT / "tools" / "pretrained_standins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stage = _tool()


def _model(standin: bool, name="org/some-model"):
    """A library-model look-alike: what is_standin reads is the mark in its config."""
    config = types.SimpleNamespace(_name_or_path=name, **({STANDIN_MARK: True} if standin else {}))
    return types.SimpleNamespace(name=name, config=config)


# ----------------------------------------------------------------------------- claims about a model
def test_claim_about_a_standin_checks_nothing_and_says_so(capsys):
    standin = _model(True, "openai/clip-vit-base-patch32")
    assert results.claim("nb99.better", False, "A beats B (0.59 vs 0.60)", model=standin) is None  # no assertion
    results.record("nb99.score", 0.5912, "{:.2f}", model=standin)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "not checked: openai/clip-vit-base-patch32 is a random-weight stand-in (nb99.better)"
    assert "A beats B" not in out[0]  # a sentence that may be false is not shown
    assert out[1] == "nb99.score = 0.59 (not checked: openai/clip-vit-base-patch32 is a random-weight stand-in)"


def test_claim_about_a_real_model_asserts_and_fails_when_false(capsys):
    real = _model(False)
    results.claim("nb99.better", True, "A beats B", model=real)
    results.record("nb99.score", 0.5912, "{:.2f}", model=real)
    assert capsys.readouterr().out.splitlines() == ["✔ A beats B", "nb99.score = 0.59"]
    with pytest.raises(AssertionError, match="does not hold"):
        results.claim("nb99.better", False, "A beats B", model=real)
    with pytest.raises(TypeError, match="bool"):  # a stand-in does not excuse a malformed claim
        results.claim("nb99.better", 1, "A beats B", model=_model(True))


def test_standin_records_are_not_stored():
    """A stand-in's figure leaves no result bundle, so no marker can ever quote it."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        with results_captured(shell) as shown:
            results.record("nb99.score", 0.5, model=_model(True))
            results.claim("nb99.ok", True, "fine", model=_model(True))
            results.record("nb99.kept", 0.5, model=_model(False))
        assert [b.get(results.RESULT_MIME, {}).get("key") for b in shown] == ["nb99.kept"]
    finally:
        InteractiveShell.clear_instance()


class results_captured:
    """Collect what IPython's display would publish (the result bundles)."""

    def __init__(self, shell):
        self.shell, self.shown = shell, []

    def __enter__(self):
        self.saved = self.shell.display_pub.publish
        self.shell.display_pub.publish = lambda data, *a, **k: self.shown.append(data)
        return self.shown

    def __exit__(self, *exc):
        self.shell.display_pub.publish = self.saved


# ----------------------------------------------------------------------------- the reduced notebook
def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def test_section_keeps_only_tagged_code_cells():
    nb = _notebook(("code", "x = 1", None), ("markdown", "prose", ["pretrained"]),
                   ("code", "print('a')", ["pretrained"]), ("code", "y = 2", ["other"]),
                   ("code", "print('b')", ["pretrained", "other"]))
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="stale")]
    section = stage.pretrained_section(nb)
    assert [c.source for c in section.cells] == ["print('a')", "print('b')"]
    assert all(c.outputs == [] and c.execution_count is None for c in section.cells)
    assert nb.cells[2].outputs  # the notebook itself is untouched
    assert stage.pretrained_section(_notebook(("code", "x = 1", None))) is None


def test_a_notebook_that_switches_model_untagged_runs_whole():
    switch = 'clip = mmcourse.load_model("hub/x" if mmcourse.pretrained_enabled() else "course/x")'
    assert stage.runs_whole(_notebook(("code", switch, None)))
    assert not stage.runs_whole(_notebook(("code", switch, ["pretrained"])))
    assert not stage.runs_whole(_notebook(("code", "print(mmcourse.pretrained_enabled())", None)))
    branch = 'if mmcourse.pretrained_enabled():\n    clip = mmcourse.load_model("hub/x")'  # a section's cell, untagged
    assert not stage.runs_whole(_notebook(("code", branch, None)))


def _run(tmp_path, nb):
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return stage.run_section(path, timeout=60)


def test_run_section_fails_when_a_tagged_cell_raises_and_ignores_untagged_cells(tmp_path):
    nb = _notebook(("code", "raise RuntimeError('untagged: never run by the stage')", None),
                   ("code", "value = 41", ["pretrained"]),
                   ("code", "assert value == 42, 'wrong value'", ["pretrained"]))
    what, failures, _ = _run(tmp_path, nb)
    assert what == "2 pretrained cell(s)"
    assert [(f["cell"], f["error"]) for f in failures] == [(1, "AssertionError: wrong value")]

    nb.cells[2].source = "assert value == 41"
    assert _run(tmp_path, nb)[1] == []


def test_run_section_fails_when_the_section_printed_its_skip_line(tmp_path):
    nb = _notebook(("code", f"print({stage.SKIP_LINE!r} + ' to run this section')", ["pretrained"]))
    failures = _run(tmp_path, nb)[1]
    assert len(failures) == 1 and "skip line" in failures[0]["error"]


# ----------------------------------------------------------------------------- the course's notebooks
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_pretrained_branch_is_in_a_section_the_stage_runs(path):
    """An `if mmcourse.pretrained_enabled():` outside a tagged cell would never run against the stand-ins."""
    nb = nbformat.read(path, as_version=4)
    if stage.runs_whole(nb):
        return
    branch = re.compile(r"^\s*if mmcourse\.pretrained_enabled\(\)", re.MULTILINE)  # a statement, not a label
    untagged = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                and branch.search(c.source) and stage.PRETRAINED_TAG not in stage._tags(c)]
    assert not untagged, f"{path.name}: cells {untagged} branch on the setting but are not tagged 'pretrained'"
    section = stage.pretrained_section(nb)
    if section is not None:  # self-contained: the first cell imports and picks its device
        first = section.cells[0].source
        assert "import mmcourse" in first and "mmcourse.get_device()" in first, path.name
        for cell in section.cells:
            assert "mmcourse.pretrained_enabled()" in cell.source, f"{path.name}: an unguarded section cell"
