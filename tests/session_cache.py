"""A fixture's value computed once per test session, even across pytest-xdist workers."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def once_per_session(tmp_path_factory, worker_id: str, name: str, make: Callable[[Path], object]):
    """``make(folder)`` computed once for the whole test session, even across pytest-xdist
    workers: the first worker that needs it computes it under a file lock and pickles it
    next to the workers' temporary folders; the others wait for the lock and read it.

    (xdist's ``--dist loadgroup`` would send such tests to one worker, but with pytest 9.2
    it silently stops grouping, so each worker would compute an expensive fixture again.)
    """
    if worker_id == "master":  # not under xdist
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent
    cache = shared / f"{name}.pickle"
    with FileLock(str(cache) + ".lock"):
        if cache.is_file():
            return pickle.loads(cache.read_bytes())
        folder = shared / name
        folder.mkdir(exist_ok=True)
        value = make(folder)
        cache.write_bytes(pickle.dumps(value))
        return value
