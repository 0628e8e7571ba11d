"""``segkit grade`` on notebooks the tests write: honest students, forgers, hostile files.

Every notebook runs whole in its sandbox, is asked questions drawn fresh, and is judged
outside (``segkit_course.grading``). The corpora are in :mod:`grading_corpus`; ``make
test`` grades their ``fast`` cases, ``make test-grading-corpus`` every case
(``SEGKIT_GRADING_CORPUS=full``). What is checked:

- honest work: every variant gets every point (whatever its cell layout, imports,
  helpers, callables, partials, decorators, prints, docstrings or names);
- attacks: every attacked exercise earns nothing, with a reason (a ``review`` is
  withheld and says why), and the rest of the notebook is graded as usual;
- each lesson whose checks ask (draw/ask/judge): the solution, the lesson as handed out
  and a catalogued mistake in every exercise give ``pass``, ``not done`` and ``fail``
  with the check's own mistake id and hint;
- a class of hostile files graded through the command line: the run finishes, every file
  is one row with a clear status, the student graded next to a fork bomb keeps every
  point, nothing outside is touched, CSV cells are escaped, no name takes another's;
- a second run goes to a folder of its own and grades nothing again; shards merge into
  the same table, and a missing shard is refused.

Lessons whose checks are not yet written as draw/ask/judge cannot be graded: their
cases are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import pytest

import grading_corpus as corpus
import grading_notebooks as nbs
from notebook_helpers import SOLUTIONS
from session_cache import once_per_session
from segkit_course.grading import grade_all
from segkit_course.grading.discover import GradingInputError, read_lesson, submissions_for
from segkit_course.grading.execute import Limits
from segkit_course.sandbox import bwrap

FULL = os.environ.get("SEGKIT_GRADING_CORPUS", "") == "full"
JOBS = 2
LIMITS = Limits(output_limit=4000)


def _chosen(cases: list) -> list:
    return [case for case in cases if FULL or case.fast]


def gradable(lesson: str) -> str | None:
    """None when the lesson's checks can ask; else why it cannot be graded yet."""
    from segkit_course.grading.context import lesson_checks

    try:
        lesson_checks(read_lesson(SOLUTIONS / f"{lesson}.ipynb"))
    except GradingInputError as exc:
        return str(exc)
    return None


def _grade_cases(root: Path, cases: list) -> dict:
    """{case name: StudentResult} and {lesson: why not gradable} for ``cases``."""
    results, skipped = {}, {}
    for lesson in sorted({case.lesson for case in cases}):
        why = gradable(lesson)
        if why:
            skipped[lesson] = why
            continue
        mine = [case for case in cases if case.lesson == lesson]
        for case in mine:
            nbs.write(root / lesson / case.name / f"{lesson}.ipynb", case.build())
        spec, subs, _ = submissions_for([root / lesson], solutions_dir=SOLUTIONS)
        graded = grade_all(subs, spec, LIMITS, jobs=JOBS)
        results.update({r.student.split("/")[0]: r for r in graded})
    return {"results": results, "skipped": skipped}


@pytest.fixture(scope="session")
def graded_corpus(tmp_path_factory, worker_id) -> dict:
    """Every notebook of the module's lessons, graded in one run per lesson (each run
    grades its solution first): the corpora, each lesson's class, the wrong block."""
    cases = (_chosen(corpus.honest_cases()) + _chosen(corpus.attack_cases())
             + lesson_cases() + [WRONG_BLOCK])
    return once_per_session(tmp_path_factory, worker_id, "graded-corpus",
                            lambda root: _grade_cases(root, cases))


def _result(graded: dict, case):
    if case.lesson in graded["skipped"]:
        pytest.skip(graded["skipped"][case.lesson])
    return graded["results"][case.name]


def _attacked(graded: dict, name: str, exercise: str):
    """The graded exercise of the attack case ``name``."""
    case = next(c for c in corpus.attack_cases() if c.name == name)
    return _result(graded, case).exercises[exercise]


# --------------------------------------------------------------------------- the corpora


@pytest.mark.notebooks
@pytest.mark.xdist_group("grading-corpus")
@pytest.mark.parametrize("case", _chosen(corpus.honest_cases()), ids=lambda c: c.name)
def test_honest_work_gets_every_point(graded_corpus, case):
    result = _result(graded_corpus, case)
    wrong = {name: (res.status, res.mistake, res.hint or res.message)
             for name, res in result.exercises.items() if res.status != "pass"}
    assert not wrong and result.points == result.max_points, (wrong, result.notes)


@pytest.mark.notebooks
@pytest.mark.xdist_group("grading-corpus")
@pytest.mark.parametrize("case", _chosen(corpus.attack_cases()), ids=lambda c: c.name)
def test_an_attack_earns_nothing_and_says_why(graded_corpus, case):
    result = _result(graded_corpus, case)
    for name in case.attacked:
        res = result.exercises[name]
        assert res.points == 0 and res.status != "pass", (case.route, res)
        assert (res.hint or res.message), (case.route, res)  # a reason, always
        if res.status == "review":  # withheld: the hint says what was tampered with
            assert res.hint.startswith("review: ") and (
                "tampered" in res.hint or "channel" in res.hint), res.hint


@pytest.mark.notebooks
@pytest.mark.xdist_group("grading-corpus")
def test_calling_segkits_answer_is_flagged_and_earns_nothing(graded_corpus):
    res = _attacked(graded_corpus, "attack-segkit-function", "dice_score")
    assert res.status == "error" and "not available while grading" in res.hint
    assert any("segkit's own version" in flag for flag in res.flags)


@pytest.mark.notebooks
@pytest.mark.xdist_group("grading-corpus")
def test_flags_never_cost_an_honest_student_a_point(graded_corpus):
    honest = {case.name for case in corpus.honest_cases()}
    flagged = [r for name, r in graded_corpus["results"].items() if r.flags and name in honest]
    assert all(r.points == r.max_points for r in flagged)


@pytest.mark.notebooks
@pytest.mark.xdist_group("grading-corpus")
def test_answers_written_to_the_channel_are_withheld(graded_corpus):
    res = _attacked(graded_corpus, "attack-second-answer", "pixel_accuracy")
    assert res.status == "review" and "a second answer to one question" in res.hint


WRONG_BLOCK = corpus.Case("02-wrong-block", corpus.LESSON_02, corpus.wrong_block_right_unet)


@pytest.mark.notebooks
@pytest.mark.xdist_group("grading-corpus")
def test_a_wrong_block_costs_only_its_own_points(graded_corpus):
    """The later exercises are asked with segkit's DoubleConv once the student's has
    been answered (and failed): an honest student loses only DoubleConv's points."""
    statuses = {name: (res.status, res.mistake) for name, res in
                _result(graded_corpus, WRONG_BLOCK).exercises.items()}
    assert statuses == {"DoubleConv": ("fail", "conv-no-padding"), "Down": ("pass", None),
                        "Up": ("pass", None), "UNet": ("pass", None)}


# --------------------------------------------------------------------------- each lesson


MISTAKES: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {
    "00_setup": [
        ("float32_mib", "forgot-bytes-per-value", [("values * 4 / 2**20", "values / 2**20")]),
        ("foreground_fraction", "counting-0-as-object",
         [("np.count_nonzero(mask)", "np.count_nonzero(mask == 0)")]),
        ("list_pairs", "wrong-mask-suffix",
         [('f"{image_path.stem}_mask.gif"', 'f"{image_path.stem}.gif"'),
          ("if mask_path.is_file():", "if True:")]),
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
         [("2 * inter / sizes.clamp(min=1)", "inter / sizes.clamp(min=1)")]),
        ("iou_score", "iou-union-double-counts",
         [("target.sum(dim=(1, 2)) - inter", "target.sum(dim=(1, 2))")]),
    ],
}
LESSONS = sorted(path.stem for path in SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


def lesson_cases() -> list:
    """For each lesson of MISTAKES: the solution, the lesson as handed out, and a
    catalogued mistake in every exercise."""
    cases = []
    for lesson in [name for name in LESSONS if name in MISTAKES]:
        wrong = {ex: edits for ex, _, edits in MISTAKES[lesson]}
        cases += [
            corpus.Case(f"{lesson[:2]}-solved", lesson, lambda l=lesson: nbs.solved(l)),
            corpus.Case(f"{lesson[:2]}-unsolved", lesson, lambda l=lesson: nbs.slim(l)),
            corpus.Case(f"{lesson[:2]}-mistaken", lesson, lambda l=lesson, w=wrong: (
                nbs.with_code(nbs.solved(l), {ex: nbs.mistaken(l, ex, e)
                                              for ex, e in w.items()})))]
    return cases


@pytest.mark.notebooks
@pytest.mark.xdist_group("grading-corpus")
@pytest.mark.parametrize("lesson", [name for name in LESSONS if name in MISTAKES])
def test_a_lessons_class_gets_the_checks_own_verdicts(graded_corpus, lesson):
    if lesson in graded_corpus["skipped"]:
        pytest.skip(graded_corpus["skipped"][lesson])
    spec = read_lesson(SOLUTIONS / f"{lesson}.ipynb")
    by = {kind: graded_corpus["results"][f"{lesson[:2]}-{kind}"]
          for kind in ("solved", "unsolved", "mistaken")}
    assert {n: r.status for n, r in by["solved"].exercises.items()} == {
        ex.name: "pass" for ex in spec.exercises}
    assert {r.status for r in by["unsolved"].exercises.values()} == {"not done"}
    mistaken = by["mistaken"].exercises
    assert {ex: (mistaken[ex].status, mistaken[ex].mistake) for ex, _, _ in MISTAKES[lesson]} \
        == {ex: ("fail", mistake) for ex, mistake, _ in MISTAKES[lesson]}
    for exercise, mistake, edits in MISTAKES[lesson]:
        assert mistaken[exercise].hint == _hint_in_class(lesson, exercise, edits,
                                                         mistaken[exercise].seed)
        if mistaken[exercise].repeat:  # on drawn cases (not the worked example)
            assert mistaken[exercise].repeat.endswith(f"seed={mistaken[exercise].seed})")


def _hint_in_class(lesson: str, exercise: str, edits, seed: int) -> str:
    """The hint the lesson's check cell gives for that code on the same seed."""
    import segkit
    from segkit import checks
    from segkit.checks.core import CheckFailed, checks_of

    scope = {"checks": checks, "segkit": segkit}
    exec(nbs.slim(lesson).cells[2].source, scope)
    exec(nbs.mistaken(lesson, exercise, edits), scope)
    try:
        checks_of(lesson[:2])[exercise](scope[exercise], seed=seed)
    except CheckFailed as failure:
        return failure.hint
    raise AssertionError(f"the check of {exercise} passed the mistake")


# --------------------------------------------------------------------------- a hostile class


HOSTILE_LIMITS = ["--notebook-timeout", "60", "--disk-mib", "64", "--output-limit", "4000"]


def _cli(*args: str) -> tuple[int, str, str]:
    """(exit status, what it printed, what it said on stderr)."""
    from segkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _hostile_run(root: Path) -> dict:
    expected = corpus.hostile_files(root / "submissions", SOLUTIONS)
    outside = root / "instructor"
    outside.mkdir()
    (outside / "keep.txt").write_text("grades of last year")
    code, printed, _ = _cli("grade", str(root / "submissions"), "--lesson", "04",
                            "--solutions", str(SOLUTIONS), "--jobs", str(JOBS), "--out",
                            str(root / "grades"), *HOSTILE_LIMITS)
    return {"root": root, "expected": expected, "code": code, "printed": printed,
            "report": json.loads((root / "grades" / "grades.json").read_text())}


@pytest.fixture(scope="session")
def hostile_class(tmp_path_factory, worker_id) -> dict:
    if gradable("04_metrics"):
        pytest.skip(gradable("04_metrics"))
    return once_per_session(tmp_path_factory, worker_id, "hostile-class", _hostile_run)


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-class")
def test_the_class_run_survives_every_hostile_file(hostile_class):
    report, expected = hostile_class["report"], hostile_class["expected"]
    assert hostile_class["code"] == 0
    rows = {s["student"]: s for s in report["students"]}
    assert set(rows) == set(expected)
    for student, says in expected.items():
        row = rows[student]
        if "/" in says and says[0].isdigit():
            assert f"{row['points']}/{row['max_points']}" == says, (student, row)
        else:
            assert row["points"] == 0 and all(e["status"] == "error"
                                              for e in row["exercises"].values())
            assert says in " ".join(row["notes"]), (student, row["notes"])


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-class")
def test_hostile_cells_are_left_out_and_said(hostile_class):
    notes = {s["student"]: " ".join(s["notes"]) for s in hostile_class["report"]["students"]}
    assert "cell 4 used up the notebook's 60 CPU-seconds: it was left out" in notes[
        "bomber/04_metrics.ipynb"]
    assert "1 process(es) the notebook started were still running when the notebook " \
           "ended, and were stopped" in notes["sleeper/04_metrics.ipynb"]
    assert "ended Python" in notes["exit-cell/04_metrics.ipynb"]
    assert "MemoryError" in notes["memory-bomb/04_metrics.ipynb"]
    assert notes["bomber-neighbour/04_metrics.ipynb"] == ""  # graded beside the bomb


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-class")
def test_nothing_outside_a_sandbox_is_touched(hostile_class):
    root = hostile_class["root"]
    assert (root / "instructor" / "keep.txt").read_text() == "grades of last year"
    assert not list(root.rglob("ballast.bin"))
    assert (SOLUTIONS / "04_metrics.ipynb").is_file()


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-class")
def test_no_file_name_takes_anothers_place(hostile_class):
    root = hostile_class["root"]
    rows = {s["student"]: s for s in hostile_class["report"]["students"]}
    assert rows["alice/04_metrics.ipynb"]["login"] == "alice"
    assert rows["04_metrics-alice.ipynb"]["login"] == "04_metrics-alice"
    with open(root / "grades" / "gradebook.csv", newline="") as f:
        book = list(csv.reader(f))
    logins = [row[3] for row in book[2:]]
    assert logins.count("alice") == 1
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in book for cell in row)
    assert "'=HYPERLINK(1)+2.ipynb" in [row[0] for row in book]
    assert "\x1b" not in hostile_class["printed"] and "red\\x1b[31m.ipynb" in \
        hostile_class["printed"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("hostile-class")
def test_the_report_says_how_it_was_isolated(hostile_class):
    report = hostile_class["report"]
    assert report["isolation"] == bwrap.detect().describe()
    assert isinstance(report["seed"], int) and report["class"]["count"] == 18
    assert (hostile_class["root"] / "grades" / "mistakes.png").is_file()


# --------------------------------------------------------------------------- again, shards


def _small_class(root: Path) -> dict:
    sub = root / "submissions"
    nbs.write(sub / "ann" / "04_metrics.ipynb", nbs.solved("04_metrics"))
    nbs.write(sub / "ben" / "04_metrics.ipynb", nbs.slim("04_metrics"))
    nbs.write(sub / "cy" / "04_metrics.ipynb", nbs.with_code(nbs.solved("04_metrics"), {
        "dice_score": nbs.mistaken("04_metrics", *MISTAKES["04_metrics"][1][::2])}))
    args = ["grade", str(sub), "--lesson", "04", "--solutions", str(SOLUTIONS), "--jobs",
            str(JOBS), "--out", str(root / "grades")]
    first = _cli(*args)
    again = _cli(*args)
    shards = [_cli(*args, "--shard", f"{k}/2") for k in (1, 2)]
    shard_dirs = [root / "grades" / f"shard-{k}-of-2" for k in (1, 2)]
    missing = _cli("grade-merge", str(shard_dirs[0]), "--out", str(root / "merged"))
    merged = _cli("grade-merge", *map(str, shard_dirs), "--out", str(shard_dirs[0]))
    return {"root": root, "first": first, "again": again, "shards": shards,
            "missing": missing, "merged": merged}


@pytest.fixture(scope="session")
def small_class(tmp_path_factory, worker_id) -> dict:
    if gradable("04_metrics"):
        pytest.skip(gradable("04_metrics"))
    return once_per_session(tmp_path_factory, worker_id, "small-class", _small_class)


def _table(folder: Path) -> dict:
    report = json.loads((folder / "grades.json").read_text())
    return {s["student"]: {n: e["status"] for n, e in s["exercises"].items()}
            for s in report["students"]}


@pytest.mark.notebooks
@pytest.mark.xdist_group("small-class")
def test_a_second_run_writes_beside_the_first_and_grades_nothing_again(small_class):
    root = small_class["root"]
    assert small_class["again"][0] == 0
    printed = small_class["again"][1]
    assert f"{root / 'grades'} holds an earlier grading: this one goes to " \
           f"{root / 'grades-2'}" in printed
    lines = [line for line in printed.splitlines() if line.startswith("[")]
    assert len(lines) == 3 and all(line.endswith("(already graded)") for line in lines)
    assert _table(root / "grades-2") == _table(root / "grades")
    assert _table(root / "grades")["cy/04_metrics.ipynb"]["dice_score"] == "fail"


@pytest.mark.notebooks
@pytest.mark.xdist_group("small-class")
def test_shards_write_their_own_folder_and_merge_into_one(small_class):
    root = small_class["root"]
    first = [json.loads((root / "grades" / f"shard-{k}-of-2" / "grades.json").read_text())
             for k in (1, 2)]
    assert [[s["student"] for s in shard["students"]] for shard in first] == [
        ["ann/04_metrics.ipynb", "cy/04_metrics.ipynb"], ["ben/04_metrics.ipynb"]]
    code, _, said = small_class["missing"]
    assert code == 1 and "shard(s) 2 of 2 missing: give every shard-K-of-2 folder" in said
    assert not (root / "merged").exists()
    assert "into " + str(root / "grades" / "shard-1-of-2-2") in small_class["merged"][1]
    assert _table(root / "grades" / "shard-1-of-2-2") == _table(root / "grades")
    assert len(_table(root / "grades" / "shard-1-of-2")) == 2  # the shard is untouched


@pytest.mark.notebooks
@pytest.mark.xdist_group("small-class")
def test_feedback_gives_hints_and_nothing_of_the_solution(small_class):
    root = small_class["root"]
    feedback = (root / "grades" / "feedback" / "cy__04_metrics.ipynb.md").read_text()
    assert "**3 / 5 points**" in feedback and "| `dice_score` | fail | 0 / 2 |" in feedback
    dice = json.loads((root / "grades" / "grades.json").read_text())["students"][2][
        "exercises"]["dice_score"]
    assert f"{dice['message']}. Hint: [dice-no-factor-2]" in " ".join(feedback.split())
    if dice["repeat"]:  # failed on drawn cases: how to see them in the notebook
        assert dice["repeat"] in feedback
    solution = "\n".join(nbs.solution_code("04_metrics").values())
    for line in [ln.strip() for ln in solution.splitlines() if len(ln.strip()) > 25]:
        assert line not in feedback
    assert str(root) not in feedback


@pytest.mark.notebooks
@pytest.mark.xdist_group("small-class")
def test_gradescope_and_gradebook_files(small_class):
    root = small_class["root"]
    cy = json.loads((root / "grades" / "gradescope" / "cy__04_metrics.ipynb" /
                     "results.json").read_text())
    assert cy["score"] == 3 and [(t["name"], t["score"], t["status"]) for t in cy["tests"]] \
        == [("pixel_accuracy", 1, "passed"), ("dice_score", 0, "failed"),
            ("iou_score", 2, "passed")]
    with open(root / "grades" / "gradebook.csv", newline="") as f:
        rows = list(csv.reader(f))
    column = "04_metrics" + ("" if bwrap.detect().on else " [isolation: off]")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]
    assert rows[1] == ["Points Possible", "", "", "", "", "5"]
    assert rows[2:] == [["ann/04_metrics.ipynb", "", "", "ann", "", "5"],
                        ["ben/04_metrics.ipynb", "", "", "ben", "", "0"],
                        ["cy/04_metrics.ipynb", "", "", "cy", "", "3"]]


def test_grade_help_names_the_options(capsys):
    from segkit.cli import main

    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = capsys.readouterr().out
    for option in ["--lesson", "--out", "--jobs", "--cell-timeout", "--notebook-timeout",
                   "--check-timeout", "--solutions", "--isolation", "--shard", "--fresh",
                   "--threads", "--memory-gib", "--disk-mib", "--seed"]:
        assert option in text
