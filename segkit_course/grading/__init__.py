"""Grading students' notebooks: ``segkit grade``.

    segkit grade submissions/ --lesson 03          # every 03_*.ipynb under submissions/
    segkit grade "submissions/*/04_metrics.ipynb"  # a glob (quote it)
    segkit grade alice.ipynb bob.ipynb --lesson 04 --out grades/04
    segkit grade submissions/ --lesson 04 --shard 3/8   # one of 8 parts; then grade-merge

prints a table, one row per student and one column per exercise (``pass``, ``fail``,
``not done``, ``missing``, ``error``, ``timeout``, ``review``) with the points, then the
hints the checks gave, and writes ``grades.csv``, ``grades.json``, ``mistakes.csv`` and
``mistakes.png`` (which catalogued mistakes, how many students, the hint each got), a
gradebook for Canvas/Moodle, Gradescope results and one feedback file per student, in a
folder of its own (``--out``, or the next free name after it).

How it grades, and why a student cannot forge a grade or spoil another's:

- the exercises, their points and their checks come from the SOLUTION notebook
  (``solutions/NN_name.ipynb``); results are keyed by exercise name, never by cell
  position or id: deleted, duplicated, reordered or edited cells do not matter;
- the student's notebook runs as its author wrote it, every code cell in order (as
  nbgrader and otter run it), in a sandbox of its own
  (:mod:`segkit_course.sandbox.bwrap`: no network, nothing of the machine visible but
  the system, Python and segkit, a disk quota, memory, CPU and process caps); the
  instructor's heavy demonstration cells (tagged ``skip-when-grading``) are skipped;
- in that sandbox, segkit lacks the lesson's answers (:mod:`segkit_course.grading.stubbed`);
- the grader then asks each exercise questions drawn fresh for this run (the exercise
  check's ``ask`` step, :mod:`segkit_course.grading.runner`), gets plain-data answers back
  as capped bytes, and judges them in a process that never ran student code
  (:mod:`segkit_course.grading.judge`): a forged answer must be a right answer to a
  question never seen before, which is doing the exercise;
- what a static screen finds is only a flag for the instructor, never a lost point
  (:mod:`segkit_course.grading.screen`); one bad notebook is one row with a clear status,
  and the class run always finishes.

Modules: :mod:`~segkit_course.grading.discover` (lessons, notebooks, identities),
:mod:`~segkit_course.grading.notebook` (reading a submission, heavy cells),
:mod:`~segkit_course.grading.context` (a run's shared parts),
:mod:`~segkit_course.grading.execute` (one notebook), :mod:`~segkit_course.grading.session`
(one sandbox process), :mod:`~segkit_course.grading.runner` (in the sandbox),
:mod:`~segkit_course.grading.judge`, :mod:`~segkit_course.grading.stubbed`,
:mod:`~segkit_course.grading.channel`, :mod:`~segkit_course.grading.screen`,
:mod:`~segkit_course.grading.report` (table, CSV, JSON, exports, feedback),
:mod:`~segkit_course.grading.class_mistakes` (the class's mistakes),
:mod:`~segkit_course.grading.batch` (output folders, resume, shards, merge).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from segkit_course.grading.discover import Lesson, Submission

if TYPE_CHECKING:
    from segkit_course.grading.batch import ResultCache
    from segkit_course.grading.execute import Limits, StudentResult
    from segkit_course.sandbox.bwrap import Isolation

__all__ = ["default_jobs", "grade", "grade_all", "merge"]

_MEMORY_PER_JOB = 3 * 2**30  # a sandbox (torch, a notebook's data) and its judge


def default_jobs(threads: int = 1) -> int:
    """Notebooks graded at once by default: as many as the cores hold at ``threads``
    threads each (jobs x threads <= cores), at most 8, and no more than the memory
    holds at 3 GiB each."""
    jobs = max(1, (os.cpu_count() or 2) // max(1, threads))
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        jobs = min(jobs, max(1, memory // _MEMORY_PER_JOB))
    except (ValueError, OSError, AttributeError):
        pass
    return min(jobs, 8)


def _failed_row(sub: Submission, lesson: Lesson, exc: BaseException, isolation: str):
    """One row for a notebook the grader itself failed on (a bug: the run goes on)."""
    from segkit_course.grading.execute import ExerciseResult, StudentResult

    message = f"the grader failed on this notebook: {type(exc).__name__}: {exc}"[:500]
    results = {ex.name: ExerciseResult("error", 0, ex.points, message=message)
               for ex in lesson.exercises}
    return StudentResult(sub.student, sub.path, results, [message], 0.0, isolation,
                         login=sub.login)


def _grade_one(sub: Submission, run, cache) -> tuple[StudentResult, bool]:
    """(result, taken from the cache)."""
    from segkit_course.grading.execute import grade_notebook

    if cache is not None and not sub.problem:
        known = cache.get(sub)
        if known is not None:
            return known, True
    try:
        result = grade_notebook(sub, run)
    except Exception as exc:  # noqa: BLE001 - one notebook's trouble is one row
        result = _failed_row(sub, run.lesson, exc, run.isolation.describe())
    if cache is not None and not result.retry:
        cache.put(result)
    return result, False


def grade_all(submissions: list[Submission], lesson: Lesson, limits: Limits | None = None,
              jobs: int = 1, progress: Callable[[str], None] | None = None,
              isolation: Isolation | None = None, cache: ResultCache | None = None,
              seed: int | None = None, check_solution: bool = True) -> list[StudentResult]:
    """Grade every submission (``jobs`` at once); results in the submissions' order.

    With a ``cache``, a notebook whose grade it holds is not graded again, and every
    new grade is saved in it as soon as it is known. A notebook stopped by the clock
    rather than by its own CPU time (a busy machine), or whose sandbox did not start, is
    graded again alone at the end, with nothing else running, before its grade counts. With ``check_solution``, the
    solution notebook is graded first and must get every point
    (:meth:`segkit_course.grading.context.GradingRun.check_solution`).
    """
    from segkit_course.grading.context import GradingRun
    from segkit_course.grading.execute import Limits
    from segkit_course.grading.report import printable
    from segkit_course.sandbox.bwrap import detect

    limits = limits or Limits()
    isolation = isolation or detect()
    results: dict[int, StudentResult] = {}
    with GradingRun.start(lesson, limits, isolation, jobs=jobs, seed=seed) as run:
        if check_solution:
            run.check_solution(cache)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(_grade_one, sub, run, cache): i
                       for i, sub in enumerate(submissions)}
            for done, future in enumerate(as_completed(futures), start=1):
                result, reused = future.result()
                results[futures[future]] = result
                if progress:
                    how = "already graded" if reused else f"{result.seconds:.0f} s"
                    progress(f"[{done}/{len(submissions)}] {printable(result.student)}: "
                             f"{result.points}/{result.max_points} points ({how})")
        for i, result in sorted(results.items()):
            if result.retry:
                results[i] = _again_alone(submissions[i], run, cache, progress)
    return [results[i] for i in range(len(submissions))]


def _again_alone(sub: Submission, run, cache, progress) -> StudentResult:
    from segkit_course.grading.report import printable

    if progress:
        progress(f"grading {printable(sub.student)} again, alone: the clock stopped it, "
                 "or its sandbox did not start, while other notebooks ran")
    result, _ = _grade_one(sub, run, None)
    result.notes.insert(0, "graded again alone: the first try was stopped by the clock, "
                           "or its sandbox did not start, while other notebooks were graded")
    result.retry = False
    if cache is not None:
        cache.put(result)
    return result


def _out_folder(out, spec: Lesson, shard: tuple[int, int] | None) -> Path:
    """The folder asked for: ``out`` (default ``grades/NN_name``), and for a shard its
    ``shard-K-of-N`` inside."""
    base = Path(out) if out not in (None, True) else Path("grades") / spec.name
    return base / f"shard-{shard[0]}-of-{shard[1]}" if shard else base


def _cache_for(out_dir: Path, wanted: Path, spec: Lesson, sandbox, limits, fresh: bool):
    from segkit_course.grading.batch import ResultCache, earlier_caches

    earlier = [] if fresh else earlier_caches(wanted, out_dir)
    return ResultCache(out_dir / "cache", spec, sandbox.describe(), earlier, limits)


def _this_part(submissions: list[Submission], part: tuple[int, int] | None,
               seed: int | None) -> tuple[list[Submission], dict]:
    """The submissions this run grades (its shard's), and what its report records:
    the run's seed, the whole class, the shard."""
    import secrets

    from segkit_course.grading.batch import class_key, shard

    meta = {"seed": secrets.randbits(62) if seed is None else int(seed),
            "class": class_key(submissions),
            "shard": {"k": part[0], "n": part[1]} if part else None}
    return (shard(submissions, *part) if part else submissions), meta


def _say_start(progress, spec, submissions, skipped, shard, sandbox, folders) -> None:
    extra = f" ({len(skipped)} notebooks of other lessons left out)" if skipped else ""
    progress(f"grading {len(submissions)} notebook(s) of lesson {spec.name}"
             f"{f', shard {shard}' if shard else ''}{extra}")
    progress(sandbox.describe())
    if folders[1] is not None and folders[0] != folders[1]:
        progress(f"{folders[0]} holds an earlier grading: this one goes to {folders[1]}")


def grade(inputs: list[str | Path], *, lesson: str | None = None,
          solutions: str | Path = "solutions", out: str | Path | bool | None = None,
          limits: Limits | None = None, jobs: int | None = None,
          progress: Callable[[str], None] | None = print, isolation: str = "auto",
          shard: str | None = None, fresh: bool = False, seed: int | None = None
          ) -> tuple[Lesson, list[StudentResult]]:
    """Grade the notebooks ``inputs`` (files, folders, globs) and write the reports.

    Args:
        inputs: what to grade.
        lesson: "03"; by default read from the notebooks' names.
        solutions: the folder of solution notebooks.
        out: the folder asked for (None: ``grades/NN_name``; False: nothing is written);
            the reports go to it, or to the next free name after it
            (:func:`segkit_course.grading.batch.claim_folder`), said on screen.
        limits: time and size limits (:class:`segkit_course.grading.execute.Limits`).
        jobs: notebooks graded at once (default :func:`default_jobs`).
        progress: called with one line per graded notebook (None: silent).
        isolation: "auto" (bubblewrap when it works), "bwrap" (stop when it does
            not) or "off".
        shard: "K/N": grade only the K-th of N parts of the class
            (:mod:`segkit_course.grading.batch`), into ``OUT/shard-K-of-N``.
        fresh: grade every notebook again, even those graded before with the same content.
        seed: the run's seed (default: a fresh one; ``grades.json`` records it).
    """
    from segkit_course.grading.batch import claim_folder, parse_shard
    from segkit_course.grading.discover import GradingInputError, submissions_for
    from segkit_course.grading.execute import Limits
    from segkit_course.grading.report import format_table, write_reports
    from segkit_course.sandbox.bwrap import detect

    limits = limits or Limits()
    spec, submissions, skipped = submissions_for(inputs, lesson, solutions)
    sandbox = detect(isolation)
    if isolation == "bwrap" and not sandbox.on:
        raise GradingInputError(f"--isolation bwrap: {sandbox.describe()}")
    part = parse_shard(shard) if shard else None
    submissions, meta = _this_part(submissions, part, seed)
    wanted, out_dir, cache = None, None, None
    if out is not False:
        wanted = _out_folder(out, spec, part)
        out_dir = claim_folder(wanted)
        cache = _cache_for(out_dir, wanted, spec, sandbox, limits, fresh)
    if progress:
        _say_start(progress, spec, submissions, skipped, shard, sandbox, (wanted, out_dir))
    start = time.monotonic()
    results = grade_all(submissions, spec, limits, jobs or default_jobs(limits.threads),
                        progress, sandbox, cache, meta["seed"])
    if progress:
        progress(f"graded in {time.monotonic() - start:.0f} s\n")
        progress(format_table(spec, results))
    if out_dir is not None:
        write_reports(out_dir, spec, results, meta)
        if progress:
            progress(f"\nwrote grades.csv, grades.json, mistakes.csv, mistakes.png, "
                     f"gradebook.csv, gradescope/ and feedback/ to {out_dir}")
    return spec, results


def merge(folders: list[str | Path], out: str | Path,
          progress: Callable[[str], None] | None = print):
    """``segkit grade-merge``: join shards' reports (:func:`segkit_course.grading.batch.merge`)
    into ``out`` or the next free name after it; returns (lesson, results, folder)."""
    from segkit_course.grading.batch import merge as merge_folders
    from segkit_course.grading.report import format_table

    lesson, results, target = merge_folders(folders, out)
    if progress:
        progress(format_table(lesson, results, details=False))
        moved = f" ({out} was taken)" if Path(target) != Path(out) else ""
        progress(f"\nmerged {len(folders)} shard(s), {len(results)} notebooks, into "
                 f"{target}{moved}")
    return lesson, results, target
