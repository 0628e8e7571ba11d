"""Helpers shared by the check tests (tests/test_checks_*.py), and the corpus of forms.

A check must fail a catalogued mistake with its mistake id and a hint that names what to
fix; these helpers say so once for every lesson's tests.

The corpus: every right solution and every wrong form the tests hold is registered here,
with what its check must answer (``None``: it passes; a mistake id; ``NOT_DONE``). The
lesson files register theirs with :func:`right`, :func:`wrong` and :func:`register`;
``tests/test_checks_draws.py`` runs each form on fresh draws (a few in ``make test``, a
hundred with ``--check-draws 100``) and ``benchmarks/check_corpus.py`` counts them per
lesson. A form is only a function or class written as a student would: it runs against
any version of the checks that has the lesson's ``check_*`` functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from segkit.checks.core import CheckFailed, ExerciseNotDone

NOT_DONE = "not-done"
PASSED = "passed"
UNEXPLAINED = "None"  # a wrong answer no catalogued mistake explains (the general hint)


def failure(check: Callable[[Any], Any], student: Any) -> CheckFailed:
    """Run ``check(student)``, which must raise CheckFailed; return the error."""
    with pytest.raises(CheckFailed) as info:
        check(student)
    return info.value


def assert_hint(error: CheckFailed, mistake: str | None, *words: str) -> None:
    """``error`` names ``mistake`` and its message or hint holds every one of ``words``.

    Words are matched case-insensitively. A catalogued mistake must come with a hint.
    """
    assert error.mistake == mistake, str(error)
    if mistake is not None:
        assert error.hint, f"mistake {mistake!r} has no hint: {error}"
    text = (error.message + " " + (error.hint or "")).lower()
    for word in words:
        assert word.lower() in text, f"{word!r} not in: {error}"


def expect_mistake(check: Callable[[Any], Any], student: Any, mistake: str | None,
                   *words: str) -> CheckFailed:
    """``check(student)`` fails with ``mistake`` and a message/hint holding ``words``."""
    error = failure(check, student)
    assert_hint(error, mistake, *words)
    return error


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Form:
    """One student's answer to an exercise, and what its check must say about it."""

    check: Any                 # lessonNN.check_x
    student: Any               # the function or class
    expect: str | None         # None: passes; NOT_DONE; or the mistake id
    name: str

    @property
    def exercise_check(self) -> str:
        return getattr(self.check, "__name__", str(self.check))

    @property
    def id(self) -> str:
        what = "right" if self.expect is None else self.expect
        return f"{self.exercise_check}-{what}-{self.name}"


CORPUS: list[Form] = []


def register(check: Any, student: Any, expect: str | None, name: str | None = None) -> Any:
    """Add ``student`` to the corpus: ``check(student)`` must answer ``expect``."""
    form = Form(check, student, expect, name or getattr(student, "__name__", repr(student)))
    if all(f.id != form.id or f.student is not student for f in CORPUS):
        CORPUS.append(form)
    return student


def register_wrong(check: Any, student: Any, mistake: str | None,
                   name: str | None = None) -> Any:
    """Add a wrong form: ``check(student)`` must fail with ``mistake`` (None: a failure no
    catalogued mistake explains)."""
    return register(check, student, UNEXPLAINED if mistake is None else mistake, name)


def right(check: Any) -> Callable[[Any], Any]:
    """Decorator: a right solution of ``check``'s exercise, written some student's way."""
    return lambda student: register(check, student, None)


def wrong(check: Any, mistake: str | None) -> Callable[[Any], Any]:
    """Decorator: a form of ``mistake`` that ``check`` must name."""
    return lambda student: register_wrong(check, student, mistake)


def outcome(check: Any, student: Any, seed: int | None) -> str:
    """What ``check`` says about ``student`` on the cases of ``seed``: PASSED, NOT_DONE,
    the mistake id (``"None"`` for an unexplained failure), or ``"error: ..."``."""
    try:
        if seed is not None and hasattr(check, "draw"):
            check(student, seed=seed)
        else:  # a check without draws (older versions of the checks)
            check(student)
    except ExerciseNotDone:
        return NOT_DONE
    except CheckFailed as exc:
        return str(exc.mistake)
    except Exception as exc:  # noqa: BLE001 - counted, and shown by the tests
        return f"error: {type(exc).__name__}: {exc}"
    return PASSED


def exercise_of(check: Any) -> str:
    """The exercise a check judges ('dice_score'), for any version of the checks."""
    return getattr(check, "exercise", None) or check.__name__.removeprefix("check_")


def expected(form: Form) -> str:
    return PASSED if form.expect is None else form.expect


def lesson_of(form: Form) -> str:
    """'04' for a form of a lesson-04 check."""
    module = getattr(form.check, "__module__", "") or ""
    lesson = getattr(form.check, "lesson", None)
    if isinstance(lesson, str):
        return lesson
    return module.rsplit("lesson", 1)[-1][:2]
