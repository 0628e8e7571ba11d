"""The judges: processes that draw the grader's questions and judge the answers, and
never run a line of student code.

    with JudgePool(2) as judges:
        cases = judges.draw("04", "dice_score", seed=8123)          # bytes, for the sandbox
        verdict = judges.judge("04", "dice_score", 8123, answers)   # a dict

Each judge is ``python -m segkit_course.grading.judge``, reading requests on stdin and
writing replies on stdout (:mod:`segkit_course.grading.channel` frames). It imports the
real segkit with every reference, draws an exercise's cases from a seed
(``Check.draw``), and judges answers (``Check.judge``: the reference computed on this
side, the catalogued mistake diagnosed, the hint the lesson would give). Answers are
read with ``segkit.checks.answers.load`` and a size cap: plain data, no pickle, no code.
A judge that crashes or runs past its time on some answers is replaced by a new one
and that exercise is graded ``error``; the others go on. The cases are drawn again from
the seed for judging, never read back from the sandbox.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from contextlib import contextmanager

from segkit_course.grading.channel import ChannelError, FrameReader, frame

__all__ = ["JudgeError", "JudgePool", "main", "verdict_of"]

_MAX_CASES = 64 * 2**20


class JudgeError(Exception):
    """A judge process crashed, ran out of time or answered nonsense."""


# --------------------------------------------------------------------------- in the judge


def _raised_types(answers, found: set[str], depth: int = 0) -> set[str]:
    """The exception types recorded anywhere in ``answers`` (``{RAISED: {...}}``)."""
    from segkit.checks.core import RAISED

    if depth > 40:
        return found
    if isinstance(answers, dict):
        record = answers.get(RAISED)
        if isinstance(record, dict):
            found.add(str(record.get("type")))
        for value in answers.values():
            _raised_types(value, found, depth + 1)
    elif isinstance(answers, (list, tuple)):
        for value in answers:
            _raised_types(value, found, depth + 1)
    return found


def verdict_of(check, cases, answers) -> dict:
    """Judge ``answers`` with ``check``: {"status": "pass" | "fail" | "not done" |
    "error", "mistake", "hint", "message", "detail", "repeat", "reference_called"}."""
    from segkit.checks.core import CheckFailed, ExerciseNotDone

    verdict: dict = {"reference_called": "ReferenceUnavailable" in _raised_types(answers, set())}
    try:
        detail = check.judge(cases, answers)
    except ExerciseNotDone as exc:
        return {**verdict, "status": "not done", "message": str(exc)}
    except CheckFailed as exc:
        status = "error" if exc.mistake == "crashed" else "fail"
        return {**verdict, "status": status, "mistake": exc.mistake, "hint": exc.hint,
                "message": exc.message, "repeat": getattr(exc, "repeat", None)}
    return {**verdict, "status": "pass", "detail": detail}


def _serve_one(header: dict, payload: bytes) -> tuple[dict, bytes | None]:
    from segkit.checks import answers as plain
    from segkit.checks.core import checks_of

    check = checks_of(header["lesson"])[header["exercise"]]
    cases = check.draw(int(header["seed"]))
    if header["op"] == "draw":
        return {"ok": True}, plain.dump(cases)
    try:
        answers = plain.load(payload, max_bytes=int(header["max_bytes"]))
    except plain.AnswersError as exc:
        return {"ok": True, "verdict": {"status": "review", "hint": (
            f"review: the answers that came back are not what the check's ask step "
            f"writes ({exc}): the notebook's code tampered with the grader")}}, None
    return {"ok": True, "verdict": verdict_of(check, cases, answers)}, None


def main() -> None:
    """Serve requests on stdin until it closes."""
    reader = FrameReader(sys.stdin.buffer, max_payload=512 * 2**20)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not break the frames
    while True:
        try:
            received = reader.read()
        except ChannelError:
            return
        if received is None:
            return
        try:
            reply, payload = _serve_one(*received)
        except Exception as exc:  # noqa: BLE001 - said to the grader, which goes on
            reply, payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}, None
        out.write(frame(reply, payload))
        out.flush()


# --------------------------------------------------------------------------- the pool


class _Judge:
    def __init__(self, env: dict[str, str]) -> None:
        from segkit_course.sandbox.kernel import SEGKIT_PARENT

        # started in the folder of the segkit this grader imported: the same checks
        self.proc = subprocess.Popen([sys.executable, "-m", "segkit_course.grading.judge"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, cwd=SEGKIT_PARENT)
        self.reader = FrameReader(self.proc.stdout, max_payload=_MAX_CASES)

    def call(self, header: dict, payload: bytes | None, timeout: float) -> tuple[dict, bytes]:
        box: queue.Queue = queue.Queue()

        def exchange() -> None:
            try:
                self.proc.stdin.write(frame(header, payload))
                self.proc.stdin.flush()
                box.put(self.reader.read())
            except (OSError, ChannelError, ValueError) as exc:
                box.put(exc)

        threading.Thread(target=exchange, daemon=True).start()
        try:
            got = box.get(timeout=timeout)
        except queue.Empty:
            raise JudgeError(f"the judge did not answer within {timeout:g} s") from None
        if isinstance(got, Exception) or got is None:
            raise JudgeError(f"the judge ended or broke its channel ({got})")
        return got

    def stop(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()


class JudgePool:
    """``size`` judge processes, started when first needed, replaced when one fails."""

    def __init__(self, size: int, timeout: float = 120.0, threads: int = 1) -> None:
        from segkit_course.sandbox.kernel import thread_env

        self.timeout = timeout
        self.env = {**os.environ, **thread_env(threads), "SEGKIT_PROGRESS": "0",
                    "PYTHONDONTWRITEBYTECODE": "1"}
        self.idle: queue.Queue = queue.Queue()
        self.all: list[_Judge] = []
        self.lock = threading.Lock()
        for _ in range(max(1, size)):
            self.idle.put(None)  # a slot: a judge is started in it when first used

    def __enter__(self) -> JudgePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self.lock:
            for judge in self.all:
                judge.stop()
            self.all.clear()

    @contextmanager
    def _judge(self):
        judge = self.idle.get()
        if judge is None or judge.proc.poll() is not None:
            judge = _Judge(self.env)
            with self.lock:
                self.all.append(judge)
        healthy = False
        try:
            yield judge
            healthy = True
        finally:  # a judge that failed in any way is replaced
            if not healthy:
                judge.stop()
            self.idle.put(judge if healthy else None)

    def _call(self, header: dict, payload: bytes | None = None) -> tuple[dict, bytes]:
        with self._judge() as judge:
            reply, data = judge.call(header, payload, self.timeout)
        if not reply.get("ok"):
            raise JudgeError(reply.get("error") or "the judge failed")
        return reply, data

    def draw(self, lesson: str, exercise: str, seed: int) -> bytes:
        """The cases of ``exercise`` for ``seed``, as answers-format bytes."""
        return self._call({"op": "draw", "lesson": lesson, "exercise": exercise,
                           "seed": seed})[1]

    def judge(self, lesson: str, exercise: str, seed: int, answers: bytes,
              max_bytes: int) -> dict:
        """The verdict on ``answers`` (see :func:`verdict_of`)."""
        reply, _ = self._call({"op": "judge", "lesson": lesson, "exercise": exercise,
                               "seed": seed, "max_bytes": max_bytes}, answers)
        verdict = reply.get("verdict")
        if not isinstance(verdict, dict):
            raise JudgeError(f"the judge gave no verdict: {json.dumps(reply)[:200]}")
        return verdict


if __name__ == "__main__":
    main()
