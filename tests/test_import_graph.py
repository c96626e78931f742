"""The llmsoak package has no runtime import cycle, and every lazy import says why it is lazy.

GIVEN every module under llmsoak/, parsed with ``ast`` (nothing is imported),
WHEN the imports between llmsoak modules are collected — at module level and inside functions
  alike, since a function-level import still runs in the same process, just later —
THEN the graph has no cycle, and every import of an llmsoak module inside a function has a
  comment on its line or the line above saying why it is not at the top (start-up time, e.g.
  a module that pulls in pandas, matplotlib or Locust, which patches the process with gevent).

Edges follow Python's import machinery: ``from a.b import c`` depends on ``a.b`` and, when
``c`` is a module, on ``a.b.c``; importing a module also runs its parent packages' __init__,
except the importer's own parents (already running when it is imported). Imports under
``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "llmsoak"


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    path: Path
    line: int
    in_function: bool
    commented: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _comment_lines(source: str) -> tuple[set[int], set[int]]:
    """(lines with a comment, lines that are only a comment)."""
    any_comment, whole_line = set(), set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            any_comment.add(tok.start[0])
            if not tok.line[:tok.start[1]].strip():
                whole_line.add(tok.start[0])
    return any_comment, whole_line


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, in_function: bool):
    """(import node, in_function) for every import that runs, skipping ``if TYPE_CHECKING:`` bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _walk(ast.Module(body=[other], type_ignores=[]), in_function)
        else:
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from _walk(child, inner)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def collect_imports() -> list[Import]:
    modules = all_modules()
    found: list[Import] = []
    for importer, path in modules.items():
        source = path.read_text(encoding="utf-8")
        comments, comment_lines = _comment_lines(source)
        is_package = path.name == "__init__.py"
        for node, in_function in _walk(ast.parse(source, str(path)), False):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(importer, is_package, node)
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            # a comment beside the import, or a comment line right above it
            commented = bool(set(range(node.lineno, node.end_lineno + 1)) & comments) or \
                node.lineno - 1 in comment_lines
            for target in targets:
                # the module itself and its parent packages, as the import system runs them
                parts = target.split(".")
                for n in range(1, len(parts) + 1):
                    name = ".".join(parts[:n])
                    if name not in modules or name == importer or importer.startswith(name + "."):
                        continue
                    found.append(Import(importer, name, path, node.lineno, in_function, commented))
    return found


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(component) > 1 or v in edges.get(v, ()):
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_a_cycle(component, edges) for component in components]


def _a_cycle(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest closed path through the component's first module (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ()) & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    return component


def test_graph_sees_imports_at_both_levels():
    """The collector itself: a known module-level and a known function-level edge are found."""
    imports = collect_imports()
    assert imports, "no imports collected"
    assert any(not i.in_function for i in imports)
    assert {i.importer for i in imports} >= {"llmsoak.cli", "llmsoak.locust.users"}


def test_the_checker_finds_a_cycle_and_tells_comments_apart():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(find_cycles(edges)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    source = "x = 1  # about x\n# why the import is here\nimport y  # beside it\n"
    assert _comment_lines(source) == ({1, 2, 3}, {2})


def test_no_import_cycle():
    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for imp in collect_imports():
        edges.setdefault(imp.importer, set()).add(imp.target)
        where.setdefault((imp.importer, imp.target), f"{imp.path.relative_to(PACKAGE_DIR.parent)}:{imp.line}")
    cycles = find_cycles(edges)
    report = []
    for cycle in cycles:
        steps = [f"{a} -> {b} ({where[(a, b)]})" for a, b in zip(cycle, cycle[1:], strict=False)]
        report.append("cycle: " + " -> ".join(cycle) + "\n    " + "\n    ".join(steps))
    assert not cycles, "runtime import cycles in llmsoak:\n" + "\n".join(report)


def test_no_cycle_between_the_parts_of_the_package():
    """Folded to llmsoak's parts (``llmsoak.locust``, ``llmsoak.webui``, ``llmsoak.units``, ...): the
    layers depend one way (the web UI reads the Locust side, never the reverse)."""
    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    edges: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for imp in collect_imports():
        a, b = part(imp.importer), part(imp.target)
        if a != b and b != "llmsoak":
            edges.setdefault(a, set()).add(b)
            where.setdefault((a, b), f"{imp.path.relative_to(PACKAGE_DIR.parent)}:{imp.line}")
    cycles = find_cycles(edges)
    report = ["cycle: " + " -> ".join(c) + "\n    " + "\n    ".join(
        f"{a} -> {b} ({where[(a, b)]})" for a, b in zip(c, c[1:], strict=False)) for c in cycles]
    assert not cycles, "import cycles between the parts of llmsoak:\n" + "\n".join(report)


def test_function_level_imports_of_llmsoak_say_why():
    statements: dict[str, str] = {}
    for i in collect_imports():
        if i.in_function and not i.commented:  # the deepest module an import statement names
            where = f"{i.path.relative_to(PACKAGE_DIR.parent)}:{i.line}"
            statements[where] = max(statements.get(where, ""), i.target, key=len)
    bare = [f"{where} imports {target}" for where, target in
            sorted(statements.items(), key=lambda kv: (kv[0].rsplit(":", 1)[0], int(kv[0].rsplit(":", 1)[1])))]
    assert not bare, ("imports of llmsoak modules inside functions without a comment (on the line or the "
                      "line above) saying why they are not at the top:\n" + "\n".join(bare))
