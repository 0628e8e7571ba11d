"""The grade table: in the terminal, as ``grades.csv`` and as ``grades.json``.

One row per student (their notebook's relative path), one column per exercise (its
status), and the points::

    lesson 00_setup: 3 exercises, 4 points, 2 notebooks

    student                    float32_mib (1)  foreground_fraction (1)  list_pairs (2)  points
    alice/00_setup.ipynb       pass             pass                     pass               4/4
    bob/00_setup.ipynb         fail             not done                 timeout            0/4

    bob/00_setup.ipynb
      float32_mib: fail: [forgot-bytes-per-value] you counted the numbers, not the
            bytes: each float32 value takes 4 bytes. Multiply the number of values by 4.

``grades.csv`` has the same rows, for a spreadsheet, with for each exercise its status,
points, mistake id, hint and flags; ``grades.json`` has everything, check messages and
seeds included. Alongside them:

- ``mistakes.csv`` and ``mistakes.png``: the class's catalogued mistakes per exercise
  (:mod:`segkit_course.grading.class_mistakes`);
- ``gradebook.csv``: one row per student in the layout Canvas imports (Student, ID,
  SIS User ID, SIS Login ID, Section, then the lesson's points, with a
  ``Points Possible`` row); Moodle imports it too (map "SIS Login ID" to the username);
- ``gradescope/<student>/results.json``: Gradescope's autograder results format;
- ``feedback/<student>.md``: what a student may receive: each exercise's status,
  points and the check's hint (never the solution, never the instructor's notes).

Every cell of every CSV is escaped against formula injection (a value that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``:
:mod:`segkit_course.grading.csvfile`), and every
name printed in the terminal has its control characters shown as escapes: a file named
``=HYPERLINK(...)`` or holding terminal escape codes is shown as text. Every file says
how the notebooks were isolated (``isolation: bubblewrap (...)`` or ``isolation: off``).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from segkit_course.grading.csvfile import csv_writer
from segkit_course.grading.discover import Exercise, Lesson
from segkit_course.grading.execute import ExerciseResult, StudentResult

__all__ = ["explain", "file_names", "format_table", "from_json", "isolation_of",
           "printable", "to_json", "write_csv", "write_feedback", "write_gradebook",
           "write_gradescope", "write_json", "write_reports"]

def printable(text: str) -> str:
    """``text`` with control characters (terminal escape codes, newlines) shown as
    Python escapes, so a file name cannot rewrite the instructor's terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


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


def _details(r: StudentResult, width: int) -> list[str]:
    extra = [f"  {name}: {res.status}: {explain(res)}"
             for name, res in r.exercises.items() if res.status not in ("pass", "not done")]
    extra += [f"  flag: {flag}" for flag in r.flags]
    extra += [f"  note: {note}" for note in r.notes]
    lines = []
    for line in extra:
        lines += textwrap.wrap(printable(line), width, subsequent_indent="      ",
                               break_on_hyphens=False) or [line]
    return ["", printable(r.student)] + lines if lines else []


def format_table(lesson: Lesson, results: list[StudentResult], *, details: bool = True,
                 width: int = 100) -> str:
    """The terminal table, then (``details``) the hints, flags and notes of each
    student, wrapped at ``width`` characters."""
    rows = [_header(lesson)]
    for r in results:
        rows.append([printable(r.student)] + [r.exercises[ex.name].status
                                              for ex in lesson.exercises]
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
            lines += _details(r, width)
    return "\n".join(lines)


def _exercise_json(res: ExerciseResult) -> dict:
    return {"status": res.status, "points": res.points, "max_points": res.max_points,
            "mistake": res.mistake, "hint": res.hint, "message": res.message,
            "seed": res.seed, "repeat": res.repeat, "flags": list(res.flags)}


def to_json(lesson: Lesson, results: list[StudentResult], meta: dict | None = None) -> dict:
    """Everything about the grading, as plain JSON data (``meta``: the run's seed,
    shard and class, when known)."""
    return {
        "lesson": lesson.name,
        "solution": str(lesson.solution),
        "fingerprint": lesson.fingerprint,
        "isolation": isolation_of(results),
        "max_points": lesson.max_points,
        "exercises": [{"name": ex.name, "points": ex.points} for ex in lesson.exercises],
        **(meta or {}),
        "students": [
            {"student": r.student, "login": r.login, "file": str(r.path), "points": r.points,
             "max_points": r.max_points, "seconds": round(r.seconds, 1),
             "cpu_seconds": round(r.cpu_seconds, 1), "isolation": r.isolation,
             "digest": r.digest,
             "exercises": {name: _exercise_json(res) for name, res in r.exercises.items()},
             "notes": list(r.notes)}
            for r in results],
    }


def _write_new(path: Path, text: str) -> Path:
    """Write a new file (the folder is this run's own: nothing there to replace)."""
    with open(path, "x", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def write_json(path: str | Path, lesson: Lesson, results: list[StudentResult],
               meta: dict | None = None) -> Path:
    text = json.dumps(to_json(lesson, results, meta), indent=1, ensure_ascii=False) + "\n"
    return _write_new(Path(path), text)


def write_csv(path: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """One row per student: student, login, file, points, max_points, then per exercise
    ``<name>`` (status), ``<name> points``, ``<name> mistake``, ``<name> hint`` and
    ``<name> flags``, then notes, isolation."""
    path = Path(path)
    header = ["student", "login", "file", "points", "max_points"]
    for ex in lesson.exercises:
        header += [ex.name, f"{ex.name} points", f"{ex.name} mistake", f"{ex.name} hint",
                   f"{ex.name} flags"]
    header += ["notes", "isolation"]
    with open(path, "x", newline="", encoding="utf-8") as f:
        write = csv_writer(f)
        write(header)
        for r in results:
            row = [r.student, r.login, str(r.path), r.points, r.max_points]
            for ex in lesson.exercises:
                res = r.exercises[ex.name]
                row += [res.status, res.points, res.mistake or "",
                        " ".join((res.hint or res.message or "").split()), "; ".join(res.flags)]
            row += ["; ".join(r.notes), r.isolation]
            write(row)
    return path


def from_json(data: dict) -> tuple[Lesson, list[StudentResult]]:
    """The lesson and results a ``grades.json`` holds (to merge shards)."""
    exercises = tuple(Exercise(e["name"], int(e["points"]), "") for e in data["exercises"])
    lesson = Lesson(data["lesson"][:2], data["lesson"], Path(data["solution"]), exercises,
                    fingerprint=data.get("fingerprint", ""))
    results = []
    for s in data["students"]:
        found = {name: ExerciseResult(e["status"], e["points"], e["max_points"], e["mistake"],
                                      e["hint"], e["message"], e.get("seed"), e.get("repeat"),
                                      list(e.get("flags") or []))
                 for name, e in s["exercises"].items()}
        results.append(StudentResult(s["student"], Path(s["file"]), found, list(s["notes"]),
                                     float(s["seconds"]), s.get("isolation", ""),
                                     s.get("digest", ""), float(s.get("cpu_seconds", 0.0)),
                                     s.get("login", "")))
    return lesson, results


# --------------------------------------------------------------------------- exports


def file_names(results: list[StudentResult]) -> dict[str, str]:
    """student -> a file name of its own (letters, digits, ``-``, ``_``, ``.``): the
    relative path with ``/`` as ``__``, and a hash where two would be the same."""
    import hashlib

    plain = {r.student: re.sub(r"[^A-Za-z0-9._-]+", "_", r.student.replace("/", "__"))
             .strip("._")[:120] or "student" for r in results}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    return {student: name if counts[name.lower()] == 1 else
            f"{name}-{hashlib.sha256(student.encode()).hexdigest()[:8]}"
            for student, name in plain.items()}


def _student_line(name: str, res: ExerciseResult) -> str:
    if res.status == "pass":
        return "passed"
    if res.status == "review":
        return ("your instructor will look at this exercise before it is graded")
    if res.status == "not done":
        return "the exercise still holds the stub: write your code in place of it"
    line = explain(res) or res.status
    if res.status == "fail" and res.message:
        line = f"{' '.join(res.message.split())}. Hint: {line}"
    if res.repeat and res.status == "fail":
        line += f" (to see these cases in your notebook: `{res.repeat}`)"
    return line


def write_feedback(folder: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """``folder/<student>.md`` for each student: status, points and hint per exercise.

    Only what the checks tell a student in the notebook anyway: no solution, no flags
    or notes (they are the instructor's), no file paths of the instructor's machine.
    """
    folder = Path(folder)
    folder.mkdir()
    names = file_names(results)
    for r in results:
        lines = [f"# {lesson.name}: `{printable(r.student).replace('`', chr(39))}`", "",
                 f"**{r.points} / {r.max_points} points**", "",
                 "| exercise | status | points |", "|---|---|---|"]
        lines += [f"| `{name}` | {res.status} | {res.points} / {res.max_points} |"
                  for name, res in r.exercises.items()]
        lines.append("")
        for name, res in r.exercises.items():
            lines += [f"## `{name}`: {res.status}", "", _student_line(name, res), ""]
        lines += ["---", f"Graded by `segkit grade` ({r.isolation}).", ""]
        _write_new(folder / f"{names[r.student]}.md", "\n".join(lines))
    return folder


def write_gradebook(path: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """A CSV Canvas imports (and Moodle: map "SIS Login ID" to the user name).

    ``Student`` is the notebook's relative path (its identity), ``SIS Login ID`` the
    login its place gives (:mod:`segkit_course.grading.discover`; empty when none is
    its own); ``ID``, ``SIS User ID`` and ``Section`` stay empty for the LMS to match.
    The grade column is the lesson's name, with ``[isolation: off]`` when the notebooks
    were not graded in a sandbox.
    """
    path = Path(path)
    column = lesson.name
    if isolation_of(results).startswith("isolation: off"):
        column += " [isolation: off]"
    with open(path, "x", newline="", encoding="utf-8") as f:
        write = csv_writer(f)
        write(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        write(["Points Possible", "", "", "", "", lesson.max_points])
        for r in results:
            write([r.student, "", "", r.login, "", r.points])
    return path


def write_gradescope(folder: str | Path, lesson: Lesson, results: list[StudentResult]) -> Path:
    """``folder/<student>/results.json`` in Gradescope's autograder format: the score,
    one test per exercise (status, points, hint), the isolation in ``output``."""
    folder = Path(folder)
    folder.mkdir()
    names = file_names(results)
    for r in results:
        tests = [{"name": name, "score": res.points, "max_score": res.max_points,
                  "status": "passed" if res.status == "pass" else "failed",
                  "output": f"{res.status}: {_student_line(name, res)}",
                  "visibility": "visible"}
                 for name, res in r.exercises.items()]
        data = {"score": r.points, "execution_time": round(r.seconds, 1),
                "output": f"{lesson.name}: {r.points}/{r.max_points} points; {r.isolation}",
                "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}
        target = folder / names[r.student]
        target.mkdir()
        _write_new(target / "results.json", json.dumps(data, indent=1, ensure_ascii=False)
                   + "\n")
    return folder


def write_reports(out_dir: str | Path, lesson: Lesson, results: list[StudentResult],
                  meta: dict | None = None) -> tuple[Path, Path]:
    """``grades.csv``, ``grades.json``, ``mistakes.csv``, ``mistakes.png``,
    ``gradebook.csv``, ``gradescope/`` and ``feedback/`` in ``out_dir``, a folder this run
    claimed (:func:`segkit_course.grading.batch.claim_folder`); the CSV and JSON paths."""
    from segkit_course.grading.class_mistakes import write_mistakes

    out_dir = Path(out_dir)
    write_gradebook(out_dir / "gradebook.csv", lesson, results)
    write_gradescope(out_dir / "gradescope", lesson, results)
    write_feedback(out_dir / "feedback", lesson, results)
    write_mistakes(out_dir, lesson, results)
    return (write_csv(out_dir / "grades.csv", lesson, results),
            write_json(out_dir / "grades.json", lesson, results, meta))
