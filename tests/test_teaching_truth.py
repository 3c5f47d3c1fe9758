"""Teaching truth: what the notebooks and README state is what the notebooks and benchmarks measured."""
import copy
import importlib.util
import pathlib

import nbformat
import pytest

from mmcourse import results, truth

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("nb_tool", ROOT / "tools" / "nb.py")
nb_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nb_tool)


def test_every_marker_and_prose_number_is_supported():
    problems = nb_tool.truth_problems()
    assert not problems, "\n".join(problems)


def test_readme_equals_its_regeneration_from_the_records():
    readme = (ROOT / "README.md").read_text()
    assert results.render_markers(readme, nb_tool.all_results()) == readme
    assert results.MARKER.search(readme), "the README's results must come through markers"


def _notebook_with(markdown: str, printed: str):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("acc = measure()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed),
                    nbformat.v4.new_output("display_data", data={
                        results.RESULT_MIME: {"key": "nb99.acc", "value": 0.875, "text": "0.88"},
                        "text/plain": "nb99.acc = 0.88"})]
    nb.cells = [cell, nbformat.v4.new_markdown_cell(markdown)]
    return nb


def _problems(nb):
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    found = [str(p) for p in truth.unsupported_numbers(markdown, nb_tool.code_and_outputs(nb))]
    for cell in markdown:
        found += truth.stale_markers(cell, results.records_in_notebook(nb))
    return found


def test_a_true_notebook_passes():
    nb = _notebook_with("Accuracy rose to <!--r:nb99.acc-->0.88<!--/r-->; the cell printed 0.417 and we say "
                        "0.42. CLIP reached 76.2 % (Radford et al., 2021). Two towers, 2023.", "other: 0.417\n")
    assert _problems(nb) == []


@pytest.mark.parametrize("planted, expected", [
    ("Accuracy rose to <!--r:nb99.acc-->0.81<!--/r-->.", "shows '0.81' but the recorded result is '0.88'"),
    ("Accuracy rose to <!--r:nb99.missing-->0.88<!--/r-->.", "no notebook or benchmark records"),
    ("Accuracy rose to 0.81 with paraphrases.", "'0.81'"),
    ("The negatives' share is about 1.3 %.", "'1.3'"),
    ("It took 1536 steps.", "'1536'"),
])
def test_a_planted_mismatch_fails(planted, expected):
    nb = _notebook_with(planted, "other: 0.417\n")
    problems = _problems(nb)
    assert any(expected in p for p in problems), problems


def test_a_planted_readme_mismatch_fails(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    match = results.MARKER.search(readme)
    planted = readme.replace(match[0], f"<!--r:{match['key']}-->{match['text']}9<!--/r-->", 1)
    assert truth.stale_markers(planted, nb_tool.all_results())
    untagged = readme.replace(match[0], match["text"], 1)  # the number typed by hand instead of quoted
    assert truth.untagged_table_numbers(untagged) or match.start() < readme.find("## Measured results")


def test_claim_asserts_and_record_formats(capsys):
    assert results.record("nb99.x", 0.8751, "{:.2f}") is None  # nothing for a cell to echo a second time
    assert results.claim("nb99.y", 0.9 > 0.8, "A beats B") is None
    assert capsys.readouterr().out.splitlines() == ["nb99.x = 0.88", "✔ A beats B"]
    with pytest.raises(AssertionError, match="does not hold"):
        results.claim("nb99.y", 0.7 > 0.8, "A beats B")
    with pytest.raises(ValueError, match="where.what"):
        results.record("Accuracy", 0.5)
    with pytest.raises(TypeError, match="bool"):
        results.claim("nb99.z", 1, "truthy is not a comparison")


def test_exercise_pointers_name_files_that_exist():
    import re

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                for name in re.findall(r"(?:exercises|notebooks)/[\w.-]+\.ipynb", cell.source):
                    assert (ROOT / name).is_file(), f"{path.name} points to {name}, which does not exist"


def test_stored_outputs_are_clean():
    """What a learner reads on GitHub: no frozen loading bars, no object reprs, no machine paths."""
    import re

    bad = re.compile(r"Loading weights|\b0%\|\s|<matplotlib\.[\w.]+ object at 0x|<Colorbar at 0x|/root/|/home/\w+/|/tmp/")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
                assert not bad.search(text), f"{path.name} cell {index}: {bad.search(text)[0]!r} in {text[:160]!r}"
