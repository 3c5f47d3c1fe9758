"""The pretrained world, offline: write hub stand-ins, run notebooks against them.

    python tools/pretrained_standins.py write [--cache DIR]
        write every stand-in (mmcourse.testing.standins) into a Hugging Face cache folder
    python tools/pretrained_standins.py run-notebooks [--cache DIR] [--timeout S] notebooks/01_x.ipynb ...
        execute each notebook (a copy in memory; the file is not modified) with
        MMCOURSE_PRETRAINED=1 HF_HUB_OFFLINE=1 HF_HUB_CACHE=<stand-ins>, the network blocked,
        and report every cell that raised; exit status 1 if any did

Without ``--cache`` the stand-ins go to a fresh temporary folder, removed afterwards.
Every pretrained code path runs; numbers from stand-ins are random, so a notebook must
assert quality claims only where ``not model.is_standin``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
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


def run_notebook(path: pathlib.Path, timeout: int) -> tuple[list[dict], float]:
    """Execute ``path`` (errors allowed, so every failing cell is seen); return its failures and seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
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


def run_notebooks(paths: list[pathlib.Path], cache: pathlib.Path, timeout: int) -> int:
    write(cache)
    saved = dict(os.environ)
    os.environ.update(notebook_env(cache))  # the kernels inherit this process's environment
    failed = 0
    try:
        for path in paths:
            failures, seconds = run_notebook(path, timeout)
            status = "ok" if not failures else f"{len(failures)} failing cell(s)"
            print(f"{path.name}: {status} ({seconds:.0f} s)")
            for i, f in enumerate(failures):
                first = " (first)" if i == 0 else ""
                print(f"  cell {f['cell']} [{f['execution_count']}]{first}: {f['line']}\n      {f['error']}")
            failed += bool(failures)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    print(f"{len(paths) - failed}/{len(paths)} notebooks ran without errors in the pretrained world (stand-ins)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the stand-ins into a Hugging Face cache folder")
    w.add_argument("--cache", required=True, help="the cache folder (HF_HUB_CACHE)")
    r = sub.add_parser("run-notebooks", help="execute notebooks against the stand-ins, offline")
    r.add_argument("notebooks", nargs="+", type=pathlib.Path)
    r.add_argument("--cache", default=None, help="reuse this stand-in cache (default: a temporary folder)")
    r.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    if args.command == "write":
        write(pathlib.Path(args.cache))
        return 0
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    with _cache_folder(args.cache) as cache:
        return run_notebooks(args.notebooks, cache, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
