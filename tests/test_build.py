"""Building lessons from solutions: stubs, cleared outputs, tags, set-up cell, sync check."""

from __future__ import annotations

import builtins
import copy
import importlib.metadata
import io
import os
import shutil
import sys
import types

import nbformat
import pytest

from notebook_helpers import FIXTURE_SOLUTIONS, lesson_file_problems
from segkit_course import cli
from segkit_course.address import course_url
from segkit_course.build import (
    NotebookSourceError,
    annotate_all,
    build_all,
    build_lesson,
    notebook_text,
    read_notebook,
)
from segkit_course.setup_cell import (
    badge_markdown,
    setup_cell_source,
)

DEMO = FIXTURE_SOLUTIONS / "00_demo.ipynb"


@pytest.fixture
def demo() -> nbformat.NotebookNode:
    return read_notebook(DEMO)


@pytest.fixture
def course(tmp_path):
    """A copy of the fixture course's solutions, and an empty lessons folder."""
    solutions = tmp_path / "solutions"
    shutil.copytree(FIXTURE_SOLUTIONS, solutions)
    return solutions, tmp_path / "lessons"


def cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


# --------------------------------------------------------------------------- build_lesson


def test_stubs_replace_solution_blocks_at_their_indentation(demo):
    lesson = build_lesson(demo, "00_demo")
    assert cell(lesson, "ex1").source == (
        'def add_squares(a, b):\n'
        '    """a² + b² of two numbers."""\n'
        '    # YOUR CODE HERE\n'
        '    raise NotImplementedError("Exercise add_squares: write your code here")')
    counter = cell(lesson, "ex2").source
    assert ('    def __init__(self):\n'
            '        # YOUR CODE HERE\n'
            '        raise NotImplementedError("Exercise Counter: write your code here")\n'
            '\n'
            '    def add(self, n):\n'
            '        for _ in range(n):\n'
            '            # YOUR CODE HERE\n'
            '            raise NotImplementedError("Exercise Counter: write your code here")\n'
            '        return self.count') in counter
    for c in lesson.cells:
        assert "SOLUTION" not in c.source
        if c.cell_type == "code":
            compile(c.source, c.id, "exec")  # still valid Python
    assert cell(lesson, "question").source.endswith("Which term adds the most to it?\n\n"
                                                    "YOUR ANSWER HERE")


def test_outputs_counts_and_timings_are_cleared(demo):
    cell(demo, "ex1-check").metadata["execution"] = {"iopub.status.busy": "2024-01-01"}
    demo.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    lesson = build_lesson(demo, "00_demo")
    for c in lesson.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
        assert "execution" not in c.metadata
    assert "widgets" not in lesson.metadata
    assert any(c.get("outputs") for c in demo.cells)  # the solution itself is untouched


def test_tolerances_stay_in_the_solution(demo):
    """A tolerance describes stored outputs: the lesson, which has none, drops it."""
    cell(demo, "ex1-use").metadata["segkit"] = {"tolerance": {"abs": 0.05}}
    cell(demo, "ex1-check").metadata["segkit"]["tolerance"] = {"abs": 0.05}
    lesson = build_lesson(demo, "00_demo")
    assert "segkit" not in cell(lesson, "ex1-use").metadata
    assert cell(lesson, "ex1-check").metadata["segkit"] == {"check": "add_squares"}


def test_check_cells_are_tagged_check_but_not_raises_exception(demo):
    """Run all stops at a check that raises, in JupyterLab as in Colab (no cell tags)."""
    lesson = build_lesson(demo, "00_demo")
    for c in lesson.cells:
        is_check = "check" in c.metadata.get("segkit", {})
        assert "raises-exception" not in c.metadata.get("tags", [])
        assert ("check" in c.metadata.get("tags", [])) == is_check


def test_ids_metadata_and_kernelspec_are_kept_and_solution_only_cells_dropped(demo):
    lesson = build_lesson(demo, "00_demo")
    kept = [c.id for c in demo.cells if "solution-only" not in c.metadata.get("tags", [])]
    assert [c.id for c in lesson.cells] == kept
    assert "note" not in kept and "note" in [c.id for c in demo.cells]
    assert lesson.metadata == demo.metadata
    assert cell(lesson, "ex1").metadata == cell(demo, "ex1").metadata
    assert lesson_file_problems(lesson, "00_demo") == []


def test_nbgrader_metadata_is_filled_from_segkit_metadata(demo):
    for c in demo.cells:
        c.metadata.pop("nbgrader", None)
        if "tags" in c.metadata:
            c.metadata["tags"] = [t for t in c.metadata["tags"] if t != "check"]
    lesson = build_lesson(demo, "00_demo")
    assert cell(lesson, "ex1").metadata["nbgrader"] == {
        "grade": False, "solution": True, "locked": False, "grade_id": "ex-00-add_squares",
        "schema_version": 3}
    assert cell(lesson, "ex1-check").metadata["nbgrader"] == {
        "grade": True, "solution": False, "locked": True, "points": 2,
        "grade_id": "check-00-add_squares", "schema_version": 3}
    assert cell(lesson, "ex1-check").metadata["tags"] == ["check"]
    assert cell(lesson, "question").metadata["nbgrader"]["grade_id"] == "answer-00-why_total"


def test_stale_setup_cell_and_badge_are_replaced(demo):
    demo.cells[0].source = ("# 00 · Demo\n[![Open In Colab](https://colab.research.google.com/"
                            "assets/colab-badge.svg)](https://colab.research.google.com/github/"
                            "old/place/blob/main/lessons/00_demo.ipynb)\n\nIntro.")
    demo.cells[1].source = "import segkit  # an old set-up cell"
    lesson = build_lesson(demo, "00_demo")
    assert lesson.cells[0].source == f"# 00 · Demo\n\n{badge_markdown('00_demo')}\n\nIntro."
    assert lesson.cells[1].source == setup_cell_source()
    assert lesson.cells[1].id == demo.cells[1].id


def test_missing_setup_cell_is_inserted(demo):
    del demo.cells[1]
    lesson = build_lesson(demo, "00_demo")
    assert lesson.cells[1].source == setup_cell_source()
    assert lesson.cells[1].id == "segkit-setup"
    assert lesson.cells[1].metadata["segkit"] == {"setup": True}
    assert "setup" in lesson.cells[1].metadata["tags"]


def test_badge_points_at_the_lesson_on_colab():
    assert badge_markdown("04_metrics") == (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/segkit-course/segkit/blob/main/lessons/"
        "04_metrics.ipynb)")


# --------------------------------------------------------------------------- source errors


def broken(demo, change):
    nb = copy.deepcopy(demo)
    change(nb)
    with pytest.raises(NotebookSourceError) as info:
        build_lesson(nb, "00_demo")
    return str(info.value)


def test_unmatched_markers_are_named_with_notebook_and_cell(demo):
    def no_end(nb):
        cell(nb, "ex1").source = cell(nb, "ex1").source.replace("    ### END SOLUTION", "")

    message = broken(demo, no_end)
    assert "00_demo.ipynb" in message
    assert "cell 5 (id 'ex1', code: 'def add_squares(a, b):')" in message
    assert "`### BEGIN SOLUTION` on line 3 has no `### END SOLUTION` after it" in message

    def end_first(nb):
        cell(nb, "ex1").source = "def f():\n    ### END SOLUTION\n    ### BEGIN SOLUTION\n"

    message = broken(demo, end_first)
    assert "`### END SOLUTION` on line 2 has no `### BEGIN SOLUTION` before it" in message

    def nested(nb):
        cell(nb, "ex1").source = ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n"
                                  "    ### END SOLUTION\n")

    assert "comes before the `### END SOLUTION`" in broken(demo, nested)

    def misspelt(nb):
        cell(nb, "ex1").source = cell(nb, "ex1").source.replace("### END", "## END")

    assert "looks like a solution marker" in broken(demo, misspelt)


def test_exercise_without_check_cell(demo):
    def drop_check(nb):
        nb.cells.remove(cell(nb, "ex1-check"))

    message = broken(demo, drop_check)
    assert "is exercise `add_squares`, but the next code cell" in message
    assert "cell 6 (id 'ex1-use'" in message


def test_an_exercise_is_named_after_what_it_defines(demo):
    """The grader looks a student's answer up by the exercise's name."""
    def renamed(nb):
        cell(nb, "ex1").metadata["segkit"]["exercise"] = "sum_of_squares"
        cell(nb, "ex1-check").metadata["segkit"]["check"] = "sum_of_squares"

    message = broken(demo, renamed)
    assert "is exercise `sum_of_squares` but defines `add_squares`" in message


def test_unexecuted_solution_cell_would_escape_nbval(demo):
    def inserted(nb):
        nb.cells.insert(3, nbformat.v4.new_code_cell("x = 1", id="new"))

    message = broken(demo, inserted)
    assert "cell 4 (id 'new', code: 'x = 1') has never been executed" in message


def test_more_source_errors(demo):
    assert "not indented" in broken(
        demo, lambda nb: setattr(cell(nb, "ex1"), "source",
                                 "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    assert "no exercise metadata" in broken(
        demo, lambda nb: cell(nb, "ex1").metadata.pop("segkit"))
    assert "the same id as cell 1" in broken(
        demo, lambda nb: setattr(nb.cells[3], "id", nb.cells[0].id))
    assert "is a check cell tagged `raises-exception`" in broken(
        demo, lambda nb: cell(nb, "ex1-check").metadata["tags"].append("raises-exception"))
    assert "markdown title cell" in broken(demo, lambda nb: nb.cells.pop(0))
    assert "tolerance abs must be a number >= 0" in broken(
        demo, lambda nb: cell(nb, "ex1-use").metadata.update(segkit={"tolerance": {"abs": -1}}))

    def check_first(nb):
        nb.cells.insert(2, copy.deepcopy(cell(nb, "ex2-check")))
        nb.cells[2].id = "early-check"

    assert "checks exercise `Counter`, but no exercise cell of that name comes before it" \
        in broken(demo, check_first)


# --------------------------------------------------------------------------- build_all


def test_build_all_writes_every_lesson_byte_stable(course, capsys):
    solutions, lessons = course
    written = build_all(solutions, lessons)
    assert sorted(os.path.basename(p) for p in written) == ["00_demo.ipynb", "01_quick.ipynb"]
    first = {p.name: p.read_bytes() for p in lessons.iterdir()}
    stamps = {p.name: p.stat().st_mtime_ns for p in lessons.iterdir()}
    assert build_all(solutions, lessons) == []  # nothing changed: nothing written
    assert {p.name: p.read_bytes() for p in lessons.iterdir()} == first
    assert {p.name: p.stat().st_mtime_ns for p in lessons.iterdir()} == stamps
    shutil.rmtree(lessons)
    build_all(solutions, lessons)  # a rebuild from scratch gives the same bytes
    assert {p.name: p.read_bytes() for p in lessons.iterdir()} == first
    text = first["00_demo.ipynb"].decode()
    assert text == notebook_text(nbformat.reads(text, as_version=4))


def test_check_mode_reports_stale_missing_and_extra_lessons(course, capsys):
    solutions, lessons = course
    build_all(solutions, lessons)
    assert build_all(solutions, lessons, dry_run=True) == []
    assert cli.main(["build-lessons", "--dry-run", "--solutions", str(solutions),
                     "--lessons", str(lessons)]) == 0

    stale = lessons / "00_demo.ipynb"
    nb = read_notebook(stale)
    nb.cells[0].source += "\nedited by hand"
    stale.write_text(notebook_text(nb))
    (lessons / "01_quick.ipynb").unlink()
    shutil.copy(stale, lessons / "02_gone.ipynb")
    before = {p.name: p.read_bytes() for p in lessons.iterdir()}
    capsys.readouterr()

    reported = build_all(solutions, lessons, dry_run=True)
    out = capsys.readouterr().out
    assert sorted(os.path.basename(p) for p in reported) == [
        "00_demo.ipynb", "01_quick.ipynb", "02_gone.ipynb"]
    assert "00_demo.ipynb is out of date" in out
    assert "01_quick.ipynb is missing" in out
    assert "02_gone.ipynb has no solution notebook" in out
    assert {p.name: p.read_bytes() for p in lessons.iterdir()} == before  # wrote nothing
    assert cli.main(["build-lessons", "--check", "--solutions", str(solutions),
                     "--lessons", str(lessons)]) == 1


def test_cli_build_reports_source_errors_and_fails(course, capsys):
    solutions, lessons = course
    nb = read_notebook(solutions / "01_quick.ipynb")
    nb.cells[2].source = nb.cells[2].source.replace("    ### END SOLUTION", "")
    (solutions / "01_quick.ipynb").write_text(notebook_text(nb))
    assert cli.main(["build-lessons", "--solutions", str(solutions),
                     "--lessons", str(lessons)]) == 1
    err = capsys.readouterr().err
    assert "01_quick.ipynb breaks the course conventions" in err
    assert "has no `### END SOLUTION` after it" in err
    assert (lessons / "00_demo.ipynb").exists()  # the good notebook was still built


def test_annotate_restores_what_authors_leave_out(course):
    solutions, lessons = course
    path = solutions / "00_demo.ipynb"
    original = read_notebook(path)
    bare = copy.deepcopy(original)
    for c in bare.cells:
        c.metadata.pop("nbgrader", None)
        c.metadata.pop("tags", None) if c.metadata.get("tags") in (["check"], ["setup"]) else None
    del bare.cells[1]  # no set-up cell
    bare.cells[0].source = "# 00 · Demo\n\nA tiny notebook for segkit's own tests."
    path.write_text(notebook_text(bare))
    assert cli.main(["build-lessons", "--annotate", "--solutions", str(solutions),
                     "--lessons", str(lessons)]) == 0
    assert not lessons.exists()  # --annotate only annotates
    annotated = read_notebook(path)
    assert annotated.cells[0].source == original.cells[0].source
    assert annotated.cells[1].source == setup_cell_source()
    assert [c.metadata for c in annotated.cells[2:]] == [c.metadata for c in original.cells[2:]]
    assert annotate_all(solutions) == []


def test_cli_help_for_both_subcommands(capsys):
    for command in ("build-lessons", "run-course"):
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--dry-run" in out and "--only" in out and "--inplace" in out


# --------------------------------------------------------------------------- set-up cell


def test_setup_cell_outside_colab_moves_to_the_course_folder(tmp_path, monkeypatch):
    (tmp_path / "segkit").mkdir()
    (tmp_path / "lessons").mkdir()
    monkeypatch.chdir(tmp_path / "lessons")
    monkeypatch.setattr(sys, "path", list(sys.path))
    namespace: dict = {}
    exec(setup_cell_source(), namespace)
    assert os.getcwd() == str(tmp_path)
    assert sys.path[0] == str(tmp_path)
    assert namespace["checks"].__name__ == "segkit.checks"


def test_setup_cell_in_colab_clones_and_installs_without_touching_torch(tmp_path, monkeypatch):
    import subprocess

    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    def fake_run(cmd, **options):  # every command succeeds
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(["chdir", path]))
    monkeypatch.setattr(sys, "path", list(sys.path))
    written = {}

    class Kept(io.StringIO):  # the constraints file, kept in memory
        def close(self):
            written["text"] = self.getvalue()
            super().close()

    def fake_open(path, mode="r"):
        written["path"] = path
        return Kept()

    monkeypatch.setattr(builtins, "open", fake_open)
    exec(setup_cell_source(), {})
    clone, install, chdir = calls
    assert clone[:2] == ["git", "clone"] and course_url() in clone
    assert install[-4:] == ["-c", "/content/keep-torch.txt", "-e", "/content/segkit"]
    # torch and torchvision pinned at the installed versions: pip cannot replace them
    assert written["path"] == "/content/keep-torch.txt"
    assert written["text"] == (f"torch=={importlib.metadata.version('torch')}\n"
                               f"torchvision=={importlib.metadata.version('torchvision')}\n")
    assert chdir == ["chdir", "/content/segkit"]
