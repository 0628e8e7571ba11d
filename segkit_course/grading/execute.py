"""Grade one student's notebook: run it in its sandbox, ask, judge elsewhere.

What :func:`grade_notebook` does with ``submissions/alice/04_metrics.ipynb``:

1. reads the file as hostile input (a regular file, size-capped, never through a link:
   :mod:`segkit_course.grading.notebook`) and decides, cell by cell, what runs: every
   code cell in order, except the instructor's heavy demonstration cells (skipped, or
   their stand-in run instead);
2. draws, in a judge process, each exercise's cases from a seed made for this student,
   this exercise and this grading run (:mod:`segkit_course.grading.judge`);
3. starts the grading runner in a sandbox (:mod:`segkit_course.grading.runner`,
   :mod:`segkit_course.sandbox.bwrap`; where there is none, with the guard of
   :mod:`segkit_course.sandbox.guard`), where segkit lacks the lesson's references
   (:mod:`segkit_course.grading.stubbed`); the notebook runs as its author wrote it;
4. asks the exercises in the lesson's order: sends the cases, gets the answers back as
   capped bytes, has a judge process judge them, then hands the exercise's references
   back to the sandbox (and segkit's version under its name if it did not pass, as the
   lesson's ``checks.use`` does), and asks the next one;
5. deals with trouble: a cell that ends Python is left out and the notebook runs again;
   an answer that ends Python or never comes is that exercise's ``error`` or
   ``timeout``, and a new sandbox goes on with the next; the sandbox's CPU time is
   counted across all its processes and stopped at its budget; a notebook stopped by the
   clock (not its CPU time) is marked to be graded again alone
   (:func:`segkit_course.grading.grade_all`).

The outcome of an exercise is one of :data:`STATUSES`; only ``pass`` earns its points.
``review`` is for evidence of tampering with the grader (answers that its ask step did
not write, a second answer to one question): withheld, with the reason, for the
instructor to look at. What the static screen finds (:mod:`segkit_course.grading.screen`)
is only a flag: it never changes a status or a point.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from segkit_course.grading.discover import Lesson, Submission

__all__ = ["ExerciseResult", "Limits", "StudentResult", "STATUSES", "grade_notebook",
           "student_seed"]

STATUSES = ("pass", "fail", "not done", "missing", "error", "timeout", "review")


@dataclass(frozen=True)
class Limits:
    """Time, size and resource limits of one notebook's grading.

    Times are CPU seconds of the student's own processes (what a neighbour's load
    cannot use up), except the ``*_wall`` ones, which stop code that sleeps or waits:
    they are generous, and a notebook stopped by one is graded again alone."""

    cell_cpu: float = 120.0          # one cell of the notebook
    cell_wall: float = 600.0
    ask_cpu: float = 60.0            # asking one exercise its questions
    ask_wall: float = 300.0
    notebook_cpu: float = 900.0      # the whole sandbox, every process together
    notebook_wall: float = 1800.0
    startup_timeout: float = 120.0   # from start to ready (Python and IPython)
    output_limit: int = 20_000       # characters kept of each hint and message
    max_restarts: int = 3            # new sandboxes after one ended
    memory_bytes: int = 4 * 2**30    # heap of each process (RLIMIT_DATA)
    processes: int = 128             # processes and threads (sandbox user only)
    disk_bytes: int = 512 * 2**20    # the sandbox's work folder, all files together
    threads: int = 1                 # torch / BLAS threads in the sandbox
    notebook_bytes: int = 32 * 2**20  # the largest notebook file graded
    answers_bytes: int = 64 * 2**20  # the largest answers of one exercise


@dataclass
class ExerciseResult:
    """One exercise of one student: ``status`` is one of :data:`STATUSES`."""

    status: str
    points: int
    max_points: int
    mistake: str | None = None
    hint: str | None = None
    message: str | None = None
    seed: int | None = None       # the seed its cases were drawn with
    repeat: str | None = None     # the notebook call that repeats them
    flags: list[str] = field(default_factory=list)  # for the instructor; never points


@dataclass
class StudentResult:
    """One student's grade: exercise name -> result, and notes on the run."""

    student: str
    path: Path
    exercises: dict[str, ExerciseResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    isolation: str = ""
    digest: str = ""
    cpu_seconds: float = 0.0
    login: str = ""
    retry: bool = False           # stopped by the clock, not its CPU time: grade it alone
    cell_errors: set = field(default_factory=set)  # (cell code key, error): not saved

    @property
    def points(self) -> int:
        return sum(r.points for r in self.exercises.values())

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.exercises.values())

    @property
    def flags(self) -> list[str]:
        return [f"{name}: {flag}" for name, res in self.exercises.items() for flag in res.flags]


def student_seed(run_seed: int, student: str, exercise: str) -> int:
    """The seed of one student's cases for one exercise in one grading run: 62 bits, so
    no table of answers by seed can be carried in a notebook."""
    digest = hashlib.sha256(f"{run_seed}/{student}/{exercise}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def notebook_digest(data: bytes) -> str:
    """The SHA-256 of the notebook's bytes (what resumed grading compares)."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- the sandbox


def _environment(run, root: Path) -> dict[str, str]:
    """The runner's environment: in the sandbox, a clean one; else a guarded one."""
    from segkit_course.sandbox.bwrap import SANDBOX_WORK
    from segkit_course.sandbox.kernel import SEGKIT_PARENT, kernel_env, thread_env

    common = {"PYTHONDONTWRITEBYTECODE": "1", "SEGKIT_PROGRESS": "0", "SEGKIT_DEVICE": "cpu",
              "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", **thread_env(run.limits.threads)}
    if run.isolation.on:
        work = SANDBOX_WORK
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                "HOME": f"{work}/home", "TMPDIR": f"{work}/tmp",
                "MPLCONFIGDIR": f"{work}/matplotlib", "IPYTHONDIR": f"{work}/ipython",
                "XDG_CACHE_HOME": f"{work}/cache", "PYTHONPATH": SEGKIT_PARENT,
                "SEGKIT_GRADING_FONTS": "/tmp/ro/fonts", **common}
    env = kernel_env(sandbox=root, block_network=True, block_processes=True,
                     log_path=root / "guard.log")
    for name in [n for n in env if n.startswith(("JPY_", "JUPYTER_"))]:
        env.pop(name)
    env["PYTHONPATH"] = os.pathsep.join([str(run.segkit_copy.root), SEGKIT_PARENT])
    env["IPYTHONDIR"] = str(root / "ipython")
    return {**env, **common}


def _sandbox_limits(run) -> dict:
    from segkit_course.sandbox.bwrap import SandboxLimits

    limits = run.limits
    return vars(SandboxLimits(memory_bytes=limits.memory_bytes,
                              cpu_seconds=int(limits.notebook_cpu) + 1,
                              processes=limits.processes, disk_bytes=limits.disk_bytes))


def start_session(run, root: Path, slot: int, deadline: float, submission: Path):
    """A runner process for this run, in its sandbox (or guarded, in ``root``). Neither
    the solutions' folder nor the one holding ``submission`` can be shown in it."""
    from segkit_course.grading.session import Session
    from segkit_course.sandbox.bwrap import SEGKIT_PACKAGE, SandboxLimits

    limits = run.limits
    env = _environment(run, root)
    binds = [(run.segkit_copy.package, str(SEGKIT_PACKAGE))]
    binds += [(font, f"/tmp/ro/fonts/{font.name}") for font in run.fonts]
    sandbox = SandboxLimits(**_sandbox_limits(run))
    argv = run.isolation.command([sys.executable, "-m", "segkit_course.grading.runner"], env,
                                 slot, binds=binds, limits=sandbox,
                                 hidden=[run.lesson.solution.resolve().parent,
                                         Path(os.path.abspath(submission)).parent])
    cwd = root / "work"
    cwd.mkdir(exist_ok=True)
    return Session(argv, env, str(cwd), max_payload=limits.answers_bytes,
                   cpu_budget=limits.notebook_cpu, wall_deadline=deadline,
                   group=not run.isolation.on)


# --------------------------------------------------------------------------- one notebook


_STUB_ERROR = re.compile(r"^NotImplementedError: Exercise \w+: write your code here")
_CHANNEL_TAMPERED = ("review: {what}: the notebook's code wrote to the grader's channel "
                     "(withheld for the instructor to look at)")


class _NotebookGrading:
    """One notebook: its sandboxes (one, or a few when one ends), its questions, its
    results. :meth:`grade` does it all."""

    def __init__(self, sub: Submission, run, cells: list) -> None:
        self.sub, self.run, self.cells = sub, run, cells
        self.lesson, self.limits = run.lesson, run.limits
        self.exercises = list(run.lesson.exercises)
        self.results: dict[str, ExerciseResult] = {}
        self.notes: list[str] = []
        self.cell_errors: list[tuple[int, str]] = []  # (cell, what it raised)
        self.left_out: set[int] = set()
        self.retry = False
        self.cpu = 0.0
        self.seeds = {ex.name: student_seed(run.seed, sub.student, ex.name)
                      for ex in self.exercises}
        self.cases: dict[str, bytes] = {}
        self.deadline = time.monotonic() + self.limits.notebook_wall
        self.current: int | None = None
        self.baseline = 0  # the sandbox's own processes, before any student code

    def result(self, name: str, status: str, **fields) -> None:
        exercise = next(ex for ex in self.exercises if ex.name == name)
        if name in self.results and self.results[name].status == "review":
            return  # tampering found first stays what the row says
        limit = self.limits.output_limit
        fields = {k: (v[:limit] if isinstance(v, str) else v) for k, v in fields.items()}
        points = exercise.points if status == "pass" else 0
        self.results[name] = ExerciseResult(status, points, exercise.points,
                                            seed=self.seeds[name], **fields)

    def tampered(self, name, what: str) -> None:
        if name in {ex.name for ex in self.exercises}:
            self.results.pop(name, None)
            self.result(name, "review", hint=_CHANNEL_TAMPERED.format(what=what))

    def left(self, start: int, status: str, message: str) -> None:
        """Every exercise from ``start`` on that has no result yet gets ``status`` (a
        ``review`` says why in its hint, as every review does)."""
        for exercise in self.exercises[start:]:
            if exercise.name not in self.results:
                if status == "review":
                    self.result(exercise.name, status, hint=message)
                else:
                    self.result(exercise.name, status, message=message)

    def grade(self) -> None:
        from segkit_course.grading.notebook import run_plan

        for exercise in self.exercises:
            self.cases[exercise.name] = self.run.judges.draw(
                self.lesson.number, exercise.name, self.seeds[exercise.name])
        start, restarts = 0, 0
        while start < len(self.exercises):
            plan = run_plan(self.cells, dict(self.lesson.heavy), self.left_out)
            start = self.session(start, plan)
            if start >= len(self.exercises):
                break
            restarts += 1
            if restarts > self.limits.max_restarts or time.monotonic() > self.deadline:
                self.left(start, "error", "not asked: the notebook's sandbox kept ending "
                                          "or ran out of time")
                break
        self.note_cell_errors()

    def note_cell_errors(self) -> None:
        """One note on the cells that raised, leaving out the stubs of exercises not done
        (their status says it) and the cells that raise in the solution as well when it
        is graded (the lesson's own cells that need a reference)."""
        from segkit_course.grading.notebook import same_code_key

        sources = {cell.index: cell.source for cell in self.cells}
        expected = getattr(self.run, "expected_errors", set())
        errors = [f"cell {index}: {error}" for index, error in self.cell_errors
                  if (same_code_key(sources.get(index, "")), error) not in expected
                  and not _STUB_ERROR.search(error)]
        if errors:
            more = f" and {len(errors) - 3} more" if len(errors) > 3 else ""
            self.notes.append(f"{len(errors)} cell(s) raised while the notebook ran "
                              f"({'; '.join(errors[:3])}{more})")

    # ------------------------------------------------------------------ one sandbox

    def session(self, start: int, plan: list[dict]) -> int:
        """Run the notebook in a new sandbox and ask from exercise ``start`` on; the
        index to go on from in another sandbox (``len(exercises)``: all done)."""
        import json

        job = {"cells": plan, "exercises": [ex.name for ex in self.exercises],
               "lesson": self.lesson.number, "process_cap": self.run.isolation.separate_users,
               "sandbox_limits": _sandbox_limits(self.run),
               "limits": {k: getattr(self.limits, k) for k in
                          ("cell_cpu", "cell_wall", "ask_cpu", "ask_wall")}}
        self.cell_errors = []  # of this try (an earlier one may have stopped half-way)
        with self.run.isolation.slot() as slot, tempfile.TemporaryDirectory(
                prefix="segkit-grade-", ignore_cleanup_errors=True) as tmp:
            session = start_session(self.run, Path(tmp), slot, self.deadline, self.sub.path)
            done = len(self.exercises)
            try:
                session.send({"op": "job"}, json.dumps(job).encode())
                if not self.ready(session, start):
                    return done
                outcome = self.run_cells(session)
                if outcome != "ran":
                    return start if outcome == "again" else done
                self.replay(session, start)
                for i in range(start, done):
                    if not self.ask(session, self.exercises[i]):
                        return i + 1
                extra = session.processes() - self.baseline
                if extra > 0:
                    self.notes.append(f"{extra} process(es) the notebook started were still "
                                      "running when the notebook ended, and were stopped")
                session.send({"op": "end"})
                self.wait_for(session, "done", time.monotonic() + 10)
                return done
            finally:
                session.stop(wait=2.0)
                self.cpu += session.cpu_seconds
                self.notes += _refusal_notes(Path(tmp) / "guard.log", self.notes)

    def wait_for(self, session, event: str, deadline: float, asked: str | None = None):
        """Frames until the event ``event`` (its header), ENDED or LATE. Answers that
        arrive unasked, or twice, are tampering (``asked``: the exercise being asked)."""
        from segkit_course.grading.session import ENDED, LATE

        while True:
            got = session.next_frame(deadline)
            if got in (ENDED, LATE):
                return got
            header, payload = got
            if header.get("event") == "answers" and (
                    header.get("exercise") != asked or header.get("exercise") in self.results):
                what = ("a second answer to one question" if header.get("exercise") in
                        self.results else "answers nobody asked for")
                self.tampered(header.get("exercise"), what)
                continue
            if header.get("event") == event:
                return header, payload
            if header.get("event") in ("cell", "cell-end"):
                self.on_cell(header)

    def ready(self, session, start: int) -> bool:
        from segkit_course.grading.session import LATE

        got = self.wait_for(session, "ready", time.monotonic() + self.limits.startup_timeout)
        if isinstance(got, tuple):
            self.baseline = session.processes()
            failed = got[0].get("failed_limits") or []
            if failed and start == 0:
                self.notes.append(f"limits not set here: {', '.join(map(str, failed))}")
            return True
        # no cell of the notebook has run yet: the machine's trouble, not the student's
        self.retry = True
        if got == LATE:
            why = f"did not start within {self.limits.startup_timeout:g} s"
        else:
            why = f"ended at start: {session.stderr_tail()}"
        self.left(start, "error", f"not asked: the grading sandbox {why}")
        return False

    # ------------------------------------------------------------------ the cells

    def on_cell(self, header: dict) -> None:
        index = header.get("index")
        if header.get("event") == "cell":
            self.current = index
            return
        self.current = None
        status = header.get("status")
        if status == "error":
            self.cell_errors.append((index, str(header.get("error"))[:200]))
        elif status == "timeout-cpu":
            self.notes.append(f"cell {index} ran past its {self.limits.cell_cpu:g} "
                              "CPU-seconds and was stopped")
        elif status == "timeout-wall":
            self.retry = True
            self.notes.append(f"cell {index} was still running after "
                              f"{self.limits.cell_wall:g} s and was stopped")

    def run_cells(self, session) -> str:
        """"ran" when every cell ran; "again" when a cell ended the sandbox (it is left
        out and the notebook runs again); "stop" when nothing more can be done."""
        from segkit_course.grading.session import LATE

        self.current = None
        got = self.wait_for(session, "ran", self.deadline)
        if isinstance(got, tuple):
            return "ran"
        if session.broken:
            self.left(0, "review", _CHANNEL_TAMPERED.format(what=f"a broken frame "
                                                                 f"({session.broken})"))
            return "stop"
        if got == LATE or session.killed == "wall":
            self.retry = True
            self.left(0, "timeout", f"not asked: the notebook was still running after "
                                    f"{self.limits.notebook_wall:g} s")
            return "stop"
        cell = self.current
        why = (f"used up the notebook's {self.limits.notebook_cpu:g} CPU-seconds"
               if session.killed == "cpu" else "ended Python (a fault, `os._exit`, memory "
               f"beyond the {self.limits.memory_bytes / 2**30:g} GiB cap)")
        if cell is None or cell in self.left_out:
            self.left(0, "error", f"not asked: the notebook {why} outside any cell")
            return "stop"
        self.left_out.add(cell)
        self.notes.append(f"cell {cell} {why}: it was left out and the notebook ran again")
        return "again"

    def replay(self, session, start: int) -> None:
        """In a new sandbox, hand back what the earlier ones had been given."""
        for exercise in self.exercises[:start]:
            if exercise.name in self.results:
                self.release(session, exercise)

    # ------------------------------------------------------------------ the questions

    def ask(self, session, exercise) -> bool:
        """Ask ``exercise`` and judge the answers; False when this sandbox is done for."""
        from segkit_course.grading.session import LATE

        name = exercise.name
        if name in self.results:  # withheld already (answers came unasked): not asked
            return self.release(session, exercise)
        session.send({"op": "ask", "exercise": name}, self.cases[name])
        deadline = min(time.monotonic() + self.limits.ask_wall + 30, self.deadline)
        got = self.wait_for(session, "answers", deadline, asked=name)
        if not isinstance(got, tuple):
            if session.broken:
                self.left(0, "review", _CHANNEL_TAMPERED.format(
                    what=f"a broken frame ({session.broken})"))
            elif got == LATE or session.killed:
                self.retry = self.retry or session.killed != "cpu"
                self.result(name, "timeout", hint=f"`{name}` had not answered when the "
                            f"sandbox's {'CPU time' if session.killed == 'cpu' else 'time'} "
                            "ran out: an endless loop?")
            else:
                self.result(name, "error", message=(
                    f"Python ended while `{name}` was asked: the code crashed it (a fault, "
                    f"`os._exit`, or memory beyond the {self.limits.memory_bytes / 2**30:g} "
                    "GiB cap)"))
            return False
        self.record(exercise, *got)
        return self.release(session, exercise)

    def record(self, exercise, header: dict, payload: bytes) -> None:
        from segkit_course.grading.judge import JudgeError

        name = exercise.name
        if header.get("missing"):
            self.result(name, "missing", hint=str(header["missing"]))
        elif header.get("timeout"):
            wall = header["timeout"] == "wall"
            self.retry = self.retry or wall
            limit = (f"{self.limits.ask_wall:g} s" if wall
                     else f"{self.limits.ask_cpu:g} CPU-seconds")
            self.result(name, "timeout", hint=f"`{name}` did not answer within {limit}: an "
                                              "endless loop?")
        elif header.get("error"):
            self.result(name, "error", message=f"it could not be asked: {header['error']}")
        else:
            try:
                verdict = self.run.judges.judge(self.lesson.number, name, self.seeds[name],
                                                payload, self.limits.answers_bytes)
            except JudgeError as exc:
                self.result(name, "error", message=f"its answers could not be judged: {exc}")
                return
            flags = (["called segkit's own version of a graded exercise, which is not "
                      "available while grading"] if verdict.get("reference_called") else [])
            self.result(name, verdict.get("status", "error"), mistake=verdict.get("mistake"),
                        hint=verdict.get("hint"), message=verdict.get("message"),
                        repeat=verdict.get("repeat"), flags=flags)

    def release(self, session, exercise) -> bool:
        """Hand ``exercise``'s references back (and segkit's version under its name when
        it did not pass); False when the sandbox did not take them."""
        passed = self.results.get(exercise.name, ExerciseResult("", 0, 0)).status == "pass"
        header = {"op": "release", "exercise": exercise.name,
                  "definitions": self.run.segkit_copy.release(exercise.name),
                  "rebind": None if passed else exercise.reference}
        session.send(header)
        got = self.wait_for(session, "released", time.monotonic() + 60)
        if not isinstance(got, tuple):
            return False
        for error in got[0].get("errors") or []:
            self.notes.append(f"handing back {exercise.name}'s reference failed: {error}"[:300])
        return True


def _refusal_notes(log: Path, already: list[str]) -> list[str]:
    """What the guard refused (only without a sandbox: the guard's log)."""
    from segkit_course.sandbox import guard

    notes: list[str] = []
    for entry in guard.read_log(log):
        text = f"refused: {entry['what']}"
        if text not in notes and text not in already:
            notes.append(text)
    if len(notes) > 10:
        notes = notes[:10] + [f"... and {len(notes) - 10} more refusals"]
    return notes


def _flags(cells: list, lesson: Lesson) -> dict[str, list[str]]:
    """exercise -> what the static screen finds in the last cell that defines it."""
    from segkit_course.grading.screen import defining_cells, screen

    found = {}
    for exercise in lesson.exercises:
        cell = defining_cells(cells, [e.name for e in lesson.exercises]).get(exercise.name)
        if cell is not None:
            found[exercise.name] = [f"screen: {reason}" for reason in screen(cell, exercise)]
    return found


def grade_notebook(submission: Submission, run) -> StudentResult:
    """Grade one student's notebook in the grading run ``run`` (see the module's
    docstring); never raises for what the notebook holds."""
    from segkit_course.grading.notebook import (
        NotebookError,
        code_cells,
        read_submission,
        same_code_key,
    )

    start = time.monotonic()
    isolation = run.isolation.describe()

    def everything(status: str, message: str, digest: str = "") -> StudentResult:
        results = {ex.name: ExerciseResult(status, 0, ex.points, message=message)
                   for ex in run.lesson.exercises}
        return StudentResult(submission.student, submission.path, results, [message],
                             time.monotonic() - start, isolation, digest,
                             login=submission.login)

    if submission.problem:
        return everything("error", f"not graded: {submission.problem}")
    try:
        data = read_submission(submission.path, run.limits.notebook_bytes)
        cells = code_cells(data)
    except NotebookError as exc:
        return everything("error", f"the notebook could not be read: {exc}")
    grading = _NotebookGrading(submission, run, cells)
    grading.grade()
    for name, flags in _flags(cells, run.lesson).items():
        if name in grading.results:
            grading.results[name].flags += flags
    submission_errors = {(same_code_key(next(c.source for c in cells if c.index == index)),
                          error) for index, error in grading.cell_errors}
    notes = ([submission.note] if submission.note else []) + grading.notes
    results = {ex.name: grading.results[ex.name] for ex in run.lesson.exercises}
    return StudentResult(submission.student, submission.path, results, notes,
                         time.monotonic() - start, isolation, notebook_digest(data),
                         grading.cpu, submission.login, grading.retry, submission_errors)
