"""The grader's side of a check, run inside the student's kernel after their cells.

The grader (:mod:`segkit.grading.execute`) sends, for each exercise, a few lines that
first drop every ``segkit`` module from ``sys.modules`` and then import this module
and ``segkit.checks`` again, from disk. Whatever the notebook did to them (a
redefined ``check_dice_score``, a silenced ``run_check``) is gone. Then
:func:`check_exercise` calls the lesson's check, exactly as the solution's check cell
does, on the notebook's own version of the exercise, and writes one line::

    <marker> {"exercise": "dice_score", "status": "fail", "mistake": "...", ...}

where the marker holds a random nonce the notebook cannot know, so a notebook that
prints such a line itself does not fool the grader.
"""

from __future__ import annotations

import json
import sys

RESULT_PREFIX = "SEGKIT-GRADE-RESULT"


def marker(nonce: str) -> str:
    return f"{RESULT_PREFIX} {nonce} "


def snippet(exercise: str, check_source: str, nonce: str) -> str:
    """The code the grader runs in the kernel to check ``exercise`` (prints one line)."""
    args = json.dumps({"exercise": exercise, "source": check_source, "nonce": nonce})
    return (
        "def _segkit_grade():\n"
        "    import importlib, json, sys\n"
        "    for name in list(sys.modules):\n"
        "        if name == 'segkit' or name.startswith('segkit.'):\n"
        "            del sys.modules[name]\n"
        "    inkernel = importlib.import_module('segkit.grading.inkernel')\n"
        f"    inkernel.check_exercise(**json.loads({args!r}), namespace=globals())\n"
        "try:\n"
        "    _segkit_grade()\n"
        "finally:\n"
        "    del _segkit_grade\n"
    )


def _describe_missing(exercise: str, namespace: dict, state) -> str:
    held = state.seen.get(exercise) if state is not None else None
    if held is None and exercise in namespace:
        obj = namespace[exercise]
        module = getattr(obj, "__module__", None) or ""
        held = "segkit" if module.split(".")[0] == "segkit" else type(obj).__name__
    if held == "segkit":
        return (f"`{exercise}` is segkit's reference version (from `checks.use` or an "
                "import), not code written in the notebook")
    if held is not None:
        return f"`{exercise}` is a {held}, not a function or class written in the notebook"
    return f"the notebook does not define `{exercise}`"


def _outcome(exercise: str, check_source: str, namespace: dict, state) -> dict:
    student_obj = state.latest.get(exercise) if state is not None else None
    if student_obj is None:
        return {"status": "missing", "hint": _describe_missing(exercise, namespace, state)}

    import segkit
    from segkit import checks
    from segkit.checks import core

    scope = dict(namespace)
    scope.update(checks=checks, segkit=segkit)
    scope[exercise] = student_obj
    core.reset()
    try:
        exec(compile(check_source, "<string>", "exec"), scope)
    except core.ExerciseNotDone as exc:
        return {"status": "not done", "message": str(exc)}
    except core.CheckFailed as exc:
        status = "error" if exc.mistake == "crashed" else "fail"
        return {"status": status, "mistake": exc.mistake, "hint": exc.hint,
                "message": exc.message}
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt too
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return {"status": "error", "message": f"the check raised {text}"}
    return {"status": "pass"}


def check_exercise(exercise: str, source: str, nonce: str, namespace: dict) -> None:
    """Check the notebook's ``exercise`` with the check call ``source``; print the result."""
    state = sys.modules.get("_segkit_grader")
    result = {"exercise": exercise, **_outcome(exercise, source, namespace, state)}
    line = marker(nonce) + json.dumps(result) + "\n"
    streams = getattr(state, "streams", None)
    out = streams[0] if streams else sys.stdout
    if out is not sys.stdout:  # the notebook replaced sys.stdout: use the kernel's own
        try:
            from IPython import get_ipython

            out.set_parent(get_ipython().kernel.get_parent("shell"))
        except Exception:  # noqa: BLE001 - not in an IPython kernel
            out = sys.__stdout__
    out.write(line)
    out.flush()
