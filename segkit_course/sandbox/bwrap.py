"""The operating-system sandbox a student's code runs in: bubblewrap, on Linux.

    isolation = detect()                 # Isolation(on=True, ...) or off, saying why
    with isolation.slot() as slot:       # a sandbox user of its own (when run as root)
        argv = isolation.command([python, "-m", "segkit_course.grading.checker"], work, slot)
        subprocess.Popen(argv, ...)

bubblewrap (``bwrap``, Debian/Ubuntu package ``bubblewrap``, used by Flatpak) builds a
throw-away view of the machine for one process tree, with Linux namespaces. What a
sandboxed process sees:

- the system's programs and libraries, Python and its packages, segkit's own package
  folder and the toy datasets, all **read-only**; nothing else of the machine: not the
  course's ``solutions/``, not the instructor's files, not other students' notebooks;
- its work folder (``/tmp/work``, the only place it can write), a private ``/tmp`` and
  ``HOME`` (``/tmp/home``) that vanish with it;
- **no network** at all (a network namespace without interfaces: not even loopback to
  the machine's other processes), its own process list (``/proc`` shows only its own
  processes), its own IPC and host name, a new terminal session.

When the grader runs as root, each sandbox also runs as a user of its own
(``61000 + slot``, dropped with ``setpriv``, no capabilities, ``no_new_privs``), so the
process cap (``RLIMIT_NPROC``) holds and one sandbox cannot signal another. Memory, CPU
time, file size and process limits are set by the process itself before any student
code runs (:func:`apply_limits`), as hard limits it cannot raise again.

Where bubblewrap is missing or cannot work (macOS, Windows, a container without
namespaces), :func:`detect` says so and why, and the tools fall back to the in-process
guard (:mod:`segkit_course.sandbox.guard`): every report then says ``isolation: off``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import segkit

__all__ = ["Isolation", "SandboxLimits", "apply_limits", "detect", "readable_paths"]

SANDBOX_WORK = "/tmp/work"    # the work folder, as the sandboxed process sees it
SANDBOX_HOME = "/tmp/home"
UID_BASE = 61000              # sandbox users: 61000 + slot (only when run as root)
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
SEGKIT_PACKAGE = Path(segkit.__file__).resolve().parent
COURSE_PACKAGE = Path(__file__).resolve().parents[1]  # segkit_course: the grading worker


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandboxed process tree (bytes, seconds, processes)."""

    memory_bytes: int = 4 * 2**30     # RLIMIT_DATA: heap and anonymous memory
    cpu_seconds: int = 3600           # RLIMIT_CPU: CPU time of each process
    file_bytes: int = 2**30           # RLIMIT_FSIZE: the largest file it may write
    processes: int = 256              # RLIMIT_NPROC: processes and threads of its user


def apply_limits(limits: dict, *, processes: bool) -> list[str]:
    """Set ``limits`` (a :class:`SandboxLimits` as a dict) on this process, hard.

    ``processes``: also cap the processes (only meaningful for a user of its own).
    Returns the limits that could not be set (on macOS some cannot; Windows has none).
    """
    try:
        import resource
    except ImportError:
        return ["memory", "cpu", "file size", "core dumps"]

    wanted = [(resource.RLIMIT_DATA, limits["memory_bytes"], "memory"),
              (resource.RLIMIT_CPU, limits["cpu_seconds"], "cpu"),
              (resource.RLIMIT_FSIZE, limits["file_bytes"], "file size"),
              (resource.RLIMIT_CORE, 0, "core dumps")]
    if processes:
        wanted.append((resource.RLIMIT_NPROC, limits["processes"], "processes"))
    failed = []
    for kind, value, name in wanted:
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            failed.append(name)
    return failed


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def readable_paths(hidden: list[Path] = ()) -> list[Path]:
    """What a sandbox may read: the system, Python and its packages, segkit, the data.

    A folder that holds one of ``hidden`` (the course folder holds ``solutions/``,
    and is on ``sys.path`` when segkit is found through ``PYTHONPATH``) is left out:
    segkit's package folder and the toy datasets are added on their own instead.
    """
    from segkit import toydata

    hidden = [Path(h).resolve() for h in hidden]
    candidates = [Path(d) for d in _SYSTEM_DIRS]
    candidates += [Path(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}]
    candidates.append(Path(os.path.realpath(sys.executable)).parent.parent)
    candidates += [Path(p) for p in sys.path if p and os.path.isabs(p)]
    candidates += [SEGKIT_PACKAGE, COURSE_PACKAGE, toydata.REPO_DATASETS]
    paths: list[Path] = []
    for path in candidates:
        if not path.exists():
            continue
        path = path.resolve()
        if any(_inside(h, path) for h in hidden):  # binding it would show what is hidden
            continue
        if not any(_inside(path, kept) for kept in paths):
            paths = [p for p in paths if not _inside(p, path)] + [path]
    return sorted(paths)


@dataclass(frozen=True)
class Isolation:
    """Whether student code runs in a bubblewrap sandbox, and how it is described."""

    on: bool
    why: str                # off: what failed; on: "" (see describe)
    separate_users: bool = False  # root: a user of its own per sandbox (process cap holds)

    def describe(self) -> str:
        """One line for reports: ``isolation: bubblewrap (...)`` or ``isolation: off (...)``."""
        if not self.on:
            return f"isolation: off ({self.why})"
        users = ("a user of its own, process cap" if self.separate_users
                 else "no process cap (not run as root)")
        return ("isolation: bubblewrap (no network, private /tmp and HOME, solutions and "
                f"other students invisible, read-only outside its work folder, memory cap, "
                f"{users})")

    @contextmanager
    def slot(self):
        """A sandbox number no other sandbox of this process holds meanwhile."""
        with _slot_lock:
            number = next(i for i in range(len(_busy_slots) + 1) if i not in _busy_slots)
            _busy_slots.add(number)
        try:
            yield number
        finally:
            with _slot_lock:
                _busy_slots.discard(number)

    def prepare(self, work: Path, slot: int) -> None:
        """Give the sandbox user of ``slot`` its work folder (as root)."""
        if self.on and self.separate_users:
            for path in [work, *work.rglob("*")]:
                os.chown(path, UID_BASE + slot, UID_BASE + slot)

    def command(self, argv: list[str], work: Path, slot: int, env: dict[str, str],
                hidden: list[Path] = ()) -> list[str]:
        """``argv`` run inside a fresh sandbox whose only writable folder is ``work``."""
        if not self.on:
            return list(argv)
        return _bwrap_argv(work, env, hidden, self.separate_users, slot) + ["--"] + _as_user(
            argv, self.separate_users, slot)


_slot_lock = threading.Lock()
_busy_slots: set[int] = set()


def _as_user(argv: list[str], separate: bool, slot: int) -> list[str]:
    if not separate:
        return list(argv)
    uid = str(UID_BASE + slot)
    return [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *argv]


def _with_parents(path: Path, made: set[Path]) -> list[str]:
    """``--dir`` for each parent of ``path`` not made yet, world-readable (bwrap's own
    default is 0700, which a sandbox user could not pass through)."""
    args = []
    for parent in reversed(path.parents):
        if parent != Path("/") and parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _bwrap_argv(work: Path, env: dict[str, str], hidden: list[Path], separate: bool,
                slot: int) -> list[str]:
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
            "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if not separate:
        args.append("--unshare-user")
    # The private /tmp first: a Python or course that lives under /tmp (a CI clone, say) is
    # bound on top of it below, instead of being hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/tmp")}
    for path in readable_paths(hidden):
        args += _with_parents(path, made) + ["--ro-bind", str(path), str(path)]
    for link in _SYSTEM_DIRS:  # /bin -> usr/bin on merged-/usr systems
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
    args += ["--perms", "0777", "--dir", SANDBOX_HOME,
             "--bind", str(work), SANDBOX_WORK, "--chdir", SANDBOX_WORK, "--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return args


def _probe(isolation: Isolation) -> str | None:
    """None when a sandboxed ``true`` runs; else what bubblewrap said."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="segkit-probe-") as tmp:
        isolation.prepare(Path(tmp), 0)
        argv = isolation.command([sys.executable, "-c", "pass"], Path(tmp), 0,
                                 {"PATH": "/usr/bin:/bin"})
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return None


@functools.lru_cache(maxsize=None)
def detect(wanted: str = "auto") -> Isolation:
    """Whether bubblewrap sandboxes can run here (tried once, with a sandboxed Python).

    ``wanted``: "auto" (use it when it works), "bwrap" (the same; the caller should
    stop when it is off) or "off" (do not use it). With "auto", the environment
    variable ``SEGKIT_ISOLATION`` (``off`` or ``bwrap``) decides instead, if set.
    """
    if wanted == "auto" and os.environ.get("SEGKIT_ISOLATION") in ("off", "bwrap"):
        wanted = os.environ["SEGKIT_ISOLATION"]
        if wanted == "off":
            return Isolation(False, "turned off with SEGKIT_ISOLATION=off")
    if wanted == "off":
        return Isolation(False, "turned off with --isolation off")
    if not sys.platform.startswith("linux"):
        return Isolation(False, f"bubblewrap needs Linux; this is {sys.platform}")
    if shutil.which("bwrap") is None:
        return Isolation(False, "bubblewrap is not installed: `apt-get install bubblewrap`")
    separate = os.geteuid() == 0 and shutil.which("setpriv") is not None
    isolation = Isolation(True, "", separate)
    failure = _probe(isolation)
    if failure is not None:
        return Isolation(False, f"bubblewrap is installed but cannot make a sandbox here: "
                                f"{failure}")
    return isolation
