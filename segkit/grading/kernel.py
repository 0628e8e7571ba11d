"""The Jupyter kernel that ``segkit grade`` and ``segkit verify`` run notebooks in.

    python -m segkit.grading.kernel -f CONNECTION_FILE [ipykernel options]

It is the ordinary IPython kernel (ipykernel) with two things done first, before any
notebook code runs:

1. the guard of :mod:`segkit.grading.guard` is installed from the ``SEGKIT_GUARD_*``
   environment variables (no writes outside the grading folder, no programs, no
   network, as the tool asked);
2. a small module is registered as ``sys.modules["_segkit_grader"]``, where the grader
   keeps, between cells, the last version of each exercise the notebook defined
   itself (:func:`snapshot`), and the kernel's own output streams (a notebook that
   replaces ``sys.stdout`` cannot hide or rewrite the grader's results).
"""

from __future__ import annotations

import sys
import types

GRADER_MODULE = "_segkit_grader"


def _from_segkit(obj) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "segkit" or module.startswith("segkit.")


def snapshot(namespace: dict, names: list[str]) -> None:
    """Remember, for each exercise name, the notebook's own function or class.

    Called by the grader after every cell. A value is kept when it is a function or a
    class that does not come from segkit: ``checks.use(...)`` puts segkit's reference
    version under the exercise's name when the student's check failed, and that must
    not be graded as the student's work. What else the name held is noted in
    ``state.seen`` ("segkit" or the type's name) to explain a missing exercise.
    """
    state = sys.modules[GRADER_MODULE]
    for name in names:
        if name not in namespace:
            continue
        obj = namespace[name]
        if isinstance(obj, (types.FunctionType, type)) and not _from_segkit(obj):
            state.latest[name] = obj
        elif _from_segkit(obj):
            state.seen[name] = "segkit"
        else:
            state.seen[name] = type(obj).__name__


def _register_state() -> types.ModuleType:
    state = types.ModuleType(GRADER_MODULE, "State the segkit grader keeps in this kernel.")
    state.latest = {}   # exercise name -> the notebook's own function or class
    state.seen = {}     # exercise name -> what else the name held ("segkit", "int", ...)
    state.streams = None  # (stdout, stderr) as ipykernel made them
    state.snapshot = snapshot
    sys.modules[GRADER_MODULE] = state
    return state


def main() -> None:
    from segkit.grading import guard

    guard.install_from_env()
    state = _register_state()

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(sys.argv[1:])
    state.streams = (sys.stdout, sys.stderr)
    app.start()


if __name__ == "__main__":
    main()
