"""Run one student's notebook robustly, then check each exercise with the grader's checks.

What :func:`grade_notebook` does with ``submissions/alice/03_training.ipynb``:

1. makes a temporary folder (``sandbox``) holding ``work/`` with a copy of the
   notebook, and its own ``home/``, ``tmp/`` and caches; the kernel starts in
   ``work/`` with ``HOME`` and ``TMPDIR`` inside the sandbox, and the guard
   (:mod:`segkit.grading.guard`) refuses writes outside it, programs and network.
   The set-up cell moves to the course folder only when ``segkit/`` or
   ``../segkit/`` is there, which is never the case in the sandbox; data is read
   through absolute paths (``segkit.toydata.embedded_root``);
2. runs every code cell as the student left it, one at a time, errors allowed:
   - a cell that runs longer than ``cell_timeout`` is interrupted and the next cell
     runs; a kernel that ignores the interrupt is restarted;
   - a cell that kills the kernel (a crash, ``os._exit``, running out of memory) is
     skipped: the kernel is restarted and the cells that had run are run again;
   - after ``notebook_timeout`` seconds the remaining cells are skipped;
   - at most ``output_limit`` characters of each cell's output are kept;
   - after each cell the kernel remembers the notebook's own version of each
     exercise (:func:`segkit.grading.kernel.snapshot`);
3. for each exercise of the lesson (from the solution notebook), runs the check the
   solution's check cell runs, on freshly imported ``segkit.checks``, within
   ``check_timeout`` (:mod:`segkit.grading.inkernel`), and reads the result line
   marked with a nonce;
4. deletes the sandbox.

The outcome of an exercise is one of ``pass``, ``fail`` (a catalogued mistake, with the
check's hint), ``not done`` (the stub is still there), ``missing`` (the notebook does not
define it), ``error`` (the student's code crashed, or the kernel died) and
``timeout``. Only ``pass`` earns the exercise's points.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
import zmq
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager

import segkit
from segkit.grading import guard, inkernel
from segkit.grading.discover import Exercise, Lesson, Submission

__all__ = ["CellRun", "ExerciseResult", "KernelSession", "Limits", "StudentResult",
           "STATUSES", "code_cells", "grade_notebook", "kernel_env"]

STATUSES = ("pass", "fail", "not done", "missing", "error", "timeout")
GRADING_KERNEL = "segkit-grading"
SEGKIT_PARENT = str(Path(segkit.__file__).resolve().parents[1])


@dataclass(frozen=True)
class Limits:
    """Time and size limits of one notebook's grading (seconds, characters)."""

    cell_timeout: float = 120.0       # one student cell
    notebook_timeout: float = 900.0   # all the student's cells together
    check_timeout: float = 60.0       # one exercise's check
    output_limit: int = 20_000        # output characters kept per cell
    startup_timeout: float = 120.0    # starting the kernel
    interrupt_grace: float = 5.0      # after an interrupt, before the kernel is restarted
    max_restarts: int = 3             # kernel restarts before giving up


# --------------------------------------------------------------------------- the kernel


class _GradingKernelSpecs(KernelSpecManager):
    """``segkit-grading``: ipykernel on this Python, started by segkit.grading.kernel."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name == GRADING_KERNEL:
            return KernelSpec(
                argv=[sys.executable, "-m", "segkit.grading.kernel", "-f", "{connection_file}",
                      "--HistoryManager.hist_file=:memory:"],
                display_name="segkit grading (Python 3)", language="python",
                interrupt_mode="signal", metadata={"debugger": False})
        return super().get_kernel_spec(kernel_name)


def _matplotlib_cache() -> Path:
    if os.environ.get("MPLCONFIGDIR"):
        return Path(os.environ["MPLCONFIGDIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "matplotlib"


def kernel_env(*, sandbox: str | Path | None = None, block_network: bool = True,
               block_processes: bool = False, log_path: str | Path | None = None,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a guarded kernel.

    Args:
        sandbox: a folder the kernel may write in, and nowhere else; it gets the
            kernel's ``HOME``, ``TMPDIR`` and caches (matplotlib's font list is copied
            in, so that it is not rebuilt). None: writes are not restricted.
        block_network: refuse connections beyond this machine.
        block_processes: refuse starting programs.
        log_path: where the guard logs what it refused.
        base: the environment to start from (default: this process's).
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [SEGKIT_PARENT, env.get("PYTHONPATH")] if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("SEGKIT_PROGRESS", "0")
    env.setdefault("OMP_NUM_THREADS", "1")  # several notebooks run at once: one thread each
    env.setdefault("MKL_NUM_THREADS", env["OMP_NUM_THREADS"])
    env.pop(guard.ENV_WRITE_ROOT, None)
    if sandbox is not None:
        sandbox = Path(sandbox)
        folders = {"HOME": "home", "TMPDIR": "tmp", "MPLCONFIGDIR": "matplotlib",
                   "IPYTHONDIR": "ipython", "XDG_CACHE_HOME": "cache",
                   "XDG_CONFIG_HOME": "config", "TORCH_HOME": "cache/torch"}
        for variable, folder in folders.items():
            (sandbox / folder).mkdir(parents=True, exist_ok=True)
            env[variable] = str(sandbox / folder)
        for font_list in _matplotlib_cache().glob("fontlist-*.json"):
            shutil.copy(font_list, sandbox / "matplotlib")
        env[guard.ENV_WRITE_ROOT] = str(sandbox)
    env[guard.ENV_NETWORK] = "block" if block_network else "allow"
    env[guard.ENV_PROCESSES] = "block" if block_processes else "allow"
    if log_path is not None:
        env[guard.ENV_LOG] = str(log_path)
    return env


@dataclass
class CellRun:
    """What running one piece of code in the kernel gave.

    ``status``: "ok", "error" (it raised: ``ename``/``evalue``), "timeout" (interrupted;
    ``stuck`` when the kernel did not answer the interrupt) or "died" (the kernel
    process ended). ``output`` holds the first characters of stdout, stderr and results;
    ``dropped`` counts the characters left out; ``marked`` holds the output lines that
    contain ``marker``, whatever their place.
    """

    status: str
    seconds: float
    output: str = ""
    dropped: int = 0
    ename: str | None = None
    evalue: str | None = None
    marked: list[str] = field(default_factory=list)
    stuck: bool = False


class KernelSession:
    """One guarded kernel: start it, run code in it with a time limit, restart it.

    Use it as a context manager so the kernel is always shut down::

        with KernelSession(cwd, kernel_env(sandbox=tmp)) as kernel:
            run = kernel.run("print(1 + 1)", timeout=10)   # run.output == "2\\n"
    """

    def __init__(self, cwd: str | Path, env: dict[str, str], *, output_limit: int = 20_000,
                 startup_timeout: float = 120.0, interrupt_grace: float = 5.0) -> None:
        self.cwd = str(cwd)
        self.env = env
        self.output_limit = output_limit
        self.startup_timeout = startup_timeout
        self.interrupt_grace = interrupt_grace
        self.km: KernelManager | None = None
        self.kc = None

    def __enter__(self) -> KernelSession:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def start(self) -> None:
        km = KernelManager(kernel_name=GRADING_KERNEL, kernel_spec_manager=_GradingKernelSpecs())
        if km.has_trait("transport_encryption") and zmq.has("curve"):
            km.transport_encryption = "auto"
        # The kernel's own stdout/stderr (not the notebook's output, which comes through
        # Jupyter's messages) would only add noise to the tool's report.
        km.start_kernel(cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=self.startup_timeout)
        except RuntimeError:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            raise
        self.km, self.kc = km, kc

    def shutdown(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self.km.cleanup_resources()
        self.km = self.kc = None

    def restart(self) -> None:
        """A fresh kernel in place of this one (whatever state that one was in)."""
        self.shutdown()
        self.start()

    @property
    def alive(self) -> bool:
        return self.km is not None and self.km.is_alive()

    def run(self, code: str, timeout: float, *, silent: bool = False,
            marker: str | None = None) -> CellRun:
        """Run ``code``; wait at most ``timeout`` seconds, then interrupt it."""
        assert self.kc is not None and self.km is not None, "start the kernel first"
        start = time.monotonic()
        result = CellRun("ok", 0.0)
        pending = ""  # the unfinished last line, to find marked lines split across messages
        msg_id = self.kc.execute(code, silent=silent, store_history=not silent,
                                 allow_stdin=False, stop_on_error=False)
        deadline = start + max(0.0, timeout)
        interrupted_at: float | None = None
        last_alive_check = start
        while True:
            now = time.monotonic()
            if interrupted_at is None and now >= deadline:
                try:
                    self.km.interrupt_kernel()
                except Exception:  # noqa: BLE001 - the kernel is already gone
                    pass
                interrupted_at = now
            if interrupted_at is not None and now >= interrupted_at + self.interrupt_grace:
                result.status, result.stuck = "timeout", True
                break
            if now - last_alive_check >= 1.0:
                last_alive_check = now
                if not self.km.is_alive():
                    result.status = "died"
                    break
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            text = ""
            if kind == "stream":
                text = content.get("text", "")
            elif kind in ("execute_result", "display_data"):
                text = str(content.get("data", {}).get("text/plain", "")) + "\n"
            elif kind == "error":
                result.ename, result.evalue = content.get("ename"), content.get("evalue")
                text = f"{result.ename}: {result.evalue}\n"
                if interrupted_at is None:
                    result.status = "error"
            elif kind == "status" and content.get("execution_state") == "idle":
                if interrupted_at is not None:
                    result.status = "timeout"
                break
            if text:
                room = self.output_limit - len(result.output)
                result.output += text[:max(room, 0)]
                result.dropped += max(len(text) - max(room, 0), 0)
                if marker is not None:
                    lines = (pending + text).split("\n")
                    pending = lines.pop()[-4096:]
                    result.marked += [line[line.index(marker):] for line in lines
                                      if marker in line]
        if marker is not None and pending and marker in pending:
            result.marked.append(pending[pending.index(marker):])
        self._drain_shell()
        result.seconds = time.monotonic() - start
        return result

    def _drain_shell(self) -> None:
        while True:
            try:
                self.kc.get_shell_msg(timeout=0)
            except Empty:
                return
            except Exception:  # noqa: BLE001 - channel closed with a dead kernel
                return


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


@dataclass
class StudentResult:
    """One student's grade: exercise name -> result, and notes on the run."""

    student: str
    path: Path
    exercises: dict[str, ExerciseResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return sum(r.points for r in self.exercises.values())

    @property
    def max_points(self) -> int:
        return sum(r.max_points for r in self.exercises.values())


# --------------------------------------------------------------------------- one notebook


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


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 70 else line[:67] + "..."


def _defines(source: str, name: str) -> bool:
    return re.search(rf"^\s*(def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*=",
                     source, re.MULTILINE) is not None


class _GiveUp(Exception):
    """The kernel kept dying: stop running this notebook."""


class _NotebookRun:
    """Runs one student's cells and checks in a KernelSession, recovering from trouble."""

    def __init__(self, session: KernelSession, lesson: Lesson, limits: Limits) -> None:
        self.session = session
        self.lesson = lesson
        self.limits = limits
        self.notes: list[str] = []
        self.completed: list[str] = []   # sources of the cells that ran to their end
        self.stopped: dict[int, tuple[str, str]] = {}  # cell -> ("timeout"/"died", source)
        self.restarts = 0
        self.gave_up = False
        names = [exercise.name for exercise in lesson.exercises]
        self.snapshot_code = (f"__import__('sys').modules['_segkit_grader']"
                              f".snapshot(globals(), {names!r})")

    # ------------------------------------------------------------------ helpers

    def _snapshot(self) -> None:
        self.session.run(self.snapshot_code, timeout=30, silent=True)

    def _recover(self, why: str) -> None:
        """Restart the kernel and run the completed cells again."""
        self.restarts += 1
        if self.restarts > self.limits.max_restarts:
            self.notes.append(f"gave up after {self.limits.max_restarts} kernel restarts")
            raise _GiveUp()
        try:
            self.session.restart()
        except RuntimeError as exc:
            self.notes.append(f"the kernel did not start again after {why}: {exc}")
            raise _GiveUp() from None
        for source in self.completed:
            run = self.session.run(source, timeout=self.limits.cell_timeout)
            if run.status in ("died", "timeout"):
                self.notes.append(f"a cell that had run before {run.status} when run again "
                                  f"after {why}")
                raise _GiveUp()
            self._snapshot()

    # ------------------------------------------------------------------ the student's cells

    def run_cells(self, cells: list[tuple[int, str]]) -> None:
        deadline = time.monotonic() + self.limits.notebook_timeout
        try:
            for position, source in cells:
                if not source.strip():
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    self.notes.append(f"the notebook ran out of time "
                                      f"({self.limits.notebook_timeout:g} s) before cell "
                                      f"{position}: cells {position}-{cells[-1][0]} did not run")
                    return
                run = self.session.run(source, timeout=min(self.limits.cell_timeout, left))
                what = f"cell {position} (`{_first_line(source)}`)"
                if run.dropped:
                    self.notes.append(f"{what} printed {len(run.output) + run.dropped:,} "
                                      f"characters; kept {len(run.output):,}")
                if run.status in ("ok", "error"):
                    self.completed.append(source)
                    self._snapshot()
                elif run.status == "timeout":
                    self.stopped[position] = ("timeout", source)
                    limit = min(self.limits.cell_timeout, left)
                    note = f"{what} ran longer than {limit:g} s and was stopped"
                    if run.stuck:
                        note += (" (it ignored the interrupt: the kernel was restarted and "
                                 "the cells before were run again)")
                    self.notes.append(note)
                    if run.stuck:
                        self._recover(f"{what} ignored the interrupt")
                    else:
                        self._snapshot()
                else:  # died
                    self.stopped[position] = ("died", source)
                    self.notes.append(f"{what} crashed the kernel; it was restarted and "
                                      "the cells before were run again")
                    self._recover(f"{what} crashed the kernel")
        except _GiveUp:
            self.gave_up = True

    # ------------------------------------------------------------------ the grader's checks

    def check(self, exercise: Exercise, more: bool = True) -> ExerciseResult:
        """Check ``exercise``; ``more``: other checks follow (a broken kernel is restarted)."""
        points = exercise.points

        def result(status: str, **kw) -> ExerciseResult:
            return ExerciseResult(status, points if status == "pass" else 0, points, **kw)

        if self.gave_up:
            return result("error", message="not checked: the kernel kept crashing")
        nonce = secrets.token_hex(12)
        marker = inkernel.marker(nonce)
        run = self.session.run(inkernel.snippet(exercise.name, exercise.check_source, nonce),
                               timeout=self.limits.check_timeout, marker=marker)
        try:
            if run.status == "died":
                if more:
                    self._recover(f"checking `{exercise.name}` crashed the kernel")
                return result("error", message=f"the kernel died while `{exercise.name}` was "
                                               "checked: the code crashed Python")
            if run.status == "timeout":
                if run.stuck and more:
                    self._recover(f"checking `{exercise.name}` ignored the interrupt")
                return result("timeout", hint=f"the check did not finish within "
                                              f"{self.limits.check_timeout:g} s: an endless "
                                              f"loop in `{exercise.name}`?")
        except _GiveUp:
            self.gave_up = True
            return result("error" if run.status == "died" else "timeout",
                          message="the kernel could not be brought back")
        for line in run.marked:
            try:
                found = json.loads(line[len(marker):])
            except ValueError:
                continue
            if found.get("exercise") == exercise.name and found.get("status") in STATUSES:
                outcome = result(found["status"], mistake=found.get("mistake"),
                                 hint=found.get("hint"), message=found.get("message"))
                return self._explain_missing(exercise, outcome)
        return result("error", message="the check gave no result")

    def _explain_missing(self, exercise: Exercise, outcome: ExerciseResult) -> ExerciseResult:
        """A missing exercise whose defining cell was stopped: say so (timeout / error)."""
        if outcome.status != "missing":
            return outcome
        for position, (how, source) in sorted(self.stopped.items()):
            if _defines(source, exercise.name):
                if how == "timeout":
                    outcome.status = "timeout"
                    outcome.hint = (f"cell {position}, which defines `{exercise.name}`, ran "
                                    "out of time before it was defined")
                else:
                    outcome.status = "error"
                    outcome.hint = (f"cell {position}, which defines `{exercise.name}`, "
                                    "crashed the kernel")
                break
        return outcome


def _refusal_notes(log_path: Path) -> list[str]:
    notes, seen = [], set()
    for entry in guard.read_log(log_path):
        text = f"refused: {entry['what']}"
        if text not in seen:
            seen.add(text)
            notes.append(text)
    if len(notes) > 10:
        notes = notes[:10] + [f"... and {len(notes) - 10} more refusals"]
    return notes


def grade_notebook(submission: Submission, lesson: Lesson,
                   limits: Limits = Limits()) -> StudentResult:
    """Grade one student's notebook (see the module's docstring for how)."""
    start = time.monotonic()

    def everything(status: str, message: str) -> dict[str, ExerciseResult]:
        return {ex.name: ExerciseResult(status, 0, ex.points, message=message)
                for ex in lesson.exercises}

    try:
        cells = code_cells(submission.path)
    except (OSError, ValueError, nbformat.ValidationError) as exc:
        message = f"the notebook could not be read: {exc}"
        return StudentResult(submission.student, submission.path,
                             everything("error", message), [message],
                             time.monotonic() - start)
    with tempfile.TemporaryDirectory(prefix="segkit-grade-") as tmp:
        sandbox = Path(tmp)
        work = sandbox / "work"
        work.mkdir()
        shutil.copy(submission.path, work / submission.path.name)
        log_path = sandbox / "guard.log"
        env = kernel_env(sandbox=sandbox, block_network=True, block_processes=True,
                         log_path=log_path)
        session = KernelSession(work, env, output_limit=limits.output_limit,
                                startup_timeout=limits.startup_timeout,
                                interrupt_grace=limits.interrupt_grace)
        try:
            session.start()
        except RuntimeError as exc:
            message = f"the kernel did not start: {exc}"
            return StudentResult(submission.student, submission.path,
                                 everything("error", message), [message],
                                 time.monotonic() - start)
        try:
            run = _NotebookRun(session, lesson, limits)
            run.run_cells(cells)
            last = len(lesson.exercises) - 1
            results = {exercise.name: run.check(exercise, more=i < last)
                       for i, exercise in enumerate(lesson.exercises)}
            notes = run.notes
        finally:
            session.shutdown()
        notes += _refusal_notes(log_path)
    return StudentResult(submission.student, submission.path, results, notes,
                         time.monotonic() - start)
