"""One clear message for every failure of a ``segkit`` command.

The command line catches whatever a command raises and prints ``describe(exc)``: what
happened, the file or value involved, the likely cause and what to do, in a few lines and
without a traceback. ``segkit <command> --traceback`` (or the environment variable
``SEGKIT_TRACEBACK=1``) prints the traceback as well, for whoever wants to see where.

segkit's own errors (``SegkitError``) already say all that; this module words the others:
files that are missing, unreadable or loop; a full disk; memory; and, last, anything
unexpected, which is called what it is: probably a bug in segkit.
"""

from __future__ import annotations

import errno
import os

import torch

from segkit.errors import SegkitError

TRACEBACK_HINT = "(run again with --traceback, or SEGKIT_TRACEBACK=1, to see where it happened)"


def wants_traceback(flag: bool = False) -> bool:
    """True when ``--traceback`` was given or ``SEGKIT_TRACEBACK`` is set to anything but 0."""
    return flag or os.environ.get("SEGKIT_TRACEBACK", "0") not in ("", "0")


def describe(exc: BaseException) -> str:
    """The message a user sees for ``exc`` (one to a few lines, no traceback)."""
    if isinstance(exc, SegkitError):
        return str(exc)
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)) \
            or "out of memory" in str(exc).lower():
        return ("out of memory: the batch or the images are too large for this device. "
                "Lower --batch-size or --size, or use --device cpu.")
    if isinstance(exc, ValueError):
        return str(exc)
    return (f"unexpected {type(exc).__name__}: {exc}\nThis is probably a bug in segkit, not "
            f"a mistake of yours. Please report it with the command you ran {TRACEBACK_HINT}.")


def describe_os_error(exc: OSError) -> str:
    """A missing, unreadable or looping file, or a full disk, with the file named."""
    if exc.filename is None and exc.errno is None:  # raised with a message of its own
        return str(exc)
    name = exc.filename if exc.filename is not None else "a file"
    if exc.errno == errno.ELOOP:
        return (f"{name} is a symbolic link that points, through other links, back to itself "
                "(a symlink loop): point it at a real file or folder")
    if isinstance(exc, FileNotFoundError):
        if exc.filename is not None and os.path.islink(exc.filename):
            return (f"{name} is a symbolic link to {os.readlink(exc.filename)}, which does "
                    "not exist: the file it pointed to was moved or deleted")
        return f"{name} not found: check the path (it is relative to {os.getcwd()})"
    if isinstance(exc, PermissionError):
        return (f"permission denied: {name}. You may not read or write it; check its owner "
                "and mode (ls -l), or choose another folder")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device while writing {name}. Free some space or "
                "write to another disk (--out-dir)")
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a folder, where a file was expected"
    if isinstance(exc, NotADirectoryError):
        return f"{name} is a file (or inside one), where a folder was expected"
    return f"{exc.strerror or exc}: {name} {TRACEBACK_HINT}"
