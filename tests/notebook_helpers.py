"""Shared helpers of the notebook tests (paths, parameters, what a good run looks like)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nbformat import NotebookNode

from segkit_course.build import (
    CHECK_TAG,
    RAISES_TAG,
    SKIP_TAGS,
    annotate,
    is_check_cell,
    is_setup_cell,
    solution_paths,
    tags,
    lint,
)
from segkit_course.run import Execution, execute_notebook
from segkit_course.setup_cell import badge_markdown, setup_cell_source

REPO_ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO_ROOT / "solutions"
LESSONS = REPO_ROOT / "lessons"
FIXTURE_COURSE = REPO_ROOT / "tests" / "fixtures" / "course"
FIXTURE_SOLUTIONS = FIXTURE_COURSE / "solutions"
SANITIZE_CFG = REPO_ROOT / "tests" / "nbval_sanitize.cfg"

# Seconds one cell may run in the notebook tests (override: SEGKIT_CELL_TIMEOUT=...): a guard
# against hangs, sized for a 2-core machine at load 10 (the longest cell takes about 70 s quiet).
CELL_TIMEOUT = int(os.environ.get("SEGKIT_CELL_TIMEOUT", "1800"))
NOT_DONE_ERRORS = ("ExerciseNotDone", "NotImplementedError")


def notebook_params(folder: Path, what: str) -> list:
    """pytest parameters, one per ``NN_name.ipynb`` of ``folder`` (one skipped if none)."""
    paths = solution_paths(folder)
    if not paths:
        reason = f"no {what} notebooks in {folder.relative_to(REPO_ROOT)}/ yet"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id=f"no-{what}s")]
    return [pytest.param(path, id=path.stem) for path in paths]


def code_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


# --------------------------------------------------------------------------- solutions


def solution_problems(nb: NotebookNode, name: str) -> list[str]:
    """Why a solution notebook would not regress properly or breaks the conventions."""
    problems = list(lint(nb, name))
    expected = 1
    for index, cell in code_cells(nb):
        if not cell.source.strip() or any(tag in tags(cell) for tag in SKIP_TAGS):
            continue
        count = cell.get("execution_count")
        if count != expected:
            problems.append(
                f"cell {index + 1} has execution count {count}, expected {expected}: the "
                "notebook was not executed top to bottom in one fresh kernel. Store its "
                f"outputs with `python -m segkit_course.run --inplace solutions/{name}.ipynb`")
            break
        expected += 1
    first_code = next((cell for _, cell in code_cells(nb)), None)
    if first_code is None or not is_setup_cell(first_code) \
            or first_code.source != setup_cell_source():
        problems.append("the first code cell is not the current set-up cell: run "
                        "`segkit build-lessons --annotate`, then store the outputs again")
    if annotate(nb, name) != nb:
        problems.append("metadata is incomplete or stale (nbgrader metadata, tags, ids, "
                        "badge): run `segkit build-lessons --annotate`")
    return problems


# --------------------------------------------------------------------------- lessons


def lesson_file_problems(nb: NotebookNode, name: str) -> list[str]:
    """What a lesson file lacks: the set-up cell, the badge, cleared outputs."""
    problems = []
    if len(nb.cells) < 2 or not is_setup_cell(nb.cells[1]) \
            or nb.cells[1].source != setup_cell_source():
        problems.append("cell 2 is not the current set-up cell")
    if not nb.cells or badge_markdown(name) not in nb.cells[0].source:
        problems.append(f"the title cell lacks the Colab badge {badge_markdown(name)}")
    for index, cell in code_cells(nb):
        if cell.get("outputs") or cell.get("execution_count") is not None:
            problems.append(f"cell {index + 1} has stored outputs or an execution count")
        if is_check_cell(cell) and CHECK_TAG not in tags(cell):
            problems.append(f"check cell {index + 1} lacks the tag {CHECK_TAG}")
        if is_check_cell(cell) and RAISES_TAG in tags(cell):
            problems.append(f"check cell {index + 1} is tagged {RAISES_TAG}: JupyterLab's Run "
                            "all would go past it, Colab's would not")
    return problems


def execute_lesson(nb: NotebookNode, cwd, timeout: int = 60) -> Execution:
    """Execute a lesson (stubs in place) to the end, as ``segkit verify`` does: a check
    cell may raise (a student's Run all stops there; here the run goes on)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if is_check_cell(cell) and RAISES_TAG not in tags(cell):
            cell.metadata["tags"] = tags(cell) + [RAISES_TAG]
    return execute_notebook(nb, cwd=cwd, timeout=timeout)


def lesson_run_problems(run: Execution) -> list[str]:
    """What went wrong when a lesson (stubs in place) was executed with execute_lesson.

    A good run goes to the end; the only cells that raised are check cells, with
    ExerciseNotDone / NotImplementedError; and every check cell raised (a check that
    passes the stub would pass an empty exercise).
    """
    problems = []
    if not run.ok:
        problems.append(f"stopped at cell {run.failed_cell + 1 if run.failed_cell is not None else '?'}: "
                        f"{run.error}")
    for index, cell in code_cells(run.nb):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if is_check_cell(cell):
            if not errors and run.ok:
                problems.append(f"check cell {index + 1} passed the stub: a check must raise "
                                "ExerciseNotDone until the exercise is written")
        elif errors:
            problems.append(f"cell {index + 1} is not a check cell but raised "
                            f"{errors[0]['ename']}: {errors[0]['evalue']}")
        for error in errors:
            if error["ename"] not in NOT_DONE_ERRORS:
                problems.append(f"cell {index + 1} raised {error['ename']}: {error['evalue']} "
                                f"(expected one of {', '.join(NOT_DONE_ERRORS)})")
    return problems


# --------------------------------------------------------------------------- nbval


def run_nbval(paths: list[Path], cwd: Path, threads: int | None = None
              ) -> subprocess.CompletedProcess:
    """``pytest --nbval`` on notebooks, in a subprocess, the way CI compares outputs.

    Cells without a tolerance are compared exactly by nbval (after the sanitizer);
    cells with one by the ``segkit_course.figures`` plugin. ``threads`` sets
    OMP_NUM_THREADS / MKL_NUM_THREADS for the kernels (default: as in this process).
    """
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
               "-p", "segkit_course.figures", "-q", "-rf",
               "--nbval", "--nbval-current-env", f"--nbval-sanitize-with={SANITIZE_CFG}",
               f"--nbval-cell-timeout={CELL_TIMEOUT}",
               f"--rootdir={cwd}", *map(str, paths)]
    env = {**os.environ, "SEGKIT_PROGRESS": "0"}
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        # threads that wait sleep instead of spinning: beside another worker's kernel, on
        # two cores, spinning OpenMP threads make a 2-thread kernel ten times slower
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60 + CELL_TIMEOUT * 4 * max(1, len(paths)))
