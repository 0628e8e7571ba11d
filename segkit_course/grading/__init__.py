"""Grading students' notebooks: ``segkit grade``.

    segkit grade submissions/ --lesson 03          # every 03_*.ipynb under submissions/
    segkit grade "submissions/*/04_metrics.ipynb"  # a glob (quote it)
    segkit grade alice.ipynb bob.ipynb --lesson 04 --out grades/04
    segkit grade submissions/ --lesson 04 --shard 3/8   # one of 8 parts; then grade-merge

prints a table, one row per student and one column per exercise (``pass``, ``fail``,
``not done``, ``missing``, ``error``, ``timeout``, ``review``) with the points, then the
hints the checks gave, and writes ``grades.csv``, ``grades.json``, a gradebook for
Canvas/Moodle, Gradescope results and one feedback file per student to ``--out``.

How it grades, and why a student cannot change their grade by tampering:

- the exercises, their points, their checks and the code they run after (the
  lesson's set-up and imports) come from the SOLUTION notebook (``solutions/NN_name.
  ipynb``); results are keyed by exercise name, never by cell position or id: deleted,
  duplicated, reordered or edited cells and metadata do not matter;
- only the student's exercise cells run (the last cell defining each exercise, its
  definitions only), in a fresh process, never the rest of their notebook; each is
  first screened (:mod:`segkit_course.grading.screen`): code that reaches for the grader's
  machinery is not run and is graded ``review`` (0 points until an instructor looks);
- on Linux with bubblewrap each notebook is graded in its own sandbox
  (:mod:`segkit_course.sandbox.bwrap`): no network, nothing of the machine visible but the
  system, Python and segkit (not ``solutions/``, not other students), nothing writable
  outside its work folder, memory, CPU and process caps. Elsewhere the in-process guard
  (:mod:`segkit_course.sandbox.guard`) and the screen are all there is, and every report says
  ``isolation: off``;
- results come back on a channel the student's code does not hold, each line marked
  with a random nonce (:mod:`segkit_course.grading.checker`).

Modules: :mod:`~segkit_course.grading.discover` (lessons, notebooks), :mod:`~segkit_course.grading.
screen`, :mod:`~segkit_course.grading.execute` (one notebook), :mod:`~segkit_course.grading.checker`
(the process in the sandbox), :mod:`~segkit_course.grading.report` (table, CSV, JSON, exports,
feedback), :mod:`~segkit_course.grading.batch` (resume, shards, merge).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from segkit_course.grading.batch import ResultCache
    from segkit_course.grading.discover import Lesson, Submission
    from segkit_course.grading.execute import Limits, StudentResult
    from segkit_course.sandbox.bwrap import Isolation

__all__ = ["default_jobs", "grade", "grade_all", "merge"]

_MEMORY_PER_JOB = 2 * 2**30  # what one checker may need, torch and a lesson's checks


def default_jobs(threads: int = 1) -> int:
    """Notebooks graded at once by default: as many as the cores hold at ``threads``
    threads each (jobs x threads <= cores), at most 8, and no more than the memory
    holds at 2 GiB each."""
    jobs = max(1, (os.cpu_count() or 2) // max(1, threads))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        jobs = min(jobs, max(1, memory // _MEMORY_PER_JOB))
    except (ValueError, OSError, AttributeError):
        pass
    return min(jobs, 8)


def grade_all(submissions: list[Submission], lesson: Lesson, limits: Limits | None = None,
              jobs: int = 1, progress: Callable[[str], None] | None = None,
              isolation: Isolation | None = None, cache: ResultCache | None = None
              ) -> list[StudentResult]:
    """Grade every submission (``jobs`` at once); results in the submissions' order.

    With a ``cache``, a notebook whose grade it holds is not graded again, and every
    new grade is saved in it as soon as it is known.
    """
    from segkit_course.grading.execute import Limits, grade_notebook, notebook_digest
    from segkit_course.sandbox.bwrap import detect

    limits = limits or Limits()
    isolation = isolation or detect()

    def one(sub: Submission) -> tuple[StudentResult, bool]:
        if cache is not None:
            try:
                known = cache.get(sub, notebook_digest(sub.path))
            except OSError:
                known = None
            if known is not None:
                return known, True
        result = grade_notebook(sub, lesson, limits, isolation)
        if cache is not None:
            cache.put(result)
        return result, False

    results: dict[int, StudentResult] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, sub): i for i, sub in enumerate(submissions)}
        for done, future in enumerate(as_completed(futures), start=1):
            result, reused = future.result()
            results[futures[future]] = result
            if progress:
                how = "already graded" if reused else f"{result.seconds:.0f} s"
                progress(f"[{done}/{len(submissions)}] {result.student}: "
                         f"{result.points}/{result.max_points} points ({how})")
    return [results[i] for i in range(len(submissions))]


def grade(inputs: list[str | Path], *, lesson: str | None = None,
          solutions: str | Path = "solutions", out: str | Path | bool | None = None,
          limits: Limits | None = None, jobs: int | None = None,
          progress: Callable[[str], None] | None = print, isolation: str = "auto",
          shard: str | None = None, fresh: bool = False
          ) -> tuple[Lesson, list[StudentResult]]:
    """Grade the notebooks ``inputs`` (files, folders, globs) and write the reports.

    Args:
        inputs: what to grade.
        lesson: "03"; by default read from the notebooks' names.
        solutions: the folder of solution notebooks.
        out: where ``grades.csv`` and ``grades.json`` go (None: ``grades/NN_name``;
            False: nothing is written).
        limits: time and size limits (:class:`segkit_course.grading.execute.Limits`).
        jobs: notebooks graded at once (default :func:`default_jobs`).
        progress: called with one line per graded notebook (None: silent).
        isolation: "auto" (bubblewrap when it works), "bwrap" (stop when it does
            not) or "off".
        shard: "K/N": grade only the K-th of N parts of the class
            (:mod:`segkit_course.grading.batch`); its reports go to ``out/shard-K-of-N``.
        fresh: grade every notebook again, even those graded before with the same content.
    """
    from segkit_course.grading.batch import ResultCache, parse_shard
    from segkit_course.grading.batch import shard as shard_of
    from segkit_course.grading.discover import GradingInputError, submissions_for
    from segkit_course.grading.execute import Limits
    from segkit_course.grading.report import format_table, write_reports
    from segkit_course.sandbox.bwrap import detect

    limits = limits or Limits()
    spec, submissions, skipped = submissions_for(inputs, lesson, solutions)
    sandbox = detect(isolation)
    if isolation == "bwrap" and not sandbox.on:
        raise GradingInputError(f"--isolation bwrap: {sandbox.describe()}")
    out_dir = Path(out) if out not in (None, True, False) else Path("grades") / spec.name
    if shard:
        k, n = parse_shard(shard)
        submissions = shard_of(submissions, k, n)
        if out in (None, True):
            out_dir = out_dir / f"shard-{k}-of-{n}"
    if progress:
        extra = f" ({len(skipped)} notebooks of other lessons left out)" if skipped else ""
        part = f", shard {shard}" if shard else ""
        progress(f"grading {len(submissions)} notebook(s) of lesson {spec.name}{part}{extra}")
        progress(sandbox.describe())
    cache = None
    if out is not False and not fresh:
        cache = ResultCache(out_dir / "cache", spec, sandbox.describe())
    start = time.monotonic()
    results = grade_all(submissions, spec, limits, jobs or default_jobs(limits.threads),
                        progress, sandbox, cache)
    if progress:
        progress(f"graded in {time.monotonic() - start:.0f} s\n")
        progress(format_table(spec, results))
    if out is not False:
        csv_path, json_path = write_reports(out_dir, spec, results)
        if progress:
            progress(f"\nwrote {csv_path}, {json_path}, gradebook.csv, gradescope/ and "
                     f"feedback/ in {out_dir}")
    return spec, results


def merge(folders: list[str | Path], out: str | Path,
          progress: Callable[[str], None] | None = print):
    """``segkit grade-merge``: join shards' reports (:func:`segkit_course.grading.batch.merge`)."""
    from segkit_course.grading.batch import merge as merge_folders
    from segkit_course.grading.report import format_table

    lesson, results = merge_folders(folders, out)
    if progress:
        progress(format_table(lesson, results, details=False))
        progress(f"\nmerged {len(folders)} shard(s), {len(results)} notebooks, into {out}")
    return lesson, results
