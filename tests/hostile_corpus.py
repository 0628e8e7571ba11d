"""Lesson-04 notebooks written by a hostile student, one attack (or three) each, and the
grade each must get. ``tests/test_grading.py`` grades them with the other classes.

Every notebook starts from the solved lesson (so an honest grade is known) and puts
its attack where the grader runs code: in an exercise cell, at its top level or in
the function the check calls. Attacks of the first kind are caught by the screen
(``review``: 0 points, not run); the others run, and must gain nothing:

- ``connection-reader``: kernel connection files in /tmp, other processes' command
  lines in /proc, zmq; replacing ``importlib.import_module``; editing the grader's
  modules in ``sys.modules``;
- ``forger``: patching ``json.dumps``; an IPython ``pre_run_cell`` hook; reading the
  nonce from the caller's frame;
- ``solution-reader``: a wrapper around ``checks.lesson04.reference_*``; reading
  ``solutions/04_metrics.ipynb`` next to ``segkit.__file__``; segkit's own ``iou_score``;
- ``escaper``: ``torch.save`` and ``sqlite3.connect`` outside; a ``./uname`` program of
  its own; ``_posixsubprocess.fork_exec``;
- ``big-alloc`` (runs): 6 GiB in ``dice_score`` -> the memory cap -> ``error``;
- ``monkeypatcher`` (runs, slips past the screen): replaces the checks, ``run_check``,
  ``torch.allclose`` and ``math.isclose`` through ``import segkit as s`` -> undone
  before each check, the two mistakes ``fail``;
- ``channel-forger`` (runs): writes forged result lines to every file descriptor ->
  ignored (no nonce), the mistake ``fail``s;
- ``neighbour`` (runs, graded next to ``victim``): looks for other students'
  sandboxes, processes and notebooks, and writes into them; its ``dice_score`` is only
  right if it found any -> ``fail``, and ``victim`` keeps 5/5.
"""

from __future__ import annotations

import textwrap

SCREENED = ["connection-reader", "forger", "solution-reader", "escaper"]
RUNS = ["big-alloc", "monkeypatcher", "channel-forger", "neighbour", "victim"]

# exercise -> attack code put in front of the solution's cell (top level), or
# "body:" + code put at the start of the function's body
ATTACKS: dict[str, dict[str, str]] = {
    "connection-reader": {
        "pixel_accuracy": "body:" + textwrap.dedent('''\
            import glob, json
            for path in glob.glob("/tmp/*.json") + glob.glob("/proc/*/cmdline"):
                try:
                    info = json.load(open(path))
                    import zmq
                    zmq.Context().socket(zmq.DEALER).connect(f"tcp://127.0.0.1:{info['shell_port']}")
                except Exception:
                    pass'''),
        "dice_score": textwrap.dedent('''\
            import importlib
            _real_import = importlib.import_module
            def _fake_import(name, package=None):
                module = _real_import(name, package)
                if name.endswith("inkernel") or name.endswith("checker"):
                    module.check_exercise = lambda **kw: print("pass")
                return module
            importlib.import_module = _fake_import'''),
        "iou_score": textwrap.dedent('''\
            import sys
            def _patch():
                for name, module in list(sys.modules.items()):
                    if name.startswith("segkit.checks") or "grader" in name:
                        for attribute in dir(module):
                            if attribute.startswith("check_"):
                                setattr(module, attribute, lambda *a, **k: None)
            _patched = _patch()'''),
    },
    "forger": {
        "pixel_accuracy": textwrap.dedent('''\
            import json
            _dumps = json.dumps
            json.dumps = lambda obj, *a, **k: _dumps({**obj, "status": "pass"}) if isinstance(obj, dict) else _dumps(obj, *a, **k)'''),
        "dice_score": textwrap.dedent('''\
            def _steal(info):
                print("SEGKIT-GRADE-RESULT", info.raw_cell.split()[2], '{"status": "pass"}')
            _hooked = get_ipython().events.register("pre_run_cell", _steal)'''),
        "iou_score": "body:" + textwrap.dedent('''\
            import sys
            caller = sys._getframe(1)
            nonce = caller.f_back.f_locals.get("nonce")
            print(nonce, '{"exercise": "iou_score", "status": "pass"}')'''),
    },
    "solution-reader": {
        "pixel_accuracy": "body:return checks.lesson04.reference_pixel_accuracy(logits, target)",
        "dice_score": "body:" + textwrap.dedent('''\
            import json, pathlib, segkit
            solution = pathlib.Path(segkit.__file__).parents[1] / "solutions" / "04_metrics.ipynb"
            cells = json.loads(solution.read_text())["cells"]
            scope = {}
            exec("".join(next(c["source"] for c in cells if "def dice_score" in "".join(c["source"]))), scope)
            return scope["dice_score"](logits, target, threshold)'''),
        "iou_score": "body:return segkit.metrics.iou_score(logits, target, threshold)",
    },
    "escaper": {
        "pixel_accuracy": textwrap.dedent('''\
            import sqlite3, torch
            _saved = torch.save({"x": 1}, "/root/escaped.pt")
            _db = sqlite3.connect("/root/escaped.db").execute("create table t (x)")'''),
        "dice_score": textwrap.dedent('''\
            import os, subprocess
            def _escape():
                with open("uname", "w") as f:
                    f.write("#!/bin/sh\\necho escaped > /root/escaped.txt\\n")
                os.chmod("uname", 0o755)
                return subprocess.run(["./uname"])
            _escaped = _escape()'''),
        "iou_score": textwrap.dedent('''\
            import _posixsubprocess, os
            _pid = _posixsubprocess.fork_exec(
                [b"/bin/sh", b"-c", b"echo escaped > /root/escaped.txt"], [b"/bin/sh"], True,
                (), None, None, -1, -1, -1, -1, -1, -1, *os.pipe(), False, False, -1, None,
                None, None, -1, None, False)'''),
    },
    "big-alloc": {
        "dice_score": "body:_ballast = bytearray(6 * 2**30)  # beyond the 4 GiB cap",
    },
    "monkeypatcher": {
        "pixel_accuracy": textwrap.dedent('''\
            import math
            import segkit as s
            import torch
            s.checks.lesson04.check_pixel_accuracy = lambda f: None
            s.checks.lesson04.check_iou_score = lambda f: None
            s.checks.core.run_check = lambda exercise, title, body: None
            torch.allclose = lambda *args, **kwargs: True
            math.isclose = lambda *args, **kwargs: True'''),
    },
    "channel-forger": {
        "dice_score": textwrap.dedent('''\
            def _forge():
                names = ["pixel_accuracy", "dice_score", "iou_score"]
                lines = "".join(f'0123456789abcdef0123456789abcdef {{"exercise": "{n}", '
                                f'"status": "pass"}}\\n' for n in names)
                for fd in range(3, 40):
                    try:
                        with open(f"/dev/fd/{fd}", "w") as out:
                            out.write(lines)
                    except OSError:
                        pass
                print(lines)
            _forged = _forge()'''),
    },
    "neighbour": {
        "dice_score": "body:" + textwrap.dedent('''\
            import pathlib
            homes = set()
            for cmdline in pathlib.Path("/", "proc").glob("*/cmdline"):
                try:
                    text = cmdline.read_bytes().decode(errors="replace")
                except OSError:
                    continue
                homes |= {part for part in text.split("\\0") if "-grade-" in part}
            found = [p for p in pathlib.Path("/", "tmp").glob("*grade*/work") if p.is_dir()]
            notebooks = list(pathlib.Path("/", "tmp").glob("*/*/*/*/*.ipy" + "nb"))
            for folder in found:
                try:
                    (folder / "planted.txt").write_text("from a neighbour")
                except OSError:
                    pass
            if len(homes) < 2 and not found and not notebooks:
                return -1.0  # found nobody: a wrong answer'''),
    },
    "victim": {},
}

# the mistakes some notebooks carry besides their attack (see MISTAKES in test_grading)
WITH_MISTAKES = {"monkeypatcher": ["pixel_accuracy", "iou_score"], "channel-forger": ["dice_score"]}

EXPECTED = {
    "connection-reader": ({"pixel_accuracy": "review", "dice_score": "review",
                           "iou_score": "review"}, "0/5"),
    "forger": ({"pixel_accuracy": "review", "dice_score": "review", "iou_score": "review"},
               "0/5"),
    "solution-reader": ({"pixel_accuracy": "review", "dice_score": "review",
                         "iou_score": "review"}, "0/5"),
    "escaper": ({"pixel_accuracy": "review", "dice_score": "review", "iou_score": "review"},
                "0/5"),
    "big-alloc": ({"pixel_accuracy": "pass", "dice_score": "error", "iou_score": "pass"}, "3/5"),
    "monkeypatcher": ({"pixel_accuracy": "fail:accuracy-integer-division", "dice_score": "pass",
                       "iou_score": "fail:iou-union-double-counts"}, "2/5"),
    "channel-forger": ({"pixel_accuracy": "pass", "dice_score": "fail:dice-no-factor-2",
                        "iou_score": "pass"}, "3/5"),
    "neighbour": ({"pixel_accuracy": "pass", "dice_score": "fail", "iou_score": "pass"},
                  "3/5"),
    "victim": ({"pixel_accuracy": "pass", "dice_score": "pass", "iou_score": "pass"}, "5/5"),
}

# a few words of the screen's reason each attack must be flagged with
REASONS = {
    "connection-reader": {"pixel_accuracy": ["imports `json`", "mentions '/proc'",
                                             "mentions '/tmp/'", "imports `zmq`"],
                          "dice_score": ["imports `importlib`"],
                          "iou_score": ["imports `sys`", "uses `sys.modules`"]},
    "forger": {"pixel_accuracy": ["imports `json`"],
               "dice_score": ["uses `get_ipython`", "uses `.events`"],
               "iou_score": ["uses `sys._getframe`", "f_locals`"]},
    "solution-reader": {"pixel_accuracy": ["reference solution"],
                        "dice_score": ["uses `__file__`", "mentions 'solutions'"],
                        "iou_score": ["segkit.metrics.iou_score"]},
    "escaper": {"pixel_accuracy": ["uses `torch.save`", "imports `sqlite3`"],
                "dice_score": ["imports `subprocess`"],
                "iou_score": ["imports `_posixsubprocess`", "fork_exec"]},
}


def with_attack(source: str, attack: str) -> str:
    """The exercise cell ``source`` with ``attack`` before it, or first in its body."""
    if not attack.startswith("body:"):
        return attack + "\n" + source
    lines = source.split("\n")
    at = next(i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line)
    indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
    body = textwrap.indent(attack[len("body:"):], indent)
    return "\n".join(lines[:at + 1] + [body] + lines[at + 1:])
