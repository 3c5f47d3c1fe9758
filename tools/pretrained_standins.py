"""The pretrained world, offline: write hub stand-ins, run notebooks against them.

    python tools/pretrained_standins.py write [--cache DIR]
        write every stand-in (mmcourse.testing.standins) into a Hugging Face cache folder
    python tools/pretrained_standins.py run-notebooks [--cache DIR] [--timeout S] notebooks/01_x.ipynb ...
        execute each notebook (a copy in memory; the file is not modified) with
        MMCOURSE_PRETRAINED=1 HF_HUB_OFFLINE=1 HF_HUB_CACHE=<stand-ins>, the network blocked,
        and report every cell that raised; exit status 1 if any did
    python tools/pretrained_standins.py run-sections [--cache DIR] [--timeout S] [--save DIR] [notebooks/01_x.ipynb ...]
        the `make test` stage: for each notebook (default: all of notebooks/), execute only its
        pretrained section (the code cells tagged ``pretrained``) in the same environment; a
        notebook whose untagged cells themselves switch model with the setting (notebook 07)
        runs whole. Exit status 1 if any cell raised or a section printed its "skipped" line;
        --save writes each executed section there (to read its outputs). `make notebooks-pretrained`
        (part of `make test`) runs it over every notebook

Without ``--cache`` the stand-ins go to a fresh temporary folder, removed afterwards.
Every pretrained code path runs; numbers from stand-ins are random, so a notebook states its
quality claims with ``mmcourse.results.claim(..., model=m)``, which checks nothing for a stand-in.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
NETGUARD = ROOT / "tests" / "_netguard"


@contextlib.contextmanager
def _cache_folder(path: str | None):
    if path:
        yield pathlib.Path(path)
        return
    folder = pathlib.Path(tempfile.mkdtemp(prefix="mmcourse-standins-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write(cache: pathlib.Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from mmcourse.testing.standins import write_standins

    start = time.perf_counter()
    folders = write_standins(cache)
    print(f"stand-ins written to {cache} in {time.perf_counter() - start:.1f} s: {', '.join(folders)}")
    return folders


def notebook_env(cache: pathlib.Path) -> dict[str, str]:
    """The environment of a pretrained-world kernel against the stand-ins (offline, network blocked)."""
    python_path = [str(NETGUARD), str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        "MMCOURSE_PRETRAINED": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "MMCOURSE_BLOCK_NETWORK": "1",  # tests/_netguard/sitecustomize.py blocks sockets in the kernel
        "PYTHONPATH": os.pathsep.join(python_path),
        "MPLBACKEND": "Agg",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()[:100]
    return source.strip().splitlines()[0][:100] if source.strip() else ""


def run_notebook(path: pathlib.Path, timeout: int, nb=None) -> tuple[list[dict], float]:
    """Execute ``path`` (or ``nb``, run in ``path``'s folder), errors allowed so every failing cell is seen.

    Returns the failures (cell index, first line, error) and the seconds it took.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4) if nb is None else nb
    start = time.perf_counter()
    failures, running = [], [None]
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    client.on_cell_execute = lambda cell, cell_index: running.__setitem__(0, cell_index)
    try:
        client.execute()
    except Exception as err:  # a cell timed out or the kernel died: the run stops there
        stopped = running[0]
        failures.append({"cell": stopped, "execution_count": None,
                         "line": _first_line(nb.cells[stopped].source) if stopped is not None else "",
                         "error": f"{type(err).__name__}: {str(err).splitlines()[0]}"[:300]})
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or index == (failures[0]["cell"] if failures else None):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                failures.append({"cell": index, "execution_count": cell.get("execution_count"),
                                 "line": _first_line(cell.source), "error": f"{out['ename']}: {out['evalue']}"[:300]})
    failures.sort(key=lambda f: -1 if f["cell"] is None else f["cell"])
    return failures, time.perf_counter() - start


def _run_each(paths: list[pathlib.Path], cache: pathlib.Path, run_one, done: str) -> int:
    """Write the stand-ins, then ``run_one(path) -> (what, failures, seconds)`` for every notebook with the
    pretrained world's environment set (the kernels inherit it); print one line each. Exit status 1 if any failed."""
    start = time.perf_counter()
    write(cache)
    saved = dict(os.environ)
    os.environ.update(notebook_env(cache))
    failed = 0
    try:
        for path in paths:
            what, failures, seconds = run_one(path)
            status = "ok" if not failures else f"{len(failures)} failing cell(s)"
            print(f"{path.name}: {what + ': ' if what else ''}{status} ({seconds:.0f} s)", flush=True)
            for i, f in enumerate(failures):
                first = " (first)" if i == 0 and len(failures) > 1 else ""
                print(f"  cell {f['cell']} [{f['execution_count']}]{first}: {f['line']}\n      {f['error']}")
            failed += bool(failures)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    print(f"{len(paths) - failed}/{len(paths)} notebooks: {done} ({time.perf_counter() - start:.0f} s in all)")
    return 1 if failed else 0


def run_notebooks(paths: list[pathlib.Path], cache: pathlib.Path, timeout: int) -> int:
    """Every notebook whole, against the stand-ins."""
    return _run_each(paths, cache, lambda path: ("", *run_notebook(path, timeout)),
                     "ran without errors in the pretrained world (stand-ins)")


# ----------------------------------------------------------------------------- pretrained sections
PRETRAINED_TAG = "pretrained"
SKIP_LINE = "skipped: set MMCOURSE_PRETRAINED=1"  # what a section prints when the setting is off


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# a model chosen by the setting: load_model("hub/x" if mmcourse.pretrained_enabled() else "course/x")
_SWITCHED_LOAD = re.compile(r"load_model\([^)]*pretrained_enabled\(\)")


def runs_whole(nb) -> bool:
    """True when an untagged code cell loads a model chosen by the setting (notebook 07's CLIP).

    Such a notebook is pretrained from that cell on, so the stage runs all of it. (A branch
    ``if mmcourse.pretrained_enabled(): ...`` belongs in a tagged section instead; the tests check it.)
    """
    return any(cell.cell_type == "code" and PRETRAINED_TAG not in _tags(cell) and _SWITCHED_LOAD.search(cell.source)
               for cell in nb.cells)


def pretrained_section(nb):
    """A copy of ``nb`` holding only its code cells tagged ``pretrained``, in order (None if it has none)."""
    import copy

    import nbformat

    cells = [copy.deepcopy(c) for c in nb.cells if c.cell_type == "code" and PRETRAINED_TAG in _tags(c)]
    if not cells:
        return None
    for cell in cells:
        cell.outputs, cell.execution_count = [], None
    reduced = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    return reduced


def _printed_skip(nb) -> list[int]:
    """Cells whose output says the section was skipped (the setting did not reach the kernel)."""
    found = []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if SKIP_LINE in out.get("text", "") or SKIP_LINE in str(out.get("data", {}).get("text/plain", "")):
                found.append(index)
    return found


def run_section(path: pathlib.Path, timeout: int, save: pathlib.Path | None = None) -> tuple[str, list[dict], float]:
    """Run ``path``'s pretrained section (or all of it, see :func:`runs_whole`); return (what ran, failures, s).

    ``save``: a folder to write the executed section to (same file name), for reading its outputs.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    if runs_whole(nb):
        what, target = "whole notebook", nb
    else:
        target = pretrained_section(nb)
        if target is None:
            return "no pretrained section", [], 0.0
        what = f"{len(target.cells)} pretrained cell(s)"
    failures, seconds = run_notebook(path, timeout, nb=target)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(target, save / path.name)
    for index in _printed_skip(target):
        failures.append({"cell": index, "execution_count": target.cells[index].get("execution_count"),
                         "line": _first_line(target.cells[index].source),
                         "error": "the section printed its skip line: MMCOURSE_PRETRAINED did not reach it"})
    return what, failures, seconds


def run_sections(paths: list[pathlib.Path], cache: pathlib.Path, timeout: int, save: pathlib.Path | None = None) -> int:
    """Every notebook's pretrained section (notebook 07 whole), against the stand-ins: the ``make test`` stage."""
    return _run_each(paths, cache, lambda path: run_section(path, timeout, save),
                     "pretrained sections ran against the stand-ins without errors")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the stand-ins into a Hugging Face cache folder")
    w.add_argument("--cache", required=True, help="the cache folder (HF_HUB_CACHE)")
    r = sub.add_parser("run-notebooks", help="execute notebooks against the stand-ins, offline")
    r.add_argument("notebooks", nargs="+", type=pathlib.Path)
    r.add_argument("--cache", default=None, help="reuse this stand-in cache (default: a temporary folder)")
    r.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    s = sub.add_parser("run-sections", help="execute every notebook's pretrained section against the stand-ins")
    s.add_argument("notebooks", nargs="*", type=pathlib.Path, help="default: every notebook in notebooks/")
    s.add_argument("--cache", default=None, help="reuse this stand-in cache (default: a temporary folder)")
    s.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    s.add_argument("--save", type=pathlib.Path, default=None, help="write each executed section to this folder")
    args = parser.parse_args(argv)
    if args.command == "write":
        write(pathlib.Path(args.cache))
        return 0
    if args.command == "run-sections" and not args.notebooks:
        args.notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    with _cache_folder(args.cache) as cache:
        if args.command == "run-sections":
            return run_sections(args.notebooks, cache, args.timeout, args.save)
        return run_notebooks(args.notebooks, cache, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
