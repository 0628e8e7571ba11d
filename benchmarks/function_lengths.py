"""The longest functions in segkit: a readability figure for the maintainers.

House rule: a function fits on a screen (about 60 lines). This script lists every
function (nested ones too) in the ``segkit`` package, longest first, with its length in
lines from ``def`` to its last line (decorators, docstring and comments included).

Run from the repository root::

    python benchmarks/function_lengths.py          # the 10 longest
    python benchmarks/function_lengths.py --top 30 --under segkit/checks
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """``(lines, "path:line name")`` for every function under ``root``, longest first."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                length = node.end_lineno - start + 1
                found.append((length, f"{path}:{node.lineno} {node.name}"))
    return sorted(found, key=lambda item: (-item[0], item[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--under", default="segkit", help="folder to scan (default: segkit)")
    parser.add_argument("--top", type=int, default=10, help="how many to list (default: 10)")
    args = parser.parse_args()
    for length, where in function_lengths(Path(args.under))[:args.top]:
        print(f"{length:5d}  {where}")


if __name__ == "__main__":
    main()
