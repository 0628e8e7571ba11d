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

``grades.csv`` has the same rows, for a spreadsheet, with for each exercise its status,
points, mistake id and hint; ``grades.json`` has everything, check messages included.
Alongside them:

- ``gradebook.csv``: one row per student in the layout Canvas imports (Student, ID,
  SIS User ID, SIS Login ID, Section, then the lesson's points, with a
  ``Points Possible`` row); Moodle imports it too (map "SIS Login ID" to the username);
- ``gradescope/<student>/results.json``: Gradescope's autograder results format;
- ``feedback/<student>.md``: what a student may receive: each exercise's status,
  points and the check's hint (never the solution, never the instructor's notes).

Every file says how the notebooks were isolated (``isolation: bubblewrap (...)`` or
``isolation: off (...)``).
"""

from __future__ import annotations

import csv
import json
import re
import textwrap
from pathlib import Path

from segkit_course.grading.discover import Exercise, Lesson
from segkit_course.grading.execute import ExerciseResult, StudentResult

__all__ = ["explain", "format_table", "from_json", "isolation_of", "to_json", "write_csv",
           "write_feedback", "write_gradebook", "write_gradescope", "write_json",
           "write_reports"]


def isolation_of(results: list[StudentResult]) -> str:
    """The isolation line of a grading (the weakest, when runs differed)."""
    lines = sorted({r.isolation for r in results if r.isolation})
    off = [line for line in lines if line.startswith("isolation: off")]
    return (off or lines or ["isolation: unknown"])[0]


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
             f"points, {len(results)} notebook{'s' if len(results) != 1 else ''}",
             isolation_of(results), ""]
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
        "fingerprint": lesson.fingerprint,
        "isolation": isolation_of(results),
        "max_points": lesson.max_points,
        "exercises": [{"name": ex.name, "points": ex.points} for ex in lesson.exercises],
        "students": [
            {"student": r.student, "file": str(r.path), "points": r.points,
             "max_points": r.max_points, "seconds": round(r.seconds, 1),
             "cpu_seconds": round(r.cpu_seconds, 1), "isolation": r.isolation,
             "digest": r.digest,
             "exercises": {name: {"status": res.status, "points": res.points,
                                  "max_points": res.max_points, "mistake": res.mistake,
                                  "hint": res.hint, "message": res.message, "cell": res.cell}
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
    header += ["notes", "isolation"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in results:
            row = [r.student, str(r.path), r.points, r.max_points]
            for ex in lesson.exercises:
                res = r.exercises[ex.name]
                row += [res.status, res.points, res.mistake or "",
                        " ".join((res.hint or res.message or "").split())]
            row += ["; ".join(r.notes), r.isolation]
            writer.writerow(row)
    return path


def from_json(data: dict) -> tuple[Lesson, list[StudentResult]]:
    """The lesson and results a ``grades.json`` holds (to merge shards, to resume)."""
    exercises = tuple(Exercise(e["name"], int(e["points"]), "") for e in data["exercises"])
    number = data["lesson"][:2]
    lesson = Lesson(number, data["lesson"], Path(data["solution"]), exercises,
                    fingerprint=data.get("fingerprint", ""))
    results = []
    for s in data["students"]:
        found = {name: ExerciseResult(e["status"], e["points"], e["max_points"], e["mistake"],
                                      e["hint"], e["message"], e.get("cell"))
                 for name, e in s["exercises"].items()}
        results.append(StudentResult(s["student"], Path(s["file"]), found, list(s["notes"]),
                                     float(s["seconds"]), s.get("isolation", ""),
                                     s.get("digest", ""), float(s.get("cpu_seconds", 0.0))))
    return lesson, results


# --------------------------------------------------------------------------- exports


def _file_name(student: str) -> str:
    """A file name for ``student`` (letters, digits, ``-``, ``_`` and ``.`` kept)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"


def _student_line(name: str, res: ExerciseResult) -> str:
    if res.status == "pass":
        return "passed"
    if res.status == "review":
        return ("your instructor will look at this exercise before it is graded (its code "
                "uses things an exercise does not need)")
    if res.status == "not done":
        return "the exercise still holds the stub: write your code in place of it"
    return explain(res) or res.status


def write_feedback(folder: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """``folder/<student>.md`` for each student: status, points and hint per exercise.

    Only what the checks tell a student in the notebook anyway: no solution, no
    screening reasons (they are the instructor's), no file paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        lines = [f"# {lesson.name}: {r.student}", "",
                 f"**{r.points} / {r.max_points} points**", "",
                 "| exercise | status | points |", "|---|---|---|"]
        lines += [f"| `{name}` | {res.status} | {res.points} / {res.max_points} |"
                  for name, res in r.exercises.items()]
        lines.append("")
        for name, res in r.exercises.items():
            lines += [f"## `{name}`: {res.status}", "", _student_line(name, res), ""]
        lines += ["---", f"Graded by `segkit grade` ({r.isolation}).", ""]
        (folder / f"{_file_name(r.student)}.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


def write_gradebook(path: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """A CSV Canvas imports (and Moodle: map "SIS Login ID" to the user name).

    The student's name (their folder or file name) goes in ``Student`` and
    ``SIS Login ID``; ``ID``, ``SIS User ID`` and ``Section`` stay empty for the LMS to
    match. The grade column is the lesson's name, with ``[isolation: off]`` when the
    notebooks were not graded in a sandbox.
    """
    path = Path(path)
    column = lesson.name
    if isolation_of(results).startswith("isolation: off"):
        column += " [isolation: off]"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        writer.writerow(["Points Possible", "", "", "", "", lesson.max_points])
        for r in results:
            writer.writerow([r.student, "", "", r.student, "", r.points])
    return path


def write_gradescope(folder: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """``folder/<student>/results.json`` in Gradescope's autograder format: the score,
    one test per exercise (status, points, hint), the isolation in ``output``."""
    folder = Path(folder)
    for r in results:
        tests = [{"name": name, "score": res.points, "max_score": res.max_points,
                  "status": "passed" if res.status == "pass" else "failed",
                  "output": f"{res.status}: {_student_line(name, res)}",
                  "visibility": "visible"}
                 for name, res in r.exercises.items()]
        data = {"score": r.points, "execution_time": round(r.seconds, 1),
                "output": f"{lesson.name}: {r.points}/{r.max_points} points; {r.isolation}",
                "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}
        target = folder / _file_name(r.student)
        target.mkdir(parents=True, exist_ok=True)
        (target / "results.json").write_text(json.dumps(data, indent=1, ensure_ascii=False)
                                             + "\n", encoding="utf-8")
    return folder


def write_reports(out_dir: str | Path, lesson: Lesson,
                  results: list[StudentResult]) -> tuple[Path, Path]:
    """``grades.csv``, ``grades.json``, ``gradebook.csv``, ``gradescope/`` and
    ``feedback/`` in ``out_dir`` (created); returns the CSV and JSON paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_gradebook(out_dir / "gradebook.csv", lesson, results)
    write_gradescope(out_dir / "gradescope", lesson, results)
    write_feedback(out_dir / "feedback", lesson, results)
    return (write_csv(out_dir / "grades.csv", lesson, results),
            write_json(out_dir / "grades.json", lesson, results))
