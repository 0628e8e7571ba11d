"""The notebook-metadata vocabulary of the course: the tags and ``metadata["segkit"]``
keys a solution notebook's cells carry, and how to read them.

A cell's ``metadata["segkit"]`` may hold:

- ``{"exercise": "dice_score", "points": 2}``: the cell is an exercise (its solution sits
  between ``### BEGIN SOLUTION`` and ``### END SOLUTION``);
- ``{"check": "dice_score"}``: the cell checks that exercise (it also carries the
  ``check`` tag);
- ``{"setup": true}``: the course's set-up cell (also tagged ``setup``);
- ``{"tolerance": {...}}``: how far a trained figure may move (``segkit_course.figures``).

Tags: ``check``, ``raises-exception`` (never on a check cell: a lesson's check raises on
the stub and Run all stops there, in JupyterLab as in Colab, which has no cell tags),
``solution-only`` (dropped from the lesson), ``skip-execution`` / ``nbval-skip`` (never
compared by nbval), ``skip-when-grading`` (a heavy demonstration cell ``segkit grade``
skips, or replaces by the code in ``metadata["segkit"]["when_grading"]``:
:mod:`segkit_course.grading.notebook`). nbgrader's metadata (schema 3) is written from these by
``segkit build-lessons --annotate``. Used by :mod:`segkit_course.build` (which re-exports
these names), ``verify``, ``stubs`` and ``segkit_course.grading``.
"""

from __future__ import annotations

from nbformat import NotebookNode

from segkit_course.setup_cell import SETUP_TAG

__all__ = ["CHECK_TAG", "HEAVY_TAG", "NBGRADER_SCHEMA", "RAISES_TAG", "SKIP_TAGS",
           "SOLUTION_ONLY_TAG",
           "check_name", "describe_cell", "exercise_name", "is_check_cell", "is_setup_cell",
           "segkit_meta", "tags"]

CHECK_TAG = "check"
RAISES_TAG = "raises-exception"
SOLUTION_ONLY_TAG = "solution-only"
SKIP_TAGS = ("skip-execution", "nbval-skip")
HEAVY_TAG = "skip-when-grading"
NBGRADER_SCHEMA = 3


def segkit_meta(cell: NotebookNode) -> dict:
    """The cell's ``metadata["segkit"]`` (an empty dict when it has none)."""
    return cell.get("metadata", {}).get("segkit", {}) or {}


def tags(cell: NotebookNode) -> list[str]:
    """The cell's tags (``metadata["tags"]``), a new list."""
    return list(cell.get("metadata", {}).get("tags", []))


def is_setup_cell(cell: NotebookNode) -> bool:
    """Is it the course's set-up cell (``{"setup": true}`` or the ``setup`` tag)?"""
    return cell.cell_type == "code" and (segkit_meta(cell).get("setup") is True
                                         or SETUP_TAG in tags(cell))


def exercise_name(cell: NotebookNode) -> str | None:
    """The exercise a code cell holds (``{"exercise": name}``), else None."""
    return segkit_meta(cell).get("exercise") if cell.cell_type == "code" else None


def check_name(cell: NotebookNode) -> str | None:
    """The exercise a code cell checks (``{"check": name}``), else None."""
    return segkit_meta(cell).get("check") if cell.cell_type == "code" else None


def is_check_cell(cell: NotebookNode) -> bool:
    return check_name(cell) is not None


def describe_cell(index: int, cell: NotebookNode) -> str:
    """'cell 7 (id 'a1b2', code: 'def dice_score(pred, target):')' -- index is 0-based."""
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    if len(first) > 50:
        first = first[:47] + "..."
    cell_id = cell.get("id")
    ident = f"id {cell_id!r}, " if cell_id else ""
    return f"cell {index + 1} ({ident}{cell.cell_type}: {first!r})"
