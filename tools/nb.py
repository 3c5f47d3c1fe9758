"""Build and execute course notebooks.

Notebooks are written as percent-format scripts (``# %%`` code cells,
``# %% [markdown]`` prose cells), turned into ``.ipynb`` with jupytext, executed
in place with nbclient (so readers see outputs), and cleaned of volatile metadata.

    python tools/nb.py build notebooks/src.py notebooks/01_x.ipynb   # convert + execute
    python tools/nb.py run notebooks/01_x.ipynb                      # re-execute in place
    python tools/nb.py script notebooks/01_x.ipynb > 01_x.py          # back to a script for editing
    python tools/nb.py exercises                                     # regenerate exercises/ from mmcourse.exercises
    python tools/nb.py interview                                     # regenerate and run notebooks/09_interview_prep
    python tools/nb.py sync                                          # refresh result markers in notebooks and README
    python tools/nb.py truth                                         # list prose numbers nothing measured, set or cites
    python tools/nb.py clean notebooks/*.ipynb                       # re-clean stored outputs without executing
"""
from __future__ import annotations

import pathlib
import re
import sys
import time

import nbformat


# stderr that libraries print while loading (frozen progress bars, "initialized randomly" notes, warnings
# with this machine's file paths): a reader of the stored notebook needs none of it
_NOISE = ("Warning:", "Loading weights", "initialized randomly", "newly initialized", "UNEXPECTED", "MISSING")


_WIDGET_BAR = re.compile(r"^[^\n]*\d+%\|[^\n]*\| *\d+/\d+ \[")


def _library_noise(output) -> bool:
    text = output.get("text", "")
    text = text if isinstance(text, str) else "".join(text)
    if output.get("name") == "stderr" and any(marker in text for marker in _NOISE):
        return True
    # a progress bar drawn as a widget (tqdm.auto): its stored text fallback is the bar frozen at its
    # first state, e.g. "sweep:   0%|          | 0/24"; the widget itself cannot be stored
    data = output.get("data", {})
    plain = data.get("text/plain", "")
    plain = plain if isinstance(plain, str) else "".join(plain)
    return set(data) <= {"text/plain", "application/vnd.jupyter.widget-view+json"} and bool(_WIDGET_BAR.match(plain))


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop execution timestamps, widget state and jupytext metadata; fix the kernel."""
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in ("tags", "jupyter")}
        if cell.cell_type == "code":
            # library warnings print this machine's file paths: readers do not need them
            cell.outputs = [o for o in cell.get("outputs", []) if not _library_noise(o)]
            for out in cell.get("outputs", []):
                # widget views cannot render without live state: keep their text fallback only
                data = out.get("data")
                if data and "application/vnd.jupyter.widget-view+json" in data:
                    data.pop("application/vnd.jupyter.widget-view+json")
    return nb


def execute(nb: nbformat.NotebookNode, cwd: pathlib.Path, timeout: int | None = None) -> nbformat.NotebookNode:
    import os

    from nbclient import NotebookClient

    timeout = timeout or int(os.environ.get("NB_CELL_TIMEOUT", "600"))  # a busy machine may need more

    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def build(src: pathlib.Path, dst: pathlib.Path) -> None:
    import jupytext

    nb = jupytext.read(src)
    run_and_save(nb, dst)


def run_and_save(nb, dst: pathlib.Path) -> None:
    from mmcourse.results import records_in_notebook, render_markers

    start = time.perf_counter()
    execute(nb, dst.parent.resolve())
    results = all_results()
    results.update(records_in_notebook(nb))  # this run's records win over the stored ones
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = render_markers(cell.source, results)
    nbformat.write(clean(nb), dst)
    print(f"{dst}: executed in {time.perf_counter() - start:.1f} s")


def write_exercises() -> None:
    from mmcourse.exercises.notebook import NOTEBOOK_NAMES, build as build_exercise

    out = pathlib.Path(__file__).resolve().parent.parent / "exercises"
    for topic, name in NOTEBOOK_NAMES.items():
        try:
            nb = build_exercise(topic)
        except ModuleNotFoundError as err:
            print(f"skipped {topic}: {err}")
            continue
        nbformat.write(nb, out / name)
        print(f"wrote exercises/{name} ({sum(c.cell_type == 'code' for c in nb.cells)} code cells)")


ROOT = pathlib.Path(__file__).resolve().parent.parent


def notebook_paths() -> list[pathlib.Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb"))


def prose_checked(path: pathlib.Path) -> bool:
    """Course notebooks state claims; exercise notebooks state problem settings (only their markers are checked)."""
    return path.parent.name == "notebooks"


def code_and_outputs(nb) -> str:
    """Everything a notebook's cells show or set: code sources and the text of every output."""
    from mmcourse.results import RESULT_MIME

    parts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            data = out.get("data", {})
            parts.append(data.get("text/plain", ""))
            if RESULT_MIME in data:
                parts.append(data[RESULT_MIME]["text"])
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def all_results() -> dict[str, str]:
    """Every recorded result: the notebooks' stored records and the benchmarks' file."""
    from mmcourse.results import load_bench_results, records_in_notebook

    results = load_bench_results()
    for path in notebook_paths():
        results.update(records_in_notebook(nbformat.read(path, as_version=4)))
    return results


def sync() -> None:
    """Rewrite every marker in the notebooks' markdown and the README from the recorded results."""
    from mmcourse.results import render_markers

    results = all_results()
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        changed = False
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                new = render_markers(cell.source, results)
                changed |= new != cell.source
                cell.source = new
        if changed:
            nbformat.write(nb, path)
            print(f"synced {path.relative_to(ROOT)}")
    readme = ROOT / "README.md"
    new = render_markers(readme.read_text(), results)
    if new != readme.read_text():
        readme.write_text(new)
        print("synced README.md")


def truth_problems() -> list[str]:
    """Stale markers and unsupported prose numbers in every notebook and the README."""
    from mmcourse import truth

    results = all_results()
    problems: list[str] = []
    for path in notebook_paths():
        nb = nbformat.read(path, as_version=4)
        markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
        where = f"{path.relative_to(ROOT)} "
        for cell in markdown:
            problems += truth.stale_markers(cell, results, where)
        if prose_checked(path):
            problems += [str(p) for p in truth.unsupported_numbers(markdown, code_and_outputs(nb), where)]
    readme = (ROOT / "README.md").read_text()
    problems += truth.stale_markers(readme, results, "README.md ")
    problems += truth.untagged_table_numbers(readme)
    return problems


def main(argv: list[str]) -> None:
    if argv[:1] == ["sync"]:
        return sync()
    if argv[:1] == ["clean"]:
        for path in argv[1:]:
            nbformat.write(clean(nbformat.read(path, as_version=4)), path)
        return None
    if argv[:1] == ["truth"]:
        problems = truth_problems()
        print("\n".join(problems) or "no problems")
        sys.exit(1 if problems else 0)
    if argv[:1] == ["exercises"]:
        return write_exercises()
    if argv[:1] == ["interview"]:
        from mmcourse.exercises.notebook import build_interview

        return run_and_save(build_interview(), pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "09_interview_prep.ipynb")
    if len(argv) < 2 or argv[0] not in {"build", "run", "script"}:
        sys.exit(__doc__)
    if argv[0] == "build":
        build(pathlib.Path(argv[1]), pathlib.Path(argv[2]))
    elif argv[0] == "run":
        for path in argv[1:]:
            run_and_save(nbformat.read(path, as_version=4), pathlib.Path(path))
    else:
        import jupytext

        sys.stdout.write(jupytext.writes(nbformat.read(argv[1], as_version=4), fmt="py:percent"))


if __name__ == "__main__":
    main(sys.argv[1:])
