"""Verify the whole course before a term: ``segkit verify``.

    segkit verify                        # the course in the current folder
    segkit verify --budget-seconds 90    # a tighter time budget per notebook
    segkit verify --only 03 04           # run only some lessons' notebooks

What is verified, and reported as a problem when it does not hold:

1. ``lessons/`` is in sync with ``solutions/`` (the check mode of ``segkit
   build-lessons``; a solution that breaks the authoring conventions is a problem too);
2. every solution notebook runs to the end, no cell raises, so every check cell passes;
3. every lesson notebook runs to the end, each check cell raises ``ExerciseNotDone``
   (a check that passes the stub would pass an empty exercise) and no other cell
   raises;
4. every notebook runs within the time budget (the cells' time, without the kernel's
   start); a notebook is stopped when it reaches it;
5. no notebook tries to reach the network: its kernel refuses connections beyond this
   machine and host-name look-ups (:mod:`segkit_course.sandbox.guard`), and every attempt is
   reported, even one the notebook caught.

Notebooks run in fresh kernels in the course folder, as ``segkit run-course`` runs them,
one at a time by default (``--jobs`` runs several, which makes timings less reliable).
The report is printed; :func:`verify_course` returns it, and ``segkit verify`` exits 1
when it holds a problem.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from segkit_course.build import (
    NotebookSourceError,
    SKIP_TAGS,
    build_all,
    check_name,
    read_notebook,
    solution_paths,
    tags,
)
from segkit_course.run import select_lessons
from segkit_course.sandbox import guard
from segkit_course.sandbox.kernel import KernelSession, kernel_env

__all__ = ["NotebookVerdict", "VerifyReport", "run_guarded", "verify_course"]

NOT_DONE = "ExerciseNotDone"


@dataclass
class NotebookVerdict:
    """What verifying one notebook found: ``kind`` is "solution" or "lesson"."""

    name: str
    kind: str
    seconds: float
    summary: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    """Everything ``verify_course`` found; ``ok`` when there is no problem at all."""

    course: Path
    budget_seconds: float
    sync_problems: list[str]
    notebooks: list[NotebookVerdict]

    @property
    def problems(self) -> list[str]:
        found = [f"sync: {p}" for p in self.sync_problems]
        for nb in self.notebooks:
            found += [f"{nb.name} {nb.kind}: {p}" for p in nb.problems]
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        width = max([len(nb.name) for nb in self.notebooks] + [8])
        lines = [f"segkit verify: {self.course} (time budget {self.budget_seconds:g} s per "
                 "notebook)", ""]
        if self.sync_problems:
            lines.append("FAIL  lessons/ is not in sync with solutions/")
            lines += [f"        - {p}" for p in self.sync_problems]
        else:
            lines.append("ok    lessons/ is in sync with solutions/")
        for nb in self.notebooks:
            head = f"{'ok  ' if nb.ok else 'FAIL'}  {nb.name:<{width}}  {nb.kind:<8}  " \
                   f"{nb.seconds:6.1f} s  {nb.summary}"
            lines.append(head.rstrip())
            lines += [f"        - {p}" for p in nb.problems]
        network = [p for p in self.problems if "network" in p]
        lines.append("")
        lines.append("no notebook tried to reach the network" if not network else
                     f"{len(network)} attempt(s) to reach the network (see above)")
        bad = [nb for nb in self.notebooks if not nb.ok]
        if self.ok:
            lines.append(f"all good: {len(self.notebooks)} notebooks verified")
        else:
            lines.append(f"{len(self.problems)} problem(s): {len(bad)} notebook(s) failed"
                         + ("; lessons/ out of sync" if self.sync_problems else ""))
        return "\n".join(lines)


# --------------------------------------------------------------------------- one notebook


@dataclass
class _CellOutcome:
    position: int           # 1-based, among all cells
    source: str
    check: str | None       # the exercise a check cell checks
    ename: str | None = None
    evalue: str | None = None


@dataclass
class GuardedRun:
    """A notebook run by :func:`run_guarded`: the code cells that ran, and what stopped it."""

    cells: list[_CellOutcome]
    seconds: float
    stopped: str | None
    network: list[str]


def _first_line(text: str | None, limit: int = 100) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def run_guarded(path: str | Path, cwd: str | Path, budget_seconds: float) -> GuardedRun:
    """Run the notebook at ``path`` cell by cell, errors allowed, network refused.

    Cells tagged ``skip-execution`` / ``nbval-skip`` are not run. The run stops when the
    cells have taken ``budget_seconds`` or when the kernel dies.
    """
    nb = read_notebook(path)
    with tempfile.TemporaryDirectory(prefix="segkit-verify-") as tmp:
        log_path = Path(tmp) / "guard.log"
        env = kernel_env(block_network=True, block_processes=False, log_path=log_path)
        ran: list[_CellOutcome] = []
        stopped = None
        spent = 0.0
        with KernelSession(cwd, env) as kernel:
            for position, cell in enumerate(nb.cells, start=1):
                if cell.cell_type != "code" or not cell.source.strip() \
                        or any(tag in tags(cell) for tag in SKIP_TAGS):
                    continue
                left = budget_seconds - spent
                if left <= 0:
                    stopped = (f"over the time budget: stopped before cell {position} after "
                               f"{spent:.1f} s")
                    break
                run = kernel.run(cell.source, timeout=left)
                spent += run.seconds
                outcome = _CellOutcome(position, cell.source, check_name(cell))
                ran.append(outcome)
                if run.status == "error":
                    outcome.ename, outcome.evalue = run.ename, run.evalue
                elif run.status == "timeout":
                    stopped = (f"over the time budget: cell {position} "
                               f"(`{_first_line(cell.source, 40)}`) was still running "
                               f"after {spent:.1f} s")
                    break
                elif run.status == "died":
                    stopped = (f"cell {position} (`{_first_line(cell.source, 40)}`) crashed "
                               "the kernel")
                    break
        network = sorted({entry["what"] for entry in guard.read_log(log_path)
                          if entry["kind"] == "network"})
    return GuardedRun(ran, spent, stopped, network)


def _judge(name: str, kind: str, run: GuardedRun, budget_seconds: float) -> NotebookVerdict:
    problems: list[str] = []
    checks = [c for c in run.cells if c.check]
    for cell in run.cells:
        error = f"{cell.ename}: {_first_line(cell.evalue)}" if cell.ename else None
        if cell.check:
            what = f"check cell {cell.position} (`{cell.check}`)"
            if kind == "solution" and error:
                problems.append(f"{what} fails the solution: {error}")
            elif kind == "lesson" and not error:
                problems.append(f"{what} passes the stub: a check must raise {NOT_DONE} "
                                "until the exercise is written")
            elif kind == "lesson" and cell.ename != NOT_DONE:
                problems.append(f"{what} raised {error} on the stub, not {NOT_DONE}")
        elif error:
            problems.append(f"cell {cell.position} (`{_first_line(cell.source, 40)}`) raised "
                            f"{error}")
    if run.stopped:
        problems.append(run.stopped)
    elif run.seconds > budget_seconds:
        problems.append(f"took {run.seconds:.1f} s, over the time budget of "
                        f"{budget_seconds:g} s")
    problems += [f"tried to reach the network: {what} (refused)" for what in run.network]
    if kind == "solution":
        summary = f"{len(checks)} check(s) pass" if not problems else ""
    else:
        summary = f"{len(checks)} check(s) raise {NOT_DONE}" if not problems else ""
    return NotebookVerdict(name, kind, run.seconds, summary, problems)


def _verify_notebook(path: Path, kind: str, course: Path,
                     budget_seconds: float) -> NotebookVerdict:
    try:
        run = run_guarded(path, course, budget_seconds)
    except (OSError, ValueError, RuntimeError) as exc:
        return NotebookVerdict(path.stem, kind, 0.0, "",
                               [f"could not be run: {type(exc).__name__}: {exc}"])
    return _judge(path.stem, kind, run, budget_seconds)


# --------------------------------------------------------------------------- the course


def _convention_problems(error: NotebookSourceError, shown: int = 3) -> list[str]:
    """'04_metrics.ipynb: <problem>' lines from a build error, a few per notebook."""
    problems: list[str] = []
    notebook, listed, hidden = "", 0, 0

    def flush() -> None:
        if hidden:
            problems.append(f"{notebook}: ... and {hidden} more (`segkit build-lessons` "
                            "lists them all)")

    for line in str(error).splitlines():
        if line.endswith("breaks the course conventions:"):
            flush()
            notebook, listed, hidden = line.split(" ", 1)[0], 0, 0
        elif line.strip().startswith("- ") and notebook:
            if listed < shown:
                problems.append(f"{notebook}: {line.strip()[2:]}")
                listed += 1
            else:
                hidden += 1
        elif line.strip():
            problems.append(line.strip())
    flush()
    return problems


def _sync_problems(course: Path) -> list[str]:
    captured = io.StringIO()
    problems: list[str] = []
    try:
        with contextlib.redirect_stdout(captured):
            build_all(course / "solutions", course / "lessons", dry_run=True)
    except NotebookSourceError as exc:
        problems = _convention_problems(exc)
    printed = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
    return printed + problems


def verify_course(course: str | Path = ".", *, budget_seconds: float = 120.0, jobs: int = 1,
                  only: list[str] | None = None,
                  out: Callable[[str], None] | None = print) -> VerifyReport:
    """Verify the course in the folder ``course`` (see the module's docstring).

    Args:
        course: the folder holding ``solutions/`` and ``lessons/``.
        budget_seconds: time each notebook's cells may take.
        jobs: notebooks run at once.
        only: lessons to run ("03", "03_training"); the sync check covers all.
        out: prints progress and the report (None: silent).
    """
    course = Path(course).resolve()
    solutions = solution_paths(course / "solutions")
    if not solutions:
        raise FileNotFoundError(f"no solution notebooks NN_name.ipynb in {course / 'solutions'}")
    solutions = select_lessons(solutions, only)
    sync = _sync_problems(course)
    work = []
    for solution in solutions:
        work.append((solution, "solution"))
        lesson = course / "lessons" / solution.name
        if lesson.exists():
            work.append((lesson, "lesson"))
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = []
        for path, kind in work:
            futures.append(pool.submit(_verify_notebook, path, kind, course, budget_seconds))
        verdicts = []
        for (path, kind), future in zip(work, futures):
            verdict = future.result()
            if out:
                out(f"{'ok  ' if verdict.ok else 'FAIL'}  {path.stem} {kind} "
                    f"({verdict.seconds:.1f} s)")
            verdicts.append(verdict)
    report = VerifyReport(course, budget_seconds, sync, verdicts)
    if out:
        out(f"\n{report.text()}\n(verified in {time.monotonic() - start:.0f} s)")
    return report
