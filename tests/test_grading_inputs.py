"""What ``segkit grade`` does with what it is given, before and after any notebook runs:
hostile files, identities and logins, the folders it writes, shards, CSV cells, the
channel's caps, heavy cells, the stubbed segkit, the class's mistakes. Nothing here
starts a sandbox or a kernel: these run in a few seconds.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from notebook_helpers import SOLUTIONS
from segkit_course.grading import batch
from segkit_course.grading.channel import ChannelError, FrameReader, frame
from segkit_course.grading.discover import (
    Exercise,
    GradingInputError,
    Lesson,
    read_lesson,
    submissions_for,
)
from segkit_course.grading.execute import ExerciseResult, StudentResult, student_seed
from segkit_course.grading.notebook import (
    Cell,
    NotebookError,
    code_cells,
    heavy_cells,
    read_submission,
    run_plan,
)
from segkit_course.grading.csvfile import csv_cell
from segkit_course.grading.report import printable, write_reports

NOTEBOOK = json.dumps(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))


# --------------------------------------------------------------------------- hostile files


def test_a_link_is_never_followed(tmp_path):
    secret = SOLUTIONS / "04_metrics.ipynb"
    (tmp_path / "04_metrics.ipynb").symlink_to(secret)
    with pytest.raises(NotebookError, match="symbolic link"):
        read_submission(tmp_path / "04_metrics.ipynb")


def test_a_fifo_or_a_device_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    done: list = []
    reader = threading.Thread(target=lambda: done.append(_error(read_submission, fifo)),
                              daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert done and "FIFO" in done[0]  # no writer: a blocking open would hang forever
    (tmp_path / "zero.ipynb").symlink_to("/dev/zero")
    assert "symbolic link" in _error(read_submission, tmp_path / "zero.ipynb")
    assert "character device" in _error(read_submission, "/dev/zero")
    (tmp_path / "folder.ipynb").mkdir()
    assert "folder" in _error(read_submission, tmp_path / "folder.ipynb")


def test_a_notebook_is_read_up_to_its_cap(tmp_path):
    path = tmp_path / "big.ipynb"
    path.write_text(NOTEBOOK + " " * 5000)
    assert "more than the 1,000" in _error(read_submission, path, 1000)
    assert code_cells(read_submission(path))[0] == Cell(1, "x = 1")


def _error(function, *args) -> str:
    try:
        function(*args)
    except NotebookError as exc:
        return str(exc)
    return "no error"


@pytest.mark.parametrize("text, words", [
    ("{ not json", "not JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    ('{"cells": 3}', "no list of cells"),
    ("[1, 2]", "no list of cells"),
])
def test_what_is_not_a_notebook_says_so(text, words):
    with pytest.raises(NotebookError, match=words):
        code_cells(text.encode())


def test_cells_are_read_leniently():
    v3 = {"nbformat": 3, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "a = 1"}, {"cell_type": "markdown", "source": "x"},
        {"cell_type": "code", "input": ["b = ", "2"]}]}]}
    assert code_cells(json.dumps(v3).encode()) == [Cell(1, "a = 1"), Cell(3, "b = 2")]
    odd = {"cells": [{"cell_type": "code", "source": ["c", 3, " = 1"]}, "not a cell",
                     {"cell_type": "code", "source": None}]}
    assert code_cells(json.dumps(odd).encode()) == [Cell(1, "c = 1"), Cell(3, "")]


# --------------------------------------------------------------------------- heavy cells


def _tagged(source: str, instead: str | None = None):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["skip-when-grading"]
    if instead:
        cell.metadata["segkit"] = {"when_grading": instead}
    return cell


def test_the_instructors_heavy_cell_is_recognised_by_its_code():
    heavy = heavy_cells([_tagged("run = train(cfg, epochs=6)  # six epochs", "run = None"),
                         _tagged("%time slow()"), nbformat.v4.new_code_cell("fast()")])
    cells = [Cell(2, "run = train(cfg,\n            epochs=6)\n# a comment of my own"),
             Cell(3, "run = train(cfg, epochs=60)"),       # changed: it runs
             Cell(4, "%time slow()"), Cell(5, "fast()"),
             Cell(6, "def f(:\n  pass")]                   # does not parse: compared as text
    plan = {entry["index"]: entry["mode"] for entry in run_plan(cells, heavy, left_out={5})}
    assert plan == {2: "instead", 3: "run", 4: "skip", 5: "skip", 6: "run"}
    assert run_plan(cells[:1], heavy)[0]["instead"] == "run = None"


def test_lesson_04_skips_its_training_when_graded():
    lesson = read_lesson(SOLUTIONS / "04_metrics.ipynb")
    assert len(lesson.heavy) == 1 and "SimpleNamespace" in lesson.heavy[0][1]


# --------------------------------------------------------------------------- identities


def _class(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(NOTEBOOK)
    return root


def test_a_student_is_their_notebooks_exact_relative_path(tmp_path):
    root = _class(tmp_path / "sub", ["alice/04_metrics.ipynb", "04_metrics-alice.ipynb",
                                      "bob/04_metrics.ipynb", "bob/old/04_metrics.ipynb",
                                      "04_metrics_carol.ipynb", "04_metrics_carol (1).ipynb",
                                      "=2+3.ipynb", "05_multiclass.ipynb"])
    lesson, subs, skipped = submissions_for([root], lesson="04", solutions_dir=SOLUTIONS)
    assert [s.student for s in subs] == [
        "04_metrics-alice.ipynb", "04_metrics_carol (1).ipynb", "04_metrics_carol.ipynb",
        "=2+3.ipynb", "alice/04_metrics.ipynb", "bob/04_metrics.ipynb",
        "bob/old/04_metrics.ipynb"]
    assert [p.name for p in skipped] == ["05_multiclass.ipynb"]
    logins = {s.student: s.login for s in subs}
    assert logins["alice/04_metrics.ipynb"] == "alice"     # a file cannot take a folder's
    assert logins["04_metrics-alice.ipynb"] == "04_metrics-alice"
    assert logins["bob/04_metrics.ipynb"] == logins["bob/old/04_metrics.ipynb"] == ""
    assert "also claimed by bob/old/04_metrics.ipynb" in next(
        s.note for s in subs if s.student == "bob/04_metrics.ipynb")


def test_a_file_named_after_a_folder_does_not_take_its_login(tmp_path):
    root = _class(tmp_path / "sub", ["alice/04_metrics.ipynb", "alice.ipynb"])
    _, subs, _ = submissions_for([root], lesson="04", solutions_dir=SOLUTIONS)
    assert {s.student: s.login for s in subs} == {"alice/04_metrics.ipynb": "alice",
                                                  "alice.ipynb": ""}


def test_links_and_odd_files_are_rows_not_crashes(tmp_path):
    root = _class(tmp_path / "sub", ["alice/04_metrics.ipynb"])
    (root / "mallory").mkdir()
    (root / "mallory" / "04_metrics.ipynb").symlink_to(SOLUTIONS / "04_metrics.ipynb")
    (root / "eve").symlink_to(root / "alice")            # a linked folder is not entered
    os.mkfifo(root / "fifo.ipynb")
    _, subs, _ = submissions_for([root], lesson="04", solutions_dir=SOLUTIONS)
    problems = {s.student: s.problem for s in subs}
    assert set(problems) == {"alice/04_metrics.ipynb", "mallory/04_metrics.ipynb",
                             "fifo.ipynb"}
    assert problems["alice/04_metrics.ipynb"] is None
    assert "symbolic link" in problems["mallory/04_metrics.ipynb"]
    assert "FIFO" in problems["fifo.ipynb"]


def test_seeds_differ_by_student_exercise_and_run_and_are_wide():
    seeds = {student_seed(run, who, ex) for run in (1, 2) for who in ("a", "b")
             for ex in ("x", "y")}
    assert len(seeds) == 8 and max(seeds) > 2**50 and all(0 <= s < 2**62 for s in seeds)


# --------------------------------------------------------------------------- reports


LESSON = Lesson("04", "04_metrics", SOLUTIONS / "04_metrics.ipynb",
                (Exercise("dice_score", 2, ""), Exercise("iou_score", 1, "")))


def _result(student: str, dice: tuple, iou: tuple, login: str = "") -> StudentResult:
    make = lambda points, got: ExerciseResult(got[0], points if got[0] == "pass" else 0,  # noqa: E731
                                              points, *got[1:])
    return StudentResult(student, Path(student), {"dice_score": make(2, dice),
                                                  "iou_score": make(1, iou)},
                         ["-note"], 1.0, "isolation: off (test)", "d", login=login)


RESULTS = [
    _result("=2+3.ipynb", ("fail", "dice-no-factor-2", "+the 2 is missing"), ("pass",)),
    _result("@alice/04.ipynb", ("fail", "dice-no-factor-2", "the 2"), ("not done",), "@alice"),
    _result("bob/04.ipynb", ("pass",), ("fail", "iou-union-double-counts", "union")),
    _result("carol/04.ipynb", ("error", None, None, "crashed"), ("fail", None, "differs")),
]


def test_every_csv_cell_is_escaped_against_formulas(tmp_path):
    assert [csv_cell(v) for v in ("=1", "+1", "-1", "@x", "\tx", "\rx", "ok", 3, "ﬁ=")] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "ok", 3, "ﬁ="]
    write_reports(tmp_path, LESSON, RESULTS, {"seed": 1})
    for name in ("grades.csv", "gradebook.csv", "mistakes.csv"):
        with open(tmp_path / name, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
    grades = list(csv.DictReader(open(tmp_path / "grades.csv", newline="")))
    assert grades[0]["student"] == "'=2+3.ipynb" and grades[0]["notes"] == "'-note"
    assert grades[0]["dice_score hint"] == "'+the 2 is missing"


def test_mistakes_csv_says_what_to_teach_again(tmp_path):
    write_reports(tmp_path, LESSON, RESULTS)
    rows = list(csv.DictReader(open(tmp_path / "mistakes.csv", newline="")))
    table = [(r["exercise"], r["outcome"], r["students"]) for r in rows]
    assert table == [("dice_score", "dice-no-factor-2", "2"), ("dice_score", "error", "1"),
                     ("iou_score", "iou-union-double-counts", "1"), ("iou_score", "fail", "1"),
                     ("iou_score", "not done", "1")]
    first = rows[0]
    assert first["share"] == "0.5" and first["who"] == "'=2+3.ipynb; @alice/04.ipynb"
    assert first["hint"] == "'+the 2 is missing | the 2"
    assert "factor 2" in first["what goes wrong"]  # the catalogue's description
    assert (tmp_path / "mistakes.png").stat().st_size > 1000


def test_the_terminal_never_receives_control_characters():
    assert printable("alice\x1b[2J\nbob\t") == "alice\\x1b[2J\\nbob\\t"
    assert printable("zoë 04") == "zoë 04"


def test_exports_give_every_student_a_file_of_their_own(tmp_path):
    results = [_result(name, ("pass",), ("pass",)) for name in
               ("a/b.ipynb", "a__b.ipynb", "A/B.ipynb", "../x.ipynb")]
    write_reports(tmp_path, LESSON, results)
    assert len(list((tmp_path / "feedback").iterdir())) == 4
    assert len(list((tmp_path / "gradescope").iterdir())) == 4
    assert all(".." not in p.name for p in (tmp_path / "feedback").iterdir())


# --------------------------------------------------------------------------- folders, shards


def test_a_run_never_writes_into_another_runs_folder(tmp_path):
    first = batch.claim_folder(tmp_path / "grades")
    (first / "grades.csv").write_text("earlier")
    second = batch.claim_folder(tmp_path / "grades")
    (tmp_path / "empty").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    assert (first.name, second.name) == ("grades", "grades-2")
    assert batch.claim_folder(tmp_path / "empty").name == "empty"   # empty: claimed
    assert batch.claim_folder(tmp_path / "link").name == "link-2"    # never through a link
    assert (first / "grades.csv").read_text() == "earlier"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_runs_started_together_get_a_folder_each(tmp_path):
    got: list[Path] = []
    threads = [threading.Thread(target=lambda: got.append(batch.claim_folder(tmp_path / "g")))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 8


def _shard(root: Path, k: int, n: int, students: list[str], key: dict) -> Path:
    folder = batch.claim_folder(root / f"shard-{k}-of-{n}")
    results = [_result(s, ("pass",), ("pass",)) for s in students]
    write_reports(folder, LESSON, results, {"seed": k, "class": key, "shard": {"k": k, "n": n}})
    return folder


def test_merge_knows_every_shard_and_writes_beside_them(tmp_path):
    everyone = ["a", "b", "c", "d", "e"]
    key = batch.class_key([_sub(s) for s in everyone])
    shards = [_shard(tmp_path, k, 3, everyone[k - 1::3], key) for k in (1, 2, 3)]
    with pytest.raises(GradingInputError, match=r"shard\(s\) 2 of 3 missing"):
        batch.merge([shards[0], shards[2]], tmp_path / "all")
    with pytest.raises(GradingInputError, match="given twice"):
        batch.merge([*shards, shards[0]], tmp_path / "all")
    other = _shard(tmp_path / "other", 2, 3, ["b", "e", "z"], batch.class_key([_sub("z")]))
    with pytest.raises(GradingInputError, match="differ in the class"):
        batch.merge([shards[0], other, shards[2]], tmp_path / "all")
    before = (shards[0] / "grades.json").read_bytes()
    lesson, results, target = batch.merge(shards, shards[0])  # --out is a shard: not touched
    assert target.name == "shard-1-of-3-2" and (shards[0] / "grades.json").read_bytes() == before
    assert [r.student for r in results] == everyone
    assert not (tmp_path / "all").exists()


def test_shard_folders_are_their_own(tmp_path):
    from segkit_course.grading import _out_folder

    assert _out_folder(tmp_path / "o", LESSON, (2, 3)) == tmp_path / "o" / "shard-2-of-3"
    assert _out_folder(None, LESSON, None) == Path("grades") / "04_metrics"


def test_earlier_runs_caches_are_found(tmp_path):
    for name in ("g", "g-2", "g-x", "gg", "g/shard-1-of-2", "g-2/shard-2-of-2-2"):
        (tmp_path / name / "cache").mkdir(parents=True)
    mine = tmp_path / "g-3"
    found = [str(p.parent.relative_to(tmp_path)) for p in batch.earlier_caches(tmp_path / "g",
                                                                               mine)]
    assert found == ["g", "g/shard-1-of-2", "g-2", "g-2/shard-2-of-2-2"]
    shard = tmp_path / "g" / "shard-1-of-2"   # a shard run reads the whole family, not itself
    assert len(batch.earlier_caches(shard, shard)) == 3


def test_notebooks_given_one_by_one_are_named_by_their_path(tmp_path, monkeypatch):
    root = _class(tmp_path / "sub", ["a/04_metrics.ipynb", "b/04_metrics.ipynb"])
    monkeypatch.chdir(tmp_path)
    _, subs, _ = submissions_for([root / "a" / "04_metrics.ipynb", "sub/b/04_metrics.ipynb"],
                                 solutions_dir=SOLUTIONS)
    assert [(s.student, s.login) for s in subs] == [("sub/a/04_metrics.ipynb", "a"),
                                                    ("sub/b/04_metrics.ipynb", "b")]
    _, subs, _ = submissions_for([f"{root}/*/04_metrics.ipynb"], solutions_dir=SOLUTIONS)
    assert [s.login for s in subs] == ["a", "b"]


def _sub(name: str):
    from segkit_course.grading.discover import Submission

    return Submission(name, Path(name))


# --------------------------------------------------------------------------- the channel


def test_the_channel_caps_every_part(tmp_path):
    import io

    good = frame({"event": "answers"}, b"12345") + frame({"event": "done"})
    reader = FrameReader(io.BytesIO(good), max_payload=10)
    assert reader.read() == ({"event": "answers", "size": 5}, b"12345")
    assert reader.read() == ({"event": "done"}, b"") and reader.read() is None
    for bad, words in [(frame({"e": 1}, b"x" * 11), "payload of 11"),
                       (b"x" * 70_000, "more than 65536"), (b"[1]\n", "not a JSON object"),
                       (b'{"size": -1}\n', "not a count"), (b'{"size": 4}\nab', "cut short"),
                       (b"[" * 5000 + b"\n", "not JSON")]:
        with pytest.raises(ChannelError, match=words):
            FrameReader(io.BytesIO(bad), max_payload=10).read()


class _SandboxThatEnds:
    """A sandbox seen from the grader whose runner ended before it said it was ready."""

    def next_frame(self, deadline):
        from segkit_course.grading.session import ENDED

        return ENDED

    def stderr_tail(self) -> str:
        return "no message"


@pytest.mark.parametrize("ended", [True, False])
def test_a_sandbox_that_fails_before_any_cell_is_tried_again(ended, monkeypatch):
    """No cell of the student's ran: the failure is the machine's, so the notebook is
    graded again alone (its first row is not the grade)."""
    from types import SimpleNamespace

    from segkit_course.grading.execute import Limits, _NotebookGrading
    from segkit_course.grading.session import LATE

    run = SimpleNamespace(lesson=read_lesson(SOLUTIONS / "04_metrics.ipynb"),
                          limits=Limits(), seed=1)
    grading = _NotebookGrading(SimpleNamespace(student="ann/04_metrics.ipynb"), run, [])
    session = _SandboxThatEnds()
    if not ended:
        monkeypatch.setattr(session, "next_frame", lambda deadline: LATE)
    assert grading.ready(session, 0) is False
    assert grading.retry
    assert {r.status for r in grading.results.values()} == {"error"}
    assert all("not asked: the grading sandbox" in r.message
               for r in grading.results.values())


def test_the_process_tree_counts_every_descendant():
    from segkit_course.sandbox.procs import ProcessTree

    code = ("import os, time\n"
            "for _ in range(3):\n"
            "    if os.fork() == 0:\n"
            "        os.setsid()\n"
            "        end = time.time() + 1.5\n"
            "        while time.time() < end: pass\n"
            "        os._exit(0)\n"
            "time.sleep(2.5)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    import time

    time.sleep(1.2)
    tree = ProcessTree(proc.pid)
    count, cpu = tree.count(), tree.cpu_seconds()
    proc.wait()
    # three spinners in sessions of their own, still in the tree; the parent only sleeps
    # (its own CPU time is a few hundredths of a second), so the rest is theirs
    assert count == 4 and cpu > 0.25, (count, cpu)


# --------------------------------------------------------------------------- the stubbed segkit


@pytest.fixture(scope="module")
def stubbed(tmp_path_factory):
    from segkit_course.grading.context import lesson_checks
    from segkit_course.grading.stubbed import StubbedSegkit, judge_only

    checks = lesson_checks(read_lesson(SOLUTIONS / "04_metrics.ipynb"))
    module = "segkit.checks.lesson04"
    hidden = judge_only(module, [c.ask_student for c in checks.values()])
    copy = StubbedSegkit.build(tmp_path_factory.mktemp("stubbed") / "copy",
                               {n: c.references for n, c in checks.items()}, {module: hidden})
    yield copy, checks, hidden
    copy.remove()


def _in_copy(copy, code: str, tmp_path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(copy.root)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_sandboxes_segkit_lacks_the_lessons_answers(stubbed, tmp_path):
    copy, checks, hidden = stubbed
    assert {"_judge_overlap", "_overlap", "_draw_overlap", "reference_dice_score"} <= hidden
    assert "_ask" not in hidden   # what asking needs stays
    found = _in_copy(copy, """
import json, segkit, segkit.metrics as m
from segkit.checks import core, lesson04
out = {"file": segkit.__file__}
for name, call in [("dice_score", lambda: m.dice_score(None, None)),
                   ("dice_per_image", lambda: m.dice_per_image(None, None)),
                   ("reference", lambda: lesson04.reference_iou_score(None, None)),
                   ("helper", lambda: lesson04._overlap(None, None, "dice")),
                   ("draw", lambda: core.checks_of("04")["dice_score"].draw(1))]:
    try:
        call()
        out[name] = "ran"
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)
out["use"] = core.use("dice_score", "mine", "segkit's")
out["binarize"] = m.binarize.__module__
print(json.dumps(out))
""", tmp_path)
    assert found["file"].startswith(str(copy.root))
    for name in ("dice_score", "dice_per_image", "reference", "helper", "draw"):
        assert found[name].startswith("ReferenceUnavailable: segkit."), found[name]
        assert "is not available while grading" in found[name]
    assert found["use"] == "mine" and found["binarize"] == "segkit.metrics"


def test_stubs_keep_segkits_line_numbers(stubbed):
    import segkit

    copy = stubbed[0]
    real = Path(segkit.__file__).parent
    for name in ("metrics.py", "checks/lesson04.py", "checks/core.py"):
        assert len((copy.package / name).read_text().split("\n")) == len(
            (real / name).read_text().split("\n")), name


def test_asking_in_the_copy_and_judging_here_passes_the_solution(stubbed, tmp_path):
    from segkit.checks import answers
    from segkit_course.grading.judge import verdict_of

    copy, checks, _ = stubbed
    solution = next(c.source for c in nbformat.read(SOLUTIONS / "04_metrics.ipynb", 4).cells
                    if (c.metadata.get("segkit") or {}).get("exercise") == "dice_score")
    cases = checks["dice_score"].draw(123456789)
    (tmp_path / "cases.bin").write_bytes(answers.dump(cases))
    (tmp_path / "solution.py").write_text(solution)
    found = _in_copy(copy, """
import json, torch
from segkit.checks import answers, core
scope = {"torch": torch}
exec(open("solution.py").read(), scope)
cases = answers.load(open("cases.bin", "rb").read())
blob = answers.dump(core.checks_of("04")["dice_score"].ask(scope["dice_score"], cases))
open("answers.bin", "wb").write(blob)
print(json.dumps({"ok": True}))
""", tmp_path)
    assert found["ok"]
    got = answers.load((tmp_path / "answers.bin").read_bytes())
    assert verdict_of(checks["dice_score"], cases, got)["status"] == "pass"


def test_released_definitions_put_the_reference_back(stubbed, tmp_path):
    copy = stubbed[0]
    released = copy.release("dice_score")
    assert {d["name"] for d in released} == {"reference_dice_score", "dice_score",
                                             "dice_per_image"}
    (tmp_path / "released.json").write_text(json.dumps(released))
    found = _in_copy(copy, """
import importlib, json, torch
for item in json.load(open("released.json")):
    module = importlib.import_module(item["module"])
    exec(compile(item["source"], module.__file__, "exec"), vars(module))
import segkit.metrics as m
from segkit.checks import lesson04
logits = torch.tensor([[[[3.0, -3.0]]]]); target = torch.tensor([[[1, 0]]])
out = {"dice": m.dice_score(logits, target),
       "reference": lesson04.reference_dice_score(logits, target)}
try:
    m.iou_score(logits, target)
except Exception as exc:
    out["iou"] = type(exc).__name__
print(json.dumps(out))
""", tmp_path)
    assert found == {"dice": 1.0, "reference": 1.0, "iou": "ReferenceUnavailable"}
