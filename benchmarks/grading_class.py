"""How long does ``segkit grade`` take for a class, and what does it cost per notebook?

    python benchmarks/grading_class.py --students 200 --out build/grading-bench
    python benchmarks/grading_class.py --students 20 --jobs 2 --isolation off

Writes ``--students`` lesson-04 notebooks built from the solution (a third solved, a
third as handed out, a third with one of the lesson's catalogued mistakes in each
exercise), grades them with ``segkit grade`` (``--jobs``: default, the cores at one
thread each) and prints the wall time, the time per notebook, and, for comparison,
the time plain nbclient takes to execute one solved notebook whole
(``segkit_course.run.execute_notebook``, one kernel, the same threads). A second run
with the same ``--out`` shows resumed grading (nothing graded again).

Timings move with the machine's load: report ``uptime`` with every figure.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import nbformat

from segkit_course.build import build_lesson, exercise_name, read_notebook
from segkit_course.run import execute_notebook
from segkit_course.grading import grade
from segkit_course.grading.execute import Limits

SOLUTION = Path(__file__).resolve().parents[1] / "solutions" / "04_metrics.ipynb"
MISTAKES = {  # exercise -> (text of the solution, replaced by)
    "pixel_accuracy": ("return correct / target.numel()", "return correct // target.numel()"),
    "dice_score": ("inter / sizes.clamp(min=1)", "inter / sizes.clamp(min=1) / 2"),
    "iou_score": ("target.sum(dim=(1, 2)) - inter", "target.sum(dim=(1, 2))"),
}


def write_class(folder: Path, students: int) -> None:
    """``students`` notebooks in ``folder/studentNNN/04_metrics.ipynb``."""
    solution = read_notebook(SOLUTION)
    for cell in solution.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is None:
            cell.execution_count = 1
    handout = build_lesson(copy.deepcopy(solution), SOLUTION.stem)
    solved = {exercise_name(c): c.source for c in solution.cells if exercise_name(c)}
    for i in range(students):
        nb = copy.deepcopy(handout)
        kind = i % 3  # 0: solved, 1: as handed out, 2: a mistake in each exercise
        for cell in nb.cells:
            name = exercise_name(cell)
            if name and kind == 0:
                cell.source = solved[name]
            elif name and kind == 2:
                old, new = MISTAKES[name]
                cell.source = solved[name].replace(old, new)
        # Each student's notebook differs, as in a real class: identical notebooks would
        # be graded once and the rest taken from the resume cache.
        nb.cells.append(nbformat.v4.new_markdown_cell(f"Handed in by student {i:03d}."))
        path = folder / f"student{i:03d}" / "04_metrics.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "off"])
    parser.add_argument("--out", default="build/grading-bench")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the plain nbclient execution of one notebook")
    args = parser.parse_args()
    out = Path(args.out)
    submissions = out / "submissions"
    if not submissions.exists():
        write_class(submissions, args.students)
    load = os.getloadavg()
    start = time.monotonic()
    lesson, results = grade([submissions], lesson="04", solutions=SOLUTION.parent,
                            out=out / "grades", jobs=args.jobs, progress=None,
                            isolation=args.isolation, limits=Limits())
    wall = time.monotonic() - start
    statuses: dict[str, int] = {}
    for r in results:
        for res in r.exercises.values():
            statuses[res.status] = statuses.get(res.status, 0) + 1
    print(f"{len(results)} notebooks graded in {wall:.0f} s ({wall / len(results):.2f} s per "
          f"notebook, wall); {results[0].isolation}")
    print(f"per notebook: mean {sum(r.seconds for r in results) / len(results):.1f} s wall, "
          f"{sum(r.cpu_seconds for r in results) / len(results):.1f} s CPU (the checker "
          f"processes); statuses: {json.dumps(statuses)}; load before: {load[0]:.2f}")
    if not args.no_baseline:
        solved = next(r.path for r in results if r.student == "student000")
        run = execute_notebook(read_notebook(solved), cwd=SOLUTION.parents[1], timeout=1800)
        print(f"plain nbclient execution of one solved notebook: {run.seconds:.1f} s "
              f"({'ok' if run.ok else run.error})")


if __name__ == "__main__":
    main()
