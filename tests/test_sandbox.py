"""The grader's sandbox, its in-process guard and its screen, each on its own.

The sandbox tests run a few lines of Python in a bubblewrap sandbox, as ``segkit grade``
builds it (skipped where bubblewrap cannot work: the reason is printed). The screen
tests read every solution's exercises (nothing runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from notebook_helpers import SOLUTIONS
from segkit_course.build import exercise_name
from segkit_course.grading.discover import read_lesson
from segkit_course.grading.execute import Limits, exercise_cells
from segkit_course.grading.screen import screen
from segkit_course.sandbox import bwrap, guard

ISOLATION = bwrap.detect()
needs_bwrap = pytest.mark.skipif(not ISOLATION.on, reason=ISOLATION.describe())


def sandboxed(tmp_path: Path, code: str, limits: dict | None = None) -> dict:
    """Run ``code`` in a sandbox whose work folder is ``tmp_path/work``; it must set
    ``found`` (a dict), which comes back."""
    work = tmp_path / "work"
    work.mkdir()
    program = textwrap.dedent("""\
        import json, sys
        from segkit_course.sandbox import bwrap
        bwrap.apply_limits({limits!r}, processes={processes!r})
        found = {{}}
        {code}
        print(json.dumps(found))
        """).format(limits=limits or vars(bwrap.SandboxLimits()),
                    processes=ISOLATION.separate_users,
                    code=textwrap.dedent(code))
    env = {"PATH": "/usr/bin:/bin", "HOME": bwrap.SANDBOX_HOME,
           "PYTHONPATH": str(bwrap.SEGKIT_PACKAGE.parent)}
    with ISOLATION.slot() as slot:
        ISOLATION.prepare(work, slot)
        argv = ISOLATION.command([sys.executable, "-c", program], work, slot, env,
                                 hidden=[SOLUTIONS])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_bwrap
def test_the_sandbox_sees_no_network_no_solutions_and_no_other_files(tmp_path):
    (tmp_path / "secret.txt").write_text("another student's notebook")
    found = sandboxed(tmp_path, f"""
        import os, socket, pathlib
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=2)
            found["network"] = "reached"
        except OSError as error:
            found["network"] = type(error).__name__
        found["solutions"] = os.path.exists({str(SOLUTIONS)!r})
        found["segkit"] = os.path.isdir({str(bwrap.SEGKIT_PACKAGE)!r})
        found["secret"] = os.path.exists({str(tmp_path / "secret.txt")!r})
        found["tmp"] = sorted(os.listdir("/tmp"))
        found["processes"] = len([p for p in os.listdir("/proc") if p.isdigit()])
        for place in ["/etc/segkit-test", {str(bwrap.SEGKIT_PACKAGE / "x.py")!r}]:
            try:
                open(place, "w")
                found[place] = "written"
            except OSError as error:
                found[place] = type(error).__name__
        pathlib.Path("mine.txt").write_text("mine")
        found["home"] = os.environ["HOME"]
        """)
    assert found["network"] != "reached"
    assert (found["solutions"], found["segkit"], found["secret"]) == (False, True, False)
    bound = {p.parts[2] for p in bwrap.readable_paths() if Path("/tmp") in p.parents}
    assert set(found["tmp"]) - bound == {"home", "work"}  # (bound: a Python under /tmp)
    assert found["processes"] <= 3  # its own: bubblewrap's init and this Python
    assert [found[p] for p in found if p.startswith("/")] == ["OSError", "OSError"]
    assert (tmp_path / "work" / "mine.txt").read_text() == "mine"
    assert not Path("/etc/segkit-test").exists()


@needs_bwrap
def test_the_sandbox_caps_memory_and_processes(tmp_path):
    limits = {**vars(bwrap.SandboxLimits()), "memory_bytes": 2**30, "processes": 16}
    found = sandboxed(tmp_path, """
        try:
            ballast = bytearray(3 * 2**30)
            found["memory"] = "allocated"
        except MemoryError:
            found["memory"] = "MemoryError"
        import os
        children = []
        try:
            for _ in range(64):
                pid = os.fork()
                if pid == 0:
                    import time
                    time.sleep(5)
                    os._exit(0)
                children.append(pid)
            found["processes"] = len(children)
        except OSError as error:
            found["processes"] = f"stopped after {len(children)}"
        for pid in children:
            os.kill(pid, 9)
        """, limits)
    assert found["memory"] == "MemoryError"
    if ISOLATION.separate_users:
        assert str(found["processes"]).startswith("stopped after")


def test_isolation_off_says_so_in_one_line():
    off = bwrap.detect("off")
    assert not off.on and off.describe() == "isolation: off (turned off with --isolation off)"
    assert ISOLATION.describe().startswith(("isolation: bubblewrap (", "isolation: off ("))


def test_the_guard_refuses_a_program_of_the_same_name_as_a_harmless_one(tmp_path):
    (tmp_path / "uname").write_text("#!/bin/sh\necho mine\n")
    (tmp_path / "uname").chmod(0o755)
    assert guard._is_harmless_program("uname")
    assert not guard._is_harmless_program("./uname", cwd=tmp_path)
    assert not guard._is_harmless_program(str(tmp_path / "uname"))


def test_the_guard_refuses_sqlite_files_outside(tmp_path):
    code = textwrap.dedent(f"""\
        import sqlite3, sys
        from segkit_course.sandbox import guard
        guard.install(write_root={str(tmp_path)!r})
        sqlite3.connect({str(tmp_path / "work" / "fine.db")!r})
        try:
            sqlite3.connect({str(tmp_path.parent / "outside.db")!r})
        except PermissionError:
            print("refused")
        """)
    (tmp_path / "work").mkdir()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(bwrap.SEGKIT_PACKAGE.parent)})
    assert done.stdout.strip() == "refused", done.stderr
    assert not (tmp_path.parent / "outside.db").exists()


# --------------------------------------------------------------------------- the screen


def test_no_solution_is_flagged():
    for path in sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")):
        lesson = read_lesson(path)
        by_name = {ex.name: ex for ex in lesson.exercises}
        for cell in nbformat.read(path, as_version=4).cells:
            if exercise_name(cell):
                assert screen(cell.source, by_name[exercise_name(cell)]) == [], (path.name,
                                                                                 cell.source)


def test_the_screen_names_what_it_found():
    lesson = read_lesson(SOLUTIONS / "04_metrics.ipynb")
    dice = next(ex for ex in lesson.exercises if ex.name == "dice_score")
    assert screen("import importlib.util as u\nfrom builtins import print", dice) == [
        "imports `importlib.util`", "imports `builtins`"]
    assert screen("def dice_score(a, b):\n    return getattr(a, 'x' + 'y')", dice) == [
        "calls `getattr` with a computed attribute name"]
    assert screen("from segkit.metrics import dice_score", dice) == [
        "imports segkit's own `dice_score` from `segkit.metrics`"]
    assert screen("def dice_score(a, b):\n    return (a * b).sum() / a.__len__()", dice) == []
    assert screen("import segkit_course.grading.checker", dice) == [
        "imports `segkit_course.grading.checker` (the course's checks and tools)"]


def test_the_last_cell_that_defines_an_exercise_is_graded():
    cells = [(1, "def dice_score(a, b):\n    raise NotImplementedError"),
             (2, "print(dice_score(1, 2))"),
             (3, "%timeit x\ndef dice_score(a, b):\n    return 1.0"),
             (4, "dice_score = checks.use('dice_score', dice_score, reference)"),
             (5, "iou_score = lambda a, b: 0.5")]
    found = exercise_cells(cells, ["dice_score", "iou_score", "pixel_accuracy"])
    assert {name: position for name, (position, _) in found.items()} == {
        "dice_score": 3, "iou_score": 5}


def test_limits_are_generous_by_default():
    limits = Limits()
    assert limits.threads == 1 and limits.memory_bytes >= 4 * 2**30
    assert limits.cell_timeout >= 120 and limits.check_timeout >= 60
