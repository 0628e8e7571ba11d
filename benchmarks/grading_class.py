"""How long does ``segkit grade`` take for a class, and what does it cost per notebook?

    python benchmarks/grading_class.py --students 200 --out build/grading-bench
    python benchmarks/grading_class.py --students 20 --jobs 2 --isolation off

Writes ``--students`` whole lesson-04 notebooks, as students hand them in: the lesson
(``lessons/04_metrics.ipynb``) with, in turn, the solution's code in every exercise, the
stubs as handed out, and one catalogued mistake in each exercise; each notebook also
gets a cell of its own, so no two are the same file (identical notebooks would be
graded once and the rest taken from the resume cache). Then grades them with
``segkit grade`` (``--jobs``: default, the cores at one thread each): every notebook
runs whole in its sandbox, except the cells the solution tags ``skip-when-grading``
(lesson 04's six-epoch training, which has a stand-in), then its exercises are asked
and judged. Prints the wall time, the time and CPU time per notebook, the statuses, the
load average before and after, and, for comparison, the time plain nbclient takes to
execute one solved notebook whole, training included
(``segkit_course.run.execute_notebook``, one kernel). A second run with the same
``--out`` shows resumed grading (nothing graded again, in a folder of its own).

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

from segkit_course.build import exercise_name, read_notebook
from segkit_course.grading import grade
from segkit_course.grading.execute import Limits
from segkit_course.run import execute_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "04_metrics.ipynb"
LESSON = ROOT / "lessons" / "04_metrics.ipynb"
MISTAKES = {  # exercise -> (text of the solution, replaced by)
    "pixel_accuracy": ("return correct / target.numel()", "return correct // target.numel()"),
    "dice_score": ("2 * inter / sizes.clamp(min=1)", "inter / sizes.clamp(min=1)"),
    "iou_score": ("target.sum(dim=(1, 2)) - inter", "target.sum(dim=(1, 2))"),
}


def write_class(folder: Path, students: int) -> None:
    """``students`` notebooks in ``folder/studentNNN/04_metrics.ipynb``."""
    solution = read_notebook(SOLUTION)
    handout = read_notebook(LESSON)
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
                assert old in solved[name], f"the solution of {name} changed: update MISTAKES"
                cell.source = solved[name].replace(old, new)
        nb.cells.append(nbformat.v4.new_code_cell(f"handed_in_by = 'student {i:03d}'"))
        path = folder / f"student{i:03d}" / "04_metrics.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)


def _summary(results, wall: float, load: tuple[float, ...]) -> None:
    statuses: dict[str, int] = {}
    for r in results:
        for res in r.exercises.values():
            statuses[res.status] = statuses.get(res.status, 0) + 1
    n = len(results)
    print(f"{n} notebooks graded in {wall:.0f} s ({wall / n:.2f} s per notebook, wall); "
          f"{results[0].isolation}")
    print(f"per notebook: mean {sum(r.seconds for r in results) / n:.1f} s wall, "
          f"{sum(r.cpu_seconds for r in results) / n:.1f} s CPU (the sandboxes' processes); "
          f"statuses: {json.dumps(statuses)}")
    print(f"load average before: {load[0]:.2f}, after: {os.getloadavg()[0]:.2f}")


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
    _summary(results, time.monotonic() - start, load)
    if not args.no_baseline:
        solved = next(r.path for r in results if r.student.startswith("student000"))
        run = execute_notebook(read_notebook(solved), cwd=ROOT, timeout=1800)
        print(f"plain nbclient execution of one solved notebook, training included: "
              f"{run.seconds:.1f} s ({'ok' if run.ok else run.error})")


if __name__ == "__main__":
    main()
