"""A student's notebook file, read as the hostile input it may be, and the cells to run.

    data = read_submission(path)                  # bytes: a regular file, size-capped
    cells = code_cells(data)                      # [Cell(index=2, source="...")]
    plan = run_plan(cells, lesson.heavy_cells)    # what the sandbox runs, cell by cell

**Reading.** A submission is opened with ``O_NOFOLLOW`` (a symbolic link is refused,
never followed: not to the solutions, not to another student's notebook) and
``O_NONBLOCK`` (a FIFO cannot hang the grader); it must be a regular file (not a FIFO,
a device such as ``/dev/zero``, a socket or a folder) of at most ``max_bytes``, and only
that many bytes are ever read (:mod:`segkit_course.sandbox.files`). The JSON is read leniently (cell ids, metadata and order
do not matter; nbformat 3 is converted); a file nested too deep, too large or not a
notebook gives :class:`NotebookError` with the reason, never a crash of the class run.

**Heavy cells.** The instructor tags a solution's heavy demonstration cells (a long
training run) ``skip-when-grading``; they may also give a cheap stand-in in the cell's
metadata, ``{"segkit": {"when_grading": "<code>"}}`` (e.g. the same training for a
second), so that the cells after it still find the names it defines. A student's cell
is recognised as the instructor's heavy cell when its code is the same Python as the
tagged cell of the solution (same syntax tree: comments, blank lines and spacing do not
matter), wherever it is and whatever its id or metadata; then the grader skips it (or
runs the stand-in instead). A cell the student changed runs as they wrote it. Tags a
student adds to their own cells change nothing.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from segkit_course.metadata import HEAVY_TAG

__all__ = ["Cell", "HEAVY_TAG", "NotebookError", "code_cells", "heavy_cells", "read_submission",
           "run_plan", "same_code_key"]

MAX_NOTEBOOK_BYTES = 32 * 2**20


class NotebookError(Exception):
    """The submission cannot be graded as a notebook: the message says why."""


@dataclass(frozen=True)
class Cell:
    """A code cell: its position among all the notebook's cells (1-based) and its source."""

    index: int
    source: str


def read_submission(path: str | Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of the notebook at ``path``: a regular file, never through a link."""
    from segkit_course.sandbox.files import UnsafeFile, read_regular

    try:
        return read_regular(path, max_bytes)
    except UnsafeFile as exc:
        raise NotebookError(f"{exc}: submissions must be regular files of at most "
                            f"{max_bytes:,} bytes") from None


def _cells_of(raw) -> list:
    if not isinstance(raw, dict):
        raise NotebookError("this file is not a Jupyter notebook (no list of cells)")
    if isinstance(raw.get("cells"), list):
        return raw["cells"]
    worksheets = raw.get("worksheets")  # nbformat 3: cells in worksheets, code in "input"
    if isinstance(worksheets, list) and worksheets and isinstance(worksheets[0], dict):
        return [dict(c, source=c.get("input", "")) for c in worksheets[0].get("cells", [])
                if isinstance(c, dict)]
    raise NotebookError("this file is not a Jupyter notebook (no list of cells)")


def code_cells(data: bytes) -> list[Cell]:
    """The code cells of the notebook ``data`` (lenient: only the sources matter)."""
    try:
        raw = json.loads(data.decode("utf-8", "replace"))
    except RecursionError:
        raise NotebookError("this file is not a notebook it can read: nested too deep") from None
    except (ValueError, MemoryError) as exc:
        raise NotebookError(f"this file is not a Jupyter notebook (not JSON: "
                            f"{str(exc)[:120]})") from None
    cells = []
    for position, cell in enumerate(_cells_of(raw), start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        cells.append(Cell(position, source if isinstance(source, str) else ""))
    return cells


def same_code_key(source: str) -> str:
    """What two cells share when they hold the same Python: the syntax tree of the code
    IPython would run (magics translated), or the text without spacing if it does not
    parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        python = TransformerManager().transform_cell(source)
        return ast.dump(ast.parse(python))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "text:" + " ".join(source.split())


def heavy_cells(solution_cells) -> dict[str, str | None]:
    """The solution's cells tagged ``skip-when-grading``: code key -> stand-in (or None).
    ``solution_cells``: nbformat cells of the solution notebook."""
    heavy = {}
    for cell in solution_cells:
        if cell.get("cell_type") != "code" or HEAVY_TAG not in cell.get("metadata", {}).get(
                "tags", []):
            continue
        instead = (cell.get("metadata", {}).get("segkit") or {}).get("when_grading")
        heavy[same_code_key(cell.source)] = instead if isinstance(instead, str) else None
    return heavy


def run_plan(cells: list[Cell], heavy: dict[str, str | None],
             left_out: set[int] = frozenset()) -> list[dict]:
    """What the sandbox runs: each cell with its mode, "run", "skip" (the instructor's
    heavy cell, or one left out after it ended Python) or "instead" (the stand-in)."""
    plan = []
    for cell in cells:
        key = same_code_key(cell.source) if heavy else None
        entry = {"index": cell.index, "source": cell.source, "mode": "run"}
        if cell.index in left_out:
            entry["mode"] = "skip"
        elif key in heavy:
            entry["mode"] = "skip" if heavy[key] is None else "instead"
            entry["instead"] = heavy[key]
        plan.append(entry)
    return plan
