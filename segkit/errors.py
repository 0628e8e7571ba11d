"""Exceptions raised by segkit.

Every segkit error is a ``SegkitError``, so a notebook can catch them all at
once. ``DataError`` is also a ``ValueError``: code that already catches
``ValueError`` for bad input keeps working.
"""

from __future__ import annotations


class SegkitError(Exception):
    """Base class of every error segkit raises on purpose."""


class DataError(SegkitError, ValueError):
    """A file, folder, mask or dataset is not what the code expected.

    The message names the file, says what was expected and what was found,
    and gives the likely cause.
    """
