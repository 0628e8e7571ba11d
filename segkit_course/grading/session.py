"""One sandboxed runner process, seen from the grader: start it, read its frames, watch
its CPU time, stop it.

    session = Session(argv, env, cwd, limits)
    session.send({"op": "job"}, job_bytes)
    header, payload = session.next_frame(deadline)      # or ENDED / LATE

Its frames are read by a thread into a queue, through
:class:`segkit_course.grading.channel.FrameReader` (caps on every part); its stderr
(what Python says when it cannot even start) is kept to its last 4 KiB. A watcher adds
up the CPU time of the whole process tree every half second
(:class:`segkit_course.sandbox.procs.ProcessTree`) and kills the tree when it has used up
``cpu_budget`` seconds, or when ``wall_deadline`` (a ``time.monotonic()`` value) has
passed; :attr:`Session.killed` then says which ("cpu" or "wall").
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from queue import Empty, Queue

from segkit_course.grading.channel import ChannelError, FrameReader, frame
from segkit_course.sandbox.procs import ProcessTree

__all__ = ["ENDED", "LATE", "Session"]

ENDED = "ended"   # the process ended (or its channel broke)
LATE = "late"     # the deadline passed first
_MAX_FRAMES = 200_000


class Session:
    """A runner process and its channel."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, *, max_payload: int,
                 cpu_budget: float, wall_deadline: float, group: bool) -> None:
        self.group = group
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=cwd,
                                     start_new_session=True)
        self.frames: Queue = Queue()
        self.broken: str | None = None   # what was wrong with the channel, if anything
        self.killed: str | None = None   # "cpu" or "wall" when the watcher stopped it
        self.cpu_seconds = 0.0
        self._stderr = b""
        self._reader = FrameReader(self.proc.stdout, max_payload)
        self._budget, self._deadline = cpu_budget, wall_deadline
        for target in (self._read, self._read_stderr, self._watch):
            threading.Thread(target=target, daemon=True).start()

    def _read(self) -> None:
        count = 0
        try:
            while (got := self._reader.read()) is not None:
                count += 1
                if count > _MAX_FRAMES:
                    raise ChannelError(f"more than {_MAX_FRAMES:,} frames")
                self.frames.put(got)
        except (ChannelError, OSError, ValueError) as exc:
            self.broken = str(exc)
            self.kill()
        self.frames.put(None)

    def _read_stderr(self) -> None:
        try:
            while chunk := self.proc.stderr.read(4096):
                self._stderr = (self._stderr + chunk)[-4096:]
        except (OSError, ValueError):
            pass

    def processes(self) -> int:
        """How many processes the sandbox is now (its own start-up ones included)."""
        return ProcessTree(self.proc.pid).count()

    def _watch(self) -> None:
        tree = ProcessTree(self.proc.pid)
        while self.proc.poll() is None:
            used = tree.cpu_seconds()
            self.cpu_seconds = max(self.cpu_seconds, used)
            if used > self._budget:
                self.killed = self.killed or "cpu"
                self.kill()
            elif time.monotonic() > self._deadline:
                self.killed = self.killed or "wall"
                self.kill()
            time.sleep(0.5)

    def send(self, header: dict, payload: bytes | None = None) -> bool:
        """Write a frame to the runner; False when it can no longer be written."""
        try:
            self.proc.stdin.write(frame(header, payload))
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def next_frame(self, deadline: float):
        """The next (header, payload); :data:`ENDED` or :data:`LATE`."""
        try:
            got = self.frames.get(timeout=max(0.0, deadline - time.monotonic()))
        except Empty:
            return LATE
        if got is None:
            self.frames.put(None)  # every later call sees the end too
            return ENDED
        return got

    def stderr_tail(self) -> str:
        text = self._stderr.decode("utf-8", "replace").strip()
        return text.splitlines()[-1][:300] if text else "no message"

    def kill(self) -> None:
        try:
            if self.group:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()  # bubblewrap: its namespace's processes all go with it
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def stop(self, wait: float = 0.0) -> None:
        """Let it end on its own for ``wait`` seconds, then kill it; wait for the end."""
        try:
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
