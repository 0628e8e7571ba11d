"""Grade one student's notebook: find the exercises, screen them, check them in a sandbox.

What :func:`grade_notebook` does with ``submissions/alice/03_training.ipynb``:

1. reads the notebook's code cells (leniently: ids, metadata, order do not matter) and,
   for each exercise of the lesson, takes the LAST cell that defines it (``def``,
   ``class`` or an assignment; the lesson's ``checks.use`` lines do not count);
2. screens each of those cells (:mod:`segkit_course.grading.screen`): an exercise whose code
   reaches for the grader's machinery is not run, and is graded ``review``;
3. starts a fresh checker process (:mod:`segkit_course.grading.checker`) inside a bubblewrap
   sandbox (:mod:`segkit_course.sandbox.bwrap`; where there is none, with the in-process guard
   of :mod:`segkit_course.sandbox.guard`), which runs the lesson's scaffold, then each
   exercise's definitions and the solution's check, and reports one result per
   exercise, marked with a random nonce. Nothing else of the notebook runs: not its
   training loops, plots or checks, nor a cell that tampers with the grader;
4. deals with trouble: a cell or check that runs past its time is interrupted
   (``timeout``); a process that dies or ignores the interrupt is killed, the exercise
   is graded ``error`` / ``timeout``, and a new process checks the ones left.

The outcome of an exercise is one of ``pass``, ``fail`` (a catalogued mistake, with the
check's hint), ``not done`` (the stub is still there), ``missing`` (the notebook does not
define it), ``error`` (the student's code crashed, or Python died), ``timeout`` and
``review`` (flagged by the screen, 0 points until an instructor has looked). Only
``pass`` earns the exercise's points.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

import nbformat

from segkit_course.grading.checker import runnable_statements
from segkit_course.grading.discover import Exercise, Lesson, Submission
from segkit_course.grading.screen import screen
from segkit_course.sandbox import bwrap
from segkit_course.sandbox.kernel import SEGKIT_PARENT, kernel_env, thread_env

__all__ = ["ExerciseResult", "Limits", "StudentResult", "STATUSES", "code_cells",
           "exercise_cells", "grade_notebook"]

STATUSES = ("pass", "fail", "not done", "missing", "error", "timeout", "review")


@dataclass(frozen=True)
class Limits:
    """Time, size and resource limits of one notebook's grading (seconds, characters,
    bytes). The times are generous on purpose: only exercises run, and a solved
    lesson's exercises take seconds, even with every core busy."""

    cell_timeout: float = 120.0       # running one exercise cell's definitions
    check_timeout: float = 60.0       # one exercise's check
    notebook_timeout: float = 900.0   # all of a notebook's exercises together
    output_limit: int = 20_000        # characters kept of each hint and message
    startup_timeout: float = 120.0    # starting the checker (importing torch)
    max_restarts: int = 3             # new checker processes after one died
    memory_bytes: int = 4 * 2**30     # heap of the checker (RLIMIT_DATA)
    processes: int = 256              # processes and threads (sandbox user only)
    threads: int = 1                  # torch / BLAS threads of each checker


# --------------------------------------------------------------------------- results


@dataclass
class ExerciseResult:
    """One exercise of one student: ``status`` is one of :data:`STATUSES`."""

    status: str
    points: int
    max_points: int
    mistake: str | None = None
    hint: str | None = None
    message: str | None = None
    cell: int | None = None   # the notebook's cell that defined it (1-based), if any


@dataclass
class StudentResult:
    """One student's grade: exercise name -> result, and notes on the run."""

    student: str
    path: Path
    exercises: dict[str, ExerciseResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    isolation: str = ""     # "isolation: bubblewrap (...)" or "isolation: off (...)"
    digest: str = ""        # the notebook's content hash (resumed runs reuse the grade)
    cpu_seconds: float = 0.0  # CPU time of the checker processes that ran to their end

    @property
    def points(self) -> int:
        return sum(r.points for r in self.exercises.values())

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.exercises.values())


def code_cells(path: str | Path) -> list[tuple[int, str]]:
    """(position, source) of the code cells of the notebook at ``path``, 1-based.

    The notebook is read leniently: duplicated or missing cell ids, old nbformat
    versions and unknown metadata do not matter, only the cells' sources do.
    """
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", raw.get("worksheets")), list):
        raise ValueError("this file is not a Jupyter notebook (no list of cells)")
    if raw.get("nbformat", 4) < 4:
        raw = json.loads(nbformat.writes(nbformat.reads(json.dumps(raw), as_version=4)))
    cells = []
    for position, cell in enumerate(raw["cells"], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(str(s) for s in source)
        cells.append((position, str(source)))
    return cells




def _defined_names(node: ast.stmt) -> set[str]:
    """Names a top-level statement defines (``checks.use`` lines define nothing new)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        value = node.value
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and value.func.attr == "use"):
            return set()
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


def exercise_cells(cells: list[tuple[int, str]], names: list[str]) -> dict[str, tuple[int, str]]:
    """exercise name -> (position, source) of the last code cell that defines it."""
    found: dict[str, tuple[int, str]] = {}
    for position, source in cells:
        defined = set()
        for node in runnable_statements(source):
            defined |= _defined_names(node)
        for name in names:
            if name in defined:
                found[name] = (position, source)
    return found


def _screened(exercise: Exercise, source: str) -> list[str]:
    kept = "\n".join(ast.unparse(node) for node in runnable_statements(source))
    return screen(kept, exercise)


# --------------------------------------------------------------------------- the checker


def _environment(isolation: bwrap.Isolation, root: Path, limits: Limits) -> dict[str, str]:
    """The checker's environment: in the sandbox, a clean one; else a guarded one."""
    common = {"PYTHONDONTWRITEBYTECODE": "1", "SEGKIT_PROGRESS": "0", "SEGKIT_DEVICE": "cpu",
              "MPLBACKEND": "Agg", **thread_env(limits.threads)}
    if isolation.on:
        home, work = bwrap.SANDBOX_HOME, bwrap.SANDBOX_WORK
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home,
                "TMPDIR": f"{work}/tmp", "PYTHONPATH": SEGKIT_PARENT,
                "MPLCONFIGDIR": f"{work}/matplotlib", "SEGKIT_GUARD_WRITE_ROOT": "/tmp",
                "SEGKIT_GUARD_NETWORK": "block", "SEGKIT_GUARD_PROCESSES": "block",
                "SEGKIT_GUARD_LOG": f"{work}/.guard.log", **common}
    env = kernel_env(sandbox=root, block_network=True, block_processes=True,
                     log_path=root / "guard.log")
    for name in [n for n in env if n.startswith(("JPY_", "JUPYTER_"))]:
        env.pop(name)
    return {**env, **common}


class _Checker:
    """One checker process: start it with its job, read its events, stop it."""

    def __init__(self, argv: list[str], env: dict, cwd: Path, job: dict, err: Path,
                 group: bool) -> None:
        self.group = group
        with open(err, "ab") as stderr:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=stderr, env=env, cwd=cwd,
                                         start_new_session=os.name == "posix")
        self.lines: Queue = Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.proc.stdin.write(json.dumps(job).encode())
            self.proc.stdin.close()
        except OSError:
            pass  # it died at once: the caller sees the end of its output

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def next_event(self, nonces: dict[str, str], deadline: float):
        """(nonce's name, event) of the next line carrying a known nonce; ("end", None)
        when the process ended; ("late", None) at the deadline."""
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                return "late", None
            if line is None:
                return "end", None
            nonce, _, text = line.partition(" ")
            if nonce in nonces:
                try:
                    event = json.loads(text)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    return nonces[nonce], event

    def stop(self, wait: float = 0.0) -> None:
        """End the process: let it end on its own for ``wait`` seconds, then kill it."""
        try:
            self.proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass
        try:
            if self.group and os.name == "posix":
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()  # the reader thread ends at the end of the output


# --------------------------------------------------------------------------- one notebook


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 70 else line[:67] + "..."


class _NotebookGrading:
    """The exercises of one notebook, checked by one checker process (or a few, when
    one dies), in the sandbox folder ``root``."""

    def __init__(self, lesson: Lesson, limits: Limits, isolation: bwrap.Isolation,
                 root: Path, slot: int, hidden: list[Path]) -> None:
        self.lesson, self.limits, self.isolation = lesson, limits, isolation
        self.root, self.slot, self.hidden = root, slot, hidden
        self.work = root / "work"
        self.notes: list[str] = []
        self.results: dict[str, ExerciseResult] = {}
        self.cells: dict[str, tuple[int, str]] = {}
        self.skipped: set[str] = set()   # flagged: not run, not checked
        self.passed: set[str] = set()
        self.deadline = time.monotonic() + limits.notebook_timeout
        self.cpu_seconds = 0.0

    def result(self, exercise: Exercise, status: str, **kw) -> None:
        points = exercise.points if status == "pass" else 0
        cell = self.cells.get(exercise.name, (None, ""))[0]
        self.results[exercise.name] = ExerciseResult(status, points, exercise.points,
                                                     cell=cell, **kw)

    # ------------------------------------------------------------------ the job

    def _job(self, start: int) -> tuple[dict, dict[str, str]]:
        nonces = {secrets.token_hex(16): "session"}
        exercises = []
        for i, exercise in enumerate(self.lesson.exercises):
            nonce = secrets.token_hex(16)
            nonces[nonce] = exercise.name
            position, source = self.cells.get(exercise.name, (None, None))
            skip = exercise.name in self.skipped
            exercises.append({
                "name": exercise.name, "nonce": nonce, "check": exercise.check_source,
                "use": exercise.use_source, "cell": None if skip else source,
                "cell_name": f"<cell {position}>", "replay": i < start or skip})
        session = next(n for n, who in nonces.items() if who == "session")
        limits = bwrap.SandboxLimits(memory_bytes=self.limits.memory_bytes,
                                     processes=self.limits.processes,
                                     cpu_seconds=int(self.limits.notebook_timeout * 2))
        job = {"session": session, "scaffold": self.lesson.scaffold,
               "lesson_number": self.lesson.number, "exercises": exercises,
               "passed": sorted(self.passed), "threads": self.limits.threads,
               "cell_timeout": self.limits.cell_timeout,
               "check_timeout": self.limits.check_timeout,
               "message_limit": self.limits.output_limit,
               "limits": limits.__dict__, "process_cap": self.isolation.separate_users}
        return job, nonces

    def _start(self, job: dict) -> _Checker:
        env = _environment(self.isolation, self.root, self.limits)
        argv = [sys.executable, "-m", "segkit_course.grading.checker"]
        self.isolation.prepare(self.work, self.slot)
        argv = self.isolation.command(argv, self.work, self.slot, env, self.hidden)
        return _Checker(argv, env, self.work, job, self.root / "checker.err",
                        group=not self.isolation.on)

    # ------------------------------------------------------------------ following it

    def _startup_failure(self) -> str:
        try:
            text = (self.root / "checker.err").read_text(errors="replace").strip()
        except OSError:
            text = ""
        return text.splitlines()[-1] if text else "no message"

    def _follow(self, checker: _Checker, nonces: dict[str, str], start: int) -> int | None:
        """Read the checker's events; the index to go on from after trouble, or None."""
        who, event = checker.next_event(nonces, time.monotonic() + self.limits.startup_timeout)
        if who != "session" or event.get("event") != "ready":
            why = ("did not start within "f"{self.limits.startup_timeout:g} s" if who == "late"
                   else f"ended at start: {self._startup_failure()}")
            for exercise in self.lesson.exercises[start:]:
                if exercise.name not in self.results:
                    self.result(exercise, "error", message=f"not checked: the grader's "
                                                           f"process {why}")
            return None
        if event.get("failed_limits"):
            self.notes.append(f"limits not set here: {', '.join(event['failed_limits'])}")
        if event.get("scaffold_error") and start == 0:
            self.notes.append(f"the lesson's imports failed: {event['scaffold_error']}")
        for i in range(start, len(self.lesson.exercises)):
            exercise = self.lesson.exercises[i]
            if exercise.name in self.skipped:
                continue
            if not self._wait_result(checker, nonces, exercise):
                return i + 1
        who, event = checker.next_event(nonces, time.monotonic() + 5)
        if who == "session" and event.get("event") == "done":
            self.cpu_seconds += float(event.get("cpu") or 0.0)
        return None

    def _wait_result(self, checker: _Checker, nonces: dict[str, str],
                     exercise: Exercise) -> bool:
        """Record ``exercise``'s result; False when the checker had to be given up."""
        allowed = self.limits.cell_timeout + self.limits.check_timeout + 15
        deadline = min(time.monotonic() + allowed, self.deadline)
        while True:
            who, event = checker.next_event(nonces, deadline)
            if who == "late":
                if time.monotonic() >= self.deadline:
                    self.result(exercise, "timeout", hint=f"not checked: the notebook's "
                                f"{self.limits.notebook_timeout:g} s ran out")
                else:
                    self.result(exercise, "timeout", hint=f"`{exercise.name}` did not finish "
                                f"within {allowed - 15:g} s and ignored the interrupt: an "
                                "endless loop?")
                return False
            if who == "end":
                self.result(exercise, "error", message=(
                    f"Python ended while `{exercise.name}` was run or checked: the code "
                    f"crashed it (a fault, `os._exit`, or memory beyond the "
                    f"{self.limits.memory_bytes / 2**30:g} GiB cap)"))
                return False
            if who in self.results and who != exercise.name:
                self.result(next(e for e in self.lesson.exercises if e.name == who), "review",
                            hint="review: two results came back for it: its code wrote to "
                                 "the grader's result channel")
                continue
            if who != exercise.name:
                continue
            if event.get("event") == "begin":
                deadline = min(time.monotonic() + allowed, self.deadline)
                continue
            if event.get("status") in STATUSES and event.get("exercise") == exercise.name:
                self._record(exercise, event)
                return True

    def _record(self, exercise: Exercise, event: dict) -> None:
        status = event["status"]
        position, source = self.cells.get(exercise.name, (None, ""))
        what = f"cell {position} (`{_first_line(source)}`)"
        if event.get("cell_timeout"):
            self.notes.append(f"{what} ran longer than {self.limits.cell_timeout:g} s and "
                              "was stopped")
            if status == "missing":
                status, event["hint"] = "timeout", (f"cell {position}, which defines "
                                                    f"`{exercise.name}`, ran out of time "
                                                    "before it was defined")
        if event.get("cell_error"):
            self.notes.append(f"{what}: {event['cell_error']} (the grader runs only the "
                              "definitions of exercise cells, after the lesson's imports: "
                              "a helper defined elsewhere is not there)")
        if status == "pass":
            self.passed.add(exercise.name)
        self.result(exercise, status, mistake=event.get("mistake"), hint=event.get("hint"),
                    message=event.get("message"))

    # ------------------------------------------------------------------ all of it

    def run(self, cells: list[tuple[int, str]]) -> None:
        self.cells = exercise_cells(cells, [ex.name for ex in self.lesson.exercises])
        for exercise in self.lesson.exercises:
            if exercise.name in self.cells:
                reasons = _screened(exercise, self.cells[exercise.name][1])
                if reasons:
                    self.skipped.add(exercise.name)
                    self.result(exercise, "review", hint="review: " + "; ".join(reasons))
        start, restarts = 0, 0
        if len(self.skipped) == len(self.lesson.exercises):
            start = None  # everything flagged: nothing to run
        while start is not None and start < len(self.lesson.exercises):
            job, nonces = self._job(start)
            checker = self._start(job)
            again = start  # where to go on if it fails to report at all
            try:
                again = self._follow(checker, nonces, start)
            finally:  # after its last result it ends by itself
                checker.stop(wait=5.0 if again is None else 0.0)
            start = again
            if start is not None:
                restarts += 1
                if restarts > self.limits.max_restarts or time.monotonic() >= self.deadline:
                    for exercise in self.lesson.exercises[start:]:
                        if exercise.name not in self.results:
                            self.result(exercise, "error", message="not checked: the "
                                        "grader's process kept dying or ran out of time")
                    break
        self.notes += _refusal_notes([self.root / "guard.log", self.work / ".guard.log"])


def _refusal_notes(logs: list[Path]) -> list[str]:
    from segkit_course.sandbox import guard

    notes: list[str] = []
    for log in logs:
        for entry in guard.read_log(log):
            text = f"refused: {entry['what']}"
            if text not in notes:
                notes.append(text)
    if len(notes) > 10:
        notes = notes[:10] + [f"... and {len(notes) - 10} more refusals"]
    return notes


def notebook_digest(path: str | Path) -> str:
    """The SHA-256 of the notebook's bytes (what resumed grading compares)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def grade_notebook(submission: Submission, lesson: Lesson, limits: Limits = Limits(),
                   isolation: bwrap.Isolation | None = None) -> StudentResult:
    """Grade one student's notebook (see the module's docstring for how)."""
    isolation = isolation or bwrap.detect()
    start = time.monotonic()

    def everything(status: str, message: str) -> StudentResult:
        results = {ex.name: ExerciseResult(status, 0, ex.points, message=message)
                   for ex in lesson.exercises}
        return StudentResult(submission.student, submission.path, results, [message],
                             time.monotonic() - start, isolation.describe(), digest)

    digest = ""
    try:
        digest = notebook_digest(submission.path)
        cells = code_cells(submission.path)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        return everything("error", f"the notebook could not be read: {exc}")
    hidden = [lesson.solution.resolve().parent, submission.path.resolve().parent]
    with isolation.slot() as slot, tempfile.TemporaryDirectory(prefix="segkit-grade-") as tmp:
        root = Path(tmp)
        for folder in ("matplotlib", "tmp"):
            (root / "work" / folder).mkdir(parents=True)
        for font_list in _matplotlib_fonts():
            shutil.copy(font_list, root / "work" / "matplotlib")
        grading = _NotebookGrading(lesson, limits, isolation, root, slot, hidden)
        grading.run(cells)
    results = {ex.name: grading.results[ex.name] for ex in lesson.exercises}
    return StudentResult(submission.student, submission.path, results, grading.notes,
                         time.monotonic() - start, isolation.describe(), digest,
                         grading.cpu_seconds)


def _matplotlib_fonts() -> list[Path]:
    """matplotlib's font list, copied into each sandbox so that it is not rebuilt."""
    cache = os.environ.get("MPLCONFIGDIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
    return sorted(Path(cache).glob("fontlist-*.json"))
