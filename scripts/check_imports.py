"""Import checker: no import cycles between calobench's modules, and no import up the layers.

    python scripts/check_imports.py           # exit 1 and one line per problem
    python scripts/check_imports.py --graph   # also print every module's calobench imports

Every import of a calobench module counts, including the lazy ones inside functions (a lazy
import hides a cycle; it does not remove it). Layers, lowest first; a module may import only
from its own layer or a lower one (see LAYERS). A package's ``__init__`` counts as part of its
package.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "calobench"

#: Lowest first. The first prefix that matches a module gives its layer.
LAYERS: list[tuple[str, ...]] = [
    ("calobench.errors", "calobench.hardware", "calobench.allocator", "calobench.version",
     "calobench.progress", "calobench.cluster"),
    ("calobench.data",),
    ("calobench.datasets",),
    ("calobench.simulation",),
    ("calobench.metrics",),
    ("calobench.models",),
    ("calobench.baselines",),
    ("calobench.report", "calobench.leaderboard", "calobench.timing", "calobench.timing_results",
     "calobench.inspection"),
    ("calobench.api",),
    ("calobench.runner", "calobench.selftest", "calobench.sweep"),
    ("calobench.cli", "calobench.__main__"),
]
#: calobench/__init__.py re-exports the public API: it may import anything, and nothing inside the
#: package may import it (that is an import up to the top).
TOP = "calobench"


def module_name(path: Path, root: Path = ROOT) -> str:
    """Dotted name of the module in ``path`` under the package folder ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """calobench modules imported anywhere in ``path`` (absolute names; ``from X import y``
    counts y when X.y is a module under ``root``)."""
    name = module_name(path, root)
    package = name if is_package(path) else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == TOP)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != TOP:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if known(sub, root) else target)
    out.discard(name)
    return out


def known(module: str, root: Path = ROOT) -> bool:
    """Whether ``module`` is a module or package under the package folder ``root``."""
    rel = Path(*module.split(".")[1:])
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def layer(module: str) -> int | None:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def problems(root: Path = ROOT) -> tuple[list[str], dict[str, set[str]]]:
    """(one line per problem, module -> the calobench modules it imports) of the package folder
    ``root`` (default: this checkout's calobench/; another folder must be called calobench too)."""
    graph = {module_name(p, root): imports_of(p, root) for p in sorted(root.rglob("*.py"))}
    out = []
    for cycle in find_cycles(graph):
        out.append("import cycle: " + " <-> ".join(cycle))
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if target == TOP and module != TOP:
                out.append(f"upward import: {module} imports the top-level package {TOP}")
                continue
            a, b = layer(module), layer(target)
            if module == TOP or a is None or b is None:
                if module != TOP and (a is None or b is None):
                    out.append(f"unlayered module: {module if a is None else target} (add it to LAYERS)")
                continue
            if b > a:
                out.append(f"upward import: {module} (layer {a}) imports {target} (layer {b})")
    return sorted(set(out)), graph


def main(argv: list[str]) -> int:
    found, graph = problems()
    if "--graph" in argv:
        for module, targets in sorted(graph.items()):
            print(f"{module}: {', '.join(sorted(targets))}")
    for line in found:
        print(line)
    print(f"{len(graph)} modules, {sum(len(t) for t in graph.values())} imports, {len(found)} problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
