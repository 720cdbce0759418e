"""The structure of the code, checked: layers, import cycles, function length.

The layer list is read from docs/architecture.md (its ``layers`` block), so the document and the
code cannot drift apart: a module may import from its own layer and the layers before it, never
from a later one; no two modules of one package import each other, directly or in a circle; no
function body in shapeot/ or ui/ is longer than 80 lines. Imports for annotations only (under
``if TYPE_CHECKING:``) count for the layers but not for the cycles, since they never run. Cyclomatic
complexity is ruff's C901
(pyproject.toml, run by test.sh beside the tests).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_BODY_LINES = 80
#: The one function allowed to be longer: the command line's argument parser (a flat table).
LONG_EXEMPT = {("shapeot.cli.parser", "build_parser")}


def layers() -> list[list[str]]:
    """[[package, ...], ...] in order, from the fenced ``layers`` block of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    out = []
    for line in block.group(1).splitlines():
        cells = line.split("|")[0].split()
        if cells and cells[0].isdigit():
            out.append([c.rstrip(",") for c in cells[1:] if c.rstrip(",")])
    return out


def modules() -> dict[str, Path]:
    """Module name -> file, for shapeot/, ui/ (installed as shapeot.ui) and the Slicer plugin."""
    found = {}
    for base, package in ((ROOT / "shapeot", "shapeot"), (ROOT / "ui", "shapeot.ui"),
                          (ROOT / "plugin" / "ShapeOT", "plugin")):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _type_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (annotations, not run)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def imports(name: str, path: Path, *, type_only: bool = True) -> set[str]:
    """Absolute names of the shapeot modules ``path`` imports (anywhere in the file; with
    ``type_only=False``, not those imported for annotations only)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    tree = ast.parse(path.read_text())
    skip = set() if type_only else _type_only(tree)
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # "from pkg import submodule"
    return {m for m in out if m.startswith(("shapeot", "plugin"))}


def layer_of(module: str, table: list[list[str]]) -> int | None:
    best = None
    for i, names in enumerate(table):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (i, prefix)
    return None if best is None else best[0]


def test_the_document_names_every_package():
    table = layers()
    assert table[0] == ["shapeot.core"], "the bottom layer is shapeot.core"
    unknown = sorted(m for m in modules() if m not in ("shapeot", "shapeot.__main__") and layer_of(m, table) is None)
    assert not unknown, f"modules in no layer of docs/architecture.md: {unknown}"


def test_imports_point_down_the_layers():
    table, mods = layers(), modules()
    front = len(table) - 1
    wrong = []
    for name, path in mods.items():
        own = layer_of(name, table)
        if own is None:
            continue
        own_prefix = next(p for p in table[own] if name == p or name.startswith(p + "."))
        for target in imports(name, path):
            if target == "shapeot" or target.startswith("shapeot.__"):
                if own < front:  # only the front ends use the top-level verbs
                    wrong.append(f"{name} -> {target} (the package's facade)")
                continue
            t = layer_of(target, table)
            if t is None:
                continue
            if t > own:
                wrong.append(f"{name} (layer {own}) -> {target} (layer {t})")
            elif t == own == front and not (target == own_prefix or target.startswith(own_prefix + ".")):
                wrong.append(f"{name} -> {target} (one front end imports another)")
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(sorted(set(wrong)))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_inside_a_package():
    mods = modules()
    graph = {}
    for name, path in mods.items():
        if path.name == "__init__.py":
            continue  # a package's face re-exports its modules: not an edge between them
        package = name.rsplit(".", 1)[0]
        graph[name] = {t for t in imports(name, path, type_only=False) if t in mods and t != package
                       and t.rsplit(".", 1)[0] == package and mods[t].name != "__init__.py"}
    cycles = _cycles(graph)
    assert not cycles, f"modules that import each other: {cycles}"


def _long_functions(base: Path, package: str):
    for path in sorted(base.rglob("*.py")):
        module = ".".join([package, *path.relative_to(base).with_suffix("").parts])
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body
            if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]  # the docstring is documentation, not code
            if body and node.end_lineno - body[0].lineno + 1 > MAX_BODY_LINES \
                    and (module, node.name) not in LONG_EXEMPT:
                yield f"{module}.{node.name}: {node.end_lineno - body[0].lineno + 1} lines"


@pytest.mark.parametrize("folder, package", [("shapeot", "shapeot"), ("ui", "shapeot.ui")])
def test_no_function_is_longer_than_80_lines(folder, package):
    long = list(_long_functions(ROOT / folder, package))
    assert not long, f"function bodies over {MAX_BODY_LINES} lines (split them):\n" + "\n".join(long)
