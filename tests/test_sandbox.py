"""The grader's sandbox, its in-process guard and its screen, each on its own.

The sandbox tests run a few lines of Python in a bubblewrap sandbox, as ``segkit grade``
builds it (skipped where bubblewrap cannot work: the reason is printed): no network, no
other files, one writable place with a disk quota, memory and process caps. The screen
tests read every solution's exercises (nothing runs): the screen only flags.
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
from segkit_course.grading.execute import Limits
from segkit_course.grading.screen import screen
from segkit_course.sandbox import bwrap, guard

ISOLATION = bwrap.detect()
needs_bwrap = pytest.mark.skipif(not ISOLATION.on, reason=ISOLATION.describe())


def sandboxed(tmp_path: Path, code: str, limits: dict | None = None,
              binds: list | None = None) -> dict:
    """Run ``code`` in a sandbox as ``segkit grade`` builds it; it must set ``found``
    (a dict), which comes back."""
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
    sandbox = bwrap.SandboxLimits(**limits) if limits else bwrap.SandboxLimits()
    with ISOLATION.slot() as slot:
        argv = ISOLATION.command([sys.executable, "-c", program], env, slot,
                                 binds=binds or [], hidden=[SOLUTIONS], limits=sandbox)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
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
        for place in ["/etc/segkit-test", {str(bwrap.SEGKIT_PACKAGE / "x.py")!r}, "/tmp/x",
                      "/dev/x"]:
            try:
                open(place, "w")
                found[place] = "written"
            except OSError as error:
                found[place] = type(error).__name__
        pathlib.Path("mine.txt").write_text("mine")
        found["cwd"] = os.getcwd()
        """)
    assert found["network"] != "reached"
    assert (found["solutions"], found["segkit"], found["secret"]) == (False, True, False)
    bound = {p.parts[2] for p in bwrap.readable_paths() if Path("/tmp") in p.parents}
    assert set(found["tmp"]) - bound == {"work"}  # (bound: a Python under /tmp)
    assert found["processes"] <= 4  # its own: bubblewrap's init, the prologue, this Python
    assert [found[p] for p in found if p.startswith("/")] == ["OSError"] * 4
    assert found["cwd"] == "/tmp/work"
    assert list(tmp_path.iterdir()) == [tmp_path / "secret.txt"]  # nothing of it is here
    assert not Path("/etc/segkit-test").exists()


@needs_bwrap
def test_the_sandbox_has_a_disk_quota(tmp_path):
    if not ISOLATION.quota:
        pytest.skip(ISOLATION.describe())
    limits = {**vars(bwrap.SandboxLimits()), "disk_bytes": 8 * 2**20, "shm_bytes": 4 * 2**20}
    found = sandboxed(tmp_path, """
        import os
        for place in ["/tmp/work/fill", "/dev/shm/fill"]:
            written = 0
            try:
                with open(place, "wb") as f:
                    for _ in range(64):
                        f.write(b"0" * 2**20)
                        f.flush()
                        written += 1
            except OSError as error:
                found[place] = [written, error.errno]
        """, limits)
    import errno

    assert found["/tmp/work/fill"][1] == errno.ENOSPC and found["/tmp/work/fill"][0] <= 8
    assert found["/dev/shm/fill"][1] == errno.ENOSPC and found["/dev/shm/fill"][0] <= 4


@needs_bwrap
def test_a_folder_bound_on_segkits_path_is_what_the_sandbox_imports(tmp_path):
    fake = tmp_path / "fake" / "segkit"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("WHICH = 'the copy'\n")
    found = sandboxed(tmp_path, """
        import importlib
        found["which"] = getattr(importlib.import_module("segkit"), "WHICH", "the real one")
        """, binds=[(fake, str(bwrap.SEGKIT_PACKAGE))])
    assert found["which"] == "the copy"


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
    if ISOLATION.separate_users:  # (the cap counts the processes of the sandbox's user)
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


def test_a_tampered_guard_log_is_read_safely(tmp_path):
    os.mkfifo(tmp_path / "fifo.log")
    (tmp_path / "link.log").symlink_to("/dev/zero")
    (tmp_path / "ok.log").write_text('{"kind": "network", "what": "x:1"}\nnot json\n')
    assert guard.read_log(tmp_path / "ok.log") == [{"kind": "network", "what": "x:1"}]
    assert guard.read_log(tmp_path / "none.log") == []
    for name, words in [("fifo.log", "FIFO"), ("link.log", "symbolic link")]:
        entries = guard.read_log(tmp_path / name)  # returns at once: no hang, no read
        assert len(entries) == 1 and words in entries[0]["what"], entries


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
    assert screen("import segkit_course.grading.runner", dice) == [
        "imports `segkit_course.grading.runner` (the course's checks and tools)"]
    assert screen("x = (" * 50_000, dice) == []  # does not parse: nothing to say


def test_honest_habits_are_not_flagged():
    lesson = read_lesson(SOLUTIONS / "04_metrics.ipynb")
    dice = next(ex for ex in lesson.exercises if ex.name == "dice_score")
    honest = textwrap.dedent('''\
        import sys, json, functools
        checks = 3
        def dice_score(logits, target, threshold=0.5):
            """Like segkit's, see solutions/ of the course."""
            global calls
            sys.stdout.write(torch.__version__)
            return 1.0
        torch.sigmoid?
        ''')
    assert screen(honest, dice) == []


def test_the_cell_that_defines_an_exercise_is_screened():
    from segkit_course.grading.notebook import Cell
    from segkit_course.grading.screen import defining_cells

    cells = [Cell(1, "def dice_score(a, b):\n    raise NotImplementedError"),
             Cell(2, "print(dice_score(1, 2))"),
             Cell(3, "%timeit x\ndef dice_score(a, b):\n    return 1.0"),
             Cell(4, "dice_score = checks.use('dice_score', dice_score, reference)"),
             Cell(5, "iou_score = lambda a, b: 0.5")]
    found = defining_cells(cells, ["dice_score", "iou_score", "pixel_accuracy"])
    assert found == {"dice_score": cells[2].source, "iou_score": cells[4].source}


def test_limits_are_generous_and_count_cpu_time():
    limits = Limits()
    assert limits.threads == 1 and limits.memory_bytes >= 4 * 2**30
    assert limits.cell_cpu >= 120 and limits.ask_cpu >= 60
    assert limits.cell_wall >= 4 * limits.cell_cpu and limits.notebook_wall >= limits.notebook_cpu


@needs_bwrap
def test_two_gradings_on_one_machine_never_share_a_sandbox_user():
    if not ISOLATION.separate_users:
        pytest.skip("sandboxes run as users of their own only when graded as root")
    code = textwrap.dedent("""\
        import sys, time
        from segkit_course.sandbox import bwrap
        with bwrap.Isolation(True, "", True).slot() as slot:
            print(slot, flush=True)
            time.sleep(3)
        """)
    env = {**os.environ, "PYTHONPATH": str(bwrap.SEGKIT_PACKAGE.parent)}
    others = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               env=env) for _ in range(3)]
    with ISOLATION.slot() as mine:
        slots = [int(p.stdout.readline()) for p in others] + [mine]
    for p in others:
        p.wait()
    assert len(set(slots)) == 4, slots
