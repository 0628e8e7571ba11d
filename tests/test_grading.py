"""``segkit grade`` on student notebooks the tests make themselves, with the exact table.

For every lesson in solutions/ the tests write, from the lesson the students receive
(built in memory from the solution), a class of students, and the table they expect:

- ``solved``: every exercise holds the solution's code -> all ``pass``;
- ``unsolved``: the lesson as handed out (stubs) -> all ``not done``;
- ``messy``: a catalogued mistake in every exercise, check cells deleted, exercise
  cells duplicated (same cell id; the last version counts), one moved to the end,
  nbgrader metadata stripped -> every exercise ``fail`` with the check's mistake id and
  hint, exactly as if the notebook were tidy;
- ``hostile``: no check cells, an endless loop in the first exercise (``timeout``), a
  mistake in the second (``fail``), the last one ends Python when called (``error``),
  and a cell that silences every check, prints forged results and hides sys.stdout
  (it never runs: the grader runs only exercise cells).

(A lesson whose mistakes are not catalogued here yet gets one notebook, ``half``: every
other exercise solved.) Lesson 00 also gets one notebook per robustness case, graded
through the command line with short time limits: an endless loop at the top level that
ignores Ctrl-C, a segmentation fault and an exercise that ends Python, tampering, a
vandal (deletes and writes files outside its folder, starts programs, prints megabytes)
and a file that is not a notebook; then again, to see that nothing is graded twice,
and in two shards merged into one report.

Lesson 04 also gets the hostile corpus of ``tests/hostile_corpus.py`` (one notebook per
known attack on a grader, each with the grade it must get), graded in the same pool,
in the bubblewrap sandbox where it works here, and its screened and forging part again
with the sandbox off.

The notebooks are not the whole lessons (training takes minutes): each holds the title,
the set-up cell, the imports cell, the exercise cells, their check cells and the
lesson's ``checks.use`` lines. All of them are graded in one pool, 4 at a time.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import io
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode

import hostile_corpus
from notebook_helpers import SOLUTIONS
from session_cache import once_per_session
from segkit_course.build import build_lesson, check_name, exercise_name, is_setup_cell
from segkit_course.grading.discover import (
    GradingInputError,
    Submission,
    read_lesson,
    submissions_for,
)
from segkit_course.grading.execute import Limits, grade_notebook
from segkit_course.grading.report import format_table
from segkit_course.sandbox import bwrap

# Generous limits for ordinary notebooks (a kernel importing torch on a busy 2-core CI
# machine), short ones where the time limit is what is tested.
LIMITS = Limits(cell_timeout=180, notebook_timeout=900, check_timeout=40, output_limit=4000)
SHORT = Limits(cell_timeout=4, notebook_timeout=300, check_timeout=4, output_limit=4000)
JOBS = 4

# --------------------------------------------------------------------------- mistakes
# (exercise, mistake id, [(text of the solution, replaced by)]): the mistake is the
# solution with those edits. The id is the one the lesson's check must report.

MISTAKES: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {
    "00_setup": [
        ("float32_mib", "forgot-bytes-per-value",
         [("values * 4 / 2**20", "values / 2**20")]),
        ("foreground_fraction", "counting-0-as-object",
         [("np.count_nonzero(mask)", "np.count_nonzero(mask == 0)")]),
        ("list_pairs", "wrong-mask-suffix",
         [('f"{image_path.stem}_mask.gif"', 'f"{image_path.stem}.gif"'),
          ("if mask_path.is_file():", "if True:")]),
    ],
    "01_data": [
        ("to_class_indices", "mask-0-255-as-index",
         [("(np.asarray(mask_array) > 0).astype(np.int64)",
           "np.asarray(mask_array).astype(np.int64)")]),
        ("CarvanaPairs", "image-not-scaled",
         [("TF.to_dtype(image, torch.float32, scale=True)",
           "TF.to_dtype(image, torch.float32, scale=False)")]),
        ("make_train_transform", "flip-not-random",
         [("v2.RandomHorizontalFlip(p=0.5)", "v2.RandomHorizontalFlip(p=1.0)")]),
        ("mean_std", "variance-not-std",
         [("std = (total_sq / count - mean**2).sqrt()", "std = total_sq / count - mean**2")]),
    ],
    "02_unet": [
        ("DoubleConv", "conv-no-padding", [("padding=1", "padding=0")]),
        ("Down", "down-no-pool",
         [("nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch))",
           "nn.Sequential(DoubleConv(in_ch, out_ch))")]),
        ("Up", "up-conv-in-channels",
         [("self.conv = DoubleConv(in_ch, out_ch)", "self.conv = DoubleConv(in_ch // 2, out_ch)"),
          ("x = torch.cat([x2, x1], dim=1)", "x = x1 + x2")]),
        ("UNet", "unet-depth-off-by-one",
         [("for i in range(depth)]", "for i in range(depth - 1)]"),
          ("for i in reversed(range(depth))]", "for i in reversed(range(depth - 1))]")]),
    ],
    "03_training": [
        ("average_loss", "loss-not-averaged",
         [("return total / sum(batch_sizes)", "return total")]),
        ("train_one_epoch", "loss-tensor-accumulator",
         [("total_loss += loss.item() * batch_size", "total_loss += loss * batch_size")]),
        ("validate", "validate-train-mode", [("model.eval()", "model.train()")]),
    ],
    "04_metrics": [
        ("pixel_accuracy", "accuracy-integer-division",
         [("return correct / target.numel()", "return correct // target.numel()")]),
        ("dice_score", "dice-no-factor-2",
         [("inter / sizes.clamp(min=1)", "inter / sizes.clamp(min=1) / 2")]),
        ("iou_score", "iou-union-double-counts",
         [("target.sum(dim=(1, 2)) - inter", "target.sum(dim=(1, 2))")]),
    ],
}

LESSONS = sorted(path.stem for path in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


# --------------------------------------------------------------------------- notebook making


@functools.lru_cache(maxsize=None)
def _handout(name: str) -> NotebookNode:
    """The lesson as students get it, built from the solution (so always in sync).

    A solution being written may not have its outputs stored yet: that does not matter
    to grading, so missing execution counts are filled in first.
    """
    nb = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is None:
            cell.execution_count = 1
    return build_lesson(nb, name)


def handout(name: str) -> NotebookNode:
    return copy.deepcopy(_handout(name))


def solution_code(name: str) -> dict[str, str]:
    """exercise name -> the solution's exercise cell source."""
    nb = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    return {exercise_name(c): c.source for c in nb.cells if exercise_name(c)}


def uses(nb: NotebookNode) -> dict[str, str]:
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


def slim(nb: NotebookNode) -> NotebookNode:
    """What the exercises need, in the lesson's order: the title, the set-up cell, the
    imports cell (the code cell after the set-up), each exercise, its check cell, and the
    lesson's ``checks.use`` line for it (so that a later exercise that builds on this
    one gets segkit's version when this one failed, as in the whole lesson)."""
    nb = copy.deepcopy(nb)
    use = uses(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup_at = next(i for i, c in enumerate(code) if is_setup_cell(c))
    imports = copy.deepcopy(code[setup_at + 1])  # without matplotlib: no exercise plots
    imports.source = "\n".join(line for line in imports.source.split("\n")
                               if "matplotlib" not in line)
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


def without_checks(nb: NotebookNode, names: set[str] | None = None) -> NotebookNode:
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not check_name(c) or (names and check_name(c) not in names)]
    return nb


def code_cell(source: str) -> NotebookNode:
    return nbformat.v4.new_code_cell(source)


def insert_after(nb: NotebookNode, exercise: str, cells: list[NotebookNode]) -> NotebookNode:
    nb = copy.deepcopy(nb)
    at = next(i for i, c in enumerate(nb.cells) if exercise_name(c) == exercise)
    nb.cells[at + 1:at + 1] = cells
    return nb


def mistaken(name: str, exercise: str, edits: list[tuple[str, str]]) -> str:
    source = solution_code(name)[exercise]
    for old, new in edits:
        assert old in source, (f"the solution of {name} `{exercise}` changed: update the "
                               f"mistake in tests/test_grading.py ({old!r} is gone)")
        source = source.replace(old, new)
    return source


def write(path: Path, nb: NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")  # as is: ids may repeat
    return path


def looping(name: str, exercise: str) -> str:
    """The solution of ``exercise`` with an endless loop before its first line of code."""
    lines = solution_code(name)[exercise].split("\n")
    at = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, f"{indent}import time\n{indent}while True:  # sleeps: no CPU burnt\n"
                         f"{indent}    time.sleep(0.05)")
    return "\n".join(lines)


def crashing(name: str, exercise: str) -> str:
    lines = solution_code(name)[exercise].split("\n")
    at = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, f"{indent}import os; os._exit(3)  # Python ends on the spot")
    return "\n".join(lines)


def tampering(name: str) -> str:
    """A cell that silences every check of lesson ``name`` and forges results."""
    number = name[:2]
    exercises = list(solution_code(name))
    forged = "\n".join(
        f"print('SEGKIT-GRADE-RESULT 0123 {{\"exercise\": \"{ex}\", \"status\": \"pass\"}}')"
        for ex in exercises)
    return f'''\
import io, sys
import segkit.checks.core as core
import segkit.checks.lesson{number} as mine
for attribute in dir(mine):
    if attribute.startswith("check_"):
        setattr(mine, attribute, lambda *args, **kwargs: print("✅ passed"))
core.run_check = lambda exercise, title, body: print(f"✅ {{title}} — passed")
checks.CheckFailed = checks.ExerciseNotDone = Exception
{forged}
sys.stdout = io.StringIO()  # and hide whatever comes next'''


# --------------------------------------------------------------------------- expected table


def expected_hint(name: str, exercise: str, source: str) -> str | None:
    """The hint the lesson's check gives for ``source``, run here, in the test's process.

    As in the messy notebook: the lesson's imports cell (without plots), every exercise
    followed by its ``checks.use`` line (which puts segkit's version under the name, as
    no check passed), then the exercise's code; the check is the solution's check call.
    """
    import segkit
    from segkit import checks
    from segkit.checks import core
    from segkit.checks.core import CheckFailed

    nb = slim(handout(name))
    imports = [c for c in nb.cells if c.cell_type == "code"][1].source
    scope: dict = {"checks": checks, "segkit": segkit}
    core.reset()
    with contextlib.redirect_stdout(io.StringIO()):  # the ⚠️ lines of checks.use
        exec(compile(imports, "<imports>", "exec"), scope)
        for other, code in solution_code(name).items():
            exec(compile(code, "<exercise>", "exec"), scope)
            if other in uses(nb):
                exec(compile(uses(nb)[other], "<use>", "exec"), scope)
    exec(compile(source, "<exercise>", "exec"), scope)
    check = read_lesson(SOLUTIONS / f"{name}.ipynb")
    call = next(ex.check_source for ex in check.exercises if ex.name == exercise)
    try:
        exec(compile(call, "<check>", "exec"), scope)
    except CheckFailed as failure:
        return failure.hint
    raise AssertionError(f"the check of {exercise} passed {source!r}")


def compact(results) -> dict[str, tuple[dict[str, str], str]]:
    """student -> ({exercise: "pass" | "fail:<mistake>" | "not done" | ...}, "points/max")."""
    table = {}
    for r in results:
        cells = {}
        for name, res in r.exercises.items():
            cells[name] = f"{res.status}:{res.mistake}" if res.status == "fail" else res.status
        table[r.student] = (cells, f"{r.points}/{r.max_points}")
    return table


def row(lesson, statuses: dict[str, str], default: str) -> tuple[dict[str, str], str]:
    cells = {ex.name: statuses.get(ex.name, default) for ex in lesson.exercises}
    points = sum(ex.points for ex in lesson.exercises if cells[ex.name] == "pass")
    return cells, f"{points}/{lesson.max_points}"


# --------------------------------------------------------------------------- the class


def make_class(name: str, root: Path) -> dict[str, tuple[dict[str, str], str]]:
    """Write the students' notebooks of lesson ``name`` under ``root``; the expected table."""
    lesson = read_lesson(SOLUTIONS / f"{name}.ipynb")
    solved = solution_code(name)
    base = slim(handout(name))
    exercises = [ex.name for ex in lesson.exercises]
    expected = {}

    if name not in MISTAKES:  # a new lesson whose mistakes are not catalogued here yet:
        # one notebook, every other exercise solved, the others left as handed out
        half = {ex: solved[ex] for ex in exercises[::2]}
        write(root / "half" / f"{name}.ipynb", with_code(base, half))
        expected["half"] = row(lesson, {ex: "pass" for ex in half}, "not done")
        return expected

    write(root / "solved" / f"{name}.ipynb", with_code(base, solved))
    expected["solved"] = row(lesson, {}, "pass")

    write(root / "unsolved" / f"{name}.ipynb", base)
    expected["unsolved"] = row(lesson, {}, "not done")

    # messy, with a catalogued mistake in every exercise: no check cells (nbgrader
    # #1682); the first exercise twice, the stub then the mistake, with the same cell id
    # (#1083); the second solved, then again with its mistake (the last one counts); the
    # last one moved to the end; the nbgrader and segkit metadata stripped.
    wrong = {ex: mistaken(name, ex, edits) for ex, _, edits in MISTAKES[name]}
    messy = without_checks(with_code(base, {**solved, **wrong}))
    first, second, last = exercises[0], exercises[1], exercises[-1]
    cells = []
    for cell in messy.cells:
        if exercise_name(cell) == first:
            stub = copy.deepcopy(base.cells[[exercise_name(c) for c in base.cells].index(first)])
            cells += [stub, cell]
        elif exercise_name(cell) == second:
            right = copy.deepcopy(cell)
            right.source = solved[second]
            cells += [right, cell]
        elif exercise_name(cell) != last:
            cells.append(cell)
    cells.append(next(c for c in messy.cells if exercise_name(c) == last))
    for cell in cells:
        cell.metadata.pop("nbgrader", None)
        cell.metadata.pop("segkit", None)
    messy.cells = cells
    write(root / "messy" / f"{name}.ipynb", messy)
    expected["messy"] = row(lesson, {ex: f"fail:{m}" for ex, m, _ in MISTAKES[name]}, "pass")

    # hostile, without check cells: the first exercise loops forever, the second has its
    # mistake, the last ends Python when called; after the last exercise, a cell that
    # silences every check, prints forged results and hides sys.stdout.
    hostile = without_checks(with_code(base, {**solved, first: looping(name, first),
                                              second: wrong[second],
                                              last: crashing(name, last)}))
    hostile = insert_after(hostile, last, [code_cell(tampering(name))])
    write(root / "hostile" / f"{name}.ipynb", hostile)
    second_mistake = next(m for ex, m, _ in MISTAKES[name] if ex == second)
    expected["hostile"] = row(lesson, {first: "timeout", second: f"fail:{second_mistake}",
                                       last: "error"}, "pass")
    return expected


@pytest.fixture(scope="session")
def graded(tmp_path_factory, worker_id) -> dict:
    """Every lesson's class, graded in one pool (the slow hostile notebooks first).

    Returns {lesson name: (Lesson, results in student order, expected table)}. Computed
    once per test session, whichever pytest-xdist worker needs it first.
    """
    return once_per_session(tmp_path_factory, worker_id, "graded", grade_every_class)


def make_corpus(root: Path) -> dict[str, tuple[dict[str, str], str]]:
    """Write the hostile lesson-04 notebooks of ``hostile_corpus`` under ``root``."""
    name = "04_metrics"
    solved = solution_code(name)
    wrong = {ex: mistaken(name, ex, edits) for ex, _, edits in MISTAKES[name]}
    base = slim(handout(name))
    for student, attacks in hostile_corpus.ATTACKS.items():
        code = {**solved, **{ex: wrong[ex]
                             for ex in hostile_corpus.WITH_MISTAKES.get(student, [])}}
        code = {ex: hostile_corpus.with_attack(src, attacks[ex]) if ex in attacks else src
                for ex, src in code.items()}
        write(root / student / f"{name}.ipynb", with_code(base, code))
    return dict(hostile_corpus.EXPECTED)


CORPUS = "04_metrics hostile"
CORPUS_OFF = "04_metrics hostile, isolation off"
OFF = ["connection-reader", "forger", "solution-reader", "escaper", "channel-forger"]


def grade_every_class(root: Path) -> dict:
    """What ``graded`` returns, with the classes written below ``root``."""
    work = []
    classes = {}
    for name in LESSONS:
        expected = make_class(name, root / name / "submissions")
        lesson, submissions, skipped = submissions_for([root / name / "submissions"],
                                                       solutions_dir=SOLUTIONS)
        assert skipped == [] and [s.student for s in submissions] == sorted(expected)
        classes[name] = (lesson, submissions, expected, None)
        work += [(name, lesson, sub, None) for sub in submissions]
    if "04_metrics" in LESSONS:
        expected = make_corpus(root / "corpus")
        lesson, submissions, _ = submissions_for([root / "corpus"], solutions_dir=SOLUTIONS)
        # the victim right after its neighbour, so that they are graded at the same time
        submissions.sort(key=lambda s: s.student != "neighbour" and s.student != "victim")
        classes[CORPUS] = (lesson, submissions, expected, None)
        off = bwrap.detect("off")
        chosen = [s for s in submissions if s.student in OFF]
        classes[CORPUS_OFF] = (lesson, chosen, {s: expected[s] for s in OFF}, off)
        work += [(CORPUS, lesson, sub, None) for sub in submissions]
        work += [(CORPUS_OFF, lesson, sub, off) for sub in chosen]
    work.sort(key=lambda item: item[2].student not in ("hostile", "neighbour", "victim"))
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        futures = {(name, sub.student): pool.submit(grade_notebook, sub, lesson, LIMITS, iso)
                   for name, lesson, sub, iso in work}
        done = {key: future.result() for key, future in futures.items()}
    return {name: (lesson, [done[(name, sub.student)] for sub in subs], expected)
            for name, (lesson, subs, expected, _) in classes.items()}


def test_mistakes_are_catalogued_for_existing_lessons():
    assert set(MISTAKES) <= set(LESSONS)
    for name in ["00_setup", "01_data", "02_unet", "03_training", "04_metrics"]:
        assert name not in LESSONS or name in MISTAKES, name


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
@pytest.mark.parametrize("name", LESSONS)
def test_the_table_is_exactly_as_expected(graded, name):
    lesson, results, expected = graded[name]
    assert compact(results) == {student: expected[student] for student in sorted(expected)}


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
@pytest.mark.parametrize("name", [name for name in LESSONS if name in MISTAKES])
def test_failures_carry_the_checks_own_hint(graded, name):
    """The mistake id and hint in the table are the ones the check gives a student."""
    lesson, results, expected = graded[name]
    messy = next(r for r in results if r.student == "messy")
    points = {ex.name: ex.points for ex in lesson.exercises}
    for exercise, mistake, edits in MISTAKES[name]:
        result = messy.exercises[exercise]
        assert (result.mistake, result.points, result.max_points) == (mistake, 0, points[exercise])
        assert result.hint == expected_hint(name, exercise, mistaken(name, exercise, edits))


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
@pytest.mark.parametrize("name", [name for name in LESSONS if name in MISTAKES])
def test_robustness_is_explained(graded, name):
    lesson, results, expected = graded[name]
    by_student = {r.student: r for r in results}
    assert by_student["solved"].notes == [] and by_student["messy"].notes == []
    hostile = by_student["hostile"]
    first, last = lesson.exercises[0].name, lesson.exercises[-1].name
    assert hostile.exercises[first].hint == (f"the check did not finish within "
                                             f"{LIMITS.check_timeout:g} s: an endless loop in "
                                             f"`{first}`?")
    assert hostile.exercises[last].message == (
        f"Python ended while `{last}` was run or checked: the code crashed it (a fault, "
        "`os._exit`, or memory beyond the 4 GiB cap)")


# --------------------------------------------------------------------------- the hostile corpus


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
@pytest.mark.parametrize("name", [CORPUS, CORPUS_OFF])
def test_no_attack_gains_a_point(graded, name):
    """Every notebook of the corpus gets exactly its honest grade, or ``review``."""
    if name not in graded:
        pytest.skip("lesson 04 is not written yet")
    lesson, results, expected = graded[name]
    table = compact(results)
    if "neighbour" in table:  # its wrong answer is its own: any fail will do
        cells, points = table["neighbour"]
        table["neighbour"] = ({**cells, "dice_score": cells["dice_score"].split(":")[0]}, points)
        if not results[0].isolation.startswith("isolation: bubblewrap"):
            # without a sandbox it sees the other graders' processes: out of scope, and
            # said so in INSTRUCTORS.md ("Threat model")
            expected = {k: v for k, v in expected.items() if k != "neighbour"}
            table.pop("neighbour")
    assert table == {student: expected[student] for student in sorted(expected)}


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
def test_flagged_code_says_why_and_is_not_run(graded):
    if CORPUS not in graded:
        pytest.skip("lesson 04 is not written yet")
    lesson, results, expected = graded[CORPUS]
    by_student = {r.student: r for r in results}
    for student, reasons in hostile_corpus.REASONS.items():
        for exercise, words in reasons.items():
            result = by_student[student].exercises[exercise]
            assert (result.status, result.points) == ("review", 0)
            assert result.hint.startswith("review: ")
            for word in words:
                assert word in result.hint, (student, exercise, result.hint)
    assert not Path("/root/escaped.pt").exists() and not Path("/root/escaped.txt").exists()
    assert not Path("/root/escaped.db").exists()


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
def test_two_students_graded_at_once_cannot_touch_each_other(graded):
    """The neighbour, graded at the same time as the victim, found no other sandbox,
    process or notebook (its dice_score is only right when it does), planted nothing,
    and the victim keeps every point."""
    if CORPUS not in graded:
        pytest.skip("lesson 04 is not written yet")
    isolation = bwrap.detect()
    if not isolation.on:
        pytest.skip(isolation.describe())
    lesson, results, expected = graded[CORPUS]
    by_student = {r.student: r for r in results}
    assert by_student["neighbour"].exercises["dice_score"].status == "fail"
    assert by_student["victim"].points == 5 and by_student["victim"].notes == []
    victim = by_student["victim"].path
    assert not list(victim.parent.rglob("planted.txt"))
    assert by_student["neighbour"].isolation == isolation.describe()


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
def test_the_memory_cap_stops_a_big_allocation(graded):
    if CORPUS not in graded:
        pytest.skip("lesson 04 is not written yet")
    lesson, results, expected = graded[CORPUS]
    big = next(r for r in results if r.student == "big-alloc").exercises["dice_score"]
    assert big.status == "error" and "MemoryError" in (big.hint or ""), big


# --------------------------------------------------------------------------- lesson 00, one by one


@pytest.fixture(scope="session")
def hostile_00(tmp_path_factory):
    """Lesson 00 students, one robustness case each, graded through the command line,
    then graded again (nothing is), then in two shards merged into one report."""
    name = "00_setup"
    if name not in LESSONS:
        pytest.skip("lesson 00 is not written yet")
    root = tmp_path_factory.mktemp("hostile-00")
    outside = root / "instructor"
    outside.mkdir()
    (outside / "keep.txt").write_text("grades of last year")
    solved = solution_code(name)
    base = slim(handout(name))
    sub = root / "submissions"

    # list_pairs loops forever (the grader's check times out); a cell at the top level
    # that loops and ignores Ctrl-C is not an exercise: it never runs
    nb = with_code(base, {**solved, "list_pairs": looping(name, "list_pairs")})
    nb = insert_after(nb, "float32_mib", [code_cell(
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n"
        "    time.sleep(0.05)")])
    write(sub / "loop" / f"{name}.ipynb", nb)

    # foreground_fraction ends Python; a segmentation fault elsewhere never runs
    nb = with_code(base, {**solved, "foreground_fraction": crashing(name, "foreground_fraction")})
    nb = without_checks(nb, {"float32_mib", "list_pairs"})
    nb = insert_after(nb, "float32_mib", [code_cell("import ctypes\nctypes.string_at(0)")])
    write(sub / "crash" / f"{name}.ipynb", nb)

    # silences the checks, forges results, uses segkit's reference for one exercise
    nb = with_code(base, {
        **solved,
        "float32_mib": mistaken(name, "float32_mib", MISTAKES[name][0][2]),
        "list_pairs": mistaken(name, "list_pairs", MISTAKES[name][2][2]),
        "foreground_fraction":
            "foreground_fraction = checks.lesson00.reference_foreground_fraction",
    })
    nb.cells.insert(2, code_cell(tampering(name).replace("sys.stdout = io.StringIO()", "")))
    nb.cells.append(code_cell("sys.stdout = io.StringIO()"))
    write(sub / "tamper" / f"{name}.ipynb", nb)

    # in an exercise cell, past the screen: deletes and writes outside its folder,
    # found by searching the machine, and prints megabytes
    parts = list(outside.parts)  # written as pieces: the screen flags '/tmp/' in a string
    depth = "/".join(["*"] * (len(root.parts) - 2))
    vandal = f"""\\
import os, pathlib, shutil
def _vandalise():
    outside = pathlib.Path(*{parts!r})
    for attempt in [lambda: shutil.rmtree(".."),
                    lambda: [os.remove(p) for p in pathlib.Path("/", {parts[1]!r}).glob("{depth}/instructor/keep.txt")],
                    lambda: (outside / "new.txt").write_text("x"),
                    lambda: shutil.rmtree(outside)]:
        try:
            attempt()
        except OSError as error:
            print(type(error).__name__)
    print("x" * 3_000_000)
    pathlib.Path("mine.txt").write_text("my own folder is fine")
_vandalised = _vandalise()
"""
    nb = with_code(base, {**solved, "float32_mib": vandal + solved["float32_mib"]})
    write(sub / "vandal" / f"{name}.ipynb", nb)

    (sub / "garbled").mkdir()
    (sub / "garbled" / f"{name}.ipynb").write_text("{ this is not json")

    from segkit.cli import main

    out = root / "grades"
    args = ["grade", str(sub), "--lesson", "00", "--solutions", str(SOLUTIONS),
            "--jobs", str(JOBS), "--cell-timeout", str(SHORT.cell_timeout),
            "--check-timeout", str(SHORT.check_timeout), "--output-limit", "4000"]
    assert main(args + ["--out", str(out)]) == 0
    first = json.loads((out / "grades.json").read_text())
    again = io.StringIO()
    with contextlib.redirect_stdout(again):
        assert main(args + ["--out", str(out)]) == 0
    shards = [root / "shards" / f"shard-{k}-of-2" for k in (1, 2)]
    for k, folder in enumerate(shards, start=1):  # from the cache: nothing graded again
        (folder / "cache").mkdir(parents=True)
        for cached in (out / "cache").iterdir():
            shutil.copy(cached, folder / "cache")
        assert main(args + ["--out", str(folder), "--shard", f"{k}/2"]) == 0
    merged = root / "merged"
    assert main(["grade-merge", *map(str, shards), "--out", str(merged)]) == 0
    return root, first, out, again.getvalue(), merged


def _table(report: dict) -> dict:
    return {s["student"]: ({name: (f"{e['status']}:{e['mistake']}" if e["status"] == "fail"
                                   else e["status"]) for name, e in s["exercises"].items()},
                           f"{s['points']}/{s['max_points']}")
            for s in report["students"]}


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_hostile_00_table(hostile_00):
    root, report, out, again, merged = hostile_00
    assert _table(report) == {
        "crash": ({"float32_mib": "pass", "foreground_fraction": "error", "list_pairs": "pass"},
                  "3/4"),
        "garbled": ({"float32_mib": "error", "foreground_fraction": "error",
                     "list_pairs": "error"}, "0/4"),
        "loop": ({"float32_mib": "pass", "foreground_fraction": "pass", "list_pairs": "timeout"},
                 "2/4"),
        "tamper": ({"float32_mib": "fail:forgot-bytes-per-value",
                    "foreground_fraction": "review",
                    "list_pairs": "fail:wrong-mask-suffix"}, "0/4"),
        "vandal": ({"float32_mib": "pass", "foreground_fraction": "pass", "list_pairs": "pass"},
                   "4/4"),
    }
    assert report["isolation"] == bwrap.detect().describe()


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_hostile_00_notes_say_what_happened(hostile_00):
    root, report, out, again, merged = hostile_00
    notes = {s["student"]: s["notes"] for s in report["students"]}
    assert notes["loop"] == [] and notes["crash"] == []  # their other cells never ran
    assert any(n.startswith("the notebook could not be read") for n in notes["garbled"])
    vandal = " ".join(notes["vandal"])
    assert "refused: shutil.rmtree" in vandal, vandal
    if not bwrap.detect().on:  # without a sandbox, it found the file and was refused
        assert "refused: os.remove" in vandal and "refused: open" in vandal, vandal


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_hostile_00_nothing_outside_was_touched(hostile_00):
    root, report, out, again, merged = hostile_00
    outside = root / "instructor"
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_text() == "grades of last year"
    assert (root / "submissions" / "vandal" / "00_setup.ipynb").exists()
    assert not list(root.rglob("mine.txt"))  # written in the temporary folder, gone with it


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_hostile_00_hints_explain(hostile_00):
    root, report, out, again, merged = hostile_00
    students = {s["student"]: s["exercises"] for s in report["students"]}
    assert students["tamper"]["foreground_fraction"]["hint"] == (
        "review: uses the course's reference solution "
        "`checks.lesson00.reference_foreground_fraction`; uses `checks`")
    assert students["loop"]["list_pairs"]["hint"] == (
        "the check did not finish within 4 s: an endless loop in `list_pairs`?")
    assert students["tamper"]["float32_mib"]["hint"] == (
        "you counted the numbers, not the bytes: each float32 value takes 4 bytes. "
        "Multiply the number of values by 4.")
    assert students["crash"]["foreground_fraction"]["message"].startswith("Python ended")


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_hostile_00_csv_matches_the_json(hostile_00):
    import csv

    root, report, out, again, merged = hostile_00
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["student"] for r in rows] == ["crash", "garbled", "loop", "tamper", "vandal"]
    tamper = next(r for r in rows if r["student"] == "tamper")
    assert (tamper["points"], tamper["max_points"]) == ("0", "4")
    assert tamper["float32_mib"] == "fail"
    assert tamper["float32_mib mistake"] == "forgot-bytes-per-value"
    assert tamper["float32_mib hint"].startswith("you counted the numbers")
    assert tamper["list_pairs points"] == "0"
    assert tamper["isolation"] == report["isolation"]
    assert list(rows[0]) == ["student", "file", "points", "max_points",
                             "float32_mib", "float32_mib points", "float32_mib mistake",
                             "float32_mib hint",
                             "foreground_fraction", "foreground_fraction points",
                             "foreground_fraction mistake", "foreground_fraction hint",
                             "list_pairs", "list_pairs points", "list_pairs mistake",
                             "list_pairs hint", "notes", "isolation"]
    assert (out / "grades.json").stat().st_size < 20_000  # the megabytes were not kept


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_gradebook_imports_into_canvas_and_moodle(hostile_00):
    import csv

    root, report, out, again, merged = hostile_00
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    column = "00_setup" + ("" if bwrap.detect().on else " [isolation: off]")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]
    assert rows[1] == ["Points Possible", "", "", "", "", "4"]
    assert rows[2:] == [[s["student"], "", "", s["student"], "", str(s["points"])]
                        for s in report["students"]]


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_gradescope_results_follow_its_format(hostile_00):
    root, report, out, again, merged = hostile_00
    crash = json.loads((out / "gradescope" / "crash" / "results.json").read_text())
    assert crash["score"] == 3 and crash["output"].endswith(report["isolation"])
    assert [(t["name"], t["score"], t["max_score"], t["status"]) for t in crash["tests"]] == [
        ("float32_mib", 1, 1, "passed"), ("foreground_fraction", 0, 1, "failed"),
        ("list_pairs", 2, 2, "passed")]
    assert all(t["visibility"] == "visible" for t in crash["tests"])
    assert sorted(p.name for p in (out / "gradescope").iterdir()) == [
        "crash", "garbled", "loop", "tamper", "vandal"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_feedback_gives_hints_and_nothing_of_the_solution(hostile_00):
    root, report, out, again, merged = hostile_00
    tamper = (out / "feedback" / "tamper.md").read_text()
    assert "**0 / 4 points**" in tamper
    assert "| `float32_mib` | fail | 0 / 1 |" in tamper
    assert "you counted the numbers, not the bytes" in tamper
    assert "your instructor will look at this exercise" in tamper
    assert "reference" not in tamper  # the screen's reasons are the instructor's
    solution = "\n".join(solution_code("00_setup").values())
    body_lines = [ln.strip() for ln in solution.splitlines() if len(ln.strip()) > 25]
    for text in (out / "feedback").glob("*.md"):
        feedback = text.read_text()
        assert report["isolation"] in feedback
        assert not [ln for ln in body_lines if ln in feedback], text.name
        assert str(root) not in feedback  # no paths of the instructor's machine


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_a_second_run_grades_nothing_again(hostile_00):
    root, report, out, again, merged = hostile_00
    lines = [ln for ln in again.splitlines() if ln.startswith("[")]
    assert len(lines) == 5 and all(ln.endswith("(already graded)") for ln in lines), again
    assert _table(json.loads((out / "grades.json").read_text())) == _table(report)


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-00")
def test_shards_merge_into_the_same_report(hostile_00):
    root, report, out, again, merged = hostile_00
    shards = [json.loads((root / "shards" / f"shard-{k}-of-2" / "grades.json").read_text())
              for k in (1, 2)]
    names = [[s["student"] for s in shard["students"]] for shard in shards]
    assert names == [["crash", "loop", "vandal"], ["garbled", "tamper"]]
    assert _table(json.loads((merged / "grades.json").read_text())) == _table(report)
    assert (merged / "gradebook.csv").read_text() == (out / "gradebook.csv").read_text()
    from segkit_course.grading.batch import merge

    with pytest.raises(GradingInputError, match="overlap"):
        merge([root / "shards" / "shard-1-of-2", root / "shards" / "shard-1-of-2"],
              root / "twice")


# --------------------------------------------------------------------------- the terminal table


@pytest.mark.notebooks
@pytest.mark.xdist_group("graded")
def test_terminal_table_reads_well(graded):
    if "00_setup" not in graded:
        pytest.skip("lesson 00 is not written yet")
    lesson, results, expected = graded["00_setup"]
    text = format_table(lesson, results, details=False)
    assert text == """\
lesson 00_setup: 3 exercises, 4 points, 4 notebooks
{isolation}

student   float32_mib (1)  foreground_fraction (1)  list_pairs (2)  points
hostile   timeout          fail                     error              0/4
messy     fail             fail                     fail               0/4
solved    pass             pass                     pass               4/4
unsolved  not done         not done                 not done           0/4""".format(
        isolation=bwrap.detect().describe())
    details = format_table(lesson, results)
    assert "\nmessy (" in details
    assert "  float32_mib: fail: [forgot-bytes-per-value] you counted the numbers" in details
    assert "unsolved (" not in details  # nothing to say about stubs


# --------------------------------------------------------------------------- discovery


def test_exercises_come_from_the_solution():
    lesson = read_lesson(SOLUTIONS / "00_setup.ipynb")
    assert [(ex.name, ex.points) for ex in lesson.exercises] == [
        ("float32_mib", 1), ("foreground_fraction", 1), ("list_pairs", 2)]
    assert lesson.exercises[0].check_source == "checks.lesson00.check_float32_mib(float32_mib)"
    assert lesson.max_points == 4


def test_students_are_named_after_their_folder_or_file(tmp_path):
    nb = json.dumps(nbformat.v4.new_notebook())
    for rel in ["by-folder/alice/00_setup.ipynb", "by-folder/bob/00_setup-Copy1.ipynb",
                "flat/00_setup_carol.ipynb", "flat/dave.ipynb", "flat/01_data.ipynb",
                "by-folder/.ipynb_checkpoints/00_setup-checkpoint.ipynb"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(nb)
    lesson, subs, skipped = submissions_for([tmp_path / "by-folder"], solutions_dir=SOLUTIONS)
    assert lesson.name == "00_setup"
    assert [(s.student, s.path.name) for s in subs] == [("alice", "00_setup.ipynb"),
                                                        ("bob", "00_setup-Copy1.ipynb")]
    lesson, subs, skipped = submissions_for([tmp_path / "flat"], lesson="0",
                                            solutions_dir=SOLUTIONS)
    assert [s.student for s in subs] == ["carol", "dave"]
    assert [p.name for p in skipped] == ["01_data.ipynb"]
    lesson, subs, _ = submissions_for([str(tmp_path / "flat" / "00_*.ipynb")],
                                      solutions_dir=SOLUTIONS)
    assert [s.student for s in subs] == ["carol"]
    lesson, subs, _ = submissions_for([str(tmp_path / "by-folder" / "*" / "00_*.ipynb")],
                                      solutions_dir=SOLUTIONS)
    assert [s.student for s in subs] == ["alice", "bob"]
    with pytest.raises(GradingInputError, match="lessons 00, 01"):
        submissions_for([tmp_path / "flat" / "00_setup_carol.ipynb",
                         tmp_path / "flat" / "01_data.ipynb"], solutions_dir=SOLUTIONS)
    with pytest.raises(GradingInputError, match="cannot be told from its name"):
        submissions_for([tmp_path / "flat" / "dave.ipynb"], solutions_dir=SOLUTIONS)
    with pytest.raises(GradingInputError, match="no solution notebook for lesson '42'"):
        submissions_for([tmp_path / "flat"], lesson="42", solutions_dir=SOLUTIONS)


def test_grade_help_names_the_options(capsys):
    from segkit.cli import main

    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = capsys.readouterr().out
    for option in ["--lesson", "--out", "--jobs", "--cell-timeout", "--notebook-timeout",
                   "--check-timeout", "--solutions", "--isolation", "--shard", "--fresh",
                   "--threads", "--memory-gib"]:
        assert option in text


def test_one_submission_object_per_student():
    sub = Submission("alice", Path("a/00_setup.ipynb"))
    assert sub.student == "alice" and sub.path.name == "00_setup.ipynb"
