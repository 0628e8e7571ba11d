"""Guard rails for notebook code that the course tooling runs: files, processes, network.

``segkit verify`` runs the course's own notebooks, and ``segkit grade`` students'
notebooks where no bubblewrap sandbox can be made. Both call :func:`install` before any
notebook code runs (the kernels of :mod:`segkit_course.sandbox.kernel`; the grading
runner, :mod:`segkit_course.grading.runner`, without a sandbox). It adds a Python *audit hook* (PEP 578:
the interpreter reports every file opened for writing, every file removed, every
process started and every network connection to the hook, which may refuse it by
raising). An audit hook cannot be removed once added, so a notebook cannot switch it
off. What it refuses:

- writes outside ``write_root`` (opening a file for writing, removing, renaming,
  ``shutil.rmtree``, ``mkdir``, ``chmod``, links...), e.g. ``os.remove(os.path.expanduser(
  "~/grades.csv"))``, and changes to ``write_root`` itself and its direct entries (the
  tool's layout: ``work/``, ``home/``, ``tmp/``, the log), e.g. ``shutil.rmtree("..")``
  from ``work/``: :class:`PermissionError`;
- starting programs (``subprocess``, ``os.system``, ``!pip install`` in a cell):
  :class:`PermissionError`;
- connecting to anything but this machine, and looking up host names (DNS):
  :class:`ConnectionRefusedError`. Loopback (127.0.0.1, ::1, localhost) and Unix
  sockets stay allowed: the kernel itself talks to Jupyter through them.

Every refusal is also written, one JSON object per line, to a log file opened when the
guard is installed, so the tool can report a notebook that tried, even if the
notebook caught the error.

This is a guard against accidents and casual tampering, not a security sandbox: code
that calls the C library directly is not seen by the hook (``ctypes``,
``_posixsubprocess.fork_exec``, ``torch.save``'s C++ file writer), and reading is not
refused. ``segkit grade`` therefore runs notebooks, on Linux with bubblewrap, in an
operating-system sandbox (:mod:`segkit_course.sandbox.bwrap`), which sees everything;
without it, every report says ``isolation: off``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import threading

__all__ = ["ENV_LOG", "ENV_NETWORK", "ENV_PROCESSES", "ENV_WRITE_ROOT", "install",
           "install_from_env", "read_log"]

# The kernel launcher reads its settings from these environment variables.
ENV_WRITE_ROOT = "SEGKIT_GUARD_WRITE_ROOT"  # a folder: writes elsewhere are refused
ENV_NETWORK = "SEGKIT_GUARD_NETWORK"        # "block": no connections off this machine
ENV_PROCESSES = "SEGKIT_GUARD_PROCESSES"    # "block": no subprocess / os.system
ENV_LOG = "SEGKIT_GUARD_LOG"                # a file: one JSON line per refusal

# Events whose first argument is a path that gets changed; the value is the position of
# the dir_fd argument a relative path is relative to (None: there is none).
_PATH_EVENTS = {
    "os.remove": 1, "os.rmdir": 1, "os.mkdir": 2, "os.chmod": 2, "os.chown": 3,
    "os.utime": 3, "os.truncate": None, "os.setxattr": None, "os.removexattr": None,
    "os.chflags": None, "os.lchflags": None, "os.lchmod": None, "shutil.rmtree": 1,
}
# Events with (src, dst, ...): which of the two paths get changed.
_TWO_PATH_EVENTS = {
    "os.rename": (0, 1), "os.link": (1,), "os.symlink": (1,), "shutil.copyfile": (1,),
    "shutil.copytree": (1,), "shutil.move": (0, 1), "shutil.copymode": (1,),
    "shutil.copystat": (1,), "sqlite3.connect": (0,),
}
_PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                   "os.startfile", "pty.spawn"}
# Programs that libraries run on their own to learn about the machine (platform,
# ctypes.util.find_library, matplotlib's font search, torch's GPU probe): harmless,
# allowed, but only the system's own copies: a program of the same name that a notebook
# wrote itself (``./uname``) is refused.
_HARMLESS_PROGRAMS = {"uname", "ldconfig", "gcc", "cc", "ld", "fc-list", "fc-match",
                      "nvidia-smi", "lscpu", "sysctl"}
_SYSTEM_BIN_DIRS = ("/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin")
_NETWORK_EVENTS = {"socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
                   "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr",
                   "socket.getnameinfo"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_ALWAYS_WRITABLE = ("/dev/null", "/dev/shm", "/dev/tty")
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

_installed = False


def _is_local_host(host) -> bool:
    """True for this machine: loopback addresses and names, the 'any' address."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a host name other than localhost: looking it up is network traffic
    return address.is_loopback or address.is_unspecified


def _is_local_address(address) -> bool:
    """True for a Unix socket path or an (host, port, ...) tuple on this machine."""
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    if isinstance(address, tuple) and address:
        return _is_local_host(address[0])
    return True  # netlink, packet sockets...: not internet traffic


def _program(args: tuple) -> str:
    """'uname' or './uname' for subprocess.Popen's (executable, args, cwd, env) arguments."""
    executable = args[0] if args else None
    if executable is None and len(args) > 1:
        argv = args[1]
        executable = argv if isinstance(argv, (str, bytes)) else (argv[0] if argv else "")
    try:
        return os.fsdecode(executable) if executable is not None else ""
    except TypeError:
        return ""


def _is_harmless_program(program: str, cwd=None) -> bool:
    """True for the system's own copy of a harmless program ('uname', '/usr/bin/uname').

    A bare name is looked up the way the C library will (PATH); a path is resolved
    against ``cwd``. Only programs in the system's folders count: ``./uname`` does not.
    """
    import shutil

    if os.path.basename(program) not in _HARMLESS_PROGRAMS:
        return False
    if os.sep not in program:
        found = shutil.which(program)
        if found is None:
            return False
        program = found
    elif not os.path.isabs(program):
        program = os.path.join(os.fsdecode(cwd) if cwd else os.getcwd(), program)
    real = os.path.realpath(program)
    return os.path.dirname(real) in _SYSTEM_BIN_DIRS


class _Guard:
    def __init__(self, write_root: str | None, block_network: bool, block_processes: bool,
                 log_fd: int | None) -> None:
        self.write_root = os.path.realpath(write_root) if write_root else None
        self.block_network = block_network
        self.block_processes = block_processes
        self.log_fd = log_fd
        self.local = threading.local()
        watched = set()
        if self.write_root:
            watched |= {"open"} | set(_PATH_EVENTS) | set(_TWO_PATH_EVENTS)
        if block_network:
            watched |= _NETWORK_EVENTS
        if block_processes:
            watched |= _PROCESS_EVENTS
        self.watched = frozenset(watched)

    # ------------------------------------------------------------------ helpers

    def _log(self, kind: str, what: str) -> None:
        if self.log_fd is None:
            return
        line = json.dumps({"kind": kind, "what": what}) + "\n"
        try:
            os.write(self.log_fd, line.encode("utf-8", "replace"))
        except OSError:
            pass

    def _resolve(self, path, dir_fd=None) -> str | None:
        """The absolute, symlink-free form of ``path`` (None for an open file descriptor)."""
        if isinstance(path, int):
            return None
        path = os.fsdecode(os.fspath(path))
        if not os.path.isabs(path):
            base = os.getcwd()
            if isinstance(dir_fd, int) and dir_fd >= 0:
                try:
                    base = os.readlink(f"/proc/self/fd/{dir_fd}")
                except OSError:
                    pass
            path = os.path.join(base, path)
        return os.path.realpath(path)

    def _allowed(self, path: str) -> bool:
        """Inside the write root, below its own layout (root/work/..., root/tmp/...)."""
        root = self.write_root
        if any(path == d or path.startswith(d + os.sep) for d in _ALWAYS_WRITABLE):
            return True
        # The root itself and its direct entries (work/, home/, tmp/, the log) are the
        # tool's: `shutil.rmtree("..")` from work/ must not take them away.
        return path.startswith(root + os.sep) and os.path.dirname(path) != root

    def _check_write(self, event: str, path, dir_fd=None) -> None:
        try:
            resolved = self._resolve(path, dir_fd)
        except (TypeError, ValueError):
            return
        if resolved is None or self._allowed(resolved):
            return
        if event == "os.mkdir" and os.path.isdir(resolved):
            return  # makedirs(exist_ok=True) on a folder that is there: changes nothing
        self._log("write", f"{event} {resolved}")
        raise PermissionError(
            f"segkit: this notebook runs in a temporary folder ({self.write_root}/work) and "
            f"may not change files outside it; refused {event} on {resolved}")

    # ------------------------------------------------------------------ the hook

    def __call__(self, event: str, args: tuple) -> None:
        if event not in self.watched or getattr(self.local, "busy", False):
            return
        self.local.busy = True  # the checks below may raise audit events themselves
        try:
            self._handle(event, args)
        finally:
            self.local.busy = False

    def _handle(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(flags, int) and flags & _WRITE_FLAGS) or (
                isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writing:
                self._check_write(event, path)
        elif event in _PATH_EVENTS:
            at = _PATH_EVENTS[event]
            dir_fd = args[at] if at is not None and len(args) > at else None
            if args and args[0] is not None:
                self._check_write(event, args[0], dir_fd)
        elif event in _TWO_PATH_EVENTS:
            for position in _TWO_PATH_EVENTS[event]:
                if len(args) > position and args[position] is not None:
                    self._check_write(event, args[position])
        elif event in _PROCESS_EVENTS:
            if event == "subprocess.Popen" and _is_harmless_program(
                    _program(args), args[2] if len(args) > 2 else None):
                return
            what = " ".join(str(a) for a in args[:2])[:200]
            self._log("process", f"{event} {what}")
            raise PermissionError(f"segkit: notebooks may not start programs here; "
                                  f"refused {event} ({what})")
        elif event in _NETWORK_EVENTS:
            if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
                address = args[1] if len(args) > 1 else None
                if _is_local_address(address):
                    return
                what = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
            else:
                host = args[0] if args else None
                if isinstance(host, tuple):  # getnameinfo((host, port), flags)
                    host = host[0] if host else None
                if _is_local_host(host):
                    return
                port = args[1] if event == "socket.getaddrinfo" and len(args) > 1 else None
                what = f"{host}:{port}" if port is not None else str(host)
            self._log("network", f"{event} {what}")
            raise ConnectionRefusedError(
                f"segkit: notebooks must not use the network (nothing may download at run "
                f"time); refused {event} to {what}")


def install(*, write_root: str | os.PathLike | None = None, block_network: bool = False,
            block_processes: bool = False, log_path: str | os.PathLike | None = None) -> None:
    """Add the guard's audit hook to this Python process (for good: hooks stay).

    Args:
        write_root: refuse changes to files outside this folder (None: allow them).
        block_network: refuse connections and name look-ups beyond this machine.
        block_processes: refuse starting programs.
        log_path: append one JSON line ``{"kind": ..., "what": ...}`` per refusal here.
    """
    global _installed
    if _installed:
        raise RuntimeError("the segkit guard is already installed in this process")
    log_fd = None
    if log_path is not None:
        log_fd = os.open(os.fspath(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    guard = _Guard(os.fspath(write_root) if write_root else None, block_network,
                   block_processes, log_fd)
    sys.addaudithook(guard)
    _installed = True


def install_from_env(environ: dict[str, str] | None = None) -> bool:
    """:func:`install` with the settings of the ``SEGKIT_GUARD_*`` variables, if any.

    Returns True when a guard was installed.
    """
    environ = os.environ if environ is None else environ
    write_root = environ.get(ENV_WRITE_ROOT) or None
    network = environ.get(ENV_NETWORK) == "block"
    processes = environ.get(ENV_PROCESSES) == "block"
    if not (write_root or network or processes):
        return False
    install(write_root=write_root, block_network=network, block_processes=processes,
            log_path=environ.get(ENV_LOG) or None)
    return True


def read_log(path: str | os.PathLike, max_bytes: int = 2**20) -> list[dict[str, str]]:
    """The refusals a guard logged to ``path``: [{"kind": "network", "what": "..."}, ...].

    The guarded code could have replaced the log with a link, a FIFO or a huge file: it
    is read as :func:`segkit_course.sandbox.files.read_regular` reads (no link followed,
    at most ``max_bytes``); a log that is not a regular file gives one entry saying so.
    """
    from segkit_course.sandbox.files import UnsafeFile, read_regular

    if not os.path.lexists(path):
        return []
    try:
        text = read_regular(path, max_bytes).decode("utf-8", "replace")
    except UnsafeFile as exc:
        return [{"kind": "log", "what": f"the guard's log was tampered with: {exc}"}]
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "kind" in entry and "what" in entry:
            entries.append({"kind": str(entry["kind"]), "what": str(entry["what"])})
    return entries
