"""ARCHITECTURE.md, enforced: layers, no import circles, notebooks use only the public API.

The rules are read from ARCHITECTURE.md's ``checked`` blocks, so the page and the code
cannot drift. Each checker is also run on a planted violation, so a checker that can
never fail would fail here.
"""
from __future__ import annotations

import ast
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mmcourse"
DOC = ROOT / "ARCHITECTURE.md"


# ------------------------------------------------------------------------------ the rules, from the page
def checked_block(title: str, text: str | None = None) -> list[str]:
    """Lines of the fenced block opened by ```` ```text checked: <title> ````."""
    text = DOC.read_text() if text is None else text
    match = re.search(rf"```text checked: {re.escape(title)}\n(.*?)```", text, re.S)
    assert match, f"ARCHITECTURE.md has no 'checked: {title}' block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def layers(title: str, text: str | None = None) -> dict[str, int]:
    """``{name: layer number}`` from a block of lines ``<number> <label> <names...>``
    (``model layers`` lines have no label)."""
    out = {}
    for line in checked_block(title, text):
        number, *rest = line.split()
        names = rest if title == "model layers" else rest[1:]
        for name in names:
            out[name] = int(number)
    return out


def public_modules(text: str | None = None) -> set[str]:
    return {name for line in checked_block("public modules", text) for name in line.split()}


# ------------------------------------------------------------------------------ the import graph
def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """Every ``mmcourse`` module ``source`` imports (at any depth, inside functions too).

    ``from pkg import x`` counts as importing ``pkg.x`` when that is a module, else ``pkg``.
    """
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return {m for m in found if m == "mmcourse" or m.startswith("mmcourse.")}


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """``{module: modules it imports}`` for ``{module: (source, is_package)}``."""
    known = set(sources)
    return {name: imports_of(name, source, is_package, known) - {name}
            for name, (source, is_package) in sources.items()}


def package_sources(root: pathlib.Path = PACKAGE) -> dict[str, tuple[str, bool]]:
    return {module_name(p, root): (p.read_text(), p.name == "__init__.py") for p in sorted(root.rglob("*.py"))}


# ------------------------------------------------------------------------------ the checkers
def layer_of(module: str, rule: dict[str, int], depth: int) -> int | None:
    """Layer of ``module`` by its component at ``depth`` (1: mmcourse.<x>, 2: mmcourse.models.<x>)."""
    parts = module.split(".")
    return rule.get(parts[depth]) if len(parts) > depth else None


def layer_violations(graph: dict[str, set[str]], rule: dict[str, int], depth: int = 1,
                     within: str = "mmcourse") -> list[str]:
    """Edges from a module to a module of a higher layer (both under ``within``)."""
    bad = []
    for source, targets in sorted(graph.items()):
        if not source.startswith(within + "."):
            continue
        low = layer_of(source, rule, depth)
        for target in sorted(targets):
            if not target.startswith(within + "."):
                continue
            high = layer_of(target, rule, depth)
            if low is not None and high is not None and high > low:
                bad.append(f"{source} (layer {low}) imports {target} (layer {high})")
    return bad


def unlisted(graph: dict[str, set[str]], rule: dict[str, int], depth: int = 1, within: str = "mmcourse") -> list[str]:
    """Modules under ``within`` whose component at ``depth`` has no layer (a new module must be placed)."""
    return sorted({m.split(".")[depth] for m in graph
                   if m.startswith(within + ".") and len(m.split(".")) > depth and layer_of(m, rule, depth) is None})


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def notebook_code(path: pathlib.Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


def _private(name: str) -> bool:
    """``_x`` is private; ``____`` (the exercises' blank) is not."""
    return re.match(r"_[A-Za-z0-9]", name) is not None


def notebook_violations(cells: list[str], public: set[str], known: set[str]) -> list[str]:
    """``mmcourse`` imports in notebook code that reach outside the public API.

    ``import m`` and ``from m import x`` need ``m`` public, except that ``from pkg import x`` may
    also name a public module ``pkg.x``; from a public module, any name without a leading
    underscore is public (packages re-export their modules' names). IPython lines are skipped."""
    bad = []
    for cell in cells:
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.splitlines())
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue  # a cell that is not Python (a learner's blank); nothing to check
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                bad += [a.name for a in node.names if a.name.split(".")[0] == "mmcourse" and a.name not in public]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module \
                    and node.module.split(".")[0] == "mmcourse":
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    if name in public:
                        continue
                    if node.module in public and not _private(alias.name) and name not in known:
                        continue  # a name the public module defines or re-exports
                    bad.append(name if name in known or _private(alias.name) else node.module)
    return bad


# ------------------------------------------------------------------------------ the tests
@pytest.fixture(scope="module")
def graph():
    return import_graph(package_sources())


def test_every_module_has_a_layer(graph):
    assert unlisted(graph, layers("layers")) == [], "add the new module to ARCHITECTURE.md's layers"
    assert unlisted(graph, layers("model layers"), depth=2, within="mmcourse.models") == []


def test_no_module_imports_a_higher_layer(graph):
    assert layer_violations(graph, layers("layers")) == []


def imports_between(graph: dict[str, set[str]], source_prefix: str, target_prefix: str) -> list[tuple[str, str]]:
    return sorted((s, t) for s, ts in graph.items() if s.startswith(source_prefix + ".")
                  for t in ts if t.startswith(target_prefix + "."))


def test_inside_models_hub_course_experiments_zoo_are_layered(graph):
    assert layer_violations(graph, layers("model layers"), depth=2, within="mmcourse.models") == []
    course, experiments = "mmcourse.models.course", "mmcourse.models.experiments"
    assert imports_between(graph, course, experiments) + imports_between(graph, experiments, course) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_the_hub_world_never_imports_the_course_world(graph):
    assert imports_between(graph, "mmcourse.models.hub", "mmcourse.models.course") == []


def test_public_modules_exist(graph):
    assert sorted(public_modules() - set(graph)) == []


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "exercises").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_notebooks_import_only_the_public_api(path, graph):
    assert notebook_violations(notebook_code(path), public_modules(), set(graph)) == []


# ------------------------------------------------------------------------------ the checkers can fail
PLANTED = {
    "mmcourse": ("", True),
    "mmcourse.errors": ("", False),
    "mmcourse.data": ("", True),
    "mmcourse.data.shapes": ("from ..errors import MMCourseError\n", False),
    "mmcourse.models": ("", True),
    "mmcourse.models.zoo": ("from .hub import hf_dual\n", False),
    "mmcourse.models.hub": ("", True),
    # the back edge: a hub backend reaching into the course world, inside a function
    "mmcourse.models.hub.hf_dual": ("def load():\n    from ..course.clip import CourseDualEncoder\n", False),
    "mmcourse.models.course": ("", True),
    "mmcourse.models.course.clip": ("from ..hub.hf_dual import load\n", False),
    # a block reaching up to models
    "mmcourse.retrieval": ("from . import zero_shot\n", True),
    "mmcourse.retrieval.zero_shot": ("import mmcourse.models.zoo\n", False),
}
PLANTED_RULES = "```text checked: layers\n0 base errors\n1 blocks data retrieval\n3 models models\n```\n" \
                "```text checked: model layers\n0 embedder\n1 hub\n2 course experiments\n3 zoo\n```\n"


def test_layer_checker_fails_on_a_planted_back_edge():
    graph = import_graph(PLANTED)
    assert layer_violations(graph, layers("layers", PLANTED_RULES)) == [
        "mmcourse.retrieval.zero_shot (layer 1) imports mmcourse.models.zoo (layer 3)"]
    assert layer_violations(graph, layers("model layers", PLANTED_RULES), depth=2, within="mmcourse.models") == [
        "mmcourse.models.hub.hf_dual (layer 1) imports mmcourse.models.course.clip (layer 2)"]


def test_cycle_checker_fails_on_a_planted_circle():
    graph = import_graph(PLANTED)
    assert cycles(graph) == [["mmcourse.models.course.clip", "mmcourse.models.hub.hf_dual"]]
    graph["mmcourse.models.hub.hf_dual"] = set()  # break it
    assert cycles(graph) == []


def test_unplaced_module_is_reported():
    graph = import_graph({**PLANTED, "mmcourse.newthing": ("", False)})
    assert unlisted(graph, layers("layers", PLANTED_RULES)) == ["newthing"]


def test_notebook_checker_fails_on_a_private_import():
    known = set(PLANTED) | {"mmcourse.models.course.checkpoints"}
    public = {"mmcourse", "mmcourse.models.course.clip"}
    cells = ["import mmcourse\nfrom mmcourse.models.course import clip",  # public
             "%matplotlib inline\nfrom mmcourse.models.course import checkpoints",  # a private module
             "import mmcourse.models.zoo as zoo",  # private
             "from mmcourse import load_model, _hidden",  # a public name, then a private one
             "from mmcourse.retrieval import zero_shot",  # a module of a package that is not public
             "x = ____ +"]  # not Python: skipped
    assert notebook_violations(cells, public, known) == [
        "mmcourse.models.course.checkpoints", "mmcourse.models.zoo", "mmcourse._hidden", "mmcourse.retrieval.zero_shot"]
