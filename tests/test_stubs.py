"""Every lesson runs to the end with its stubs in place, proven without running it.

``segkit_course.stubs.stub_call_problems`` reads a lesson's cells: no cell but a check
cell may reach a stub before ``checks.use`` rebinds it, nothing rebinds a stub another
way, and every check cell passes its stub to its check. This replaces executing every
lesson (the fixture course is still executed in tests/test_lessons_execute.py, and
``segkit verify`` executes the real lessons).

The other two halves of "the lesson runs with only its check cells raising": every
exercise is followed by its check cell (``validate``, tests/test_build.py and
tests/test_notebooks_meta.py), and every check raises ExerciseNotDone on a stub
(tests/test_checks_lessonNN.py, one stub test per check).
"""

from __future__ import annotations

import nbformat
import pytest

from notebook_helpers import FIXTURE_SOLUTIONS, LESSONS, notebook_params
from segkit_course.build import build_lesson, read_notebook, solution_paths
from segkit_course.stubs import python_source, stub_call_problems

FIXTURES = [pytest.param(p, id=f"fixture-{p.stem}") for p in solution_paths(FIXTURE_SOLUTIONS)]


@pytest.mark.parametrize("lesson", notebook_params(LESSONS, "lesson"))
def test_no_cell_but_a_check_reaches_a_stub(lesson):
    assert stub_call_problems(read_notebook(lesson), lesson.stem) == []


@pytest.mark.parametrize("solution", FIXTURES)
def test_the_fixture_lessons_are_clean(solution):
    assert stub_call_problems(build_lesson(solution), solution.stem) == []


# --------------------------------------------------------------------------- broken copies
# The fixture lesson 00_demo (0-based cells): 4 `ex1` defines the stub add_squares,
# 5 `ex1-check`, 6 `ex1-use` rebinds it with `use(...)` and calls it; 8 `ex2` defines the
# stub Counter, 9 `ex2-check`; Counter is never rebound.


def demo() -> nbformat.NotebookNode:
    return build_lesson(FIXTURE_SOLUTIONS / "00_demo.ipynb")


def cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def appended(source: str):
    def edit(nb):
        nb.cells.append(nbformat.v4.new_code_cell(source, id="late"))
    return edit


def inserted_before_use(source: str):
    def edit(nb):
        nb.cells.insert(6, nbformat.v4.new_code_cell(source, id="early"))
    return edit


def replaced(cell_id: str, source: str):
    def edit(nb):
        cell(nb, cell_id).source = source
    return edit


def prepended(cell_id: str, line: str):
    def edit(nb):
        cell(nb, cell_id).source = line + "\n" + cell(nb, cell_id).source
    return edit


def both(first, second):
    def edit(nb):
        first(nb)
        second(nb)
    return edit


def problems_after(edit) -> list[str]:
    nb = demo()
    edit(nb)
    return stub_call_problems(nb, "00_demo")


CAUGHT = {
    "a later cell calls a stub": (
        appended("counter = Counter()"),
        ["cell 13 (id 'late'", "line 1: calls `Counter`", "(exercise `Counter`, cell 9)"]),
    "a helper in a later cell calls a stub": (
        appended("def tally(n):\n    counter = Counter()\n    return counter.add(n)"),
        ["cell 13 (id 'late'", "line 2: calls `Counter`"]),
    "a later cell passes a stub on": (
        inserted_before_use("tools = [add_squares]"),
        ["cell 7 (id 'early'", "line 1: uses `add_squares`",
         "(the lesson does so in cell 8)"]),
    "a call before the rebinding, in the same cell": (
        prepended("ex1-use", "print(add_squares(1, 2))"),
        ["cell 7 (id 'ex1-use'", "line 1: calls `add_squares`"]),
    "a later exercise cell uses a stub outside its stubbed block": (
        both(replaced("ex1-use", "pass"), replaced(
            "ex2", cell(demo(), "ex2").source + "\n\n    def squared(self):\n"
                                                "        return add_squares(self.count, 0)")),
        ["cell 9 (id 'ex2'", "line 13: calls `add_squares`"]),
    "an exercise cell uses its own stub": (
        replaced("ex2", cell(demo(), "ex2").source + "\n\n\nFIRST = Counter()"),
        ["cell 9 (id 'ex2'", "line 13: calls `Counter`"]),
    "a stub redefined by a def": (
        appended("class Counter:\n    pass"),
        ["cell 13 (id 'late'", "line 1: rebinds `Counter`", "without `checks.use`",
         'write `Counter = checks.use("Counter", Counter, <segkit\'s version>)`']),
    "a stub redefined by an assignment": (
        replaced("ex1-use", "add_squares = reference_add_squares\nprint(add_squares(1, 2))"),
        ["cell 7 (id 'ex1-use'", "line 1: rebinds `add_squares`"]),
    "a stub redefined by an import": (
        appended("from collections import Counter"),
        ["line 1: rebinds `Counter`"]),
    "a stub that raises when its cell runs": (
        replaced("ex1", 'raise NotImplementedError("Exercise add_squares: write your code here")'),
        ["cell 5 (id 'ex1'", "raises as soon as the cell runs"]),
    "a stub in no top-level function": (
        replaced("ex2", "if True:\n    def Counter():\n        raise NotImplementedError("
                        '"Exercise Counter: write your code here")'),
        ["cell 9 (id 'ex2'", "no top-level function or class holds its stub"]),
    "a check cell that does not pass the stub to its check": (
        replaced("ex2-check", 'print("Counter looks fine")'),
        ["cell 10 (id 'ex2-check'", "is the check of `Counter` but never reads the stub "
                                    "`Counter`"]),
    "a cell that is not Python": (
        appended("def broken(:\n    pass"),
        ["cell 13 (id 'late'", "is not Python (line 1: "]),
}


@pytest.mark.parametrize("edit, words", CAUGHT.values(), ids=CAUGHT.keys())
def test_a_broken_copy_is_caught(edit, words):
    problems = problems_after(edit)
    assert len(problems) == 1, problems
    for word in words:
        assert word in problems[0], problems[0]


def test_the_message_names_the_cell_the_stub_and_the_fix():
    assert problems_after(prepended("ex1-use", "print(add_squares(1, 2))")) == [
        "00_demo: cell 7 (id 'ex1-use', code: 'print(add_squares(1, 2))'), line 1: calls "
        "`add_squares`, a stub in the lesson (exercise `add_squares`, cell 5) that raises "
        "NotImplementedError until the student writes it: rebind it first with "
        '`add_squares = use("add_squares", add_squares, reference_add_squares)` '
        "(the lesson does so in cell 7)"]


FINE = {
    "use after the rebinding": appended("print(add_squares(2, 3))"),
    "the stub given to checks.use inline": appended(
        'print(checks.use("add_squares", add_squares, reference_add_squares)(1, 2))'),
    "a check cell that uses the stub more": replaced(
        "ex2-check", "c = Counter\ncheck_counter(c)\nCounter().add(1)"),
    "a parameter with a stub's name": appended(
        "def tally(Counter, n):\n    return Counter().add(n)\n\n\n"
        "make = lambda Counter: Counter()"),
    "local names with a stub's name": appended(
        "def first():\n    for Counter in [dict]:\n        return Counter()\n\n\n"
        "def second():\n    import collections as Counter\n    return Counter.Counter()\n\n\n"
        "squares = [Counter * Counter for Counter in range(3)]"),
    "an attribute with a stub's name": appended("import collections\nc = collections.Counter()"),
    "IPython magics and shell lines": appended(
        "%time x = 1\n!echo hi\nif True:\n    !echo indented\nok = (x\n      != 2)"),
}


@pytest.mark.parametrize("edit", FINE.values(), ids=FINE.keys())
def test_allowed_uses_are_not_flagged(edit):
    assert problems_after(edit) == []


def test_magic_lines_keep_their_place():
    assert python_source("%matplotlib inline\nx = 1\n  !ls\ny = (x\n     != 1)") == \
        "pass\nx = 1\n  pass\ny = (x\n     != 1)"
