"""Student notebooks for the grading tests, made from the lessons themselves.

``slim(name)`` is the lesson as handed out (built from the solution, so always in sync),
cut to what grading its exercises needs: the title, the set-up cell, the imports cell
(without plotting and widgets), each exercise, its check cell and the lesson's
``checks.use`` line. ``solved(name)`` is the same with the solution's code in every
exercise. The corpora (:mod:`grading_corpus`) edit these.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from notebook_helpers import SOLUTIONS
from segkit_course.build import build_lesson, check_name, exercise_name, is_setup_cell

_PLOTTING = re.compile(r"matplotlib|ipywidgets|widgets|segkit\.viz|from segkit import .*viz")


@functools.lru_cache(maxsize=None)
def _handout(name: str) -> NotebookNode:
    nb = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is None:
            cell.execution_count = 1
    return build_lesson(nb, name)


def handout(name: str) -> NotebookNode:
    """The lesson as students get it."""
    return copy.deepcopy(_handout(name))


@functools.lru_cache(maxsize=None)
def _solution_code(name: str) -> dict[str, str]:
    nb = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    return {exercise_name(c): c.source for c in nb.cells if exercise_name(c)}


def solution_code(name: str) -> dict[str, str]:
    """exercise name -> the solution's exercise cell source."""
    return dict(_solution_code(name))


def use_lines(nb: NotebookNode) -> dict[str, str]:
    """exercise -> the lesson's ``name = checks.use("name", name, reference)`` statement."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and ast.unparse(node.value.func) == "checks.use"
                    and isinstance(node.targets[0], ast.Name)):
                found[node.targets[0].id] = ast.get_source_segment(cell.source, node)
    return found


def code_cell(source: str) -> NotebookNode:
    return nbformat.v4.new_code_cell(source)


def slim(name: str) -> NotebookNode:
    """What grading the exercises needs, in the lesson's order (see the module)."""
    nb = handout(name)
    use = use_lines(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup_at = next(i for i, c in enumerate(code) if is_setup_cell(c))
    imports = copy.deepcopy(code[setup_at + 1])
    imports.source = "\n".join(line for line in imports.source.split("\n")
                               if not _PLOTTING.search(line))
    cells = [nb.cells[0], code[setup_at], imports]
    for cell in code:
        if exercise_name(cell):
            cells.append(cell)
        elif check_name(cell):
            cells.append(cell)
            if check_name(cell) in use:
                cells.append(code_cell(use[check_name(cell)]))
    nb.cells = cells
    return nb


def with_code(nb: NotebookNode, sources: dict[str, str]) -> NotebookNode:
    """``nb`` with the exercise cells of ``sources`` holding that code."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if exercise_name(cell) in sources:
            cell.source = sources[exercise_name(cell)]
    return nb


def solved(name: str) -> NotebookNode:
    return with_code(slim(name), solution_code(name))


def without_checks(nb: NotebookNode) -> NotebookNode:
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not check_name(c)]
    return nb


def insert_after(nb: NotebookNode, exercise: str, cells: list[NotebookNode]) -> NotebookNode:
    nb = copy.deepcopy(nb)
    at = next(i for i, c in enumerate(nb.cells) if exercise_name(c) == exercise)
    nb.cells[at + 1:at + 1] = cells
    return nb


def exercises(name: str) -> list[str]:
    return [exercise_name(c) for c in slim(name).cells if exercise_name(c)]


def write(path: Path, nb: NotebookNode | str | bytes) -> Path:
    """Write a notebook as is (ids may repeat); text or bytes are written verbatim."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, bytes):
        path.write_bytes(nb)
    elif isinstance(nb, str):
        path.write_text(nb)
    else:
        path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def mistaken(name: str, exercise: str, edits: list[tuple[str, str]]) -> str:
    """The solution of ``exercise`` with ``edits`` (text, replacement) made."""
    source = solution_code(name)[exercise]
    for old, new in edits:
        assert old in source, (f"the solution of {name} `{exercise}` changed: update the "
                               f"test's edit ({old!r} is gone)")
        source = source.replace(old, new)
    return source


def body_first(source: str, code: str) -> str:
    """The exercise cell ``source`` with ``code`` first in its solution block."""
    import textwrap

    lines = source.split("\n")
    at = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    return "\n".join(lines[:at + 1] + [textwrap.indent(code, indent)] + lines[at + 1:])
