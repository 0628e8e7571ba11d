"""Build the student notebooks ``lessons/`` from the solution notebooks ``solutions/``.

    segkit build-lessons               # write lessons/NN_name.ipynb for every solution
    segkit build-lessons --dry-run     # write nothing; fail if a lesson is out of date
    segkit build-lessons --annotate    # complete the solutions' metadata in place (no build)

(also ``python -m segkit_course.build [--dry-run] [--annotate]``). The conventions a
solution notebook follows are in :mod:`segkit_course`'s docstring.

What the build does to a copy of each solution (``build_lesson``):

1. lints the source (``lint``) and stops with every problem it found, each named
   by notebook and cell;
2. completes the metadata (``annotate``): nbgrader metadata from the ``segkit``
   metadata, the ``check`` tag, the current set-up cell and Colab badge;
3. drops cells tagged ``solution-only``;
4. replaces each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block by a stub
   (``# YOUR CODE HERE`` + ``raise NotImplementedError(...)`` in code, ``YOUR ANSWER HERE``
   in markdown);
5. clears outputs, execution counts and timing metadata. Check cells are *not* tagged
   ``raises-exception``: Colab has no cell tags (its kernel, ipykernel's, then stops a
   Run all at the first error), so JupyterLab too must stop at the first check whose
   exercise is not done, and the lessons run the same in both.

Cell ids are kept, so a lesson's cell and its solution's cell have the same id. The
output is written with nbformat and is byte-stable: building twice gives the same bytes.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from segkit_course.figures import cell_tolerance
from segkit_course.metadata import (  # noqa: F401 - the vocabulary, re-exported for callers
    CHECK_TAG,
    NBGRADER_SCHEMA,
    RAISES_TAG,
    SKIP_TAGS,
    SOLUTION_ONLY_TAG,
    check_name,
    describe_cell,
    exercise_name,
    is_check_cell,
    is_setup_cell,
    segkit_meta,
    tags,
)
from segkit_course.setup_cell import (
    COLAB_BADGE_IMAGE,
    SETUP_CELL_ID,
    SETUP_TAG,
    badge_markdown,
    setup_cell_source,
)
from segkit.errors import SegkitError

SOLUTION_GLOB = "[0-9][0-9]_*.ipynb"
NAME_PATTERN = re.compile(r"(?P<number>\d\d)_[A-Za-z0-9_-]+")

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
CODE_STUB = ('{indent}# YOUR CODE HERE\n'
             '{indent}raise NotImplementedError("Exercise {exercise}: write your code here")')
ANSWER_STUB = "YOUR ANSWER HERE"

class NotebookSourceError(SegkitError, ValueError):
    """A solution notebook breaks the course conventions; the message lists every problem."""


# --------------------------------------------------------------------------- solution blocks


@dataclass(frozen=True)
class SolutionBlock:
    """One ``### BEGIN SOLUTION`` (line ``begin``) .. ``### END SOLUTION`` (line ``end``).

    Line numbers are 0-based indexes into ``source.split("\\n")``; ``indent`` is the
    BEGIN marker's indentation.
    """

    begin: int
    end: int
    indent: str


def find_solution_blocks(source: str) -> tuple[list[SolutionBlock], list[str]]:
    """The solution blocks of a cell's source, and the marker problems (as sentences)."""
    blocks: list[SolutionBlock] = []
    problems: list[str] = []
    open_at: int | None = None
    indent = ""
    for number, line in enumerate(source.split("\n")):
        begin = BEGIN.match(line)
        if begin:
            if open_at is not None:
                problems.append(f"`### BEGIN SOLUTION` on line {number + 1} comes before the "
                                f"`### END SOLUTION` of the block opened on line {open_at + 1}")
            open_at, indent = number, begin.group("indent")
        elif END.match(line):
            if open_at is None:
                problems.append(f"`### END SOLUTION` on line {number + 1} has no "
                                "`### BEGIN SOLUTION` before it")
            else:
                blocks.append(SolutionBlock(open_at, number, indent))
                open_at = None
        elif "BEGIN SOLUTION" in line or "END SOLUTION" in line:
            problems.append(f"line {number + 1} looks like a solution marker but is not one: "
                            "write it exactly `### BEGIN SOLUTION` / `### END SOLUTION` "
                            "on a line of its own")
    if open_at is not None:
        problems.append(f"`### BEGIN SOLUTION` on line {open_at + 1} has no "
                        "`### END SOLUTION` after it")
    return blocks, problems


def replace_solution_blocks(source: str, stub: str) -> str:
    """``source`` with every solution block (markers included) replaced by ``stub``.

    ``stub`` may contain ``{indent}``, replaced by the BEGIN marker's indentation.
    """
    blocks, problems = find_solution_blocks(source)
    if problems:
        raise NotebookSourceError("; ".join(problems))
    lines = source.split("\n")
    for block in reversed(blocks):
        lines[block.begin:block.end + 1] = stub.replace("{indent}", block.indent).split("\n")
    return "\n".join(lines)


def lesson_number(name: str) -> str:
    """'04' for '04_metrics' (the notebook's file name without .ipynb)."""
    match = NAME_PATTERN.fullmatch(name)
    if not match:
        raise NotebookSourceError(
            f"notebook name {name!r} does not follow the pattern NN_name (two digits, an "
            "underscore, then letters, digits, _ or -), e.g. 04_metrics.ipynb")
    return match.group("number")


# --------------------------------------------------------------------------- lint: the conventions


def lint(nb: NotebookNode, name: str, *, require_execution: bool = True) -> list[str]:
    """Every way the solution notebook ``name`` breaks the conventions (empty: none).

    ``require_execution``: every non-empty code cell must have an execution count (a cell
    without one has no stored output, so nbval would never compare it). The conventions
    are the rules in ``RULES``, each a function of the notebook that lists what breaks it.
    """
    source = _Source(nb, name, require_execution)
    return [problem for rule in RULES for problem in rule(source)]


@dataclass
class _Source:
    """A solution notebook as the validation rules see it."""

    nb: NotebookNode
    name: str
    require_execution: bool = True

    @property
    def cells(self) -> list[NotebookNode]:
        return self.nb.cells

    def code_cells(self):
        """(index, cell, 'cell N (...)') of every code cell."""
        return [(i, c, describe_cell(i, c)) for i, c in enumerate(self.cells)
                if c.cell_type == "code"]


def rule_lesson_name(src: _Source) -> list[str]:
    """The notebook's name is NN_name."""
    try:
        lesson_number(src.name)
    except NotebookSourceError as exc:
        return [str(exc)]
    return []


def rule_cell_ids(src: _Source) -> list[str]:
    """Every cell has an id (nbformat 4.5) and no two cells share one."""
    problems = []
    nb = src.nb
    if (nb.nbformat, nb.nbformat_minor) < (4, 5) or any("id" not in c for c in src.cells):
        problems.append("cells have no ids (nbformat < 4.5): run `segkit build-lessons "
                        "--annotate` once to give them ids")
    seen: dict[str, int] = {}
    for index, cell in enumerate(src.cells):
        cell_id = cell.get("id")
        if cell_id is None:
            continue
        if cell_id in seen:
            problems.append(f"{describe_cell(index, cell)} has the same id as cell "
                            f"{seen[cell_id] + 1}: ids must be unique (give one a new id)")
        seen.setdefault(cell_id, index)
    return problems


def rule_title_and_setup(src: _Source) -> list[str]:
    """A markdown title first, then the one set-up cell."""
    problems = []
    cells = src.cells
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.startswith("# "):
        number = src.name[:2] if NAME_PATTERN.fullmatch(src.name) else "00"
        problems.append("the first cell must be a markdown title cell starting with '# ' "
                        f"(e.g. '# {number} · Metrics')")
    setup_at = [i for i, cell in enumerate(cells) if is_setup_cell(cell)]
    if len(setup_at) > 1:
        problems.append("there are several set-up cells (cells "
                        f"{', '.join(str(i + 1) for i in setup_at)}): keep only the one "
                        "right after the title")
    elif setup_at and setup_at[0] != 1:
        problems.append(f"{describe_cell(setup_at[0], cells[setup_at[0]])} is the set-up "
                        "cell: it must come right after the title cell")
    return problems


def rule_solution_markers(src: _Source) -> list[str]:
    """Solution markers pair up, in code or markdown cells only."""
    problems = []
    for index, cell in enumerate(src.cells):
        where = describe_cell(index, cell)
        blocks, marker_problems = find_solution_blocks(cell.source)
        problems += [f"{where}: {p}" for p in marker_problems]
        if cell.cell_type not in ("code", "markdown") and blocks:
            problems.append(f"{where}: solution blocks belong in code or markdown cells")
    return problems


def rule_exercise_cells(src: _Source) -> list[str]:
    """An exercise cell has a unique identifier name and an indented solution block; a
    solution block belongs to an exercise."""
    problems = []
    exercises: dict[str, int] = {}
    for index, cell, where in src.code_cells():
        blocks, marker_problems = find_solution_blocks(cell.source)
        exercise = exercise_name(cell)
        if blocks and exercise is None:
            problems.append(f"{where} has a solution block but no exercise metadata: add "
                            '{"segkit": {"exercise": "<name>", "points": 1}}')
        if exercise is None:
            continue
        if not isinstance(exercise, str) or not re.fullmatch(r"[A-Za-z_]\w*", exercise):
            problems.append(f"{where}: exercise name {exercise!r} must be a Python "
                            "identifier, e.g. \"dice_score\"")
        elif exercise in exercises:
            problems.append(f"{where}: exercise `{exercise}` is already defined in "
                            f"cell {exercises[exercise] + 1}; names must be unique")
        exercises.setdefault(str(exercise), index)
        if not blocks and not marker_problems:
            problems.append(f"{where} is exercise `{exercise}` but has no "
                            "`### BEGIN SOLUTION` ... `### END SOLUTION` block")
        problems += [f"{where}: the solution block on line {block.begin + 1} is not "
                     "indented. Put the exercise inside a function (def ...:) so that "
                     "the lesson's stub raises only when the check calls it, not when "
                     "the cell runs" for block in blocks if block.indent == ""]
    return problems


def rule_exercise_defines_its_name(src: _Source) -> list[str]:
    """An exercise cell defines a function or class named after the exercise: the grader
    looks the student's answer up by that name."""
    problems = []
    for _, cell, where in src.code_cells():
        exercise = exercise_name(cell)
        if not isinstance(exercise, str):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue  # rule_solution_markers and the execution report it
        defined = [node.name for node in tree.body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        if exercise not in defined:
            problems.append(f"{where} is exercise `{exercise}` but defines "
                            f"{', '.join(f'`{d}`' for d in defined) or 'no function or class'}: "
                            "name the exercise after what the student writes")
    return problems


def rule_check_follows_exercise(src: _Source) -> list[str]:
    """The code cell right after an exercise is its check cell."""
    problems = []
    waiting: tuple[str, int] | None = None
    for index, cell, where in src.code_cells():
        if waiting and check_name(cell) != waiting[0]:
            ex, at = waiting
            problems.append(f"{describe_cell(at, src.cells[at])} is exercise `{ex}`, but the "
                            f"next code cell ({where}) is not its check cell: put a cell "
                            f"with metadata {{\"segkit\": {{\"check\": \"{ex}\"}}}} "
                            "right after the exercise")
        exercise = exercise_name(cell)
        waiting = (str(exercise), index) if exercise is not None else None
    if waiting:
        ex, at = waiting
        problems.append(f"{describe_cell(at, src.cells[at])} is exercise `{ex}`, but no check "
                        "cell follows it")
    return problems


def rule_check_cells(src: _Source) -> list[str]:
    """A check cell checks an earlier exercise, holds no solution and is not tagged
    ``raises-exception`` in the solution."""
    problems = []
    exercises: set[str] = set()
    for _, cell, where in src.code_cells():
        exercise, check = exercise_name(cell), check_name(cell)
        if exercise is not None:
            exercises.add(str(exercise))
        if check is None:
            continue
        if check not in exercises:
            problems.append(f"{where} checks exercise `{check}`, but no exercise "
                            "cell of that name comes before it")
        if find_solution_blocks(cell.source)[0]:
            problems.append(f"{where} is a check cell: it must not hold a solution block")
        if RAISES_TAG in tags(cell):
            problems.append(f"{where} is a check cell tagged `{RAISES_TAG}`: the solution "
                            "must pass its checks, and in the lesson Run all must stop "
                            "there, in JupyterLab as in Colab (which has no cell tags)")
        if exercise is not None:
            problems.append(f"{where} is both an exercise and a check cell: split it")
    return problems


def rule_points(src: _Source) -> list[str]:
    """Exercise and check cells give whole, non-negative points."""
    problems = []
    for _, cell, where in src.code_cells():
        points = segkit_meta(cell).get("points", 1)
        if (exercise_name(cell) is not None or check_name(cell) is not None) and (
                not isinstance(points, int) or isinstance(points, bool) or points < 0):
            problems.append(f"{where}: points must be a whole number >= 0, got {points!r}")
    return problems


def rule_tolerances(src: _Source) -> list[str]:
    """A cell's figure tolerances are well formed (``segkit_course.figures``)."""
    problems = []
    for _, cell, where in src.code_cells():
        try:
            cell_tolerance(cell)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def rule_executed(src: _Source) -> list[str]:
    """Every code cell nbval compares has stored outputs (an execution count)."""
    if not src.require_execution:
        return []
    return [f"{where} has never been executed (no execution count), so nbval would not "
            "compare it: execute the notebook with "
            f"`python -m segkit_course.run --inplace solutions/{src.name}.ipynb`"
            for _, cell, where in src.code_cells()
            if cell.source.strip() and not any(tag in tags(cell) for tag in SKIP_TAGS)
            and cell.get("execution_count") is None]


def rule_solution_only(src: _Source) -> list[str]:
    """Cells the lesson needs are never tagged ``solution-only``."""
    return [f"{describe_cell(i, cell)} is tagged `{SOLUTION_ONLY_TAG}` but is an exercise, "
            "check or set-up cell, which the lesson needs"
            for i, cell in enumerate(src.cells)
            if SOLUTION_ONLY_TAG in tags(cell)
            and (exercise_name(cell) or check_name(cell) or is_setup_cell(cell))]


#: the conventions a solution notebook follows, checked in this order by ``lint``
RULES = (rule_lesson_name, rule_cell_ids, rule_title_and_setup, rule_solution_markers,
         rule_exercise_cells, rule_exercise_defines_its_name, rule_check_follows_exercise,
         rule_check_cells, rule_points, rule_tolerances, rule_executed, rule_solution_only)


def _raise_problems(name: str, problems: list[str]) -> None:
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise NotebookSourceError(f"{name}.ipynb breaks the course conventions:\n{listing}")


# --------------------------------------------------------------------------- annotate


def _add_tag(cell: NotebookNode, tag: str) -> None:
    cell_tags = tags(cell)
    if tag not in cell_tags:
        cell.metadata["tags"] = cell_tags + [tag]


def _set_nbgrader(cell: NotebookNode, **fields) -> None:
    merged = dict(cell.metadata.get("nbgrader", {}))
    merged.update(fields, schema_version=NBGRADER_SCHEMA)
    if "points" not in fields:
        merged.pop("points", None)
    cell.metadata["nbgrader"] = merged


def _new_ids(nb: NotebookNode) -> None:
    """Give cells without an id a deterministic one (from their position and source)."""
    used = {cell["id"] for cell in nb.cells if "id" in cell}
    for index, cell in enumerate(nb.cells):
        if "id" in cell:
            continue
        digest = hashlib.sha1(f"{index}\n{cell.source}".encode()).hexdigest()
        new = digest[:8]
        while new in used:
            digest = hashlib.sha1(digest.encode()).hexdigest()
            new = digest[:8]
        cell["id"] = new
        used.add(new)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.nbformat_minor)


def _title_with_badge(source: str, name: str, url: str | None = None) -> str:
    """The title cell's source with exactly one, current, Colab badge under the title."""
    lines = [line for line in source.split("\n") if COLAB_BADGE_IMAGE not in line]
    title, rest = lines[0], lines[1:]
    while rest and not rest[0].strip():
        rest.pop(0)
    text = f"{title}\n\n{badge_markdown(name, url)}"
    return text + ("\n\n" + "\n".join(rest) if rest else "")


def _setup_cell(existing: NotebookNode | None, number: str,
                url: str | None = None) -> NotebookNode:
    cell = existing if existing is not None else nbformat.v4.new_code_cell(id=SETUP_CELL_ID)
    cell.source = setup_cell_source(url)
    cell.metadata.setdefault("segkit", {})["setup"] = True
    _add_tag(cell, SETUP_TAG)
    _set_nbgrader(cell, grade=False, solution=False, locked=True, grade_id=f"setup-{number}")
    return cell


def annotate(nb: NotebookNode, name: str, url: str | None = None) -> NotebookNode:
    """A copy of the solution ``nb`` with its metadata completed from the segkit metadata.

    - exercise cells: nbgrader ``{"grade": false, "solution": true, "locked": false,
      "grade_id": "ex-NN-<exercise>"}``;
    - check cells: tag ``check`` and nbgrader ``{"grade": true, "solution": false,
      "locked": true, "points": <the exercise's points>, "grade_id": "check-NN-<exercise>"}``;
    - markdown cells with a solution block: nbgrader manually graded answer
      (``grade_id`` "answer-NN-<segkit answer name or cell id>");
    - the set-up cell right after the title gets the current source (inserted if missing),
      the title cell the current Colab badge;
    - cells without ids get deterministic ids (nbformat 4.5).

    Other metadata is kept. Annotating twice changes nothing more. ``url``: the course's
    address for the badge and set-up cell (default: pyproject.toml's, see
    :mod:`segkit_course.address`).
    """
    nb = copy.deepcopy(nb)
    number = lesson_number(name)
    _new_ids(nb)
    cells = nb.cells
    if cells and cells[0].cell_type == "markdown" and cells[0].source.startswith("# "):
        cells[0].source = _title_with_badge(cells[0].source, name, url)
        setup_at = [i for i, cell in enumerate(cells) if is_setup_cell(cell)]
        if not setup_at:
            if any(cell.get("id") == SETUP_CELL_ID for cell in cells):
                raise NotebookSourceError(f"{name}.ipynb: a cell has the id {SETUP_CELL_ID!r}, "
                                          "which is kept for the set-up cell: rename it")
            cells.insert(1, _setup_cell(None, number, url))
        elif setup_at == [1]:
            _setup_cell(cells[1], number, url)

    points = {exercise_name(c): segkit_meta(c).get("points", 1) for c in cells if exercise_name(c)}
    for cell in cells:
        exercise, check = exercise_name(cell), check_name(cell)
        if exercise:
            _set_nbgrader(cell, grade=False, solution=True, locked=False,
                          grade_id=f"ex-{number}-{exercise}")
        elif check:
            _add_tag(cell, CHECK_TAG)
            _set_nbgrader(cell, grade=True, solution=False, locked=True,
                          points=points.get(check, 1), grade_id=f"check-{number}-{check}")
        elif cell.cell_type == "markdown" and find_solution_blocks(cell.source)[0]:
            meta = segkit_meta(cell)
            answer = meta.get("answer") or cell["id"]
            _set_nbgrader(cell, grade=True, solution=True, locked=False,
                          points=meta.get("points", 1), grade_id=f"answer-{number}-{answer}")
    return nb


# --------------------------------------------------------------------------- build


def read_notebook(path: str | Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def notebook_text(nb: NotebookNode) -> str:
    """The notebook as nbformat writes it (sorted keys, one-space indent, final newline)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def _drop_tolerance(cell: NotebookNode) -> None:
    meta = cell.metadata.get("segkit")
    if meta is not None:
        meta.pop("tolerance", None)
        if not meta:
            del cell.metadata["segkit"]


def build_lesson(solution_nb: NotebookNode | str | Path, name: str | None = None,
                 url: str | None = None) -> NotebookNode:
    """The student notebook built from a solution notebook.

    Args:
        solution_nb: the solution notebook, or the path of its file.
        name: the notebook's name without ``.ipynb`` (e.g. ``"04_metrics"``); taken from
            the path when a path is given. It numbers the grade ids and names the badge.
        url: the course's address (default: pyproject.toml's).

    Raises:
        NotebookSourceError: the solution breaks the conventions (every problem listed).
    """
    if isinstance(solution_nb, (str, Path)):
        name = name or Path(solution_nb).stem
        solution_nb = read_notebook(solution_nb)
    if name is None:
        raise ValueError("build_lesson needs the notebook's name, e.g. name='04_metrics'")
    _raise_problems(name, lint(solution_nb, name))
    nb = annotate(solution_nb, name, url)

    lesson_cells = []
    for cell in nb.cells:
        if SOLUTION_ONLY_TAG in tags(cell):
            continue
        cell.metadata.pop("execution", None)  # nbclient/JupyterLab timings
        if cell.cell_type == "code":
            exercise = exercise_name(cell)
            if exercise:
                stub = CODE_STUB.replace("{exercise}", exercise)
                cell.source = replace_solution_blocks(cell.source, stub)
            cell.outputs = []
            cell.execution_count = None
            _drop_tolerance(cell)  # it describes stored outputs; a lesson has none
        elif cell.cell_type == "markdown":
            cell.source = replace_solution_blocks(cell.source, ANSWER_STUB)
        lesson_cells.append(cell)
    nb.cells = lesson_cells
    nb.metadata.pop("widgets", None)  # stored widget state is output too
    nbformat.validate(nb)
    return nb


def solution_paths(solutions_dir: str | Path = "solutions") -> list[Path]:
    """The solution notebooks ``NN_name.ipynb`` of a folder, in lesson order."""
    return sorted(Path(solutions_dir).glob(SOLUTION_GLOB))


def build_all(solutions_dir: str | Path = "solutions", lessons_dir: str | Path = "lessons",
              dry_run: bool = False) -> list[str]:
    """Build ``lessons_dir/NN_name.ipynb`` for every ``solutions_dir/NN_name.ipynb``.

    Writes only lessons whose bytes change. With ``dry_run=True`` writes nothing: the
    lesson-sync test of CI and ``segkit build-lessons --dry-run``.

    Returns:
        dry run: the lessons that are out of date, missing or extra (no solution);
        an empty list means ``lessons/`` is in sync. Write mode: the lessons written.
        Each is printed with the reason.

    Raises:
        NotebookSourceError: a solution breaks the conventions (all notebooks' problems).
    """
    lessons_dir = Path(lessons_dir)
    solutions = solution_paths(solutions_dir)
    if not solutions:
        where = "holds no NN_name.ipynb notebook" if Path(solutions_dir).is_dir() else "not found"
        raise NotebookSourceError(f"solutions folder {solutions_dir} {where} (--solutions): "
                                  "run from the course's root folder or give the folder")
    reported: list[str] = []
    errors: list[str] = []
    for solution in solutions:
        try:
            text = notebook_text(build_lesson(solution))
        except NotebookSourceError as exc:
            errors.append(str(exc))
            continue
        lesson = lessons_dir / solution.name
        old = lesson.read_bytes() if lesson.exists() else None
        if old == text.encode("utf-8"):
            continue
        if dry_run:
            why = "is missing" if old is None else "is out of date"
            print(f"{lesson} {why}: run `segkit build-lessons`")
        else:
            lessons_dir.mkdir(parents=True, exist_ok=True)
            lesson.write_bytes(text.encode("utf-8"))
            print(f"wrote {lesson}")
        reported.append(str(lesson))
    names = {s.name for s in solutions}
    for extra in sorted(lessons_dir.glob(SOLUTION_GLOB)):
        if extra.name not in names:
            print(f"{extra} has no solution notebook {Path(solutions_dir) / extra.name}: "
                  "delete the lesson or add its solution")
            if dry_run:
                reported.append(str(extra))
    if errors:
        raise NotebookSourceError("\n".join(errors))
    return reported


def annotate_all(solutions_dir: str | Path = "solutions") -> list[str]:
    """Complete the metadata of every solution in place (see ``annotate``).

    Returns the solutions that changed. Outputs are kept; a newly inserted set-up cell
    has no execution count, so execute the notebook again afterwards.
    """
    changed = []
    for path in solution_paths(solutions_dir):
        nb = read_notebook(path)
        new = annotate(nb, path.stem)
        if new != nb:
            path.write_bytes(notebook_text(new).encode("utf-8"))
            print(f"annotated {path}")
            changed.append(str(path))
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m segkit_course.build``: the same as ``segkit build-lessons``."""
    from segkit.cli import main as segkit_main

    return segkit_main(["build-lessons", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
