"""What one grading run shares between its notebooks: the lesson, the limits, the
sandbox, the judges, segkit without the lesson's references, and the run's seed.

    with GradingRun.start(lesson, limits, isolation, jobs=2) as run:
        result = grade_notebook(submission, run)

The seed is drawn from the operating system for every run (``--seed`` repeats one):
each student's cases for each exercise come from it (:func:`student_seed`), so no
answer can be known before the run, and a grade can be reproduced with the seed that
``grades.json`` records.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from segkit_course.grading.discover import GradingInputError, Lesson

__all__ = ["GradingRun", "lesson_checks"]


def lesson_checks(lesson: Lesson) -> dict:
    """{exercise: Check} of the lesson (segkit.checks' registry), for every exercise of
    the solution; a lesson whose checks cannot ask (not yet written as draw/ask/judge)
    cannot be graded."""
    from segkit.checks import core

    checks = core.checks_of(lesson.number) if hasattr(core, "checks_of") else {}
    missing = [ex.name for ex in lesson.exercises if ex.name not in checks]
    if missing:
        raise GradingInputError(
            f"lesson {lesson.name}: exercise(s) {', '.join(missing)} have no check written "
            "as draw/ask/judge in segkit.checks, so the grader cannot ask them")
    return {ex.name: checks[ex.name] for ex in lesson.exercises}


def _fonts() -> list[Path]:
    """matplotlib's font list, shown to each sandbox so that it is not rebuilt."""
    cache = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
    return sorted(Path(cache).glob("fontlist-*.json"))


@dataclass
class GradingRun:
    """The shared parts of a grading run (see the module's docstring)."""

    lesson: Lesson
    limits: object            # segkit_course.grading.execute.Limits
    isolation: object         # segkit_course.sandbox.bwrap.Isolation
    judges: object            # segkit_course.grading.judge.JudgePool
    segkit_copy: object       # segkit_course.grading.stubbed.StubbedSegkit
    seed: int
    references: dict          # exercise -> dotted names stubbed for it
    fonts: list
    folder: Path              # this run's temporary folder (the copy lives there)
    expected_errors: set = field(default_factory=set)  # (cell key, error) of the solution

    @classmethod
    def start(cls, lesson: Lesson, limits, isolation, *, jobs: int = 1,
              seed: int | None = None) -> GradingRun:
        from segkit_course.grading.judge import JudgePool
        from segkit_course.grading.stubbed import StubbedSegkit, judge_only

        checks = lesson_checks(lesson)
        references = {name: tuple(check.references) for name, check in checks.items()}
        module = f"segkit.checks.lesson{lesson.number}"
        hidden = {module: judge_only(module, [c.ask_student for c in checks.values()])}
        folder = Path(tempfile.mkdtemp(prefix="segkit-grading-"))
        os.chmod(folder, 0o755)  # the copy inside is shown to other users' sandboxes
        try:
            copy = StubbedSegkit.build(folder / "copy", references, hidden)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        judges = JudgePool(jobs, threads=getattr(limits, "threads", 1))
        return cls(lesson, limits, isolation, judges, copy,
                   secrets.randbits(62) if seed is None else int(seed), references,
                   _fonts(), folder)

    def check_solution(self, cache=None) -> None:
        """Grade the solution notebook first, in this run's sandbox: it must get every
        point (else the grading set-up is wrong, and nothing is graded); the cells that
        raise in it are not worth a note when they raise in a student's notebook too.
        A ``cache`` that holds this solution's grade saves the work."""
        from segkit_course.grading.discover import Submission
        from segkit_course.grading.execute import grade_notebook
        from segkit_course.grading.report import explain

        solution = Submission(f"(solution) {self.lesson.solution.name}", self.lesson.solution)
        result = cache.get(solution) if cache is not None else None
        if result is None:
            result = grade_notebook(solution, self)
            if cache is not None and all(r.status == "pass" for r in result.exercises.values()):
                cache.put(result)
        wrong = [f"{name}: {res.status} ({explain(res) or res.message})"
                 for name, res in result.exercises.items() if res.status != "pass"]
        if wrong:
            raise GradingInputError(
                f"the solution {self.lesson.solution} does not get full marks when it is "
                f"graded here, so no student would: {'; '.join(wrong)}. Is a heavy cell "
                "without a stand-in, or a check that cannot ask? Nothing was graded.")
        self.expected_errors = set(result.cell_errors)

    def __enter__(self) -> GradingRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.judges.close()
        self.segkit_copy.remove()
        shutil.rmtree(self.folder, ignore_errors=True)
