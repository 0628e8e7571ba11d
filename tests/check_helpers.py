"""Helpers shared by the check tests (tests/test_checks_*.py).

A check must fail a catalogued mistake with its mistake id and a hint that names what to
fix; these helpers say so once for every lesson's tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from segkit.checks.core import CheckFailed


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
