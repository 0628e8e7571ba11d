"""Checks for the course's exercises.

Notebooks use it as::

    from segkit import checks
    checks.lesson04.check_dice_score(dice_score)          # ✅ ... — passed, or a hint
    dice_score = checks.use("dice_score", dice_score, segkit.metrics.dice_score)
    checks.key_figure("val Dice", val_dice)               # 📌 val Dice: 0.8123

The framework (``Check``: draw, ask, judge; ``CheckFailed``, ``use``, ``key_figure``,
and the older ``run_check`` with its ``expect_*`` helpers) lives in
:mod:`segkit.checks.core` and is re-exported here. The checks
of lesson NN live in ``segkit/checks/lessonNN.py``; ``checks.lessonNN`` imports that
module the first time it is used.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

from segkit.checks import core as _core
from segkit.checks.core import (
    GENERAL_HINT,
    Check,
    CheckFailed,
    CheckResult,
    ExerciseNotDone,
    check,
    checks_of,
    expect,
    expect_close,
    expect_dtype,
    expect_equal,
    expect_shape,
    expect_type,
    explained_by,
    fail,
    fresh_seed,
    judge_each,
    judging,
    key_figure,
    passed,
    reset,
    run_check,
    show,
    use,
)

__all__ = list(_core.__all__)

_LESSON_MODULE = re.compile(r"lesson\d\d")


def __getattr__(name: str) -> ModuleType:
    """``checks.lesson04`` -> the module ``segkit.checks.lesson04``, imported on first use."""
    if not _LESSON_MODULE.fullmatch(name):
        raise AttributeError(f"module 'segkit.checks' has no attribute {name!r}")
    full_name = f"{__name__}.{name}"
    try:
        return importlib.import_module(full_name)
    except ModuleNotFoundError as exc:
        if exc.name != full_name:  # the lesson's module exists but imports something missing
            raise
        raise AttributeError(
            f"segkit.checks has no `{name}`: there is no file segkit/checks/{name}.py, so "
            f"lesson {name[-2:]} has no checks yet. Is segkit up to date? (In Colab: "
            "Runtime > Restart session, then run the set-up cell again.)") from None


def __dir__() -> list[str]:
    here = Path(__file__).parent
    lessons = sorted(p.stem for p in here.glob("lesson[0-9][0-9].py"))
    return sorted(__all__) + ["core"] + lessons
