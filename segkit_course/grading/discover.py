"""What there is to grade: a lesson's exercises, and the students' notebooks.

The exercises come from the SOLUTION notebook, never from a student's file: a student
may delete, duplicate, reorder or edit cells and their metadata, but the list of
exercises, their points and their check calls stay those of ``solutions/NN_name.ipynb``::

    {"segkit": {"exercise": "dice_score", "points": 2}}       # the exercise cell
    checks.lesson04.check_dice_score(dice_score)               # its check cell's source

A student is identified by their notebook's exact path relative to the folder given
(``alice/04_metrics.ipynb``), or as given on the command line: no two notebooks share
an identity, and no file name can take another student's. For gradebooks, a **login** is
read from the layout: the folder of a folder-per-student layout (``alice``, as nbgrader
and most LMS exports lay them out), or the file's name without ``.ipynb`` in a flat
folder (``04_metrics_bob``); for notebooks given one by one (or by a glob), the folder
holding a notebook named after the lesson, else the file's name. A login that two notebooks would share is given to neither
(the notes say so), except that a folder's name wins over a file's: a student cannot
name a file after someone else's folder to take their login.

Only regular files count: a symbolic link, a FIFO, a device or a folder named
``*.ipynb`` is one row with the reason (:mod:`segkit_course.grading.notebook` reads them);
links are never followed, into folders either.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from segkit_course.build import (
    check_name,
    exercise_name,
    read_notebook,
    segkit_meta,
    solution_paths,
)
from segkit.errors import SegkitError

__all__ = ["Exercise", "GradingInputError", "Lesson", "Submission", "collect_notebooks",
           "find_lesson", "lesson_number_of", "read_lesson", "submissions_for"]

_LESSON_PREFIX = re.compile(r"^(\d\d)_")


class GradingInputError(SegkitError, ValueError):
    """The notebooks or the lesson to grade cannot be made out; the message says why."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lesson: its name (the function or class the student writes),
    its points, the source of the solution's check cell, and segkit's version that the
    lesson's ``checks.use`` line falls back on (a dotted name), if any."""

    name: str
    points: int
    check_source: str
    use_source: str = ""
    reference: str | None = None  # e.g. "segkit.checks.lesson04.reference_dice_score"


@dataclass(frozen=True)
class Lesson:
    """A lesson as the grader sees it: ``number`` "04", ``name`` "04_metrics".

    ``heavy``: the solution's cells tagged ``skip-when-grading``, as (code key, stand-in
    or None) pairs (:mod:`segkit_course.grading.notebook`). ``fingerprint`` changes when
    the solution, segkit or the grader change (a cached grade is then not reused).
    """

    number: str
    name: str
    solution: Path
    exercises: tuple[Exercise, ...]
    heavy: tuple[tuple[str, str | None], ...] = ()
    fingerprint: str = ""

    @property
    def max_points(self) -> int:
        return sum(exercise.points for exercise in self.exercises)


@dataclass(frozen=True)
class Submission:
    """A student's notebook. ``student`` is its identity (the exact relative path),
    ``login`` the name an LMS knows them by ("" when the layout does not tell, or two
    notebooks would claim it), ``problem`` why it cannot be graded at all, if so."""

    student: str
    path: Path
    login: str = ""
    problem: str | None = None
    note: str = ""


def _use_lines(nb) -> dict[str, tuple[str, str]]:
    """exercise -> (the solution's ``name = checks.use(...)`` statement, segkit's version
    in it as a dotted name)."""
    uses: dict[str, tuple[str, str]] = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or "checks.use(" not in cell.source:
            continue
        try:
            body = ast.parse(cell.source).body
        except SyntaxError:
            continue
        for node in body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and ast.unparse(node.value.func) == "checks.use"
                    and len(node.value.args) == 3
                    and isinstance(node.value.args[0], ast.Constant)):
                uses.setdefault(str(node.value.args[0].value),
                                (ast.unparse(node), _dotted(ast.unparse(node.value.args[2]))))
    return uses


def _dotted(expression: str) -> str:
    """'segkit.checks.lesson04.reference_dice_score' for 'checks.lesson04.reference_...'
    (the lessons import ``from segkit import checks``)."""
    return expression if expression.startswith("segkit.") else f"segkit.{expression}"


def _fingerprint(solution: Path) -> str:
    """A hash of the solution notebook, of segkit (its checks and references) and of the
    grader and its sandbox."""
    import segkit

    import segkit_course

    digest = hashlib.sha256(solution.read_bytes())
    package = Path(segkit.__file__).resolve().parent
    course = Path(segkit_course.__file__).resolve().parent
    files = [*package.rglob("*.py"), *course.glob("grading/*.py"), *course.glob("sandbox/*.py")]
    for path in sorted(files):
        digest.update(str(path.relative_to(path.parents[1])).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def read_lesson(solution: str | Path) -> Lesson:
    """The exercises of the solution notebook ``solution``, in notebook order."""
    from segkit_course.grading.notebook import heavy_cells

    solution = Path(solution)
    nb = read_notebook(solution)
    points: dict[str, int] = {}
    checks: dict[str, str] = {}
    order: list[str] = []
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
    uses = _use_lines(nb)
    exercises = tuple(Exercise(name, points[name], checks[name], *uses.get(name, ("", None)))
                      for name in order)
    heavy = tuple(heavy_cells(nb.cells).items())
    return Lesson(number, solution.stem, solution, exercises, heavy, _fingerprint(solution))


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


# --------------------------------------------------------------------------- the notebooks


def _problem(path: Path) -> str | None:
    """Why ``path`` is not a notebook file the grader may open (it is never followed)."""
    from segkit_course.sandbox.files import kind_of

    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"it cannot be read: {exc.strerror or exc}"
    return None if stat.S_ISREG(mode) else (
        f"it is {kind_of(mode)}, not a regular file: submissions must be regular files")


def _walk(folder: Path) -> list[Path]:
    """The ``*.ipynb`` entries under ``folder``, without entering linked folders or
    Jupyter's ``.ipynb_checkpoints``."""
    found, todo = [], [folder]
    while todo:
        current = todo.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.endswith(".ipynb"):
                found.append(path)
            elif entry.is_dir(follow_symlinks=False) and entry.name != ".ipynb_checkpoints":
                todo.append(path)
    return found


def collect_notebooks(inputs: list[str | Path]) -> list[tuple[Path, Path | None]]:
    """The notebooks named by ``inputs``: files, folders (searched recursively, links not
    followed) or globs. Returns (notebook, the folder it was found in or None) pairs,
    sorted, without duplicates. Entries that are not regular files are kept: each
    becomes a row that says what it is."""
    found: dict[Path, Path | None] = {}
    for item in inputs:
        text = str(item)
        path = Path(os.path.normpath(text))
        if os.path.isdir(path) and not os.path.islink(path):
            for nb in sorted(_walk(path)):
                found.setdefault(nb, path)
        elif os.path.lexists(path):
            found.setdefault(path, None)
        elif any(c in text for c in "*?["):
            matches = sorted(Path(os.path.normpath(m)) for m in glob.glob(text, recursive=True))
            for nb in matches:
                if nb.name.endswith(".ipynb") and ".ipynb_checkpoints" not in nb.parts:
                    found.setdefault(nb, None)
            if not matches:
                raise GradingInputError(f"no notebooks match {text!r}")
        else:
            raise GradingInputError(f"{text} is neither a notebook, a folder nor a glob "
                                    "pattern that matches something")
    return sorted(found.items(), key=lambda pair: str(pair[0]))


def _identity(path: Path, folder: Path | None, single_folder: bool) -> str:
    """The notebook's exact relative path: to the folder given (one folder), else to the
    current folder (absolute when it lies outside)."""
    if folder is not None and single_folder:
        return path.relative_to(folder).as_posix()
    relative = os.path.relpath(path)
    return Path(path).absolute().as_posix() if relative.startswith("..") else \
        Path(relative).as_posix()


def _logins(submissions: list[Submission], from_folder: dict[str, bool]) -> list[Submission]:
    """Each submission with its login, or none (and a note) when it is not its own."""
    claims: dict[str, list[Submission]] = {}
    for sub in submissions:
        claims.setdefault(sub.login, []).append(sub)
    done = []
    for sub in submissions:
        rivals = [s for s in claims[sub.login] if s is not sub]
        mine = [s for s in rivals if from_folder[s.student] or not from_folder[sub.student]]
        if sub.login and mine:
            others = ", ".join(s.student for s in rivals[:3])
            sub = Submission(sub.student, sub.path, "", sub.problem,
                             f"no login given: {sub.login!r} is also claimed by {others}")
        done.append(sub)
    return done


def _login(identity: str, path: Path, folder: Path | None, lesson: Lesson) -> tuple[str, bool]:
    """(login, whether a folder gives it). Found in a folder given: the first folder of
    the relative path, else the file's name without .ipynb. Given as a file (or a glob):
    the folder holding it when the file is named after the lesson
    (``alice/04_metrics-Copy1.ipynb``), else the file's name."""
    if folder is not None:
        parts = Path(identity).parts
        if len(parts) > 1:
            return parts[0], True
        return Path(identity).name.removesuffix(".ipynb"), False
    stem = path.name.removesuffix(".ipynb")
    if stem.startswith(lesson.name) and path.parent.name not in ("", "."):
        return path.parent.name, True
    return stem, False


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
    spec = find_lesson(lesson or _lesson_of(notebooks), solutions_dir)
    chosen = [(nb, folder) for nb, folder in notebooks
              if lesson_number_of(nb) in (None, spec.number)]
    skipped = [nb for nb, folder in notebooks if lesson_number_of(nb) not in (None, spec.number)]
    if not chosen:
        raise GradingInputError(f"none of the notebooks found is for lesson {spec.name}")
    single = len([i for i in inputs if os.path.isdir(i) and not os.path.islink(i)]) == 1 \
        and len(inputs) == 1
    submissions, from_folder = [], {}
    for nb, folder in chosen:
        identity = _identity(nb, folder, single)
        login, by_folder = _login(identity, nb, folder if single else None, spec)
        from_folder[identity] = by_folder
        submissions.append(Submission(identity, nb, login, _problem(nb)))
    return spec, _logins(submissions, from_folder), skipped


def _lesson_of(notebooks: list[tuple[Path, Path | None]]) -> str:
    numbers = sorted({lesson_number_of(nb) for nb, _ in notebooks} - {None})
    unnumbered = [nb for nb, _ in notebooks if lesson_number_of(nb) is None]
    if len(numbers) == 1 and not unnumbered:
        return numbers[0]
    if len(numbers) > 1:
        why = f"these notebooks belong to lessons {', '.join(numbers)}"
    else:
        why = f"the lesson of {unnumbered[0]} cannot be told from its name"
    raise GradingInputError(f"{why}: grade one lesson at a time, e.g. --lesson "
                            f"{numbers[0] if numbers else '03'}")
