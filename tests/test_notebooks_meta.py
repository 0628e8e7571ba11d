"""The notebooks follow the course conventions, lessons are in sync, and nbval compares.

Runs on the real solutions/ and lessons/ (skipped while there are none) and on the
fixture course, so the checks themselves are exercised today.
"""

from __future__ import annotations

import shutil

import pytest

from notebook_helpers import (
    FIXTURE_SOLUTIONS,
    LESSONS,
    SOLUTIONS,
    lesson_file_problems,
    notebook_params,
    run_nbval,
    solution_problems,
)
from segkit_course.build import build_all, notebook_text, read_notebook, solution_paths

FIXTURES = [pytest.param(p, id=f"fixture-{p.stem}") for p in solution_paths(FIXTURE_SOLUTIONS)]


# --------------------------------------------------------------------------- solutions


@pytest.mark.parametrize("solution", notebook_params(SOLUTIONS, "solution") + FIXTURES)
def test_solution_follows_the_conventions(solution):
    """Executed top to bottom (every code cell has its count, in order), set-up cell first,
    every exercise followed by its check, metadata complete."""
    assert solution_problems(read_notebook(solution), solution.stem) == []


def test_solution_problems_are_found():
    nb = read_notebook(FIXTURE_SOLUTIONS / "01_quick.ipynb")
    nb.cells[3].execution_count = None  # a cell inserted and never run
    nb.cells[1].source = "import segkit"
    nb.cells[2].metadata.pop("nbgrader")
    problems = "\n".join(solution_problems(nb, "01_quick"))
    assert "cell 4 (id 'check', code: 'from segkit import checks') has never been executed" \
        in problems
    assert "execution count None, expected 3" in problems
    assert "the first code cell is not the current set-up cell" in problems
    assert "metadata is incomplete or stale" in problems


def test_lessons_are_in_sync_with_solutions():
    if not solution_paths(SOLUTIONS) and not solution_paths(LESSONS):
        pytest.skip("no solution or lesson notebooks yet")
    assert build_all(SOLUTIONS, LESSONS, dry_run=True) == [], \
        "lessons/ is not in sync with solutions/: run `segkit build-lessons`"


@pytest.mark.parametrize("lesson", notebook_params(LESSONS, "lesson"))
def test_lesson_carries_setup_cell_and_badge(lesson):
    assert lesson_file_problems(read_notebook(lesson), lesson.stem) == []


# --------------------------------------------------------------------------- nbval


@pytest.mark.notebooks
def test_nbval_passes_the_fixture_and_catches_an_edited_output(tmp_path):
    for folder in ("original", "edited"):
        (tmp_path / folder).mkdir()
        shutil.copy(FIXTURE_SOLUTIONS / "00_demo.ipynb", tmp_path / folder)
    edited = tmp_path / "edited" / "00_demo.ipynb"
    nb = read_notebook(edited)
    use_cell = next(c for c in nb.cells if c.get("id") == "ex1-use")
    assert use_cell.outputs[0].text == "total = 44\n📌 total: 44.0000\n"
    use_cell.outputs[0].text = "total = 45\n📌 total: 44.0000\n"
    edited.write_text(notebook_text(nb))

    result = run_nbval(["original/00_demo.ipynb", "edited/00_demo.ipynb"], cwd=tmp_path)
    failed = [line.split(" - ")[0] for line in result.stdout.splitlines()
              if line.startswith("FAILED")]
    cells = sum(1 for c in nb.cells if c.cell_type == "code")
    assert failed == ["FAILED edited/00_demo.ipynb::Cell 4"], result.stdout[-4000:]
    assert f"1 failed, {2 * cells - 1} passed" in result.stdout


NUMBER_WORDS = {9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen"}


def test_readme_and_lesson_00_list_every_lesson():
    """The README's course map and lesson 00's table have a row for every lesson, and the
    README counts them right."""
    names = [path.stem for path in solution_paths(SOLUTIONS)]
    readme = (SOLUTIONS.parent / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"(lessons/{name}.ipynb)" in readme, f"README's course map lacks {name}"
    assert f"the {NUMBER_WORDS[len(names)]} lessons" in " ".join(readme.split())
    table = "\n".join(cell.source for cell in read_notebook(SOLUTIONS / f"{names[0]}.ipynb").cells
                      if cell.cell_type == "markdown")
    for name in names:
        number = name.split("_", 1)[0]
        assert f"| {number} |" in table, f"lesson 00's table lacks lesson {number}"
