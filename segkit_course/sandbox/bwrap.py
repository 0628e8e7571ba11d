"""The operating-system sandbox a student's notebook runs in: bubblewrap, on Linux.

    isolation = detect()                 # Isolation(on=True, ...) or off, saying why
    with isolation.slot() as slot:       # a sandbox user of its own (when run as root)
        argv = isolation.command([python, "-m", "segkit_course.grading.runner"], env, slot,
                                 binds=[(stub_segkit, SEGKIT_PACKAGE)])
        subprocess.Popen(argv, ...)

bubblewrap (``bwrap``, Debian/Ubuntu package ``bubblewrap``, used by Flatpak) builds a
throw-away view of the machine for one process tree, with Linux namespaces. What a
sandboxed process sees:

- the system's programs and libraries, Python and its packages, the course's grading
  worker and the toy datasets, all **read-only**; segkit's package folder shows the
  copy the grader gives (``binds``: the one whose graded references are stubs); nothing
  else of the machine: not the course's ``solutions/``, not the instructor's files, not
  other students' notebooks;
- **one writable place**, its work folder ``/tmp/work`` (``HOME`` and ``TMPDIR`` are in
  it), a fresh in-memory file system of ``disk_bytes`` at most (the disk quota), and
  ``/dev/shm`` of ``shm_bytes``; ``/tmp`` itself and ``/dev`` are read-only. Nothing of
  the sandbox is a folder of the machine: the grader never reads, changes the owner of,
  or cleans up a file a student's code could have written or linked;
- **no network** at all (a network namespace without interfaces), its own process list
  (``/proc`` shows only its own processes), its own IPC and host name, a new session.

When the grader runs as root, each sandbox also runs as a user of its own
(``61000 + slot``, dropped with ``setpriv``: no capabilities, ``no_new_privs``), so the
process cap (``RLIMIT_NPROC``) holds and one sandbox cannot signal another; as another
user, it runs as root of a user namespace of its own, without capabilities. The quota
file systems are mounted by a two-line shell prologue that holds ``CAP_SYS_ADMIN`` only
until it hands over to the student's process. Memory, CPU time, file size and process
limits are set by the process itself before any student code runs (:func:`apply_limits`),
as hard limits it cannot raise again; the grader also adds up the CPU time of the whole
process tree (:mod:`segkit_course.sandbox.procs`).

Where bubblewrap is missing or cannot work (macOS, Windows, a container without
namespaces), :func:`detect` says so and why, and the grader falls back to the in-process
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

SANDBOX_WORK = "/tmp/work"    # the work folder (the quota file system), inside
SANDBOX_HOME = "/tmp/work/home"
SANDBOX_RO = "/tmp/ro"        # where single read-only files given by the grader appear
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
    processes: int = 128              # RLIMIT_NPROC: processes and threads of its user
    disk_bytes: int = 512 * 2**20     # the work folder's file system (bubblewrap only)
    shm_bytes: int = 256 * 2**20      # /dev/shm (DataLoader workers use it)


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


_NEVER = {Path("/"), Path("/tmp"), Path("/home"), Path("/root")}


def _is_package_folder(entry: str, prefixes: list[Path]) -> bool:
    """A ``sys.path`` entry that holds installed packages (inside Python's prefix, or a
    site-packages folder), not the folder of the script that started the grader (which
    may be the instructor's home)."""
    if not entry or not os.path.isabs(entry):
        return False
    path = Path(entry)
    return ({"site-packages", "dist-packages"} & set(path.parts)
            or any(_inside(path, prefix) for prefix in prefixes)) and path.exists()


def readable_paths(hidden: list[Path] = ()) -> list[Path]:
    """What a sandbox may read: the system, Python and its packages, segkit, the data.

    Of ``sys.path``, only folders of installed packages count (not the folder of the
    script that started the grader). A folder that holds one of ``hidden`` (the course
    folder holds ``solutions/``) is left out: segkit's package folder, the grading
    worker's and the toy datasets are added on their own instead.
    """
    from segkit import toydata

    hidden = [Path(h).resolve() for h in hidden]
    prefixes = [Path(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}]
    prefixes.append(Path(os.path.realpath(sys.executable)).parent.parent)
    candidates = [Path(d) for d in _SYSTEM_DIRS] + prefixes
    candidates += [Path(p) for p in sys.path if _is_package_folder(p, prefixes)]
    candidates += [SEGKIT_PACKAGE, COURSE_PACKAGE, toydata.REPO_DATASETS]
    paths: list[Path] = []
    for path in candidates:
        if not path.exists():
            continue
        path = path.resolve()
        if path in _NEVER or any(_inside(h, path) for h in hidden):
            continue  # binding it would show what is hidden, or cover the sandbox's /tmp
        if not any(_inside(path, kept) for kept in paths):
            paths = [p for p in paths if not _inside(p, path)] + [path]
    return sorted(paths)


@dataclass(frozen=True)
class Isolation:
    """Whether student code runs in a bubblewrap sandbox, and how it is described.

    ``quota``: the work folder is a size-capped file system of its own (False where the
    prologue cannot mount one: then it is bubblewrap's plain ``/tmp``, said in reports).
    """

    on: bool
    why: str                # off: what failed; on: "" (see describe)
    separate_users: bool = False  # root: a user of its own per sandbox (process cap holds)
    quota: bool = True

    def describe(self) -> str:
        """One line for reports: ``isolation: bubblewrap (...)`` or ``isolation: off (...)``."""
        if not self.on:
            return f"isolation: off ({self.why})"
        users = ("a user of its own, process cap" if self.separate_users
                 else "no process cap (not run as root)")
        disk = "disk quota" if self.quota else f"no disk quota ({self.why})"
        return ("isolation: bubblewrap (no network, private /tmp and HOME, solutions and "
                f"other students invisible, read-only outside its work folder, {disk}, "
                f"memory cap, {users})")

    @contextmanager
    def slot(self):
        """A sandbox number no other sandbox holds meanwhile: of this process, and, when
        sandboxes run as users of their own, of any other grading on this machine (its
        user's process cap must count this sandbox's processes alone)."""
        with _slot_lock:
            number = next(i for i in range(len(_busy_slots) + 1) if i not in _busy_slots)
            _busy_slots.add(number)
        lock = None
        try:
            if self.on and self.separate_users:
                taken, lock = _machine_slot(number)
                with _slot_lock:  # the slot this process picked may be another's here
                    _busy_slots.discard(number)
                number = taken
            yield number
        finally:
            if lock is not None:
                os.close(lock)  # the lock goes with its descriptor
            with _slot_lock:
                _busy_slots.discard(number)

    def user(self, slot: int) -> int | None:
        """The user id the sandbox of ``slot`` runs as (None: the grader's own)."""
        return UID_BASE + slot if self.on and self.separate_users else None

    def command(self, argv: list[str], env: dict[str, str], slot: int, *,
                binds: list[tuple[Path, str]] = (), hidden: list[Path] = (),
                limits: SandboxLimits = SandboxLimits()) -> list[str]:
        """``argv`` run inside a fresh sandbox (unchanged when isolation is off).

        ``binds``: (file or folder of this machine, path inside), shown read-only, on top
        of what :func:`readable_paths` shows (a folder bound at segkit's own path hides
        segkit). ``hidden``: folders that must stay invisible (see :func:`readable_paths`).
        """
        if not self.on:
            return list(argv)
        return (_bwrap_argv(env, hidden, binds, self.separate_users, self.quota) + ["--"]
                + _prologue(self.user(slot), self.quota, limits) + list(argv))


_slot_lock = threading.Lock()
_busy_slots: set[int] = set()
SLOT_LOCKS = Path("/run/segkit-grading")  # one lock file per sandbox user in use (root)


def _machine_slot(first: int) -> tuple[int, int]:
    """(slot, the open lock file that holds it): the first slot from ``first`` on that
    no grading on this machine holds (``flock``: let go when the grader ends, however)."""
    import fcntl

    SLOT_LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
    for number in range(first, first + 4000):
        with _slot_lock:
            if number != first and number in _busy_slots:
                continue
            _busy_slots.add(number)
        fd = os.open(SLOT_LOCKS / f"slot-{number}.lock",
                     os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return number, fd
        except OSError:
            os.close(fd)
            if number != first:
                with _slot_lock:
                    _busy_slots.discard(number)
    raise RuntimeError("no free sandbox user: 4000 sandboxes run on this machine")


def _prologue(uid: int | None, quota: bool, limits: SandboxLimits) -> list[str]:
    """The shell that mounts the quota file systems, then becomes the student's process:
    user ``uid`` (or root of its own user namespace), no capabilities, no new privileges."""
    drop = ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    if uid is not None:
        drop = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *drop]
    setpriv = shutil.which("setpriv") or "setpriv"
    steps = []
    if quota:
        mount = shutil.which("mount") or "mount"
        owner = f",uid={uid},gid={uid}" if uid is not None else ""
        steps += [f"{mount} -t tmpfs -o size={limits.disk_bytes},nr_inodes=65536,mode=0700"
                  f"{owner} segkit-work {SANDBOX_WORK}",
                  f"{mount} -t tmpfs -o size={limits.shm_bytes},mode=1777 segkit-shm /dev/shm"]
    steps += [f"cd {SANDBOX_WORK}", f'exec {setpriv} {" ".join(drop)} -- "$@"']
    return ["/bin/sh", "-c", " && ".join(steps), "sandbox"]


def _with_parents(path: Path, made: set[Path]) -> list[str]:
    """``--dir`` for each parent of ``path`` not made yet, world-readable (bwrap's own
    default is 0700, which a sandbox user could not pass through)."""
    args = []
    for parent in reversed(path.parents):
        if parent != Path("/") and parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _bwrap_argv(env: dict[str, str], hidden: list[Path], binds: list[tuple[Path, str]],
                separate: bool, quota: bool) -> list[str]:
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
            "--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if not separate:
        args += ["--unshare-user", "--uid", "0", "--gid", "0"]
    if quota:
        args += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP"]
    # The private /tmp first: a Python or course that lives under /tmp (a CI clone, say) is
    # bound on top of it below, instead of being hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/tmp")}
    for path in readable_paths(hidden):
        args += _with_parents(path, made) + ["--ro-bind", str(path), str(path)]
    for source, target in binds:  # after the others: a bind on segkit's path hides it
        args += _with_parents(Path(target), made) + ["--ro-bind", str(source), str(target)]
    for link in _SYSTEM_DIRS:  # /bin -> usr/bin on merged-/usr systems
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
    args += ["--perms", "0777" if not quota else "0755", "--dir", SANDBOX_WORK]
    if quota:  # the quota file systems are mounted on these by the prologue
        args += ["--remount-ro", "/tmp", "--remount-ro", "/dev"]
    args += ["--chdir", "/", "--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    return args


def _probe(isolation: Isolation) -> str | None:
    """None when a sandboxed Python runs and can write its work folder; else why not."""
    code = ("import os; open('/tmp/work/probe', 'w').write('x'); "
            "assert os.statvfs('/tmp/work').f_blocks > 0")
    with isolation.slot() as slot:
        argv = isolation.command([sys.executable, "-c", code], {"PATH": "/usr/bin:/bin"}, slot)
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
    if failure is None:
        return isolation
    plain = Isolation(True, f"the quota file system could not be mounted: {failure}",
                      separate, quota=False)
    if _probe(plain) is None:
        return plain
    return Isolation(False, f"bubblewrap is installed but cannot make a sandbox here: "
                            f"{failure}")
