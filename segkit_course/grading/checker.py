"""The grader's checker: the process that runs one student's exercises and checks them.

    python -m segkit_course.grading.checker      # reads its job (JSON) on stdin

It is started by :mod:`segkit_course.grading.execute`, inside the sandbox of
:mod:`segkit_course.sandbox.bwrap` where there is one, and runs, in a plain Python (no
Jupyter kernel, no IPython hooks, no connection files):

1. the lesson's scaffold: the solution's set-up cell and import statements;
2. for each exercise, in the lesson's order: the student's cell that defines it (only
   its definitions, imports and assignments: no top-level calls), then the solution's
   check call on what it defined, then the lesson's ``checks.use`` line, so that a
   later exercise builds on the student's version if it passed, segkit's otherwise.
   Nothing else of the student's notebook runs.

The grader's defences, in this process: the job (with one random nonce per exercise)
is read before any student code runs and stdin is closed; the result channel is a
copy of the original stdout, while stdout and stderr go to /dev/null; every result
line carries its exercise's nonce; ``json.dumps`` and ``os.write`` are bound before the
student's code runs; before each check, every module's attributes and
``sys.modules`` are put back as they were after the scaffold (a patched
``segkit.checks``, ``torch.allclose`` or ``builtins`` is undone); memory, CPU and file
limits are set as hard limits first. What it cannot stop on its own (reading its own
memory through frames) is what :mod:`segkit_course.grading.screen` flags before the code runs.
"""

from __future__ import annotations

import ast
import builtins
import json
import linecache
import os
import re
import signal
import sys
import types

__all__ = ["main", "python_source", "runnable_statements"]

_MAGIC_LINE = re.compile(r"^([ \t]*)[%!].*$", re.MULTILINE)

_KEPT = ("Import", "ImportFrom", "FunctionDef", "AsyncFunctionDef", "ClassDef", "Assign",
         "AnnAssign", "AugAssign", "If", "Try", "Delete")


def python_source(source: str) -> str:
    """``source`` with IPython's ``%magic`` and ``!shell`` lines made ``pass`` (they do
    nothing when the grader runs the code; line numbers stay)."""
    return _MAGIC_LINE.sub(lambda m: f"{m.group(1)}pass", source)


def runnable_statements(source: str) -> list[ast.stmt]:
    """The top-level statements of an exercise cell the grader runs: definitions,
    imports and assignments (not calls, prints, loops or plots). [] if it does not parse."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return []
    return [node for node in tree.body if type(node).__name__ in _KEPT]


class _Timeout(BaseException):
    """Raised by the alarm when a cell or a check runs past its time."""


def _on_alarm(signum, frame):
    raise _Timeout()


def _run_with_alarm(seconds: float, run) -> bool:
    """``run()``; False when it ran out of time. (Windows has no alarm: there the
    grader's own deadline stops the process.)"""
    if not hasattr(signal, "setitimer"):
        run()
        return True
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        run()
        return True
    except _Timeout:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class _Pristine:
    """Every module's attributes and ``sys.modules`` as they were: put back on demand."""

    def __init__(self) -> None:
        self.modules = dict(sys.modules)
        self.attributes = {name: (module, dict(vars(module)))
                           for name, module in self.modules.items()
                           if isinstance(module, types.ModuleType)}

    def restore(self) -> None:
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
        for module, saved in self.attributes.values():
            current = vars(module)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    current[key] = value


_MISSING = object()


def _from_segkit(obj) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "segkit" or module.startswith("segkit.")


def _missing(name: str, namespace: dict) -> dict:
    if name not in namespace:
        return {"status": "missing", "hint": f"the notebook does not define `{name}`"}
    obj = namespace[name]
    if _from_segkit(obj):
        hint = (f"`{name}` is segkit's reference version (from `checks.use` or an import), "
                "not code written in the notebook")
    else:
        hint = f"`{name}` is a {type(obj).__name__}, not a function or class written in the notebook"
    return {"status": "missing", "hint": hint}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text) - limit:,} more)"


def _run_cell(exercise: dict, namespace: dict, seconds: float) -> dict:
    """Run the definitions of the student's cell; what went wrong, if anything."""
    name = exercise["cell_name"]
    source = exercise["cell"]
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    found: dict = {}
    codes = [compile(ast.Module(body=[node], type_ignores=[]), name, "exec")
             for node in runnable_statements(source)]

    def run() -> None:
        for code in codes:
            try:
                exec(code, namespace)
            except Exception as exc:  # noqa: BLE001 - the student's cell may fail
                found.setdefault("cell_error", f"{type(exc).__name__}: {exc}")

    if not _run_with_alarm(seconds, run):
        found["cell_timeout"] = True
    return found


def _check(exercise: dict, namespace: dict, pristine_checks, seconds: float) -> dict:
    from segkit.checks import core

    name = exercise["name"]
    obj = namespace.get(name)
    if not isinstance(obj, (types.FunctionType, type)) or _from_segkit(obj):
        return _missing(name, namespace)
    scope = dict(namespace)
    scope.update(checks=pristine_checks, segkit=sys.modules["segkit"])
    scope[name] = obj
    core.reset()
    outcome: dict = {"status": "pass"}

    def run() -> None:
        try:
            exec(compile(exercise["check"], "<check>", "exec"), scope)
        except core.ExerciseNotDone as exc:
            outcome.update(status="not done", message=str(exc))
        except core.CheckFailed as exc:
            outcome.update(status="error" if exc.mistake == "crashed" else "fail",
                           mistake=exc.mistake, hint=exc.hint, message=exc.message)
        except Exception as exc:  # noqa: BLE001
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            outcome.update(status="error", message=f"the check raised {text}")

    if not _run_with_alarm(seconds, run):
        return {"status": "timeout", "hint": f"the check did not finish within {seconds:g} s: "
                                             f"an endless loop in `{name}`?"}
    return outcome


def _use(exercise: dict, namespace: dict, passed: set[str]) -> None:
    """The lesson's ``checks.use`` line: the student's version if it passed."""
    from segkit.checks import core

    if not exercise["use"]:
        return
    namespace.setdefault(exercise["name"], None)
    core.reset()
    core._passed.update(passed)
    try:
        exec(compile(exercise["use"], "<use>", "exec"), namespace)
    except Exception:  # noqa: BLE001 - the reference is used by the lines after
        pass


def main() -> None:
    """Run the job on stdin; write one line per event to the original stdout."""
    from segkit_course.sandbox import bwrap, guard

    guard.install_from_env()
    write, dumps, fd = os.write, json.dumps, os.dup(1)
    job = json.loads(sys.stdin.buffer.read())
    null = os.open(os.devnull, os.O_RDWR)
    for standard in (0, 1, 2):
        os.dup2(null, standard)

    def send(nonce: str, event: dict) -> None:
        write(fd, (nonce + " " + dumps(event) + "\n").encode("utf-8", "replace"))

    failed_limits = bwrap.apply_limits(job["limits"], processes=job["process_cap"])
    namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
    scaffold_error = None
    try:
        exec(compile(job["scaffold"], "<scaffold>", "exec"), namespace)
    except Exception as exc:  # noqa: BLE001
        scaffold_error = f"{type(exc).__name__}: {exc}"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(job["threads"])
    import segkit.checks
    pristine_checks = segkit.checks
    getattr(pristine_checks, f"lesson{job['lesson_number']}", None)  # import it now
    for exercise in job["exercises"]:
        namespace.pop(exercise["name"], None)  # what the scaffold imported is not theirs
    pristine = _Pristine()
    send(job["session"], {"event": "ready", "failed_limits": failed_limits,
                          "scaffold_error": scaffold_error})
    passed = set(job["passed"])
    for exercise in job["exercises"]:
        nonce, limit = exercise["nonce"], job["message_limit"]
        if not exercise["replay"]:
            send(nonce, {"event": "begin", "exercise": exercise["name"]})
        found = {}
        if exercise["cell"] is not None:
            found = _run_cell(exercise, namespace, job["cell_timeout"])
        if not exercise["replay"]:
            pristine.restore()
            result = _check(exercise, namespace, pristine_checks, job["check_timeout"])
            result = {key: _short(value, limit) if isinstance(value, str) else value
                      for key, value in {**result, **found}.items()}
            send(nonce, {"exercise": exercise["name"], **result})
            if result["status"] == "pass":
                passed.add(exercise["name"])
        _use(exercise, namespace, passed)
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN)]
    send(job["session"], {"event": "done",
                          "cpu": sum(u.ru_utime + u.ru_stime for u in usage)})


if __name__ == "__main__":
    main()
