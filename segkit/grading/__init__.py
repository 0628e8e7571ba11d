"""Grading students' notebooks: ``segkit grade``.

    segkit grade submissions/ --lesson 03          # every 03_*.ipynb under submissions/
    segkit grade "submissions/*/04_metrics.ipynb"  # a glob (quote it)
    segkit grade alice.ipynb bob.ipynb --lesson 04 --out grades/04

prints a table, one row per student and one column per exercise (``pass``, ``fail``,
``not done``, ``missing``, ``error``, ``timeout``) with the points, then the hints
the checks gave, and writes ``grades.csv`` and ``grades.json`` to ``--out``.

How it avoids the ways other graders break (nbgrader issues #1682, #1083, #923):

- the exercises, their points and their checks come from the SOLUTION notebook
  (``solutions/NN_name.ipynb``), and results are keyed by exercise name (the function
  or class the exercise asks for), never by cell position or cell id: a student who
  deleted, duplicated, reordered or edited cells, or their metadata, is graded the
  same as one who did not;
- after the student's cells, the grader runs its own checks on freshly imported
  ``segkit.checks``, on the last version of each exercise the notebook itself
  defined: redefining or silencing the checks, or printing fake results, gains
  nothing (results are read from a line marked with a random nonce);
- each notebook runs in a fresh kernel in its own temporary folder, with a time limit
  per cell and per notebook; an endless loop is interrupted, a crashed kernel is
  restarted, megabytes of output are cut, and writes outside the temporary folder,
  programs and network are refused (:mod:`segkit.grading.guard`).

Modules:

- :mod:`segkit.grading.discover`: the lesson's exercises (from the solution) and the
  students' notebooks;
- :mod:`segkit.grading.execute`: running one notebook robustly, and checking it;
- :mod:`segkit.grading.report`: the terminal table, CSV and JSON;
- :mod:`segkit.grading.guard`, :mod:`segkit.grading.kernel`,
  :mod:`segkit.grading.inkernel`: what runs inside the student's kernel.

This package is imported inside every grading kernel (by its launcher): keep this
file free of heavy imports.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from segkit.grading.discover import Lesson, Submission
    from segkit.grading.execute import Limits, StudentResult

__all__ = ["default_jobs", "grade", "grade_all"]


def default_jobs() -> int:
    """Notebooks graded at once by default: half the CPU cores, at least 1, at most 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def grade_all(submissions: list[Submission], lesson: Lesson, limits: Limits | None = None,
              jobs: int = 1, progress: Callable[[str], None] | None = None
              ) -> list[StudentResult]:
    """Grade every submission (``jobs`` at once); results in the submissions' order."""
    from segkit.grading.execute import Limits, grade_notebook

    limits = limits or Limits()
    results: dict[int, StudentResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_notebook, sub, lesson, limits): i
                   for i, sub in enumerate(submissions)}
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            results[futures[future]] = result
            if progress:
                progress(f"[{done}/{len(submissions)}] {result.student}: "
                         f"{result.points}/{result.max_points} points ({result.seconds:.0f} s)")
    return [results[i] for i in range(len(submissions))]


def grade(inputs: list[str | Path], *, lesson: str | None = None,
          solutions: str | Path = "solutions", out: str | Path | bool | None = None,
          limits: Limits | None = None, jobs: int | None = None,
          progress: Callable[[str], None] | None = print
          ) -> tuple[Lesson, list[StudentResult]]:
    """Grade the notebooks ``inputs`` (files, folders, globs) and write the reports.

    Args:
        inputs: what to grade.
        lesson: "03"; by default read from the notebooks' names.
        solutions: the folder of solution notebooks.
        out: where ``grades.csv`` and ``grades.json`` go (None: ``grades/NN_name``;
            False: nothing is written).
        limits: time and size limits (:class:`segkit.grading.execute.Limits`).
        jobs: notebooks graded at once (default :func:`default_jobs`).
        progress: called with one line per graded notebook (None: silent).
    """
    from segkit.grading.discover import submissions_for
    from segkit.grading.report import format_table, write_reports

    spec, submissions, skipped = submissions_for(inputs, lesson, solutions)
    if progress:
        extra = f" ({len(skipped)} notebooks of other lessons left out)" if skipped else ""
        progress(f"grading {len(submissions)} notebook(s) of lesson {spec.name}{extra}")
    start = time.monotonic()
    results = grade_all(submissions, spec, limits, jobs or default_jobs(), progress)
    if progress:
        progress(f"graded in {time.monotonic() - start:.0f} s\n")
        progress(format_table(spec, results))
    if out is not False:
        out_dir = Path(out) if out not in (None, True) else Path("grades") / spec.name
        csv_path, json_path = write_reports(out_dir, spec, results)
        if progress:
            progress(f"\nwrote {csv_path} and {json_path}")
    return spec, results
