"""Build and execute course notebooks.

Notebooks are written as percent-format scripts (``# %%`` code cells,
``# %% [markdown]`` prose cells), turned into ``.ipynb`` with jupytext, executed
in place with nbclient (so readers see outputs), and cleaned of volatile metadata.

    python tools/nb.py build notebooks/src.py notebooks/01_x.ipynb   # convert + execute
    python tools/nb.py run notebooks/01_x.ipynb                      # re-execute in place
    python tools/nb.py script notebooks/01_x.ipynb > 01_x.py          # back to a script for editing
    python tools/nb.py exercises                                     # regenerate exercises/ from mmcourse.exercises
    python tools/nb.py interview                                     # regenerate and run notebooks/09_interview_prep
"""
from __future__ import annotations

import pathlib
import sys
import time

import nbformat


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
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("name") == "stderr" and "Warning:" in o.get("text", ""))]
            for out in cell.get("outputs", []):
                # widget views cannot render without live state: keep their text fallback only
                data = out.get("data")
                if data and "application/vnd.jupyter.widget-view+json" in data:
                    data.pop("application/vnd.jupyter.widget-view+json")
    return nb


def execute(nb: nbformat.NotebookNode, cwd: pathlib.Path, timeout: int = 600) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def build(src: pathlib.Path, dst: pathlib.Path) -> None:
    import jupytext

    nb = jupytext.read(src)
    run_and_save(nb, dst)


def run_and_save(nb, dst: pathlib.Path) -> None:
    start = time.perf_counter()
    execute(nb, dst.parent.resolve())
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


def main(argv: list[str]) -> None:
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
