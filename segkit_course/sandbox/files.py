"""Reading a file that someone else could have written: never through a link, never
more than a cap, never blocking.

    data = read_regular(path, max_bytes=2**20)   # bytes, or UnsafeFile saying why

A student's notebook, and anything a sandbox without bubblewrap could write (the
guard's log), may be a symbolic link to a file of the machine, a FIFO that never
answers, a device that never ends (``/dev/zero``), or a file of many gigabytes. The
file is opened with ``O_NOFOLLOW`` and ``O_NONBLOCK``, must be a regular file, and at
most ``max_bytes`` are read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["UnsafeFile", "kind_of", "read_regular"]


class UnsafeFile(OSError):
    """The file is not one the tools may read: the message says why."""


def kind_of(mode: int) -> str:
    """'a symbolic link', 'a FIFO (named pipe)', ... for a ``st_mode``."""
    kinds = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"),
             (stat.S_ISREG, "a regular file")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _open(path: str | Path) -> int:
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        return os.open(path, flags)
    except OSError as exc:
        try:
            kind = kind_of(os.lstat(path).st_mode)
        except OSError:
            kind = None
        if kind == "a symbolic link":
            raise UnsafeFile("it is a symbolic link, not a file (a link is never "
                             "followed)") from None
        raise UnsafeFile(f"it cannot be opened: {exc.strerror or exc}") from None


def read_regular(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``; :class:`UnsafeFile` otherwise."""
    fd = _open(path)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"it is {kind_of(info.st_mode)}, not a regular file")
        if info.st_size > max_bytes:
            raise UnsafeFile(f"it holds {info.st_size:,} bytes, more than the {max_bytes:,} "
                             "allowed")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 2**20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise UnsafeFile(f"it grew past the {max_bytes:,} bytes allowed while it was read")
    return data
