"""How far do the solutions' printed figures move between machines, builds and threads?

The tolerances declared in solution cells (``{"segkit": {"tolerance": ...}}``, see
``segkit_course/figures.py``) come from this measurement. Execute the solutions under the
conditions to compare, each into its own folder, then compare every folder with the
stored outputs in ``solutions/``::

    OMP_NUM_THREADS=1 SEGKIT_PROGRESS=0 segkit run-course --out build/spread/threads1
    OMP_NUM_THREADS=2 SEGKIT_PROGRESS=0 segkit run-course --out build/spread/threads2
    # another torch build: the same command from a second virtual environment
    # other seeds: every literal seed 0 of the notebooks replaced by 1
    python benchmarks/figure_spread.py --reseed 1 --out build/spread/seed1 --only 03 04
    python benchmarks/figure_spread.py build/spread/threads1 build/spread/threads2 \\
        build/spread/seed1

For every code cell whose outputs differ anywhere, it prints the largest difference of a
decimal (absolute and relative) and of an integer, per line label, next to the cell's
declared tolerance, and marks with ``!!`` what the tolerance would not allow (a figure
outside it, or a changed line). ``--only 03 05`` limits it to some lessons.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from segkit_course.build import notebook_text, read_notebook, solution_paths
from segkit_course.figures import (
    CellTolerance,
    Tolerance,
    merged_outputs,
    printed_value,
    cell_tolerance,
    compare_outputs,
    split_numbers,
)
from segkit_course.run import execute_notebook, select_lessons

ROOT = Path(__file__).resolve().parents[1]


def line_spreads(stored: str, fresh: str) -> list[tuple[str, float, float, int]]:
    """(line, max |decimal diff|, max relative diff, max |integer diff|) per changed line."""
    spreads = []
    old_lines, new_lines = stored.splitlines(), fresh.splitlines()
    for old, new in zip(old_lines, new_lines):
        old_skeleton, old_numbers = split_numbers(old)
        new_skeleton, new_numbers = split_numbers(new)
        if old_skeleton != new_skeleton or old == new:
            continue
        worst_abs = worst_rel = 0.0
        worst_int = 0
        for a, b in zip(old_numbers, new_numbers):
            (va, a_int), (vb, _) = printed_value(a), printed_value(b)
            if a_int:
                worst_int = max(worst_int, int(abs(vb - va)))
            else:
                worst_abs = max(worst_abs, abs(vb - va))
                if va:
                    worst_rel = max(worst_rel, abs(vb - va) / abs(va))
        spreads.append((old.strip(), worst_abs, worst_rel, worst_int))
    return spreads


def report_cell(index: int, cell, runs: dict[str, list]) -> list[str]:
    """Lines describing how one cell's outputs moved in each run (empty if they did not)."""
    declared = cell_tolerance(cell)
    tolerance = declared or CellTolerance(Tolerance())
    lines = []
    for name, outputs in runs.items():
        problems = compare_outputs(cell.get("outputs", []), outputs, tolerance)
        if not problems:
            if merged_outputs(cell.get("outputs", [])) != merged_outputs(outputs):
                lines.append(f"  {name}: differs within the tolerance")
            continue
        if declared is None and "nbval-ignore-output" in cell.metadata.get("tags", []):
            continue
        for (_, old), (_, new) in zip(merged_outputs(cell.get("outputs", [])), merged_outputs(outputs)):
            for line, dabs, drel, dint in line_spreads(old, new):
                lines.append(f"  {name}: |d| {dabs:.4g}  rel {drel:.1%}  int {dint}  "
                             f"in {line[:70]!r}")
        lines += [f"  {name}: !! {p[:160]}" for p in problems]
    if lines:
        what = "tolerance " + (repr(cell.metadata["segkit"]["tolerance"]) if declared
                               else "none (nbval compares exactly)")
        lines.insert(0, f"cell {index + 1} (id {cell.get('id')}), {what}")
    return lines


SEED_ZERO = re.compile(r"\b(manual_seed|seed_everything|seed)(\(|=)0\b")


def reseed(paths: list[Path], seed: int, out: Path) -> None:
    """Execute the notebooks with every literal seed 0 replaced by ``seed``, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        nb = read_notebook(path)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = SEED_ZERO.sub(rf"\g<1>\g<2>{seed}", cell.source)
        run = execute_notebook(nb, cwd=ROOT, timeout=1800)
        (out / path.name).write_text(notebook_text(run.nb), encoding="utf-8")
        print(f"{path.stem}: seed {seed}, {run.seconds:.0f} s, {run.error or 'ok'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path,
                        help="folders of executed notebooks (segkit run-course --out)")
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    parser.add_argument("--only", nargs="+", help="lessons to compare, e.g. 03 05")
    parser.add_argument("--reseed", type=int, metavar="SEED",
                        help="instead: execute the solutions with seed 0 replaced by SEED")
    parser.add_argument("--out", type=Path, help="with --reseed: where to write them")
    args = parser.parse_args(argv)
    if args.reseed is not None:
        if args.out is None:
            parser.error("--reseed needs --out DIR")
        reseed(select_lessons(solution_paths(args.solutions), args.only), args.reseed,
               args.out)
        return 0
    outside = 0
    for path in select_lessons(solution_paths(args.solutions), args.only):
        stored = read_notebook(path)
        executed = {run.name: read_notebook(run / path.name) for run in args.runs
                    if (run / path.name).exists()}
        print(f"== {path.stem}: compared with {', '.join(executed) or 'nothing'}")
        for index, cell in enumerate(stored.cells):
            if cell.cell_type != "code":
                continue
            runs = {name: nb.cells[index].get("outputs", []) for name, nb in executed.items()}
            lines = report_cell(index, cell, runs)
            outside += sum("!!" in line for line in lines)
            if lines:
                print("\n".join(lines))
    print(f"{outside} figure(s) or line(s) outside their tolerance")
    return 1 if outside else 0


if __name__ == "__main__":
    sys.exit(main())
