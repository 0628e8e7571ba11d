"""What the class got wrong, exercise by exercise: ``mistakes.csv`` and ``mistakes.png``.

    rows = class_mistakes(lesson, results)   # [MistakeRow(exercise, mistake, students, ...)]
    write_mistakes(folder, lesson, results)  # mistakes.csv, mistakes.png

For each exercise: each catalogued mistake the checks found (its id from
``segkit.checks.catalogue``, what goes wrong, the hint the students got) and how many
students made it, then the other outcomes that earned nothing (not done, missing,
error, timeout, a wrong answer no catalogued mistake explains, review). An instructor
reads what to teach again on Monday::

    exercise,outcome,students,share,what goes wrong,hint,who
    dice_score,dice-no-factor-2,23,0.115,"|P and T| / (|P| + |T|): the 2 is missing","Dice = ...",alice/...; bob/...

``mistakes.png`` draws the same as bars, one panel per exercise, most frequent first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from segkit_course.grading.csvfile import csv_writer
from segkit_course.grading.discover import Lesson
from segkit_course.grading.execute import StudentResult

__all__ = ["MistakeRow", "class_mistakes", "write_mistakes"]

_OTHER = {"not done": "the stub is still there", "missing": "the notebook does not define it",
          "error": "the code crashed, or Python ended", "timeout": "it ran out of time",
          "review": "withheld: the grader's channel was tampered with",
          "fail": "a wrong answer that no catalogued mistake explains"}


@dataclass
class MistakeRow:
    """One outcome of one exercise in the class, and who had it."""

    exercise: str
    outcome: str                 # a mistake id, or a status ("not done", ...)
    what: str
    hints: list[str] = field(default_factory=list)   # each distinct hint students got
    students: list[str] = field(default_factory=list)


def _what(mistake: str) -> str:
    from segkit.checks.catalogue import MISTAKES

    entry = MISTAKES.get(mistake)
    return entry.what if entry is not None else ""


def class_mistakes(lesson: Lesson, results: list[StudentResult]) -> list[MistakeRow]:
    """The rows of ``mistakes.csv``: per exercise (lesson order), mistakes first, each
    group most frequent first."""
    rows: dict[tuple[str, str], MistakeRow] = {}
    for r in results:
        for exercise in lesson.exercises:
            res = r.exercises.get(exercise.name)
            if res is None or res.status == "pass":
                continue
            outcome = res.mistake if res.status == "fail" and res.mistake else res.status
            key = (exercise.name, outcome)
            if key not in rows:
                what = _what(outcome) if outcome not in _OTHER else _OTHER[outcome]
                rows[key] = MistakeRow(exercise.name, outcome, what)
            row = rows[key]
            row.students.append(r.student)
            hint = " ".join((res.hint or "").split())
            if hint and hint not in row.hints:
                row.hints.append(hint)
    order = {ex.name: i for i, ex in enumerate(lesson.exercises)}
    return sorted(rows.values(), key=lambda row: (order[row.exercise], row.outcome in _OTHER,
                                                  -len(row.students), row.outcome))


def _plot(path: Path, lesson: Lesson, rows: list[MistakeRow], total: int) -> None:
    from matplotlib.figure import Figure

    panels = [ex.name for ex in lesson.exercises]
    fig = Figure(figsize=(8, 1.2 + 1.6 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, panels):
        mine = [row for row in rows if row.exercise == name][::-1]
        ax.barh([row.outcome for row in mine], [len(row.students) for row in mine],
                color=["#c44" if row.outcome not in _OTHER else "#999" for row in mine])
        ax.set_title(f"{name}: {total - sum(len(r.students) for r in mine)} of {total} passed",
                     fontsize=10, loc="left")
        ax.set_xlim(0, max(1, total))
        ax.tick_params(labelsize=8)
    axes[-1].set_xlabel("students")
    fig.suptitle(f"{lesson.name}: what the class got wrong", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write_mistakes(folder: str | Path, lesson: Lesson, results: list[StudentResult]
                   ) -> tuple[Path, Path]:
    """``mistakes.csv`` and ``mistakes.png`` in ``folder`` (this run's own)."""
    folder = Path(folder)
    rows = class_mistakes(lesson, results)
    total = len(results)
    csv_path = folder / "mistakes.csv"
    with open(csv_path, "x", newline="", encoding="utf-8") as f:
        write = csv_writer(f)
        write(["exercise", "outcome", "students", "share", "what goes wrong", "hint", "who"])
        for row in rows:
            write([row.exercise, row.outcome, len(row.students),
                   round(len(row.students) / max(total, 1), 3), row.what,
                   " | ".join(row.hints[:3]), "; ".join(row.students)])
    png_path = folder / "mistakes.png"
    _plot(png_path, lesson, rows, total)
    return csv_path, png_path
