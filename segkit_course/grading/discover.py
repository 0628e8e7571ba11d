"""What there is to grade: a lesson's exercises, and the students' notebooks.

The exercises come from the SOLUTION notebook, never from a student's file: a student
may delete, duplicate, reorder or edit cells and their metadata, but the list of
exercises, their points and their check calls stay those of ``solutions/NN_name.ipynb``::

    {"segkit": {"exercise": "dice_score", "points": 2}}       # the exercise cell
    checks.lesson04.check_dice_score(dice_score)               # its check cell's source

Students are named after their notebook's place: ``submissions/alice/04_metrics.ipynb``
(a folder per student, as nbgrader and most LMS exports lay them out) is ``alice``;
``submissions/04_metrics_bob.ipynb`` or ``submissions/bob.ipynb`` is ``bob``.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from segkit_course.build import (
    check_name,
    exercise_name,
    is_setup_cell,
    read_notebook,
    segkit_meta,
    solution_paths,
)
from segkit.errors import SegkitError
from segkit_course.grading.checker import python_source

__all__ = ["Exercise", "GradingInputError", "Lesson", "Submission", "collect_notebooks",
           "find_lesson", "lesson_number_of", "read_lesson", "submissions_for"]

_LESSON_PREFIX = re.compile(r"^(\d\d)_")
_COPY_SUFFIX = re.compile(r"(copy\d*|checkpoint|\(\d+\)|\d+)", re.IGNORECASE)


class GradingInputError(SegkitError, ValueError):
    """The notebooks or the lesson to grade cannot be made out; the message says why."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lesson: its name (the function or class the student writes),
    its points, and the source of the solution's check cell that checks it."""

    name: str
    points: int
    check_source: str
    use_source: str = ""        # the lesson's ``name = checks.use(...)`` line after it
    reference: str | None = None  # segkit's version in that line: "segkit.metrics.dice_score"


@dataclass(frozen=True)
class Lesson:
    """A lesson as the grader sees it: ``number`` "04", ``name`` "04_metrics".

    ``scaffold`` is the instructor's code the exercises run after: the solution's
    set-up cell and every import statement of its other cells (not the exercises,
    not the checks, nothing that computes). ``fingerprint`` changes when the solution
    or segkit's checks change (a cached grade is then not reused).
    """

    number: str
    name: str
    solution: Path
    exercises: tuple[Exercise, ...]
    scaffold: str = ""
    fingerprint: str = ""

    @property
    def max_points(self) -> int:
        return sum(exercise.points for exercise in self.exercises)


@dataclass(frozen=True)
class Submission:
    """A student's notebook: ``student`` is the name shown in the grade table."""

    student: str
    path: Path


def _statements(source: str) -> list[ast.stmt]:
    try:
        return ast.parse(python_source(source)).body
    except SyntaxError:
        return []


def uses_line(cell) -> bool:
    return "checks.use(" in cell.source


def _scaffold_and_uses(nb) -> tuple[str, dict[str, tuple[str, str]]]:
    """The solution's set-up cell and the import statements of its cells up to the last
    check (the exercises cannot need later ones); exercise -> (its ``checks.use``
    statement, the reference expression in it)."""
    parts: list[str] = []
    uses: dict[str, tuple[str, str]] = {}
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    last = max([i for i, cell in enumerate(code) if check_name(cell)], default=len(code))
    for i, cell in enumerate(code):
        if exercise_name(cell) or check_name(cell):
            continue
        if i > last and not uses_line(cell):
            continue  # after the last check: no exercise needs its imports
        if is_setup_cell(cell):
            parts.append(python_source(cell.source))
            continue
        for node in _statements(cell.source):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and ast.unparse(node) not in parts:
                parts.append(ast.unparse(node))
            elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                  and ast.unparse(node.value.func) == "checks.use"
                  and len(node.value.args) == 3
                  and isinstance(node.value.args[0], ast.Constant)):
                uses.setdefault(str(node.value.args[0].value),
                                (ast.unparse(node), ast.unparse(node.value.args[2])))
    return "\n".join(parts), uses


def _fingerprint(solution: Path) -> str:
    """A hash of the solution notebook and of segkit's checks and grader."""
    import segkit

    digest = hashlib.sha256(solution.read_bytes())
    package = Path(segkit.__file__).resolve().parent
    for path in sorted([*package.glob("checks/*.py"), *package.glob("grading/*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def read_lesson(solution: str | Path) -> Lesson:
    """The exercises of the solution notebook ``solution``, in notebook order."""
    solution = Path(solution)
    nb = read_notebook(solution)
    points: dict[str, int] = {}
    checks: dict[str, str] = {}
    order: list[str] = []
    scaffold, uses = _scaffold_and_uses(nb)
    for cell in nb.cells:
        name = exercise_name(cell)
        if name and name not in points:
            order.append(name)
            points[name] = int(segkit_meta(cell).get("points", 1))
        checked = check_name(cell)
        if checked and checked not in checks:
            checks[checked] = cell.source
    missing = [name for name in order if name not in checks]
    if missing:
        raise GradingInputError(f"{solution}: exercise(s) {', '.join(missing)} have no check "
                                "cell, so they cannot be graded (see the authoring guide in "
                                "segkit_course)")
    match = _LESSON_PREFIX.match(solution.stem)
    number = match.group(1) if match else solution.stem
    exercises = tuple(Exercise(name, points[name], checks[name], *uses.get(name, ("", None)))
                      for name in order)
    return Lesson(number, solution.stem, solution, exercises, scaffold, _fingerprint(solution))


def lesson_number_of(path: str | Path) -> str | None:
    """'03' for '03_training.ipynb' or '03_training-Copy1.ipynb'; None for 'alice.ipynb'."""
    match = _LESSON_PREFIX.match(Path(path).name)
    return match.group(1) if match else None


def find_lesson(number: str, solutions_dir: str | Path = "solutions") -> Lesson:
    """The lesson ``number`` ("3", "03" or "03_training") of ``solutions_dir``."""
    wanted = Path(number).stem
    if wanted.isdigit():
        wanted = f"{int(wanted):02d}"
    else:
        wanted = lesson_number_of(wanted + ".ipynb") or wanted
    paths = solution_paths(solutions_dir)
    matches = [p for p in paths if p.stem.startswith(f"{wanted}_")]
    if not matches:
        available = ", ".join(p.stem for p in paths) or "none"
        raise GradingInputError(f"no solution notebook for lesson {number!r} in "
                                f"{solutions_dir}/ (available: {available})")
    return read_lesson(matches[0])


def collect_notebooks(inputs: list[str | Path]) -> list[tuple[Path, Path | None]]:
    """The notebooks named by ``inputs``: files, folders (searched recursively) or globs.

    Returns (notebook, the folder it was found in or None) pairs, sorted, without
    duplicates and without Jupyter's ``.ipynb_checkpoints`` copies.
    """
    found: dict[Path, Path | None] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            for nb in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in nb.parts:
                    found.setdefault(nb, path)
        elif path.is_file():
            found.setdefault(path, None)
        elif any(c in text for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            for nb in matches:
                if nb.is_file() and nb.suffix == ".ipynb" and ".ipynb_checkpoints" not in nb.parts:
                    found.setdefault(nb, None)
            if not matches:
                raise GradingInputError(f"no notebooks match {text!r}")
        else:
            raise GradingInputError(f"{text} is neither a notebook, a folder nor a glob "
                                    "pattern that matches something")
    return sorted(found.items(), key=lambda pair: str(pair[0]))


def _student_name(path: Path, folder: Path | None, lesson: Lesson) -> str:
    if folder is not None:
        relative = path.relative_to(folder)
        if len(relative.parts) > 1:  # submissions/<student>/.../NN_name.ipynb
            return relative.parts[0]
    stem = path.stem
    if stem.startswith(lesson.name):  # 04_metrics_alice -> alice; 04_metrics -> its folder
        rest = stem[len(lesson.name):].strip(" _-.")
        if not rest or _COPY_SUFFIX.fullmatch(rest):  # 04_metrics-Copy1, 04_metrics (2)
            return path.parent.name or stem
        return rest
    return stem


def submissions_for(inputs: list[str | Path], lesson: str | None = None,
                    solutions_dir: str | Path = "solutions"
                    ) -> tuple[Lesson, list[Submission], list[Path]]:
    """The lesson to grade, its students' notebooks, and the notebooks left out.

    Args:
        inputs: notebooks, folders or glob patterns.
        lesson: the lesson ("03"); by default it is read from the notebooks' names
            (``03_training*.ipynb``), which must then all name the same lesson.
        solutions_dir: the folder of solution notebooks.

    With ``lesson`` given, notebooks whose names start with another lesson's number
    are left out (so ``segkit grade submissions/ --lesson 03`` grades the 03 notebooks
    of a folder holding every lesson); notebooks without a number are graded.
    """
    notebooks = collect_notebooks(inputs)
    if not notebooks:
        raise GradingInputError(f"no notebooks found in {', '.join(map(str, inputs))}")
    if lesson is None:
        numbers = sorted({lesson_number_of(nb) for nb, _ in notebooks} - {None})
        unnumbered = [nb for nb, _ in notebooks if lesson_number_of(nb) is None]
        if len(numbers) != 1 or unnumbered:
            if len(numbers) > 1:
                why = f"these notebooks belong to lessons {', '.join(numbers)}"
            else:
                why = f"the lesson of {unnumbered[0]} cannot be told from its name"
            raise GradingInputError(f"{why}: grade one lesson at a time, e.g. --lesson "
                                    f"{numbers[0] if numbers else '03'}")
        lesson = numbers[0]
    spec = find_lesson(lesson, solutions_dir)
    chosen, skipped = [], []
    for nb, folder in notebooks:
        number = lesson_number_of(nb)
        if number is not None and number != spec.number:
            skipped.append(nb)
        else:
            chosen.append((nb, folder))
    if not chosen:
        raise GradingInputError(f"none of the notebooks found is for lesson {spec.name}")
    names: dict[str, int] = {}
    submissions = []
    for nb, folder in chosen:
        name = _student_name(nb, folder, spec)
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name} ({names[name]})"
        submissions.append(Submission(name, nb))
    return spec, submissions, skipped
