"""The grade table: in the terminal, as ``grades.csv`` and as ``grades.json``.

One row per student, one column per exercise (its status), and the points::

    lesson 00_setup: 3 exercises, 4 points, 2 notebooks

    student  float32_mib (1)  foreground_fraction (1)  list_pairs (2)  points
    alice    pass             pass                     pass               4/4
    bob      fail             not done                 timeout            0/4

    bob (submissions/bob/00_setup.ipynb)
      float32_mib: fail: [forgot-bytes-per-value] you counted the numbers, not the
            bytes: each float32 value takes 4 bytes. Multiply the number of values by 4.
      list_pairs: timeout: the check did not finish within 60 s: an endless loop in
            `list_pairs`?
      note: cell 9 (`while True:`) ran longer than 120 s and was stopped

``grades.csv`` has the same rows, for a spreadsheet or an LMS upload, with for each
exercise its status, points, mistake id and hint; ``grades.json`` has everything,
check messages included.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

from segkit.grading.discover import Lesson
from segkit.grading.execute import ExerciseResult, StudentResult

__all__ = ["explain", "format_table", "to_json", "write_csv", "write_json", "write_reports"]


def explain(result: ExerciseResult) -> str:
    """One line on a result that is not a pass: the mistake and hint, or the message."""
    if result.status == "pass":
        return ""
    text = result.hint or result.message or ""
    if result.status == "not done":
        text = "the exercise still holds the stub"
    if result.mistake:
        text = f"[{result.mistake}] {text}"
    return " ".join(text.split())


def _header(lesson: Lesson) -> list[str]:
    return ["student"] + [f"{ex.name} ({ex.points})" for ex in lesson.exercises] + ["points"]


def format_table(lesson: Lesson, results: list[StudentResult], *, details: bool = True,
                 width: int = 100) -> str:
    """The terminal table, then (``details``) the hints and notes of each student,
    wrapped at ``width`` characters."""
    rows = [_header(lesson)]
    for r in results:
        rows.append([r.student] + [r.exercises[ex.name].status for ex in lesson.exercises]
                    + [f"{r.points}/{r.max_points}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"lesson {lesson.name}: {len(lesson.exercises)} exercises, {lesson.max_points} "
             f"points, {len(results)} notebook{'s' if len(results) != 1 else ''}", ""]
    for row in rows:
        cells = [f"{value:<{w}}" for value, w in zip(row[:-1], widths)]
        cells.append(f"{row[-1]:>{widths[-1]}}")
        lines.append("  ".join(cells).rstrip())
    if details:
        for r in results:
            extra = [f"  {name}: {res.status}: {explain(res)}"
                     for name, res in r.exercises.items() if res.status not in ("pass", "not done")]
            extra += [f"  note: {note}" for note in r.notes]
            if extra:
                lines += ["", f"{r.student} ({r.path})"]
                for line in extra:
                    lines += textwrap.wrap(line, width, subsequent_indent="      ",
                                           break_on_hyphens=False) or [line]
    return "\n".join(lines)


def to_json(lesson: Lesson, results: list[StudentResult]) -> dict:
    """Everything about the grading, as plain JSON data."""
    return {
        "lesson": lesson.name,
        "solution": str(lesson.solution),
        "max_points": lesson.max_points,
        "exercises": [{"name": ex.name, "points": ex.points} for ex in lesson.exercises],
        "students": [
            {"student": r.student, "file": str(r.path), "points": r.points,
             "max_points": r.max_points, "seconds": round(r.seconds, 1),
             "exercises": {name: {"status": res.status, "points": res.points,
                                  "max_points": res.max_points, "mistake": res.mistake,
                                  "hint": res.hint, "message": res.message}
                           for name, res in r.exercises.items()},
             "notes": list(r.notes)}
            for r in results],
    }


def write_json(path: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    path = Path(path)
    path.write_text(json.dumps(to_json(lesson, results), indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def write_csv(path: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """One row per student: student, file, points, max_points, then per exercise
    ``<name>`` (status), ``<name> points``, ``<name> mistake``, ``<name> hint``, then notes."""
    path = Path(path)
    header = ["student", "file", "points", "max_points"]
    for ex in lesson.exercises:
        header += [ex.name, f"{ex.name} points", f"{ex.name} mistake", f"{ex.name} hint"]
    header.append("notes")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in results:
            row = [r.student, str(r.path), r.points, r.max_points]
            for ex in lesson.exercises:
                res = r.exercises[ex.name]
                row += [res.status, res.points, res.mistake or "",
                        " ".join((res.hint or res.message or "").split())]
            row.append("; ".join(r.notes))
            writer.writerow(row)
    return path


def write_reports(out_dir: str | Path, lesson: Lesson,
                  results: list[StudentResult]) -> tuple[Path, Path]:
    """``out_dir/grades.csv`` and ``out_dir/grades.json`` (the folder is created)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return (write_csv(out_dir / "grades.csv", lesson, results),
            write_json(out_dir / "grades.json", lesson, results))
