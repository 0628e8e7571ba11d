"""The grading runner: the process in a student's sandbox that runs their notebook as they
wrote it, then answers the grader's questions.

    python -m segkit_course.grading.runner      # started by segkit_course.grading.execute

It is the only place a student's code runs. What it does, in order:

1. reads its job (the notebook's code cells, the exercises, the limits) from stdin, keeps
   copies of stdin and stdout as the channel to the grader
   (:mod:`segkit_course.grading.channel`), and points the standard streams at
   ``/dev/null``: the notebook's prints go nowhere;
2. sets its hard limits (memory, CPU, file size, processes) and says it is ready;
3. runs every code cell of the notebook in order, as Jupyter would (IPython: magics,
   ``display``, ``get_ipython``), each within a CPU-time and a wall-clock limit; a cell
   that raises or runs out of time is reported and the next one runs. Cells the
   instructor tagged as heavy demonstrations are skipped or replaced by the
   instructor's stand-in (decided by the grader, :mod:`segkit_course.grading.notebook`);
4. after each cell, notes the objects the exercises' names hold: an exercise is the
   last student-written function, class or callable its name was bound to;
5. answers: for each question (an exercise and its cases, drawn by the grader), runs
   the exercise check's ``ask`` step on the student's object and sends back the answers
   as bytes (``segkit.checks.answers.dump``: plain data, no pickle); when the grader
   hands back an exercise's references (:mod:`segkit_course.grading.stubbed`), puts them
   into segkit's modules and, if told, binds the exercise's name to segkit's version.

Nothing here is trusted: the student's code had this whole process before step 5, and
may have changed anything in it. The grader judges the answers in a process that never
ran student code, on cases drawn fresh for this grading, so a forged answer has to be a
right answer to questions never seen before.
"""

from __future__ import annotations

import importlib
import os
import signal

__all__ = ["main"]


class _Timeout(BaseException):
    """A cell or an answer ran past its CPU time or its wall-clock time."""


def _on_timer(signum, frame):
    raise _Timeout("cpu" if signum == signal.SIGPROF else "wall")


def limited(cpu: float, wall: float, run):
    """``run()`` within ``cpu`` seconds of this process's CPU time and ``wall`` seconds
    of clock time; raises :class:`_Timeout` when either runs out."""
    signal.signal(signal.SIGPROF, _on_timer)
    signal.signal(signal.SIGALRM, _on_timer)
    signal.setitimer(signal.ITIMER_PROF, max(cpu, 0.01))
    signal.setitimer(signal.ITIMER_REAL, max(wall, 0.01))
    try:
        return run()
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)


class Channel:
    """Frames to and from the grader, on copies of the original stdin and stdout."""

    def __init__(self) -> None:
        from segkit_course.grading.channel import FrameReader, frame

        self._frame, self._write = frame, os.write
        self.out = os.dup(1)
        self.reader = FrameReader(os.fdopen(os.dup(0), "rb"), max_payload=256 * 2**20)
        null = os.open(os.devnull, os.O_RDWR)
        for standard in (0, 1, 2):
            os.dup2(null, standard)

    def send(self, header: dict, payload: bytes | None = None) -> None:
        data = memoryview(self._frame(header, payload))
        while data:
            data = data[self._write(self.out, data):]

    def receive(self) -> tuple[dict, bytes] | None:
        return self.reader.read()


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_students(obj) -> bool:
    """A function, class or callable written in the notebook (not segkit's)."""
    if obj is None or not callable(obj):
        return False
    module = getattr(obj, "__module__", None) or ""
    return not (module == "segkit" or module.startswith("segkit."))


class Notebook:
    """The student's notebook in an IPython shell: cells run in order, exercises noted."""

    def __init__(self, channel: Channel, job: dict) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        config.InteractiveShell.colors = "NoColor"
        self.shell = InteractiveShell.instance(config=config)
        self.channel, self.job = channel, job
        self.exercises = list(job["exercises"])
        self.candidates: dict[str, object] = {}

    def run_all(self) -> None:
        limits = self.job["limits"]
        for cell in self.job["cells"]:
            if cell["mode"] == "skip":
                continue
            source = cell["instead"] if cell["mode"] == "instead" else cell["source"]
            self.channel.send({"event": "cell", "index": cell["index"]})
            status = self.run_cell(source, limits["cell_cpu"], limits["cell_wall"])
            self.channel.send({"event": "cell-end", "index": cell["index"], **status})
            self.note_exercises()

    def run_cell(self, source: str, cpu: float, wall: float) -> dict:
        try:
            result = limited(cpu, wall, lambda: self.shell.run_cell(
                source, store_history=False, silent=False))
        except _Timeout as timeout:
            return {"status": f"timeout-{timeout.args[0]}"}
        except Exception as exc:  # noqa: BLE001 - IPython's own failure on odd input
            return {"status": "error", "error": _short(f"{type(exc).__name__}: {exc}")}
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, _Timeout):
            return {"status": f"timeout-{error.args[0]}"}
        if error is not None:
            return {"status": "error", "error": _short(f"{type(error).__name__}: {error}")}
        return {"status": "ok"}

    def note_exercises(self) -> None:
        for name in self.exercises:
            obj = self.shell.user_ns.get(name)
            if _is_students(obj):
                self.candidates[name] = obj

    def exercise(self, name: str):
        """(the student's object, None) or (None, why there is none)."""
        current = self.shell.user_ns.get(name)
        if _is_students(current):
            return current, None
        if name in self.candidates:
            return self.candidates[name], None
        if current is None:
            return None, f"the notebook does not define `{name}`"
        if callable(current):
            return None, (f"`{name}` is segkit's own version (from `checks.use` or an "
                          "import), not code written in the notebook")
        return None, f"`{name}` is a {type(current).__name__}, not a function or class"


class Answering:
    """The grader's questions, answered with the exercise checks' ``ask`` step."""

    def __init__(self, channel: Channel, notebook: Notebook, job: dict, checks, plain,
                 raised_key: str) -> None:
        self.channel, self.notebook, self.job = channel, notebook, job
        self.checks, self.plain = checks, plain   # {exercise: Check}, segkit.checks.answers
        self.raised_key = raised_key              # segkit.checks.core.RAISED

    def serve(self) -> None:
        while True:
            received = self.channel.receive()
            if received is None:
                return
            header, payload = received
            if header.get("op") == "ask":
                self.ask(str(header.get("exercise")), payload)
            elif header.get("op") == "release":
                self.release(header)
            elif header.get("op") == "end":
                return

    def ask(self, name: str, payload: bytes) -> None:
        reply = {"event": "answers", "exercise": name}
        obj, why = self.notebook.exercise(name)
        if obj is None:
            self.channel.send({**reply, "missing": why})
            return
        limits = self.job["limits"]
        try:
            cases = self.plain.load(payload, max_bytes=len(payload) + 1)
            found = limited(limits["ask_cpu"], limits["ask_wall"],
                            lambda: self.checks[name].ask(obj, cases))
            blob = self._dump(found)
        except _Timeout as timeout:
            self.channel.send({**reply, "timeout": timeout.args[0]})
            return
        except Exception as exc:  # noqa: BLE001 - the runner's own trouble, said as such
            self.channel.send({**reply, "error": _short(f"{type(exc).__name__}: {exc}")})
            return
        self.channel.send(reply, blob)

    def _dump(self, found) -> bytes:
        """The answers' bytes; answers that are not plain data become the error record
        the lesson's check makes of them (the same hint as in class)."""
        try:
            return self.plain.dump(found)
        except self.plain.AnswersError as exc:
            record = {"type": "AnswersError", "message": _short(exc, 600), "where": None,
                      "library_where": None, "stub": False, "stub_of": None}
            return self.plain.dump({self.raised_key: record})

    def release(self, header: dict) -> None:
        """Put an answered exercise's references back, and rebind its name if told."""
        errors = []
        for item in header.get("definitions", []):
            try:
                module = importlib.import_module(item["module"])
                exec(compile(item["source"], module.__file__ or item["module"], "exec"),
                     vars(module))
            except Exception as exc:  # noqa: BLE001
                errors.append(_short(f"{item.get('module')}.{item.get('name')}: {exc}"))
        rebind = header.get("rebind")
        if rebind:
            try:
                module_name, _, attribute = rebind.rpartition(".")
                value = getattr(importlib.import_module(module_name), attribute)
                self.notebook.shell.user_ns[header["exercise"]] = value
                self.notebook.candidates.pop(header["exercise"], None)
            except Exception as exc:  # noqa: BLE001
                errors.append(_short(f"{rebind}: {exc}"))
        self.channel.send({"event": "released", "exercise": header.get("exercise"),
                           "errors": errors})


def _prepare_folders() -> None:
    """HOME, TMPDIR, matplotlib's and IPython's folders in the work folder (the only
    writable place), and matplotlib's font list copied in so it is not rebuilt."""
    import glob
    import shutil

    for variable in ("HOME", "TMPDIR", "MPLCONFIGDIR", "IPYTHONDIR"):
        if os.environ.get(variable):
            os.makedirs(os.environ[variable], exist_ok=True)
    fonts = os.environ.get("SEGKIT_GRADING_FONTS")
    if fonts and os.environ.get("MPLCONFIGDIR"):
        for font_list in glob.glob(os.path.join(fonts, "fontlist-*.json")):
            shutil.copy(font_list, os.environ["MPLCONFIGDIR"])


def _checked_by_the_grader(self, student, *args, **kwargs) -> None:
    """A check cell of the notebook, while it is graded: the grader asks the exercise
    itself, afterwards (and the sandbox has no judge to run the check with)."""
    return None


def _usage() -> float:
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main() -> None:
    """Read the job, run the notebook, answer the questions (see the module's docstring)."""
    import json

    from segkit_course.sandbox import bwrap, guard

    channel = Channel()
    received = channel.receive()
    if received is None or received[0].get("op") != "job":
        return
    job = json.loads(received[1])
    guard.install_from_env()  # only without bubblewrap: the fallback's guard
    _prepare_folders()
    failed = bwrap.apply_limits(job["sandbox_limits"], processes=job["process_cap"])
    from segkit.checks import answers as plain
    from segkit.checks import core

    checks = core.checks_of(job["lesson"])  # before any student code: what ask needs
    core.Check.__call__ = _checked_by_the_grader
    channel.send({"event": "ready", "failed_limits": failed})
    notebook = Notebook(channel, job)
    notebook.run_all()
    channel.send({"event": "ran", "cpu": _usage()})
    Answering(channel, notebook, job, checks, plain, core.RAISED).serve()
    channel.send({"event": "done", "cpu": _usage()})


if __name__ == "__main__":
    main()
