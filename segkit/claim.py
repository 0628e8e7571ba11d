"""Taking an output folder for one writer: a run, an evaluation, never two at once.

Two ``segkit train --out-dir D`` started together, a resume pointed at another run's
folder, a second ``segkit evaluate`` into the default folder: each would replace the
other's files. So every writer *claims* its folder before it writes anything:

- the folder is created if needed, and a lock is taken on ``.segkit.lock`` inside it
  (an operating-system lock: it is held while the process runs and let go when it ends,
  even when it is killed, so an interrupted run never leaves a folder locked);
- a folder that another running process holds, or that already holds another writer's
  results (``outputs``: e.g. ``last.pt``, ``history.csv``), is left alone and the claim
  falls to the next free name, ``D-2``, ``D-3``, ... and says so;
- ``own``: the one folder a writer may go on writing in although it holds results (a
  resumed run's own folder).

``claim_folder(path, outputs)`` returns the folder claimed; ``release_folder(path)`` lets
it go when the writer is done: the lock file is removed, and a folder the claim made that
holds nothing else is removed too (a run that wrote nothing leaves nothing behind).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from segkit.errors import SegkitError

LOCK_NAME = ".segkit.lock"

#: Folders this process holds: path -> (lock file descriptor, whether the claim made it).
_HELD: dict[Path, tuple[int, bool]] = {}


class FolderError(SegkitError, OSError):
    """An output folder cannot be made or used (a file in the way, no permission, full disk)."""


def claim_folder(folder: str | Path, outputs: Iterable[str], *, own: str | Path | None = None,
                 option: str = "--out-dir", what: str = "run",
                 log: Callable[[str], None] = print) -> Path:
    """Create or take ``folder`` for this process alone and return it, or the first of
    ``folder-2``, ``folder-3``, ... that is free (module docstring); ``log`` says when the
    claim did not get ``folder`` itself, and why."""
    folder = Path(folder).expanduser()
    outputs = tuple(outputs)
    own_path = Path(own).expanduser().resolve() if own is not None else None
    candidate, n, reason = folder, 1, None
    while True:
        why = _try_claim(candidate, outputs, own_path, option, first=(n == 1))
        if why is None:
            if reason is not None:
                log(f"{folder} {reason}; this {what} writes to {candidate}")
            return candidate
        reason = reason or why
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")


def refuse_a_file(folder: str | Path, option: str = "--out-dir") -> None:
    """Raise when the output folder asked for is an existing file (checked before any
    work starts: a claim happens only once there is something to write)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{option} {folder} is a file, not a folder: give a folder name "
                          "(it is created), e.g. the file's name without its extension")


def _try_claim(candidate: Path, outputs: tuple[str, ...], own: Path | None, option: str,
               first: bool) -> str | None:
    """None when ``candidate`` is now this process's; else why not, in words."""
    if candidate.resolve() in _HELD:
        return "is in use by this process"
    if candidate.exists() and not candidate.is_dir():
        if first:
            refuse_a_file(candidate, option)
        return "is a file"
    made = not candidate.exists()
    try:
        candidate.mkdir(parents=True, exist_ok=True)
        fd = _lock(candidate / LOCK_NAME)
    except OSError as exc:
        raise FolderError(f"cannot write to {option} {candidate}: {exc.strerror or exc} "
                          "(a read-only place, a full disk, or no permission): give a folder "
                          f"you can write to with {option}") from None
    if fd is None:
        return "is in use by another segkit process now"
    held = [name for name in outputs if (candidate / name).exists()]
    if held and candidate.resolve() != own:
        _unlock(candidate, fd)
        return f"holds earlier results ({', '.join(held[:3])}), which are kept"
    _HELD[candidate.resolve()] = (fd, made)
    return None


def _lock(path: Path) -> int | None:
    """A file descriptor holding an exclusive lock on ``path`` (created), or None when
    another process holds it. The lock ends with the descriptor or the process."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        try:  # the file may have been removed by its last holder in between: lock anew
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def release_folder(folder: str | Path) -> None:
    """Let ``folder`` go (see :func:`claim_folder`): its lock file is removed, and so is
    the folder when the claim created it and nothing was written in it. (A process that
    opened the lock file meanwhile sees that it is gone and takes a new one.)"""
    key = Path(folder).resolve()
    fd, made = _HELD.pop(key, (None, False))
    if fd is None:
        return
    _unlock(key, fd)
    try:
        if made and not any(key.iterdir()):
            key.rmdir()
    except OSError:
        pass  # a file appeared meanwhile, or no right to remove: keep the folder


def _unlock(folder: Path, fd: int) -> None:
    """Remove the lock file of ``folder`` (held through ``fd``) and let the lock go."""
    try:
        (folder / LOCK_NAME).unlink(missing_ok=True)
    except OSError:
        pass  # no right to remove it: the lock still ends with the descriptor
    finally:
        os.close(fd)
