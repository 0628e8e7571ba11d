"""``segkit verify`` on the fixture course, and on copies broken in every way it catches.

The fixture course (tests/fixtures/course: two tiny plain-Python lessons) is copied to a
temporary folder with its lessons built. The broken copy has, at once: a lesson out of
sync with its solution, a solution that fails its check, a check that passes the stub,
and a new lesson that is slow (past the time budget) and tries to download something
(caught by the notebook, refused and reported all the same).
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from notebook_helpers import FIXTURE_SOLUTIONS
from segkit.cli import main
from segkit_course.build import annotate, build_all, notebook_text, read_notebook
from segkit_course.verify import verify_course

BUDGET = 8.0  # seconds per notebook: the fixture notebooks take about one


def make_course(root: Path) -> Path:
    shutil.copytree(FIXTURE_SOLUTIONS, root / "solutions")
    build_all(root / "solutions", root / "lessons")
    return root


def edit_solution(root: Path, name: str, cell_id: str, old: str, new: str) -> None:
    path = root / "solutions" / f"{name}.ipynb"
    nb = read_notebook(path)
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    assert old in cell.source
    cell.source = cell.source.replace(old, new)
    path.write_text(notebook_text(nb), encoding="utf-8")


def add_slow_online_lesson(root: Path) -> None:
    """02_online: a solution with a download it catches, and a cell slower than the budget."""
    quick = read_notebook(root / "solutions" / "01_quick.ipynb")
    nb = copy.deepcopy(quick)
    nb.cells = [nb.cells[0], nb.cells[1]]
    nb.cells[0].source = "# 02 · Online\n\nA lesson that should not be online."
    download = nbformat.v4.new_code_cell(
        "import urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('http://example.com/weights.pt', timeout=2)\n"
        "except OSError:\n"
        "    print('no network: using the local copy')", id="download")
    slow = nbformat.v4.new_code_cell("import time\ntime.sleep(60)", id="slow")
    nb.cells += [download, slow]
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
    nb = annotate(nb, "02_online")
    (root / "solutions" / "02_online.ipynb").write_text(notebook_text(nb), encoding="utf-8")


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    shutil.copytree(FIXTURE_SOLUTIONS, root / "solutions")
    # a solution whose check fails: integer division in mean()
    edit_solution(root, "01_quick", "ex", "sum(values) / len(values)", "sum(values) // len(values)")
    # a check that passes the stub: Counter's check cell no longer calls the check
    edit_solution(root, "00_demo", "ex2-check", "check_counter(Counter)",
                  'print("Counter looks fine")')
    add_slow_online_lesson(root)
    build_all(root / "solutions", root / "lessons")
    # a lesson edited by hand: out of sync with its solution
    lesson = root / "lessons" / "00_demo.ipynb"
    nb = read_notebook(lesson)
    nb.cells.append(nbformat.v4.new_markdown_cell("a note typed into the lesson", id="typed"))
    lesson.write_text(notebook_text(nb), encoding="utf-8")
    report = verify_course(root, budget_seconds=BUDGET, jobs=3, out=None)
    return root, report


@pytest.mark.notebooks
def test_a_good_course_verifies_and_exits_0(tmp_path, capsys):
    root = make_course(tmp_path)
    code = main(["verify", "--course", str(root), "--budget-seconds", "60", "--jobs", "2"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "ok    lessons/ is in sync with solutions/" in text
    assert re.search(r"ok    00_demo +solution +\d+\.\d s  2 check\(s\) pass", text), text
    assert re.search(r"ok    00_demo +lesson +\d+\.\d s  2 check\(s\) raise ExerciseNotDone",
                     text), text
    assert re.search(r"ok    01_quick +lesson +\d+\.\d s  1 check\(s\) raise ExerciseNotDone",
                     text), text
    assert "no notebook tried to reach the network" in text
    assert "all good: 4 notebooks verified" in text


@pytest.mark.notebooks
@pytest.mark.xdist_group("verify-broken")  # one worker builds broken_report
def test_every_kind_of_breakage_is_reported(broken_report):
    root, report = broken_report
    assert not report.ok
    problems = report.problems
    expected = [
        r"sync: .*lessons/00_demo\.ipynb is out of date: run `segkit build-lessons`",
        r"00_demo lesson: check cell 10 \(`Counter`\) passes the stub: a check must raise "
        r"ExerciseNotDone until the exercise is written",
        r"01_quick solution: check cell 4 \(`mean`\) fails the solution: CheckFailed: ❌ mean: "
        r"mean\(\[1, 2, 3, 4\]\) is 2, expected 2\.5 \(within ±1e-09\)",
        r"02_online solution: over the time budget: cell 4 \(`import time`\) was still running "
        r"after \d+\.\d s",
        r"02_online solution: tried to reach the network: socket.getaddrinfo example.com:80 "
        r"\(refused\)",
        r"02_online lesson: over the time budget: cell 4 \(`import time`\) was still running "
        r"after \d+\.\d s",
        r"02_online lesson: tried to reach the network: socket.getaddrinfo example.com:80 "
        r"\(refused\)",
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for pattern, problem in zip(expected, problems):
        assert re.fullmatch(pattern, problem), f"{problem!r} does not match {pattern!r}"


@pytest.mark.notebooks
@pytest.mark.xdist_group("verify-broken")  # one worker builds broken_report
def test_the_report_reads_well(broken_report):
    root, report = broken_report
    text = report.text()
    assert text.startswith(f"segkit verify: {root} (time budget 8 s per notebook)\n")
    assert "FAIL  lessons/ is not in sync with solutions/" in text
    assert re.search(r"ok    00_demo +solution +\d+\.\d s  2 check\(s\) pass", text), text
    assert re.search(r"FAIL  02_online +solution +\d+\.\d s\n        - over the time budget",
                     text), text
    assert "2 attempt(s) to reach the network (see above)" in text
    assert text.endswith("7 problem(s): 4 notebook(s) failed; lessons/ out of sync")


@pytest.mark.notebooks
def test_verify_exits_1_on_a_problem(tmp_path, capsys):
    root = make_course(tmp_path)
    edit_solution(root, "01_quick", "ex", "sum(values) / len(values)", "sum(values) // len(values)")
    build_all(root / "solutions", root / "lessons")
    code = main(["verify", "--course", str(root), "--only", "01"])
    text = capsys.readouterr().out
    assert code == 1
    assert "FAIL  01_quick  solution" in text and "00_demo" not in text.split("\n\n")[-2]


def test_verify_help(capsys):
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    text = capsys.readouterr().out
    for words in ["--budget-seconds", "--course", "--jobs", "--only", "network"]:
        assert words in text


def test_a_course_without_solutions_is_an_error(tmp_path, capsys):
    assert main(["verify", "--course", str(tmp_path)]) == 1
    assert "no solution notebooks" in capsys.readouterr().err
