"""Exceptions raised by segkit.

Every segkit error is a ``SegkitError``, so a notebook can catch them all at
once. ``DataError`` is also a ``ValueError``: code that already catches
``ValueError`` for bad input keeps working.

A check's verdicts on a student's exercise are not segkit errors: ``CheckFailed`` is an
``AssertionError`` and ``ExerciseNotDone`` a ``NotImplementedError``
(``segkit.checks.core``), so that pytest, nbval and the grader see them as what they are.
"""

from __future__ import annotations


class SegkitError(Exception):
    """Base class of every error segkit raises on purpose."""


class DataError(SegkitError, ValueError):
    """A file, folder, mask or dataset is not what the code expected.

    The message names the file, says what was expected and what was found,
    and gives the likely cause.
    """
