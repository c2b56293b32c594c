"""The shape of the code in figures: config types in signatures, the longest functions, tests.

    python scripts/code_shape.py                  # this checkout
    python scripts/code_shape.py PATH/TO/CHECKOUT # another (e.g. an old commit's worktree)

Counts annotations of function parameters and returns: `DictConfig` (Hydra's untyped config
node) and `Any`; then the longest functions of the package, and the test functions under each
folder of tests/ (parametrized cases count once; `pytest --collect-only -q` counts them all).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def functions(package: Path) -> list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((path, node))
    return found


def annotations(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    return [ast.unparse(a) for a in [*(x.annotation for x in args), node.returns] if a is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--longest", type=int, default=8)
    args = parser.parse_args()
    if not (args.checkout / "obesity").is_dir():
        parser.error(f"{args.checkout}: no obesity/ package there (give a checkout of this project)")
    found = functions(args.checkout / "obesity")
    typed = [annotations(node) for _, node in found]
    with_dictconfig = sum(any("DictConfig" in a for a in t) for t in typed)
    anys = sum(a.count("Any") for t in typed for a in t)
    print(f"{len(found)} functions; {with_dictconfig} signatures name DictConfig; "
          f"{anys} Any in annotations")
    print("longest functions (lines):")
    for path, node in sorted(found, key=lambda f: f[1].lineno - (f[1].end_lineno or 0))[:args.longest]:
        where = path.relative_to(args.checkout)
        print(f"  {(node.end_lineno or node.lineno) - node.lineno + 1:4d}  {where}:{node.name}")
    tests = args.checkout / "tests"
    folders = sorted({p.parent for p in tests.rglob("test_*.py")})
    print("test functions:")
    for folder in folders:
        count = sum(1 for path in folder.glob("test_*.py") for node in ast.parse(path.read_text()).body
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and node.name.startswith("test_"))
        print(f"  {count:4d}  {folder.relative_to(args.checkout)}/")


if __name__ == "__main__":
    main()
