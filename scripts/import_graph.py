"""The package's import graph: levels, cycles, and which modules each module reaches.

    python scripts/import_graph.py                 # levels and cycles of obesity/
    python scripts/import_graph.py PATH/obesity    # of another checkout (e.g. an old commit)
    python scripts/import_graph.py --json          # {module: [modules it imports]} for tools

Every `import` counts, also those inside functions (they are deferred for speed, not to hide a
dependency). It also lists what an import graph cannot show or should not hold: a module found
through `sys.modules` or `importlib` by name (a dependency hidden from the graph), the runtime
importing `<package>.testing` (fixtures of the tests and benchmarks), and a private API of
another library used outside `<package>.compat`. Exit code 1 when any of these, or a cycle, is
found.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of `package`."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a `from pkg import name` of a submodule
    counts as that submodule, else as the package)."""
    mods = modules(package)
    edges: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            edges[name] |= {t for t in targets if t in mods and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def levels(edges: dict[str, set[str]]) -> dict[str, int]:
    """0 for a module that imports none of the package; else 1 + the highest level it imports
    (modules of one cycle share a level)."""
    member = {m: tuple(c) for c in cycles(edges) for m in c}
    level: dict[str, int] = {}

    def of(v: str, seen: frozenset[str]) -> int:
        if v not in level:
            group = set(member.get(v, (v,)))
            below = {w for m in group for w in edges[m]} - group
            level_v = 1 + max((of(w, seen | group) for w in below), default=-1)
            for m in group:
                level[m] = level_v
        return level[v]

    for v in edges:
        of(v, frozenset())
    return level


def folders(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the package's subpackages (top-level modules stand alone)."""
    def folder(name: str) -> str:
        return ".".join(name.split(".")[:2])

    folded: dict[str, set[str]] = {}
    for v, ws in edges.items():
        folded.setdefault(folder(v), set()).update(folder(w) for w in ws if folder(w) != folder(v))
    return folded


# Modules of other libraries that are theirs to change without notice: a dotted part with a
# leading underscore, and these (implementation modules, or the "legacy" API Evidently keeps
# the lookups it no longer exports in).
PRIVATE_MODULES = ("evidently.legacy", "uvicorn.protocols.http.httptools_impl")


def _private_module(name: str) -> bool:
    return (any(part.startswith("_") for part in name.split(".") if part != "__future__")
            or name.startswith(PRIVATE_MODULES))


def hidden_imports(package: Path) -> list[str]:
    """`file:line name` of each module of the package looked up by name at run time
    (`sys.modules[...]`, `sys.modules.get(...)`, `importlib.import_module(...)`, `__import__`)."""
    prefix = package.name + "."
    found = []
    for path in modules(package).values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            target = None
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "sys.modules":
                target = node.slice
            elif isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in (
                    "sys.modules.get", "importlib.import_module", "__import__"):
                target = node.args[0]
            if (isinstance(target, ast.Constant) and isinstance(target.value, str)
                    and (target.value + ".").startswith(prefix)):
                found.append(f"{path.relative_to(package.parent)}:{node.lineno} {target.value}")
    return found


def testing_imports(edges: dict[str, set[str]], package: str) -> list[str]:
    """Runtime modules that import `<package>.testing` (only the tests and scripts may)."""
    testing = f"{package}.testing"
    return [f"{v} -> {w}" for v, ws in sorted(edges.items()) if not v.startswith(testing)
            for w in sorted(ws) if w == testing or w.startswith(testing + ".")]


def private_uses(package: Path) -> list[str]:
    """`file:line what` of each private API of another library used outside `<package>.compat`:
    an import of a private module, or an attribute with a leading underscore read off anything
    but `self`, `cls` or `super()` (Hydra's `_target_` keys are public)."""
    found = []
    for name, path in modules(package).items():
        if name == f"{package.name}.compat" or name.startswith(f"{package.name}.compat."):
            continue
        where = path.relative_to(package.parent)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            found += [f"{where}:{node.lineno} import {n}" for n in names
                      if not n.startswith(package.name) and _private_module(n)]
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.endswith("_")
                    and ast.unparse(node.value) not in ("self", "cls", "super()")):
                found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", nargs="?", type=Path, default=ROOT / "obesity")
    parser.add_argument("--json", action="store_true", help="print the module graph as JSON")
    args = parser.parse_args()
    if not (args.package / "__init__.py").is_file():
        parser.error(f"{args.package}: not a Python package (no __init__.py)")
    edges = graph(args.package.resolve())
    if args.json:
        print(json.dumps({k: sorted(v) for k, v in sorted(edges.items())}, indent=1))
        return 0
    by_level: dict[int, list[str]] = {}
    for name, level in levels(edges).items():
        by_level.setdefault(level, []).append(name)
    print(f"{len(edges)} modules, {len(by_level)} levels (0 imports nothing of the package):")
    for level in sorted(by_level):
        print(f"  {level}: {', '.join(sorted(by_level[level]))}")
    folded = folders(edges)
    print("subpackages, each above what it imports:")
    for name, level in sorted(levels(folded).items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {level}: {name} -> {', '.join(sorted(folded[name])) or '-'}")
    found = cycles(edges)
    folder_cycles = cycles(folded)
    print(f"module cycles: {len(found)}" + "".join(f"\n  {' <-> '.join(c)}" for c in found))
    print(f"subpackage cycles: {len(folder_cycles)}"
          + "".join(f"\n  {' <-> '.join(c)}" for c in folder_cycles))
    package = args.package.resolve()
    problems = {"modules found by name at run time": hidden_imports(package),
                f"runtime imports of {package.name}.testing": testing_imports(edges, package.name),
                f"private APIs used outside {package.name}/compat": private_uses(package)}
    for what, found_here in problems.items():
        print(f"{what}: {len(found_here)}" + "".join(f"\n  {f}" for f in found_here))
    return 1 if found or folder_cycles or any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
